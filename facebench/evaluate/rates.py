"""Rates at target FARs / FPIRs as results.json reports them: measured, or ``None`` with the reason.

A target below ``1 / n`` negatives (impostor pairs, non-mated searches) is not measurable
(:func:`facebench.metrics.operating.resolvable`): its value is ``None``, and ``metrics["unmeasurable"]``
maps the metric path (``tar_at_far.1e-06``) to the reason, which the evaluator also adds to ``warnings``.
A measured rate whose threshold accepts fewer than :data:`facebench.metrics.operating.FEW_EVENTS`
negatives is listed in ``metrics["few_events"]`` with its counts and Clopper-Pearson 95% intervals, which
the tables print beside it.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from facebench.errors import FacebenchError
from facebench.keys import rate_key
from facebench.metrics import identification as mident
from facebench.metrics import operating
from facebench.metrics import roc as mroc
from facebench.metrics.stats import clopper_pearson


#: The rules of the rates every 1:1 benchmark reports beside TAR@FAR (named in results.json).
RULES_1TO1 = {
    "eer": "ROC crossing: FPR where the ROC meets FNR = FPR, linear between its two points",
    "eer_rocch": "ROC convex hull (bob.measure eer_rocch): FPR where the hull meets FNR = FPR",
    "resolution": "a FAR target below 1/impostor pairs is null (not measurable); fewer than "
    f"{operating.FEW_EVENTS} impostors accepted: Clopper-Pearson intervals in few_events",
}


def few_events_entry(negatives_accepted: int, n_negatives: int, positives_accepted: int, n_positives: int) -> dict:
    """The ``few_events`` record of one point: counts and Clopper-Pearson 95% intervals of both rates."""
    return {
        "negatives_accepted": int(negatives_accepted),
        "n_negatives": int(n_negatives),
        "negative_rate_ci95": list(clopper_pearson(negatives_accepted, n_negatives)),
        "positive_rate_ci95": list(clopper_pearson(positives_accepted, n_positives)),
    }


def tar_at_far_metrics(
    curve: mroc.RocCurve, targets: Sequence[float], rule: str, label: str = "TAR"
) -> dict[str, Any]:
    """``tar_at_far``, ``operating_points``, ``unmeasurable`` and ``few_events`` of a ROC read off by ``rule``.

    ``operating_points[key]``: ``tar``, ``far``, ``threshold`` of the point read off, the genuine and
    impostor pairs accepted there (``score >= threshold``) with Clopper-Pearson 95% intervals (counts
    absent for an interpolated point, which no threshold realises); absent for an unmeasurable target.
    """
    n_gen, n_imp = curve.n_genuine, curve.n_impostor
    points = mroc.tar_at_far(curve, targets, rule=rule)
    values: dict[str, float | None] = {}
    operating_points: dict[str, dict[str, Any]] = {}
    unmeasurable: dict[str, str] = {}
    few: dict[str, dict[str, Any]] = {}
    for far, point in points.items():
        k = rate_key(far)
        if not operating.resolvable(n_imp, far):
            values[k] = None
            unmeasurable[f"tar_at_far.{k}"] = operating.unresolvable_reason(n_imp, "impostor pairs")
            continue
        values[k] = float(point.tar)
        entry: dict[str, Any] = {"tar": point.tar, "far": point.far, "threshold": point.threshold}
        if not np.isnan(point.threshold):
            accepted_gen = int(round(point.tar * n_gen))
            accepted_imp = int(round(point.far * n_imp))
            entry.update(
                genuine_accepted=accepted_gen,
                impostors_accepted=accepted_imp,
                tar_ci95=list(clopper_pearson(accepted_gen, n_gen)),
                far_ci95=list(clopper_pearson(accepted_imp, n_imp)),
            )
            if accepted_imp < operating.FEW_EVENTS:
                few[f"tar_at_far.{k}"] = few_events_entry(accepted_imp, n_imp, accepted_gen, n_gen)
        operating_points[k] = entry
    return {"tar_at_far": values, "operating_points": operating_points, "unmeasurable": unmeasurable,
            "few_events": few}


def eer_metrics(curve: mroc.RocCurve) -> dict[str, float]:
    """``eer`` (the ROC-crossing rule) and ``eer_rocch`` (the ROC convex hull's, bob.measure's ``eer_rocch``)."""
    return {"eer": float(mroc.eer(curve)), "eer_rocch": float(mroc.eer_rocch(curve))}


def at_threshold_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float | None, unit: str) -> dict[str, Any]:
    """``{"at_threshold": {threshold, unit, cosine_threshold, fmr, fnmr}}`` for a ``--threshold`` (nothing
    when None). ``unit`` ``cosine``: accept ``cos >= t``; ``distance``: t is a squared-Euclidean distance
    between unit vectors, accept ``d <= t``, i.e. ``cos >= 1 - t / 2`` (:func:`facebench.metrics.roc.sqeuclidean_to_cos`)."""
    if threshold is None:
        return {}
    cosine = float(threshold) if unit == "cosine" else float(mroc.sqeuclidean_to_cos(threshold))
    fmr, fnmr = mroc.rates_at_threshold(labels, scores, cosine)
    return {"at_threshold": {"threshold": float(threshold), "unit": unit, "cosine_threshold": cosine,
                             "fmr": fmr, "fnmr": fnmr}}


def merge_rate_notes(metrics: dict[str, Any], prefix: str, part: dict[str, Any]) -> None:
    """Add ``part``'s ``unmeasurable`` / ``few_events`` to ``metrics``'s, their paths under ``prefix``."""
    for field in ("unmeasurable", "few_events"):
        for path, note in part.get(field, {}).items():
            metrics.setdefault(field, {})[f"{prefix}{path}"] = note


def unmeasurable_warnings(name: str, metrics: dict[str, Any]) -> list[str]:
    """One warning per distinct reason: ``"<benchmark>: <metrics> not measurable (<reason>): reported as null"``."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in metrics.get("unmeasurable", {}).items():
        by_reason.setdefault(reason, []).append(path)
    return [f"{name}: {', '.join(paths)} not measurable ({reason}): reported as null" for reason, paths in by_reason.items()]


def tpir_metrics(
    point_of: Callable[[float], operating.RatePoint], targets: Sequence[float]
) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, Any]]]:
    """Per FPIR target (``point_of(target)`` gives the TPIR point): the values ``tpir``, ``fnir``, ``fpir``,
    ``thresholds``, ``nonmated_accepted``, and the ``unmeasurable`` / ``few_events`` notes (paths
    ``tpir_at_fpir.<key>``). An unmeasurable target (fewer than ``1 / target`` non-mated searches) is None."""
    out: dict[str, Any] = {"tpir_at_fpir": {}, "fnir_at_fpir": {}, "fpir": {}, "thresholds": {}, "nonmated_accepted": {}}
    unmeasurable: dict[str, str] = {}
    few: dict[str, dict[str, Any]] = {}
    for target in targets:
        k = rate_key(target)
        point = point_of(target)
        if not operating.resolvable(point.n_negatives, target):
            for field in out:
                out[field][k] = None
            unmeasurable[f"tpir_at_fpir.{k}"] = operating.unresolvable_reason(point.n_negatives, "non-mated searches")
            continue
        out["tpir_at_fpir"][k] = point.positive_rate
        out["fnir_at_fpir"][k] = 1.0 - point.positive_rate
        out["fpir"][k] = point.negative_rate
        out["thresholds"][k] = point.threshold
        out["nonmated_accepted"][k] = point.negatives_accepted
        if point.negatives_accepted < operating.FEW_EVENTS:
            few[f"tpir_at_fpir.{k}"] = few_events_entry(
                point.negatives_accepted, point.n_negatives, point.positives_accepted, point.n_positives
            )
    return out, unmeasurable, few


def open_set_rates(
    result: dict[str, Any], targets: Sequence[float], tpir_rule: str
) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """:func:`search_rates` of one gallery's :func:`facebench.metrics.identification.open_set_identification`
    result."""
    return search_rates(result["mate_scores"], result["rank1_strict"], result["nonmated_scores"], targets, tpir_rule)


def search_rates(
    mate_scores: np.ndarray, rank1_strict: np.ndarray, nonmated: np.ndarray, targets: Sequence[float], tpir_rule: str
) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """TPIR / FNIR at each FPIR target by ``tpir_rule`` (:func:`tpir_metrics` over
    :func:`facebench.metrics.identification.tpir_at_fpir`) of one gallery's searches, and its DIR-FPIR curve
    (arrays ``dir_fpir_fpir``, ``dir_fpir_dir``; none without non-mated searches).
    ``rank1_strict``: per mated search, whether its mate scores above every non-mate (TPIR's rank-1 rule)."""
    rank1 = np.where(rank1_strict, 1, 2)
    values, unmeasurable, few = tpir_metrics(
        lambda f: mident.tpir_at_fpir(mate_scores, rank1, nonmated, f, tpir_rule), targets
    )
    arrays: dict[str, np.ndarray] = {}
    if nonmated.size:
        curve = mident.dir_fpir_curve(mate_scores, rank1, nonmated)
        arrays = {"dir_fpir_fpir": curve["fpir"], "dir_fpir_dir": curve["dir"]}
    return values, unmeasurable, few, arrays


def identification_rules(options: dict[str, Any], streamed: bool = False) -> tuple[str, str]:
    """``(tpir_rule, cmc_ties)`` of a run's options (``--tpir-rule``, default ``insightface``; ``--cmc-ties``,
    default ``>=``), each checked against :data:`facebench.metrics.identification.TPIR_RULES` /
    :data:`facebench.metrics.identification.CMC_TIE_RULES` (``streamed``: searches counted block by block
    over the gallery take :data:`facebench.metrics.identification.BLOCKWISE_TIE_RULES`, not ``argsort``)."""
    tpir_rule = str(options.get("tpir_rule", "insightface") or "insightface")
    cmc_ties = str(options.get("cmc_ties", ">=") or ">=")
    if tpir_rule not in mident.TPIR_RULES:
        raise FacebenchError(f"unknown --tpir-rule {tpir_rule!r}; use {', '.join(mident.TPIR_RULES)}")
    if cmc_ties not in mident.CMC_TIE_RULES:
        raise FacebenchError(f"unknown --cmc-ties {cmc_ties!r}; use {', '.join(mident.CMC_TIE_RULES)}")
    if streamed and cmc_ties not in mident.BLOCKWISE_TIE_RULES:
        raise FacebenchError(
            f"--cmc-ties {cmc_ties} needs each search's full row of scores; this benchmark counts its ranks block "
            f"by block over the gallery: use {' or '.join(mident.BLOCKWISE_TIE_RULES)}"
        )
    return tpir_rule, cmc_ties


def tpir_rule_text(rule: str) -> str:
    """``"<rule>: <definition>"`` for results' rules."""
    return f"{rule}: {mident.TPIR_RULE_TEXT[rule]}"
