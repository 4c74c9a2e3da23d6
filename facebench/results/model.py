"""The typed results document ``facebench.results/2``: a run, its benchmark entries, their metric values.

On disk (``results.json``)::

    {"schema": "facebench.results/2", "facebench_version", "created", "label",
     "checkpoint": {"path", "sha256", "format", ...} | null, "features": {"path"} | null,
     "settings": {... every flag, "profile": {...}}, "environment": {"python", "numpy", ...},
     "model": {"parameters", "flops", "speed", ...} | null, "extraction": {LIST: {"seconds", ...}} | null,
     "benchmarks": {NAME: {
         "title", "kind", "protocol_version",
         "metrics": {PATH: {"value": number | null, "rules": {KEY: VALUE}, "interval": [lo, hi],
                            "std": number, "unmeasurable": "reason", "few_events": {...}}},
         "details": {... the evaluator's non-scalar results: operating_points, fold_accuracies, cmc,
                     per_gallery, tar_at_far_by_size, the unmeasurable / few_events of deeper paths ...},
         "rules": {KEY: VALUE}, "column_rules": {PATH: RULES_KEY}, "counts": {"n_pairs", ...},
         "inputs": {FILE: sha256}, "columns": {PATH: LABEL}, "warnings": [...],
         "artifacts": {"arrays": "NAME.npz"}, "feature_sources": {LIST: {...}}, "extra": {...},
         "thresholds": {...} | null, "enrolment": {LIST: {...}}}},
     "failed": {NAME: "message"}}

A metric ``PATH`` follows the one grammar of :mod:`facebench.keys` (``accuracy``, ``tar_at_far.1e-04``,
``rank1.1000``, ``val_at_far_1e-03.val``): the strings of ``[columns]``, published tables and
``compare --column``. A metric value omits its members that are empty (no rules, no interval, ...).
Values are fractions in [0, 1] unless the kind declares another unit; a value the counts cannot measure is
null with its reason in ``unmeasurable``. Non-finite numbers are written null, paths under the writer's
home directory ``~/...`` (:func:`facebench.results.files.write_results`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from facebench.schema import from_table

SCHEMA = "facebench.results/2"


@dataclass(frozen=True)
class FewEvents:
    """A rate measured at a threshold that accepts fewer than 10 negatives: the counts and the 95%
    Clopper-Pearson intervals of both rates."""

    negatives_accepted: int
    n_negatives: int
    negative_rate_ci95: tuple[float, float]
    positive_rate_ci95: tuple[float, float]


@dataclass(frozen=True)
class MetricValue:
    """One metric of a benchmark entry.

    ``value``: the number, None when the run could not measure it (``unmeasurable`` says why) or it was not
    finite; ``rules``: the entry's ``rules`` members that qualify it (its kind's ``Metric.rule_keys``, or its
    ``column_rules`` key); ``interval``: the 95% interval the run computed for it (a rate's Clopper-Pearson
    interval at its operating point); ``std``: the spread the run computed for it (``accuracy``:
    the fold accuracies' ``accuracy_std``); ``few_events``: when the value rests on few negatives.
    """

    value: float | None
    rules: dict[str, Any] = field(default_factory=dict)
    interval: tuple[float, float] | None = None
    std: float | None = None
    unmeasurable: str = ""
    few_events: FewEvents | None = None


@dataclass
class BenchmarkEntry:
    """One evaluated benchmark of a run (see the module docstring for each member)."""

    title: str
    kind: str
    protocol_version: int | None = None
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    column_rules: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    feature_sources: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] | None = None
    enrolment: dict[str, Any] = field(default_factory=dict)

    def value(self, path: str) -> float | None:
        """The value of metric ``path`` (None when absent or not measured)."""
        metric = self.metrics.get(path)
        return metric.value if metric is not None else None


@dataclass
class RunResults:
    """A results document: provenance, one :class:`BenchmarkEntry` per evaluated benchmark, the failures.

    ``label``: the row label a report gives the run (empty: the checkpoint's or features' file name)."""

    facebench_version: str
    created: str
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] | None = None
    features: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    extraction: dict[str, Any] | None = None
    label: str = ""
    benchmarks: dict[str, BenchmarkEntry] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def entry(self, benchmark: str) -> BenchmarkEntry | None:
        """The entry of ``benchmark`` (None when the run does not have it)."""
        return self.benchmarks.get(benchmark)

    def to_json(self) -> dict[str, Any]:
        """The document as JSON values (``schema`` first; a metric value without its empty members)."""
        out: dict[str, Any] = {"schema": SCHEMA}
        for f in dataclasses.fields(self):
            out[f.name] = getattr(self, f.name)
        out["benchmarks"] = {name: _entry_json(entry) for name, entry in self.benchmarks.items()}
        out["failed"] = dict(self.failed)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any], where: str = "results.json") -> RunResults:
        """A version-2 document read back, every member checked against its type (errors name ``where``
        and the member)."""
        body = {k: v for k, v in doc.items() if k != "schema"}
        return from_table(cls, body, f"{where}:")


def _entry_json(entry: BenchmarkEntry) -> dict[str, Any]:
    out = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    out["metrics"] = {path: _value_json(m) for path, m in entry.metrics.items()}
    return out


def _value_json(metric: MetricValue) -> dict[str, Any]:
    out: dict[str, Any] = {"value": metric.value}
    for f in dataclasses.fields(metric)[1:]:
        value = getattr(metric, f.name)
        if value not in (None, "", {}):
            out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out
