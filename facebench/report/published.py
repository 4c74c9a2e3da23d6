"""Published reference results, shipped as data: ``facebench/report/published/<source>.toml``.

One file per published table (a README at a commit, or a paper), with its citation, where each number
was read and how it was verified, and the rules its numbers were computed with, so that a comparison
marks a published cell whose rule differs from the column's. Values are percentages as printed.

Schema::

    name = "facexzoo"                 # = file stem; selects the whole source
    title = "..."
    citation = "..."
    url = "..."                       # optional: repo, path, commit, notes, training_set
    verified = "how every number was checked"
    [rules.<kind or benchmark>]       # rules keys as in results.json, those the kind declares
    kfold = "facexzoo"                #  (pairs: kfold; ijb_1to1: tar_at_far; ijb_1n: ijb_1n, tpir_rule; ...)
    [[row]]
    id = "mobilefacenet"              # selects one row: --published facexzoo/mobilefacenet
    label = "MobileFaceNet"           # optional: table, backbone, head, training_set, note
    values = { lfw = { accuracy = 99.57 }, megaface = { "rank1.1000000" = 90.39 } }

A value ``v`` becomes the fraction ``float(Decimal(repr(v)) / 100)``: the double nearest the printed
decimal divided by 100 (99.57 -> 0.9957 exactly as Python reads "0.9957").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping, Sequence

from facebench import kinds
from facebench.benchmarks import Benchmark, load_benchmarks, suggest
from facebench.kinds.base import Kind
from facebench.errors import FacebenchError
from facebench.io.textdoc import TOMLDecodeError, parse_toml
from facebench.results import BenchmarkEntry, RunResults, entry_from_nested

_TOP_KEYS = {
    "name",
    "title",
    "citation",
    "url",
    "repo",
    "path",
    "commit",
    "verified",
    "notes",
    "training_set",
    "rules",
    "row",
}
_REQUIRED = ("name", "title", "citation", "verified", "row")
_ROW_KEYS = {"id", "label", "table", "backbone", "head", "training_set", "values", "note"}
#: The rules keys a published table may state per kind, and the metrics it may give (from the kinds'
#: declarations, `facebench.kinds.base.Kind.published_rule_keys` / ``published_metrics``).
RULE_KEYS: dict[str, frozenset[str]] = {
    k.name: frozenset(k.published_rule_keys) for k in kinds.BUILT_IN if k.published_metrics
}


@dataclass(frozen=True)
class PublishedRow:
    """One published result: benchmark -> metric path -> fraction; ``printed`` keeps the percent text."""

    source: str
    id: str
    label: str
    values: Mapping[str, Mapping[str, float]]
    printed: Mapping[str, Mapping[str, str]]
    table: str = ""
    backbone: str = ""
    head: str = ""
    training_set: str = ""
    note: str = ""

    @property
    def key(self) -> str:
        """``source/id``, the name that selects this row."""
        return f"{self.source}/{self.id}"


@dataclass(frozen=True)
class PublishedSource:
    """One published table with its provenance and rules."""

    name: str
    title: str
    citation: str
    verified: str
    rows: tuple[PublishedRow, ...]
    rules: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    url: str = ""
    repo: str = ""
    path: str = ""
    commit: str = ""
    notes: str = ""
    training_set: str = ""
    origin: str = ""

    def rules_for(self, benchmark: str, kind: str) -> dict[str, str]:
        """The rules of a benchmark's numbers: ``[rules.<kind>]`` updated by ``[rules.<benchmark>]``."""
        return {**self.rules.get(kind, {}), **self.rules.get(benchmark, {})}


def published_dir() -> Path:
    """The directory of the shipped published tables."""
    return Path(__file__).resolve().parent / "published"


def _fraction(value: Any, where: str) -> tuple[float, str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FacebenchError(f"{where}: expected a percentage number, got {value!r}")
    text = repr(float(value)) if isinstance(value, float) else str(value)
    number = Decimal(text)
    if not Decimal(0) < number <= Decimal(100):
        raise FacebenchError(f"{where}: {text} is not a percentage in (0, 100]")
    return float(number / 100), text


def _published_kind(bench: str, benchmarks: Mapping[str, Benchmark], where: str) -> Kind:
    """The kind of benchmark ``bench``; it must declare published metrics."""
    kind = kinds.get(benchmarks[bench].kind)
    if not kind.published_metrics:
        published = sorted(k.name for k in kinds.BUILT_IN if k.published_metrics)
        raise FacebenchError(f"{where}: {bench} is a {kind.name} benchmark; published values are for {published}")
    return kind


def _check_metric(metric: str, kind: Kind, where: str) -> None:
    head = metric.partition(".")[0]
    if head not in kind.published_metrics:
        raise FacebenchError(
            f"{where}: metric {head!r} is not one of {sorted(kind.published_metrics)} for a {kind.name} benchmark"
        )
    kind.metric(head).check_key(metric, where)


def parse_source(data: dict[str, Any], origin: str, benchmarks: Mapping[str, Benchmark]) -> PublishedSource:
    """Validate one published table; every problem names ``origin`` and the field."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise FacebenchError(f"{origin}: unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    for key in _REQUIRED:
        if key not in data:
            raise FacebenchError(f"{origin}: missing required key {key!r}")
    name = str(data["name"])
    rules: dict[str, dict[str, str]] = {}
    kinds_used = {spec.kind for spec in benchmarks.values()}
    published_kinds = {k for k in (*RULE_KEYS, *kinds_used) if kinds.for_entry(k).published_metrics}
    for scope, table in dict(data.get("rules", {})).items():
        kind = scope if scope in published_kinds else benchmarks[scope].kind if scope in benchmarks else None
        if kind is None or kind not in published_kinds:
            raise FacebenchError(
                f"{origin}: rules.{scope}: not a benchmark kind ({', '.join(sorted(published_kinds))}) or benchmark "
                f"name{suggest(scope, [*published_kinds, *benchmarks])}"
            )
        allowed = kinds.for_entry(kind).published_rule_keys
        bad = sorted(set(table) - set(allowed))
        if bad:
            raise FacebenchError(
                f"{origin}: rules.{scope}: unknown rule key(s) {bad}; a {kind} benchmark has {sorted(allowed)}"
            )
        rules[scope] = {k: str(v) for k, v in table.items()}
    rows = []
    seen: set[str] = set()
    for i, raw in enumerate(data["row"]):
        where = f"{origin}: row {i + 1}"
        bad = sorted(set(raw) - _ROW_KEYS)
        if bad:
            raise FacebenchError(f"{where}: unknown key(s) {bad}; allowed: {sorted(_ROW_KEYS)}")
        if "id" not in raw or "values" not in raw:
            raise FacebenchError(f"{where}: needs 'id' and 'values'")
        ident = str(raw["id"])
        if ident in seen or "/" in ident:
            raise FacebenchError(f"{where}: id {ident!r} is repeated or contains '/'")
        seen.add(ident)
        values: dict[str, dict[str, float]] = {}
        printed: dict[str, dict[str, str]] = {}
        for bench, metrics in dict(raw["values"]).items():
            if bench not in benchmarks:
                raise FacebenchError(f"{where}: unknown benchmark {bench!r}{suggest(bench, benchmarks)}")
            kind = _published_kind(bench, benchmarks, where)
            for metric, value in dict(metrics).items():
                _check_metric(metric, kind, f"{where}: {bench}.{metric}")
                fraction, text = _fraction(value, f"{where}: {bench}.{metric}")
                values.setdefault(bench, {})[metric] = fraction
                printed.setdefault(bench, {})[metric] = text
        if not values:
            raise FacebenchError(f"{where}: no values")
        rows.append(
            PublishedRow(
                name,
                ident,
                str(raw.get("label", ident)),
                values,
                printed,
                str(raw.get("table", "")),
                str(raw.get("backbone", "")),
                str(raw.get("head", "")),
                str(raw.get("training_set", data.get("training_set", ""))),
                str(raw.get("note", "")),
            )
        )
    return PublishedSource(
        name=name,
        title=str(data["title"]),
        citation=str(data["citation"]),
        verified=str(data["verified"]),
        rows=tuple(rows),
        rules=rules,
        url=str(data.get("url", "")),
        repo=str(data.get("repo", "")),
        path=str(data.get("path", "")),
        commit=str(data.get("commit", "")),
        notes=str(data.get("notes", "")),
        training_set=str(data.get("training_set", "")),
        origin=origin,
    )


def load_sources(
    directory: str | Path | None = None, benchmarks: Mapping[str, Benchmark] | None = None
) -> dict[str, PublishedSource]:
    """Every published table in ``directory`` (default: the shipped ones), validated; names unique."""
    directory = Path(directory) if directory else published_dir()
    benchmarks = benchmarks if benchmarks is not None else load_benchmarks()
    sources: dict[str, PublishedSource] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = parse_toml(path.read_text(encoding="utf-8"), str(path))
        except TOMLDecodeError as exc:
            raise FacebenchError(f"{path}: invalid TOML: {exc}") from exc
        source = parse_source(data, str(path), benchmarks)
        if source.name != path.stem:
            raise FacebenchError(f"{path}: name {source.name!r} differs from the file name {path.stem!r}")
        sources[source.name] = source
    return sources


def select(names: Sequence[str], sources: Mapping[str, PublishedSource]) -> list[tuple[PublishedSource, PublishedRow]]:
    """Resolve ``--published`` names: ``SOURCE`` (every row) or ``SOURCE/ID``; order kept, no repeats."""
    chosen: list[tuple[PublishedSource, PublishedRow]] = []
    for name in names:
        source_name, _, row_id = name.partition("/")
        if source_name not in sources:
            raise FacebenchError(
                f"unknown published source {source_name!r}{suggest(source_name, sources)} "
                f"(known: {', '.join(sources)}; see `facebench compare --list-published`)"
            )
        source = sources[source_name]
        if row_id in ("", "*"):
            rows = list(source.rows)
        else:
            rows = [r for r in source.rows if r.id == row_id]
            if not rows:
                raise FacebenchError(
                    f"published source {source_name!r} has no row {row_id!r}"
                    f"{suggest(row_id, [r.id for r in source.rows])}; rows: {', '.join(r.id for r in source.rows)}"
                )
        for row in rows:
            if all(row is not r for _, r in chosen):
                chosen.append((source, row))
    return chosen


def as_document(source: PublishedSource, row: PublishedRow, benchmarks: Mapping[str, Benchmark]) -> RunResults:
    """A published row as a results document labelled by the row, its entries typed by the mapping runs use
    (:func:`facebench.results.entry_from_nested`), for the tables."""
    entries: dict[str, BenchmarkEntry] = {}
    for bench, metrics in row.values.items():
        spec = benchmarks[bench]
        nested: dict[str, Any] = {}
        for metric, value in metrics.items():
            head, _, tail = metric.partition(".")
            if tail:
                nested.setdefault(head, {})[tail] = value
            else:
                nested[head] = value
        entry = {
            "title": spec.title,
            "kind": spec.kind,
            "rules": source.rules_for(bench, spec.kind),
            "metrics": nested,
            "columns": {m: spec.columns.get(m, f"{spec.title} {m}") for m in metrics},
        }
        entries[bench] = entry_from_nested(entry, f"published {source.name}/{row.id}: {bench}")
    return RunResults(facebench_version="", created="", label=row.label, benchmarks=entries)
