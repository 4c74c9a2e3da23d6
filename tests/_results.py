"""Results documents built in tests the way a run builds them: nested evaluator output through the one mapping."""

from __future__ import annotations

from typing import Any

from facebench.results import BenchmarkEntry, RunResults, entry_from_nested


def document(benchmarks: dict[str, dict[str, Any]], **members: Any) -> RunResults:
    """A results document holding ``benchmarks`` (name -> an entry with the evaluator's nested ``metrics``,
    as :func:`facebench.pipeline.benchmark_entry` passes it to :func:`facebench.results.entry_from_nested`)."""
    entries = {name: entry_from_nested(entry, f"test document: benchmarks.{name}")
               for name, entry in benchmarks.items()}
    return RunResults(facebench_version="", created="", benchmarks=entries, **members)


def group(entry: BenchmarkEntry, head: str) -> dict[str, float | None]:
    """The values of the entry's ``head.<key>`` metrics by key (``tar_at_far`` -> ``{"1e-04": 0.9, ...}``)."""
    return {path.partition(".")[2]: m.value for path, m in entry.metrics.items() if path.partition(".")[0] == head
            and "." in path}
