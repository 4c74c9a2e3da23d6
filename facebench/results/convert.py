"""The one mapping from the nested results of the evaluators (and of ``facebench.results/1`` documents) to
the typed entries of ``facebench.results/2``.

An evaluator returns its metrics as a tree (``{"accuracy": 0.99, "tar_at_far": {"1e-04": 0.9},
"operating_points": {...}, "fold_accuracies": [...]}``); a version-1 document stored that tree as is, with
the counts (``n_pairs``, ...) beside the other members of the entry. The rule, in one place
(:func:`flat_metrics`):

- every number or null at depth 1 is the metric ``head``, at depth 2 the metric ``head.key`` (the grammar
  of :mod:`facebench.keys`);
- everything else keeps its place in ``details`` (lists, strings, deeper objects, empty objects; the
  non-number members of a mixed object);
- ``unmeasurable[PATH]`` and ``few_events[PATH]`` of a metric become its ``unmeasurable`` and
  ``few_events``; those of deeper paths (``per_gallery.G1...``) stay in ``details``;
- a metric's ``interval`` is its ``few_events`` positive-rate interval, else (``tar_at_far.K``) the
  ``tar_ci95`` of ``operating_points[K]``; its ``std`` is the metric ``PATH + "_std"`` when there is one
  (``accuracy`` -> ``accuracy_std``, ``val_at_far_1e-03.val`` -> ``val_at_far_1e-03.val_std``);
- its ``rules``: the entry's ``rules`` named by ``column_rules[PATH]``, else by its kind's
  ``Metric.rule_keys``.
"""

from __future__ import annotations

from typing import Any, Mapping

from facebench import kinds
from facebench.errors import FacebenchError
from facebench.keys import split_path
from facebench.results.jsonvalues import json_ready
from facebench.results.model import BenchmarkEntry, MetricValue, RunResults
from facebench.schema import from_table

#: Schema of the documents :func:`upgrade_v1` reads.
SCHEMA_V1 = "facebench.results/1"

#: Members of a version-1 entry that are not counts (every other member is one).
ENTRY_MEMBERS = ("title", "kind", "protocol_version", "metrics", "rules", "column_rules", "inputs", "columns",
                 "warnings", "artifacts", "feature_sources", "extra", "thresholds", "enrolment")

#: Members of a version-1 document kept as they are (``schema`` and ``benchmarks`` are converted).
RUN_MEMBERS = ("facebench_version", "created", "label", "checkpoint", "features", "settings", "environment",
               "model", "extraction", "failed")

_RESOLUTION = ("unmeasurable", "few_events")


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def flat_metrics(
    kind: str, tree: Mapping[str, Any], rules: Mapping[str, Any], column_rules: Mapping[str, str] | None = None
) -> tuple[dict[str, MetricValue], dict[str, Any]]:
    """An evaluator's metrics tree as ``(metrics by path, details)`` by the rule of the module docstring."""
    column_rules = column_rules or {}
    values: dict[str, float | None] = {}
    details: dict[str, Any] = {}
    for head, node in tree.items():
        if head in _RESOLUTION:
            continue
        if _is_number(node):
            values[head] = node
        elif isinstance(node, dict) and node:
            rest = {}
            for key, leaf in node.items():
                if _is_number(leaf):
                    values[f"{head}.{key}"] = leaf
                else:
                    rest[key] = leaf
            if rest:
                details[head] = rest
        else:
            details[head] = node
    resolution: dict[str, dict[str, Any]] = {}
    for name in _RESOLUTION:
        table = tree.get(name)
        if name in tree and not isinstance(table, dict):
            details[name] = table
            continue
        resolution[name] = dict(table or {})
        left = {p: v for p, v in resolution[name].items() if p not in values}
        if left or name in tree and not table:
            details[name] = left
    points = details.get("operating_points") if isinstance(details.get("operating_points"), dict) else {}
    declared = kinds.for_entry(kind)
    metrics = {}
    for path, value in values.items():
        few = resolution["few_events"].get(path)
        interval = few.get("positive_rate_ci95") if isinstance(few, dict) else None
        head, *key = split_path(path)
        if interval is None and head == "tar_at_far" and key and isinstance(points.get(key[0]), dict):
            interval = points[key[0]].get("tar_ci95")
        keys = (column_rules[path],) if path in column_rules else declared.metric(head).rule_keys
        metrics[path] = MetricValue(
            value=None if value is None else float(value),
            rules={k: rules[k] for k in keys if k in rules},
            interval=tuple(interval) if interval is not None else None,  # type: ignore[arg-type]
            std=values.get(f"{path}_std"),
            unmeasurable=str(resolution["unmeasurable"].get(path) or ""),
            few_events=few,  # type: ignore[arg-type]  # checked and typed by entry_from_nested
        )
    return metrics, details


def entry_from_nested(entry: Mapping[str, Any], where: str) -> BenchmarkEntry:
    """A version-1 entry (the evaluator's nested ``metrics`` with the counts beside the other members) as
    a typed entry, its values made JSON values first (:func:`~facebench.results.jsonvalues.json_ready`: what
    an evaluator returns may hold numpy numbers and NaN); every member checked (errors name ``where``, the
    file and the benchmark)."""
    entry = json_ready(entry)
    rules = entry.get("rules") if isinstance(entry.get("rules"), dict) else {}
    column_rules = entry.get("column_rules") if isinstance(entry.get("column_rules"), dict) else {}
    tree = entry.get("metrics") if isinstance(entry.get("metrics"), dict) else {}
    metrics, details = flat_metrics(str(entry.get("kind", "")), tree, rules, column_rules)
    body: dict[str, Any] = {k: entry[k] for k in ENTRY_MEMBERS if k in entry and k != "metrics"}
    body.setdefault("title", where.rpartition(".")[2])
    body.setdefault("kind", "")
    body["metrics"] = {
        path: {k: v for k, v in vars(m).items() if v is not None or k == "value"} for path, m in metrics.items()
    }
    body["details"] = details
    body["counts"] = {k: v for k, v in entry.items() if k not in ENTRY_MEMBERS}
    return from_table(BenchmarkEntry, body, where)


def check_members(doc: Mapping[str, Any], where: str) -> None:
    """The members every reader uses, in either version: ``benchmarks`` and ``failed`` objects, each
    benchmark an object with a ``metrics`` object."""
    for key in ("benchmarks", "failed"):
        if not isinstance(doc.get(key), dict):
            raise FacebenchError(f"{where}: member {key!r} must be an object, got {type(doc.get(key)).__name__}")
    for name, entry in doc["benchmarks"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
            raise FacebenchError(f"{where}: benchmarks.{name} must be an object with a 'metrics' object")


def upgrade_v1(doc: Mapping[str, Any], where: str = "results.json") -> RunResults:
    """A ``facebench.results/1`` document as :class:`RunResults`: each entry through
    :func:`entry_from_nested`, the other members as they are. ``where`` names the file in errors."""
    check_members(doc, where)
    body = {k: doc[k] for k in RUN_MEMBERS if k in doc}
    body.setdefault("facebench_version", "")
    body.setdefault("created", "")
    run = from_table(RunResults, body, f"{where}:")
    run.benchmarks = {
        str(name): entry_from_nested(entry, f"{where}: benchmarks.{name}") for name, entry in doc["benchmarks"].items()
    }
    return run
