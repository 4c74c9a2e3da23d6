"""Runs as reports see them: a results document, its directory, a unique label and lazily loaded arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from facebench.errors import FacebenchError
from facebench.report.tables import run_label
from facebench.results import BenchmarkEntry, RunResults, load_arrays, read_results


@dataclass
class Run:
    """One run directory: ``results.json`` plus the ``<benchmark>.npz`` arrays beside it."""

    label: str
    directory: Path
    document: RunResults
    _arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    shown_as: Path | None = None  # the directory a page names, when not ``directory`` (a run being written)

    @property
    def shown_directory(self) -> Path:
        """The directory as a page names it."""
        return self.shown_as if self.shown_as is not None else self.directory

    def entry(self, benchmark: str) -> BenchmarkEntry | None:
        """The results entry of a benchmark (None when the run does not have it)."""
        return self.document.benchmarks.get(benchmark)

    def arrays(self, benchmark: str) -> dict[str, np.ndarray]:
        """The saved arrays of a benchmark (empty when none were saved), loaded once."""
        if benchmark not in self._arrays:
            try:
                self._arrays[benchmark] = load_arrays(self.directory, benchmark)
            except (OSError, ValueError) as exc:
                raise FacebenchError(f"{self.directory / (benchmark + '.npz')}: cannot read the arrays: {exc}") from exc
        return self._arrays[benchmark]


def load_runs(directories: Sequence[str | Path], labels: Sequence[str] = ()) -> list[Run]:
    """Read each run directory (or results.json path); labels default to the checkpoint names, made unique
    by the directory name (then a counter) when two runs would share one."""
    if labels and len(labels) != len(directories):
        raise FacebenchError(f"--label given {len(labels)} times for {len(directories)} runs: give one per run or none")
    if len(set(labels)) != len(labels):
        raise FacebenchError(f"--label: every run needs its own name; got {list(labels)}")
    runs = []
    for i, path in enumerate(directories):
        path = Path(path)
        document = read_results(path)
        directory = path if path.is_dir() else path.parent
        label = labels[i] if labels else run_label(document)
        runs.append(Run(label, directory, document))
    if not labels:
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.label] = counts.get(run.label, 0) + 1
        for run in runs:
            if counts[run.label] > 1:
                run.label = f"{run.label} ({run.directory.resolve().name})"
    seen: dict[str, int] = {}
    for run in runs:
        if run.label in seen:
            seen[run.label] += 1
            run.label = f"{run.label} #{seen[run.label]}"
        else:
            seen[run.label] = 1
    return runs
