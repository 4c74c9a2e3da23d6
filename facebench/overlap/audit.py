"""Audit a training set against benchmark identities: name evidence, centre-similarity evidence, a ranked
table and the identities to keep.

Evidence per (training identity, benchmark identity) pair:

- names (:mod:`facebench.overlap.names`): the strongest rule under which any name of the training
  identity matches the benchmark identity's name; rules weaker than ``name_rule`` are not used;
- similarity (:mod:`facebench.overlap.centres`): cosine of the two identity centres, flagged when
  strictly above ``threshold``. Name-matched pairs also show their cosine when both centres exist.

Removal (``remove_on``): ``any`` (default: a pair with either evidence), ``names``, ``similarity``, or
``both`` (a pair with both). A training identity is removed when one of its pairs is.

Ranking: pairs with both evidence kinds first, then by cosine (highest first; no cosine last), then by
name rule (strongest first), then by training identity, benchmark and benchmark identity.

Outputs (one folder, all or nothing, ``audit.json`` last): ``overlaps.tsv`` and ``overlaps.md`` (the
ranked table), ``kept_identities.txt`` and ``removed_identities.txt`` (training identities, sorted by
code point) and ``audit.json`` (inputs with checksums, rules, counts per benchmark, warnings).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facebench import __version__
from facebench.errors import FacebenchError
from facebench.atomic import write_json
from facebench.overlap.centres import DEFAULT_THRESHOLD, pair_cosines, similar_pairs
from facebench.overlap.names import NAME_RULES, match_identities, rule_rank
from facebench.overlap.sources import BenchmarkIdentities
from facebench.overlap.staging import finish_file, staged_folder
from facebench.registry import Registry

log = logging.getLogger(__name__)

REMOVE_ON: Registry[str] = Registry("removal policy", [
    ("any", "a name match or a similar centre"),
    ("names", "a name match"),
    ("similarity", "a similar centre"),
    ("both", "a name match and a similar centre"),
])
"""``--remove-on`` -> the evidence that removes a training identity."""
AUDIT_FILES: tuple[str, ...] = (
    "overlaps.tsv",
    "overlaps.md",
    "kept_identities.txt",
    "removed_identities.txt",
    "audit.json",
)
COLUMNS: tuple[str, ...] = (
    "rank",
    "train_identity",
    "train_label",
    "train_name",
    "benchmark",
    "benchmark_identity",
    "name_rule",
    "cosine",
    "evidence",
    "removed",
)


@dataclass(frozen=True)
class AuditRules:
    """The rules of one audit: weakest name rule used, cosine threshold, removal policy."""

    name_rule: str = "initials"
    threshold: float = DEFAULT_THRESHOLD
    remove_on: str = "any"

    def __post_init__(self) -> None:
        NAME_RULES.check(self.name_rule, "--name-rule")
        REMOVE_ON.check(self.remove_on, "--remove-on")
        if not (math.isfinite(self.threshold) and -1.0 <= self.threshold <= 1.0):
            raise FacebenchError(f"--threshold {self.threshold}: a cosine threshold lies in [-1, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name_rule": self.name_rule,
            "name_rules_used": list(NAME_RULES.names()[: rule_rank(self.name_rule) + 1]),
            "threshold": self.threshold,
            "similarity_rule": "cosine of identity centres > threshold; centre = normalise(sum of normalised rows)",
            "remove_on": self.remove_on,
        }


@dataclass
class Suspect:
    """One suspected overlap: training identity ``train`` and identity ``bench`` of ``benchmark``."""

    train: int
    benchmark: str
    bench: int
    name_rule: str | None = None
    train_name: str = ""
    bench_name: str = ""
    cosine: float = math.nan
    similar: bool = False
    removed: bool = False

    @property
    def evidence(self) -> str:
        kinds = (["names"] if self.name_rule else []) + (["similarity"] if self.similar else [])
        return "+".join(kinds)

    def sort_key(self) -> tuple:
        n = (self.name_rule is not None) + self.similar
        cos = -self.cosine if math.isfinite(self.cosine) else math.inf
        rule = rule_rank(self.name_rule) if self.name_rule else len(NAME_RULES)
        return (-n, cos, rule, self.train, self.benchmark, self.bench)


@dataclass
class AuditResult:
    """Ranked suspects, the removed training identities (indices) and per-benchmark counts."""

    suspects: list[Suspect]
    removed: np.ndarray
    per_benchmark: dict[str, dict[str, int]]
    warnings: list[str] = field(default_factory=list)


def find_overlaps(
    benchmarks: Sequence[BenchmarkIdentities],
    rules: AuditRules,
    *,
    n_train: int,
    train_names: Sequence[Sequence[str]] | None = None,
    train_centres: np.ndarray | None = None,
    bench_centres: dict[str, np.ndarray] | None = None,
) -> AuditResult:
    """Collect name and similarity evidence for every benchmark, rank it and decide removals.

    ``train_names[i]``: names of training identity i (empty when unknown); ``train_centres`` (T, D) and
    ``bench_centres[name]`` (B, D): unit centres, NaN rows where unknown.
    """
    bench_centres = bench_centres or {}
    if train_names is None and train_centres is None:
        raise FacebenchError("the audit needs names (--names) or features (--features or a checkpoint)")
    suspects: dict[tuple[int, str, int], Suspect] = {}
    per_benchmark: dict[str, dict[str, int]] = {}
    warnings: list[str] = []
    for bench in benchmarks:
        counts = {"identities": len(bench.identities), "name_pairs": 0, "similar_pairs": 0, "both": 0}
        if train_names is not None:
            for m in match_identities(train_names, [[b] for b in bench.identities], rules.name_rule):
                s = suspects.setdefault((m.train, bench.name, m.bench), Suspect(m.train, bench.name, m.bench))
                s.name_rule, s.train_name, s.bench_name = m.rule, m.train_name, m.bench_name
                counts["name_pairs"] += 1
        centres = bench_centres.get(bench.name)
        if train_centres is not None and centres is not None:
            ti, bi, cos = similar_pairs(train_centres, centres, rules.threshold)
            for t, b, c in zip(ti.tolist(), bi.tolist(), cos.tolist()):
                s = suspects.setdefault((t, bench.name, b), Suspect(t, bench.name, b))
                s.similar, s.cosine = True, c
                counts["similar_pairs"] += 1
            named = [s for s in suspects.values() if s.benchmark == bench.name and not s.similar]
            if named:
                cos = pair_cosines(
                    train_centres, centres, np.array([s.train for s in named]), np.array([s.bench for s in named])
                )
                for s, c in zip(named, cos.tolist()):
                    s.cosine = c
        elif train_centres is not None:
            warnings.append(f"benchmark {bench.name}: no features or images for it, so names evidence only")
        counts["both"] = sum(1 for s in suspects.values() if s.benchmark == bench.name and s.name_rule and s.similar)
        per_benchmark[bench.name] = counts
    ranked = sorted(suspects.values(), key=Suspect.sort_key)
    removed = np.zeros(n_train, dtype=bool)
    for s in ranked:
        has_name, has_sim = s.name_rule is not None, s.similar
        s.removed = {
            "any": has_name or has_sim,
            "names": has_name,
            "similarity": has_sim,
            "both": has_name and has_sim,
        }[rules.remove_on]
        if s.removed:
            removed[s.train] = True
    for bench in benchmarks:
        per_benchmark[bench.name]["train_identities_removed"] = len(
            {s.train for s in ranked if s.benchmark == bench.name and s.removed}
        )
    return AuditResult(ranked, np.flatnonzero(removed), per_benchmark, warnings)


def _cell(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def table_rows(
    result: AuditResult,
    train_identities: Sequence[str],
    train_labels: Sequence[int] | None,
    benchmarks: dict[str, BenchmarkIdentities],
) -> list[list[str]]:
    """The ranked table as strings, columns :data:`COLUMNS`."""
    rows = []
    for rank, s in enumerate(result.suspects, 1):
        rows.append(
            [
                str(rank),
                train_identities[s.train],
                "-" if train_labels is None else str(train_labels[s.train]),
                s.train_name or "-",
                s.benchmark,
                benchmarks[s.benchmark].identities[s.bench],
                s.name_rule or "-",
                f"{s.cosine:.4f}" if math.isfinite(s.cosine) else "-",
                s.evidence,
                "yes" if s.removed else "no",
            ]
        )
    return rows


def write_audit(
    out_dir: str | Path,
    result: AuditResult,
    train_identities: Sequence[str],
    train_labels: Sequence[int] | None,
    benchmarks: Sequence[BenchmarkIdentities],
    record: dict[str, Any],
) -> dict[str, Any]:
    """Write the audit folder (all or nothing); return the ``audit.json`` document."""
    by_name = {b.name: b for b in benchmarks}
    rows = table_rows(result, train_identities, train_labels, by_name)
    removed = set(result.removed.tolist())
    kept_names = sorted(train_identities[i] for i in range(len(train_identities)) if i not in removed)
    removed_names = sorted(train_identities[i] for i in removed)
    doc = {
        "facebench_version": __version__,
        "command": "overlap audit",
        **record,
        "counts": {
            "train_identities": len(train_identities),
            "kept": len(kept_names),
            "removed": len(removed_names),
            "suspected_pairs": len(result.suspects),
            "per_benchmark": result.per_benchmark,
        },
        "columns": list(COLUMNS),
        "warnings": record.get("warnings", []) + result.warnings,
    }
    with staged_folder(out_dir, AUDIT_FILES) as stage:
        with open(stage / "overlaps.tsv", "w", encoding="utf-8", newline="\n") as handle:
            handle.write("\t".join(COLUMNS) + "\n")
            for row in rows:
                handle.write("\t".join(_cell(c) for c in row) + "\n")
            finish_file(handle)
        with open(stage / "overlaps.md", "w", encoding="utf-8", newline="\n") as handle:
            handle.write(_markdown(rows, doc))
            finish_file(handle)
        for name, items in (("kept_identities.txt", kept_names), ("removed_identities.txt", removed_names)):
            with open(stage / name, "w", encoding="utf-8", newline="\n") as handle:
                handle.writelines(f"{item}\n" for item in items)
                finish_file(handle)
        write_json(stage / "audit.json", doc)
    return doc


def _markdown(rows: list[list[str]], doc: dict[str, Any]) -> str:
    rules = doc["rules"]
    counts = doc["counts"]
    lines = [
        "# Suspected training/benchmark identity overlaps",
        "",
        f"Training identities: {counts['train_identities']:,}; removed {counts['removed']:,}, kept "
        f"{counts['kept']:,}. Name rules used: {', '.join(rules['name_rules_used'])}; cosine threshold "
        f"> {rules['threshold']}; removal on: {rules['remove_on']}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---:" if c in ("rank", "cosine") else "---" for c in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c).replace("|", "\\|") for c in row) + " |")
    if not rows:
        lines.append("| " + " | ".join("" for _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"
