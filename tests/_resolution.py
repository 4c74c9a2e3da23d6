"""Scan a results.json for rates at targets its counts cannot resolve (shared by the resolution tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from facebench.keys import split_path
from facebench.results import BenchmarkEntry, RunResults

TARGET = re.compile(r"^\de-\d\d$")
IMPOSTOR_HEADS = {"tar_at_far", "operating_points", "tar_at_far_by_size"}
NONMATED_HEADS = {"tpir_at_fpir", "fnir_at_fpir", "fpir", "thresholds", "nonmated_accepted"}


def _walk(node: Any, path: tuple[str, ...] = ()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    else:
        yield path, node


def _negatives(name: str, entry: BenchmarkEntry, path: tuple[str, ...], run_dir: Path) -> int:
    """The impostor pairs or non-mated searches behind the rate at ``path``, from counts and arrays."""
    kind = entry.kind
    if kind == "megaface":
        size = path[1] if path[0] == "tar_at_far_by_size" else str(entry.rules["verification_size"])
        return entry.counts["n_probes"] * entry.counts["n_distractors_used"][size]
    if kind == "ijb_1n":
        per = entry.details["per_gallery"]
        return per[path[1]]["n_nonmated"] if path[0] == "per_gallery" else min(g["n_nonmated"] for g in per.values())
    head = path[0]
    if head in NONMATED_HEADS:
        return entry.counts["n_nonmated"]
    if kind == "ijb_1to1":
        return entry.counts["n_impostor"]
    with np.load(run_dir / f"{name}.npz") as arrays:
        return int(np.count_nonzero(~arrays["labels"].astype(bool)))


def _numbers(entry: BenchmarkEntry) -> list[tuple[tuple[str, ...], Any]]:
    """Every metric (its path split at its dot) and every leaf of the details, with its value."""
    details = {k: v for k, v in entry.details.items() if k not in ("unmeasurable", "few_events")}
    return [(tuple(split_path(p)), m.value) for p, m in entry.metrics.items()] + list(_walk(details))


def rates_by_resolution(doc: RunResults, run_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """(numbers at unresolvable targets, nulls with their reason (the metric's ``unmeasurable``, or the
    details' for deeper paths), nulls without one) over every benchmark's metrics and details; each item
    ``<benchmark>:<metric path>``."""
    bad, explained, unexplained = [], [], []
    for name, entry in doc.benchmarks.items():
        reasons = {p: m.unmeasurable for p, m in entry.metrics.items() if m.unmeasurable}
        reasons.update(entry.details.get("unmeasurable", {}))
        for path, value in _numbers(entry):
            heads = [p for p in path if p in IMPOSTOR_HEADS | NONMATED_HEADS]
            targets = [p for p in path if TARGET.match(p)]
            if not heads or not targets:
                continue
            n = _negatives(name, entry, path if path[0] == "per_gallery" else path[path.index(heads[0]):], run_dir)
            where = f"{name}:{'.'.join(path)}"
            if value is None:
                # companions of a TPIR (its FNIR, FPIR, threshold, count) share its reason
                metric = ".".join("tpir_at_fpir" if p in NONMATED_HEADS else p for p in path)
                (explained if metric in reasons or ".".join(path) in reasons else unexplained).append(where)
            elif float(targets[-1]) * n < 1:
                bad.append(where)
    return bad, explained, unexplained
