"""Pair verification (LFW, CFP-FP/FF, AgeDB-30, CALFW, CPLFW, VGG2-FP): 10-fold accuracy, ROC, TAR@FAR.

Embedding rule: the flip-combined output is L2-normalised per image (insightface:
``normalize(f(x) + f(flip(x)))``). Pair i compares rows ``2i`` and ``2i+1``.

- ``kfold_rule="insightface"`` (default): squared Euclidean distance, thresholds ``arange(0, 4, 0.01)``,
  same when ``dist < thr``, contiguous folds, mean and std (ddof=0); VAL@FAR=1e-3 on ``arange(0, 4, 0.001)``.
- ``kfold_rule="facexzoo"``: cosine score, threshold maximising TPR - FPR over 1,000 thresholds spanning
  the train scores, mean and standard error.
- ``kfold_rule="xqlfw"`` (the XQLFW authors' code): cosine distance ``1 - cos`` on ``arange(0, 2, 0.001)``,
  same when ``distance < thr``, contiguous folds, mean and std (ddof=0).
Whatever the fold rule, ROC, AUC, EER and TAR@FAR are computed from the cosine scores of all pairs, with
the TAR@FAR read-off rule named in ``rules.tar_at_far``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facebench.benchmarks import Benchmark
from facebench.errors import FacebenchError
from facebench.evaluate import rates
from facebench.evaluate.common import BenchmarkResult, RunContext, implausible_warning
from facebench.evaluate.analyses import pair_analyses
from facebench.io.pairsets import PairData, read_pair_set
from facebench.metrics import kfold as mkfold
from facebench.metrics import roc as mroc

log = logging.getLogger(__name__)

#: Imported in the background when a run starts this evaluator (`facebench.pipeline.preload`), while the
#: features are read or extracted: scipy's special functions (the Clopper-Pearson intervals of TAR@FAR).
PRELOAD = ("scipy.special",)

KFOLD_RULES = ("insightface", "facexzoo", "xqlfw")


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Float64 rows divided by their L2 norm (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def verification_metrics(
    features: np.ndarray,
    issame: np.ndarray,
    kfold_rule: str = "insightface",
    tar_rule: str = "nearest",
    n_folds: int = 10,
    threshold: float | None = None,
    threshold_unit: str = "cosine",
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """All verification metrics of a pair set from its 2N flip-combined features.

    Returns (metrics, arrays): metrics as fractions (TAR@FAR by :func:`facebench.evaluate.rates.tar_at_far_metrics`:
    None below 1/impostors, ``unmeasurable`` says why; ``eer`` and ``eer_rocch``; FMR/FNMR at ``threshold``
    when given); arrays are the per-pair scores, labels, held-out decisions and the ROC curve, saved beside
    the results for reports and paired tests. Pairs with a
    non-finite feature row are left out (:func:`enrolled_pairs`; counted as ``pairs_left_out``, mask
    ``pairs_kept``), and the folds are cut over the pairs that remain.
    """
    if kfold_rule not in KFOLD_RULES:
        raise FacebenchError(f"unknown --kfold-rule {kfold_rule!r}; use {' or '.join(KFOLD_RULES)}")
    issame = np.asarray(issame, dtype=bool)
    if features.shape[0] != 2 * issame.shape[0]:
        raise FacebenchError(f"{features.shape[0]} feature rows for {issame.shape[0]} pairs (need 2 per pair)")
    kept = enrolled_pairs(features)
    if not kept.all():
        features, issame = features[np.repeat(kept, 2)], issame[kept]
    emb = normalise_rows(features)
    e1, e2 = emb[0::2], emb[1::2]
    dist = np.sum((e1 - e2) ** 2, axis=1)
    cos = np.sum(e1 * e2, axis=1)
    if kfold_rule == "insightface":
        kf = mkfold.insightface_kfold(dist, issame, n_folds=n_folds)
    elif kfold_rule == "xqlfw":
        kf = mkfold.xqlfw_kfold(cos, issame, n_folds=n_folds)
    else:
        kf = mkfold.facexzoo_kfold(cos, issame, n_folds=n_folds)
    val = mkfold.insightface_val_far(dist, issame, far_target=1e-3, n_folds=n_folds)
    curve = mroc.roc_curve(issame, cos)
    metrics: dict[str, Any] = {
        "accuracy": float(kf.mean),
        "accuracy_std": float(kf.std),
        "auc": float(mroc.auc(curve)),
        **rates.eer_metrics(curve),
        **rates.tar_at_far_metrics(curve, mroc.DEFAULT_FAR_TARGETS, tar_rule),
        **rates.at_threshold_metrics(issame, cos, threshold, threshold_unit),
        "val_at_far_1e-03": {"val": float(val.val_mean), "val_std": float(val.val_std), "far": float(val.far_mean)},
        "fold_accuracies": [float(a) for a in kf.accuracies],
        "fold_thresholds": [float(t) for t in kf.thresholds],
        "threshold_unit": {"insightface": "squared_l2", "xqlfw": "cosine_distance"}.get(kfold_rule, "cosine"),
    }
    if not kept.all():
        metrics["pairs_left_out"] = int(np.count_nonzero(~kept))
    arrays = {
        "scores": cos.astype(np.float64),
        "labels": issame,
        "predictions": np.asarray(kf.predictions, dtype=bool),
        "correct": np.asarray(kf.correct, dtype=bool),
        "roc_fpr": curve.fpr,
        "roc_tpr": curve.tpr,
        "roc_thresholds": curve.thresholds,
    }
    if not kept.all():
        arrays["pairs_kept"] = kept
    return metrics, arrays


def at_decision_threshold(features: np.ndarray, issame: np.ndarray, threshold: dict[str, Any]) -> dict[str, Any]:
    """Accuracy, FAR and FRR of the pairs (rows ``2i``, ``2i+1``) at a model's own threshold.

    ``euclidean``: same when the Euclidean distance of the features as evaluated (not normalised) is
    ``< value``; ``cosine``: same when the cosine is ``>= value``. FAR = impostor pairs accepted / impostor
    pairs; FRR = genuine pairs rejected / genuine pairs. Pairs with a non-finite row are left out.
    """
    issame = np.asarray(issame, dtype=bool)
    kept = enrolled_pairs(features)
    f = np.asarray(features, dtype=np.float64)[np.repeat(kept, 2)]
    issame = issame[kept]
    a, b = f[0::2], f[1::2]
    value = float(threshold["value"])
    if threshold["metric"] == "euclidean":
        same = np.linalg.norm(a - b, axis=1) < value
    else:
        same = np.sum(normalise_rows(a) * normalise_rows(b), axis=1) >= value
    n_gen, n_imp = int(issame.sum()), int((~issame).sum())
    return {
        "metric": threshold["metric"],
        "threshold": value,
        "rule": threshold.get("rule", ""),
        "accuracy": float(np.mean(same == issame)) if issame.size else None,
        "far": float(np.count_nonzero(same & ~issame) / n_imp) if n_imp else None,
        "frr": float(np.count_nonzero(~same & issame) / n_gen) if n_gen else None,
    }


def enrolled_pairs(features: np.ndarray) -> np.ndarray:
    """Mask of the pairs (rows ``2i``, ``2i+1``) whose two feature rows are finite: a NaN row is an image
    that did not enrol under ``--on-no-face skip`` (:mod:`facebench.extraction.enrol`), and its pairs are left out."""
    finite = np.isfinite(np.asarray(features)).all(axis=1)
    return finite[0::2] & finite[1::2]


def balance_warnings(name: str, issame: np.ndarray, n_folds: int = 10) -> list[str]:
    """Warnings for folds whose same/different balance differs from the set's overall ratio (a reordered pack)."""
    counts = mkfold.fold_balance(issame, n_folds)
    total_same = counts[:, 0].sum()
    share = total_same / max(counts.sum(), 1)
    warnings = []
    for k, (same, diff) in enumerate(counts):
        n = same + diff
        if n and abs(same / n - share) > 0.1:
            warnings.append(
                f"{name}: fold {k + 1} has {same} same / {diff} different pairs (set ratio {share:.2f}): "
                "the pack looks reordered, so the 10-fold numbers are not comparable to published ones"
            )
    return warnings


LEAK_NAMES_SHOWN = 10


def leak_warnings(name: str, identities: list[str] | None, folds: np.ndarray | None) -> list[str]:
    """A warning naming the identities that appear in more than one fold (`facebench.metrics.kfold.identity_leaks`;
    none when identities or folds are unknown, e.g. a ``.bin`` pack)."""
    if identities is None or folds is None:
        return []
    leaks = mkfold.identity_leaks(identities[0::2], identities[1::2], folds)
    if not leaks:
        return []
    shown = ", ".join(f"{k} (folds {', '.join(str(f + 1) for f in v)})" for k, v in list(leaks.items())[:LEAK_NAMES_SHOWN])
    more = f" and {len(leaks) - LEAK_NAMES_SHOWN} more" if len(leaks) > LEAK_NAMES_SHOWN else ""
    return [
        f"{name}: {len(leaks)} identit{'y appears' if len(leaks) == 1 else 'ies appear'} in more than one fold: "
        f"{shown}{more}; thresholds are then tuned on the test identities, so the 10-fold accuracy is optimistic"
    ]


def pair_set_checks(name: str, data: PairData, n_folds: int) -> list[str]:
    """Fold balance (`balance_warnings`) and identity leak across folds (`leak_warnings`) of a pair set."""
    return balance_warnings(name, data.issame, n_folds) + leak_warnings(name, data.identities, data.folds)


def run_benchmark(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """Read the pair set, get its features (extracted or given), compute the metrics."""
    reader_name, paths = ctx.files(spec)
    warnings: list[str] = []
    data = read_pair_set(reader_name, paths, spec.options)
    inputs = ctx.hash_inputs(spec, paths, warnings, known=data.inputs)
    n_pairs = int(data.issame.shape[0])
    n_folds = int(spec.counts.get("n_folds", 10))
    expected = spec.counts.get("n_pairs")
    if expected and expected != n_pairs:
        w = f"{spec.name}: read {n_pairs} pairs, the official set has {expected}: numbers are not comparable"
        log.warning(w)
        warnings.append(w)
    for w in pair_set_checks(spec.name, data, n_folds):
        log.warning(w)
        warnings.append(w)
    features = ctx.features_for(spec, data.images)
    options = ctx.settings.options
    metrics, arrays = verification_metrics(
        features, data.issame, ctx.settings.kfold_rule, ctx.settings.tar_rule, n_folds,
        threshold=options.get("threshold"), threshold_unit=str(options.get("threshold_unit", "cosine")),
    )
    extra_analyses = pair_analyses(
        spec.name, ctx.settings.options, ctx.settings.tar_rule, features, data.issame, data.images.paths,
        data.identities, data.attributes, paths.get("quality"),
    )
    warnings += rates.unmeasurable_warnings(spec.name, metrics)
    own = ctx.embedder.decision_threshold() if ctx.embedder is not None else None
    if own is not None:
        metrics["at_model_threshold"] = at_decision_threshold(features, data.issame, own)
    low = spec.plausible.get("min_accuracy")
    if low is not None and metrics["accuracy"] < low:
        w = implausible_warning(spec, ctx, f"accuracy {metrics['accuracy']:.2%}", f"{low:.0%}")
        log.warning(w)
        warnings.append(w)
    rules = {
        "kfold": ctx.settings.kfold_rule,
        "tar_at_far": ctx.settings.tar_rule,
        "flip": ctx.profile.flip,
        "embedding": "l2(f(x)+f(flip(x)))" if ctx.profile.flip == "add" else f"l2(flip={ctx.profile.flip})",
        "score": "cosine",
        "n_folds": n_folds,
        **({"pair_list_dialect": data.dialect} if data.dialect else {}),
        **({"folds": data.fold_rule} if data.fold_rule else {}),
        **extra_analyses.rules,
        **rates.RULES_1TO1,
    }
    for w in extra_analyses.warnings:
        log.warning(w)
        warnings.append(w)
    metrics.update(extra_analyses.metrics)
    arrays.update(extra_analyses.arrays)
    return BenchmarkResult(
        metrics=metrics,
        rules=rules,
        inputs=inputs,
        counts={"n_pairs": n_pairs, "n_images": len(data.images)},
        warnings=warnings,
        arrays=arrays,
        extra={"reader": data.reader, "images": _image_source(paths), **extra_analyses.extra},
        columns=extra_analyses.columns,
    )


def _image_source(paths: dict[str, Path]) -> dict[str, str]:
    """Where the images came from (for the failure gallery of reports)."""
    return {role: str(p) for role, p in paths.items()}
