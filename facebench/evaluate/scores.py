"""Scores from anywhere (`facebench score FILE`): another toolkit's or a vendor's comparisons, evaluated and
reported like any facebench run, so that they sit in the same tables (`facebench compare`).

1:1, over every finite score: ROC, TAR at FAR 1e-6 ... 1e-1 by ``--tar-rule`` with Clopper-Pearson
intervals, AUC, EER, operating thresholds (`facebench.evaluate.ijb.verification_metrics`, the IJB 1:1 code).

1:N, when the file names subjects (bob 4/5-column, CSV with subject columns): each distinct probe is one
search over the distinct references (the gallery), each reference's subject its claimed id; a subject's
score is the maximum over its references. A probe is mated when it has a genuine comparison (bob.measure's
rule: a probe with positives); its mate rank (ties by ``--cmc-ties``) and the open-set rates follow
`facebench.metrics.identification.open_set_identification` (ranks 1, 5, 10 up to the gallery size; TPIR /
FNIR at FPIR 1e-2 and 1e-1 by ``--tpir-rule`` when some probes are not mated, the IJB 1:N rules of
:func:`facebench.evaluate.rates.open_set_rates`: a target below 1/non-mated searches is null with the
reason in the warnings, few-event points carry intervals; the DIR-FPIR curve is saved). A comparison
missing from the file (or NaN) scores below every score of the file. A probe whose subject is enrolled
but never compared with it counts as not mated, as bob.measure would count it, and is reported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from facebench.benchmarks import Benchmark, Source
from facebench.errors import FacebenchError
from facebench.evaluate import rates, thresholds
from facebench.evaluate.common import BenchmarkResult
from facebench.evaluate.ijb import verification_metrics
from facebench.atomic import sha256_file
from facebench.io.scorefiles import ScoreList, read_score_file
from facebench.metrics import identification as mident
from facebench.results import RunResults

RANKS = (1, 5, 10)
FPIR_TARGETS = (1e-2, 1e-1)
_UNMATED = "\0not-mated"


def search_matrix(sl: ScoreList) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(scores, probe_subjects, gallery_subjects, unscored_mates)``: one row per distinct probe, one
    column per distinct reference, both in order of first appearance (module rules; missing comparisons get
    ``min - 1``)."""
    assert sl.probe_subject is not None and sl.reference_subject is not None
    probes, p_index = _in_file_order(sl.probe)
    refs, r_index = _in_file_order(sl.reference)
    for names, index, subjects, what in (
        (probes, p_index, sl.probe_subject, "probe"),
        (refs, r_index, sl.reference_subject, "reference"),
    ):
        first = np.full(names.size, -1)
        first[index[::-1]] = np.arange(index.size)[::-1]
        clash = np.flatnonzero(subjects != subjects[first[index]])
        if clash.size:
            k = int(clash[0])
            raise FacebenchError(
                f"{what} {names[index[k]]!r} has two subjects ({subjects[first[index[k]]]!r} and {subjects[k]!r}; "
                f"comparison {k + 1})"
            )
    finite = np.isfinite(sl.scores)
    cell = p_index * refs.size + r_index
    seen, counts = np.unique(cell, return_counts=True)
    if np.any(counts > 1):
        k = int(np.flatnonzero(cell == seen[np.argmax(counts > 1)])[1])
        raise FacebenchError(f"probe {sl.probe[k]!r} and reference {sl.reference[k]!r} are compared twice (comparison {k + 1})")
    filler = float(np.min(sl.scores[finite])) - 1.0 if finite.any() else 0.0
    matrix = np.full((probes.size, refs.size), filler, dtype=np.float64)
    matrix.flat[cell[finite]] = sl.scores[finite]
    probe_subjects = np.empty(probes.size, dtype=object)
    probe_subjects[p_index] = sl.probe_subject
    gallery_subjects = np.empty(refs.size, dtype=object)
    gallery_subjects[r_index] = sl.reference_subject
    has_mate = np.zeros(probes.size, dtype=bool)
    has_mate[p_index[sl.genuine & finite]] = True
    enrolled = np.isin(probe_subjects, gallery_subjects)
    unscored = enrolled & ~has_mate
    probe_subjects[~has_mate] = _UNMATED
    return matrix, probe_subjects.astype(str), gallery_subjects.astype(str), int(np.count_nonzero(unscored))


def _in_file_order(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values in order of first appearance and each entry's index into them."""
    distinct, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return distinct[order], rank[inverse]


def evaluate_scores(
    sl: ScoreList, tar_rule: str = "nearest", tpir_rule: str = "insightface", cmc_ties: str = ">="
) -> BenchmarkResult:
    """Every 1:1 metric, and the 1:N ones when subjects are known (module rules)."""
    rates.identification_rules({"tpir_rule": tpir_rule, "cmc_ties": cmc_ties})
    finite = np.isfinite(sl.scores)
    warnings: list[str] = []
    n_failed = int(np.count_nonzero(~finite))
    if n_failed:
        warnings.append(f"{n_failed} comparison(s) have no score (nan): left out of every rate (failures to compare)")
    genuine = sl.genuine[finite]
    if genuine.all() or not genuine.any():
        raise FacebenchError(
            f"the score file needs genuine and impostor comparisons; got {int(genuine.sum())} genuine and "
            f"{int((~genuine).sum())} impostor (with a finite score)"
        )
    metrics, arrays = verification_metrics(sl.scores[finite], genuine, tar_rule)
    arrays.update(scores=sl.scores[finite], labels=genuine)
    counts: dict[str, Any] = {
        "n_comparisons": int(sl.scores.size),
        "n_genuine": int(genuine.sum()),
        "n_impostor": int((~genuine).sum()),
        "n_failed": n_failed,
    }
    rules: dict[str, Any] = {"tar_at_far": tar_rule, "score_file": sl.format, "accept": "score >= threshold"}
    extra: dict[str, Any] = {}
    if sl.probe_subject is not None:
        matrix, probe_subjects, gallery_subjects, unscored = search_matrix(sl)
        n_subjects = int(np.unique(gallery_subjects).size)
        ranks = [k for k in RANKS if k <= n_subjects]
        nonmated = probe_subjects == _UNMATED
        fpirs = FPIR_TARGETS if nonmated.any() else ()
        r = mident.open_set_identification(matrix, probe_subjects, gallery_subjects, ranks, fpirs, tpir_rule, cmc_ties)
        metrics["rank"] = {str(k): float(v) for k, v in r["rank_rates"].items()}
        extra["identification"] = {"rule": r["rule"], "cmc_ties": cmc_ties}
        curve: dict[str, np.ndarray] = {}
        if fpirs:
            values, unmeasurable, few, curve = rates.open_set_rates(r, fpirs, tpir_rule)
            metrics.update(tpir_at_fpir=values["tpir_at_fpir"], fnir_at_fpir=values["fnir_at_fpir"])
            rates.merge_rate_notes(metrics, "", {"unmeasurable": unmeasurable, "few_events": few})
            extra["identification"].update({f: values[f] for f in ("fpir", "thresholds", "nonmated_accepted")})
            rules["tpir_rule"] = rates.tpir_rule_text(tpir_rule)
        arrays.update(
            mate_ranks=r["mate_ranks"], mate_scores=r["mate_scores"], tpir_hits=r["rank1_strict"],
            nonmated_scores=r["nonmated_scores"], cmc=mident.cmc_curve(r["mate_ranks"], n_subjects), **curve,
        )
        counts.update(
            n_probes=int(probe_subjects.size), n_references=int(gallery_subjects.size), n_subjects=n_subjects,
            n_mated=int(r["n_mated"]), n_nonmated=int(r["n_nonmated"]),
        )
        rules["identification"] = "open set: a probe is mated when it has a genuine comparison; subject score = max"
        rules["cmc_ties"] = cmc_ties
        if unscored:
            warnings.append(f"{unscored} probe(s) of an enrolled subject were never compared with it: counted as not mated")
    warnings += rates.unmeasurable_warnings("score file", metrics)
    return BenchmarkResult(metrics, rules, {}, counts, warnings, arrays, extra)


def score_spec(path: Path, name: str | None = None) -> Benchmark:
    """The spec standing for one score file in results (kind ``scores``)."""
    stem = name or path.stem
    return Benchmark(
        name=stem,
        version=1,
        kind="scores",
        title=stem,
        citation=f"score file: {path}",
        sources=(Source("scores", {"scores": str(path)}),),
        columns={
            "tar_at_far.1e-04": f"{stem} TAR@1e-4",
            "tar_at_far.1e-03": f"{stem} TAR@1e-3",
            "eer": f"{stem} EER",
            "rank.1": f"{stem} rank-1",
            "tpir_at_fpir.1e-02": f"{stem} TPIR@1e-2",
        },
        path=str(path),
    )


def score(path: str | Path, out: str | Path, fmt: str = "auto", tar_rule: str = "nearest", name: str | None = None,
          tpir_rule: str = "insightface", cmc_ties: str = ">=") -> RunResults:
    """Evaluate a score file and write the run directory (results.json, npz, tables, plots, thresholds)."""
    from facebench.report.run_report import write_run_report
    from facebench.results import new_run, write_results
    from facebench.pipeline import benchmark_entry

    path = Path(path)
    spec = score_spec(path, name)
    result = evaluate_scores(read_score_file(path, fmt), tar_rule, tpir_rule, cmc_ties)
    result.inputs[path.name] = sha256_file(path)
    settings = {"score_file": os.path.abspath(path), "format": fmt, "tar_rule": tar_rule, "tpir_rule": tpir_rule,
                "cmc_ties": cmc_ties, "out": str(out)}
    doc = new_run(settings, None, None)
    doc.label = spec.name
    points, _ = thresholds.for_benchmark(spec.name, result.arrays, None, {})
    doc.benchmarks[spec.name] = benchmark_entry(spec, result, thresholds=points)
    write_results(out, doc, {spec.name: result.arrays})
    write_run_report(out, doc)
    thresholds.write_tables(out, doc)
    return doc
