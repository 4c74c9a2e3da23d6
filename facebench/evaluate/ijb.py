"""IJB-B / IJB-C: template 1:1 verification (``run_ijb_1to1``) and open-set 1:N identification (``run_ijb_1n``).

Both read the image list of the insightface testsuite layout (``facebench.io.ijb``) and share one feature
file (row i = line i of ``*_face_tid_mid.txt``). Rules (PROTOCOLS 2, 2.4, 3):

- Image feature: the flip-combined output (``--flip add`` = f(x) + f(flip(x)), default), its raw norm
  kept (default) or L2-normalised (``--per-image-l2``), multiplied by the detector score (default; off
  with ``--no-detector-weight``). Template: the mean of each media's images, summed over the media, then
  L2-normalised (:mod:`facebench.metrics.pooling`). Score: cosine. insightface calls the default
  test mode ``N1D1F2`` (see :func:`insightface_mode`).
- 1:1: ROC from :func:`facebench.metrics.roc.roc_curve`, TAR at FAR 1e-6 ... 1e-1 by ``--tar-rule``
  (``nearest`` default, ``le``, ``interp``), AUC, EER; at each target the accepted genuine and impostor
  counts and Clopper-Pearson 95% intervals (at 1e-6 only ~16 IJB-C impostors are above the threshold).
- 1:N, standard rule: each gallery (G1/G2, S1/S2) searched separately by all mixed probes; rank-1/5/10
  (ties by ``--cmc-ties``) and TPIR / FNIR at FPIR 0.01 and 0.1 per gallery by ``--tpir-rule``
  (``insightface`` default, ``ge``, ``best``: :func:`facebench.metrics.identification.tpir_threshold`)
  and their mean; an FPIR below 1/non-mated searches is null. ``--ijb-1n-rule legacy``: insightface's
  merged-gallery script numbers, labelled legacy.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from facebench.benchmarks import Benchmark
from facebench.errors import FacebenchError, where
from facebench.evaluate import rates
from facebench.evaluate.common import BenchmarkResult, RunContext, implausible_warning, table_cache
from facebench.keys import rate_key as key
from facebench.metrics.pooling import PooledTemplates, lookup_rows, pool_templates, score_pairs
from facebench.io import ijb as ijbio
from facebench.metrics import identification as mident
from facebench.metrics import roc as mroc

log = logging.getLogger(__name__)

#: Imported in the background when a run starts this evaluator (`facebench.pipeline.preload`), while it reads
#: the meta files: scipy's sparse product (template pooling) and special functions (Clopper-Pearson
#: intervals), about a second of imports that would otherwise wait in line.
PRELOAD = ("scipy.sparse", "scipy.special")

FPIR_TARGETS: tuple[float, ...] = (1e-2, 1e-1)
RANKS: tuple[int, ...] = (1, 5, 10)
CMC_MAX_RANK = 50
IJB_1N_RULES = ("standard", "legacy")
TEMPLATE_RULE = "template = L2(sum over media of the mean of the media's image features)"


def insightface_mode(flip: str | None, per_image_l2: bool, detector_weight: bool) -> str:
    """insightface's test-mode name: ``N1`` keep the norm / ``N0`` per-image L2, ``D1`` detector weight /
    ``D0`` none, ``F2`` flip add / ``F1`` flip concat / ``F0`` no flip (``F?`` when the features were given)."""
    flip_part = {"add": "F2", "concat": "F1", "none": "F0"}.get(flip or "", "F?")
    return f"N{0 if per_image_l2 else 1}D{1 if detector_weight else 0}{flip_part}"


def feature_rule(flip: str | None, per_image_l2: bool, detector_weight: bool) -> str:
    """The image-feature rule in words, e.g. ``f(x)+f(flip(x)), raw norm, x detector score``."""
    base = {"add": "f(x)+f(flip(x))", "concat": "[f(x), f(flip(x))]", "none": "f(x)"}.get(flip or "", "given features")
    norm = "L2 per image" if per_image_l2 else "raw norm"
    return f"{base}, {norm}" + (", x detector score" if detector_weight else "")


# --------------------------------------------------------------------------------------- 1:1


def run_ijb_1to1(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """IJB-B/C 1:1 template verification (PROTOCOLS 2)."""
    paths, prefix = _resolve(spec, ctx)
    warnings: list[str] = []
    clock = _Clock(spec.name)
    cache = table_cache(ctx.settings)
    face_tid_mid = ijbio.read_face_tid_mid(paths["tid_mid"], cache)
    # the pair list as rows of the templates (the rows of pool_templates: sorted unique ids), mapped while
    # it is parsed (the 15.6M-pair id columns are never held), in a thread from here on: it needs only the
    # template ids, and the landmark file, the features and their pooling (given features) go on meanwhile
    # (the parse runs off the GIL). Before an extraction the pair list is waited for, so that a bad one
    # fails fast.
    template_ids = np.unique(face_tid_mid[1])
    read_pairs = partial(
        ijbio.read_template_pairs, paths["pairs"], partial(lookup_rows, template_ids), paths["tid_mid"], cache
    )
    with ThreadPoolExecutor(max_workers=1) as background:
        pending = background.submit(read_pairs)
        try:
            meta = ijbio.meta_images(paths["tid_mid"], face_tid_mid, paths["landmarks"], cache)
            del face_tid_mid
            clock.lap("read_meta")
            pooled = None
            if ctx.settings.features is not None:
                pooled, feature_rules = _pool(spec, ctx, meta, paths, label=spec.name, warnings=warnings)
                clock.lap("features_and_pooling")
            pairs = pending.result()
        finally:
            pending.cancel()  # an error above: the parse, if not started, is not (a started one is waited for)
    clock.lap("pairs")
    inputs = ctx.hash_inputs(spec, paths, warnings, known={**meta.inputs, Path(pairs.path).name: pairs.sha256})
    n_genuine = int(np.count_nonzero(pairs.label))
    counts: dict[str, Any] = {
        "n_images": len(meta),
        "n_templates": int(template_ids.size),
        "n_pairs": len(pairs),
        "n_genuine": n_genuine,
        "n_impostor": len(pairs) - n_genuine,
    }
    _check_counts(spec, counts, warnings)
    if n_genuine == 0 or n_genuine == len(pairs):
        raise FacebenchError(
            f"{pairs.path}: needs both genuine (label 1) and impostor (label 0) pairs; got {n_genuine} genuine "
            f"of {len(pairs)}"
        )
    left, right, labels = pairs.t1, pairs.t2, pairs.label
    del pairs
    if pooled is None:
        pooled, feature_rules = _pool(spec, ctx, meta, paths, label=spec.name, warnings=warnings)
        clock.lap("features_and_pooling")
    del meta
    scores = score_pairs(pooled.features, left, right, progress=ctx.settings.progress)
    per_pair: dict[str, np.ndarray] = {}
    if ctx.settings.options.get("save_pair_scores"):
        # before the ROC sorts the scores in place; template ids as in the pair list
        ids = ijbio.narrow(template_ids, "int32")
        per_pair = {"scores": scores.copy(), "labels": labels.astype(bool), "template1": ids[left],
                    "template2": ids[right]}
    del left, right, pooled
    clock.lap("scoring")
    options = ctx.settings.options
    metrics, arrays = verification_metrics(
        scores, labels, ctx.settings.tar_rule, overwrite_scores=True, threshold=options.get("threshold"),
        threshold_unit=str(options.get("threshold_unit", "cosine")),
    )
    warnings += rates.unmeasurable_warnings(spec.name, metrics)
    arrays.update(per_pair)
    del scores
    clock.lap("roc")
    low = spec.plausible.get("min_auc")
    if low is not None and metrics["auc"] < low:
        cause = ("a pair list whose template ids or labels were mangled gives this (compare the sha256 of "
                 f"{Path(paths['pairs']).name} in results.json with a fresh copy), and ")
        w = implausible_warning(spec, ctx, f"AUC {metrics['auc']:.4f}", f"{low:g}", cause)
        log.warning(w)
        warnings.append(w)
    rules = {
        "tar_at_far": ctx.settings.tar_rule,
        **feature_rules,
        "score": "cosine",
        "roc": "sklearn roc_curve (drop_intermediate=True), accept score >= threshold",
        "confidence_interval": "Clopper-Pearson 95% on the accepted genuine / impostor counts",
        **rates.RULES_1TO1,
    }
    return BenchmarkResult(
        metrics=metrics,
        rules=rules,
        inputs=inputs,
        counts=counts,
        warnings=warnings,
        arrays=arrays,
        extra={"reader": "ijb_meta", "images": str(paths.get("images", "")), "timings_s": clock.laps},
    )


def verification_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    tar_rule: str = "nearest",
    overwrite_scores: bool = False,
    threshold: float | None = None,
    threshold_unit: str = "cosine",
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """TAR@FAR (1e-6 ... 1e-1) by ``tar_rule``, AUC, EER (ROC crossing and ROC convex hull), each operating
    point's counts and intervals (:func:`facebench.evaluate.rates.tar_at_far_metrics`: a FAR below
    1/impostors is None, listed in ``unmeasurable``), and FMR/FNMR at ``threshold`` when given.
    ``overwrite_scores``: the scores may be sorted in place (no copy of a 15.6M-pair array).
    """
    if tar_rule not in mroc.TAR_AT_FAR_RULES:
        raise FacebenchError(f"unknown --tar-rule {tar_rule!r}; use {', '.join(mroc.TAR_AT_FAR_RULES)}")
    at_threshold = rates.at_threshold_metrics(labels, scores, threshold, threshold_unit)
    curve = mroc.roc_curve(labels, scores, overwrite_scores=overwrite_scores)
    metrics = {
        **rates.tar_at_far_metrics(curve, mroc.DEFAULT_FAR_TARGETS, tar_rule),
        "auc": float(mroc.auc(curve)),
        **rates.eer_metrics(curve),
        **at_threshold,
    }
    arrays = {"roc_fpr": curve.fpr, "roc_tpr": curve.tpr, "roc_thresholds": curve.thresholds}
    return metrics, arrays


# --------------------------------------------------------------------------------------- 1:N


def run_ijb_1n(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """IJB-B/C 1:N open-set identification (PROTOCOLS 3)."""
    paths, prefix = _resolve(spec, ctx)
    rule = str(ctx.settings.options.get("ijb_1n_rule", "standard"))
    if rule not in IJB_1N_RULES:
        raise FacebenchError(f"unknown --ijb-1n-rule {rule!r}; use {' or '.join(IJB_1N_RULES)}")
    tpir_rule, cmc_ties = rates.identification_rules(ctx.settings.options)
    warnings: list[str] = []
    clock = _Clock(spec.name)
    meta = ijbio.read_meta_images(paths["tid_mid"], paths["landmarks"], table_cache(ctx.settings))
    names = ijbio.GALLERIES[prefix]
    sets = {role: ijbio.read_search_set(paths[role]) for role in ("gallery1", "gallery2", "probes")}
    known = dict(meta.inputs)
    known.update({Path(s.path).name: s.sha256 for s in sets.values()})
    inputs = ctx.hash_inputs(spec, paths, warnings, known=known)
    members = {role: s.template_subjects() for role, s in sets.items()}
    counts: dict[str, Any] = {
        "n_images": len(meta),
        "n_templates": int(np.unique(meta.templates).size),
        "n_gallery1_templates": int(members["gallery1"][0].size),
        "n_gallery2_templates": int(members["gallery2"][0].size),
        "n_probe_templates": int(members["probes"][0].size),
    }
    counts["n_gallery_templates"] = counts["n_gallery1_templates"] + counts["n_gallery2_templates"]
    _check_counts(spec, counts, warnings)
    tid_ids = np.unique(meta.templates)
    for role, s in sets.items():
        ids = members[role][0]
        pos = np.minimum(np.searchsorted(tid_ids, ids), tid_ids.size - 1)
        missing = ids[tid_ids[pos] != ids]
        if missing.size:
            row = int(np.flatnonzero(s.templates == missing[0])[0])
            raise FacebenchError(
                f"{where(s.path, s.line(row))}: template {missing[0]} has no images in {paths['tid_mid']}"
            )

    clock.lap("read_meta")
    label = str(spec.options.get("features_label", spec.name))
    pooled, feature_rules = _pool(spec, ctx, meta, paths, label=label, warnings=warnings)
    clock.lap("features_and_pooling")
    probe_ids, probe_subjects = members["probes"]
    probe_feats = pooled.features[pooled.rows(probe_ids)[0]]
    galleries = {names[0]: members["gallery1"], names[1]: members["gallery2"]}
    arrays: dict[str, np.ndarray] = {}
    try:
        if rule == "standard":
            metrics = _standard_1n(pooled, probe_feats, probe_subjects, galleries, arrays, tpir_rule, cmc_ties)
            rule_name = mident.OPEN_SET_RULE
            warnings += rates.unmeasurable_warnings(spec.name, {"unmeasurable": {
                p: v for p, v in metrics["unmeasurable"].items() if p.startswith("per_gallery.")}})
        else:
            metrics = _legacy_1n(pooled, probe_feats, probe_subjects, galleries)
            rule_name = mident.LEGACY_RULE
            w = (
                f"{spec.name}: --ijb-1n-rule legacy: insightface's merged-gallery numbers (FAR counted over the "
                "probe count); not the standard open-set TPIR/FPIR, not comparable to NIST-style results"
            )
            log.warning(w)
            warnings.append(w)
    except ValueError as exc:
        raise FacebenchError(f"{spec.name}: {exc}") from None
    clock.lap("search")
    # tables name the rule of each column from rules[...] (TPIR columns add rules.tpir_rule's name)
    column_rules = {m: "ijb_1n" for m in spec.columns if not m.startswith(("tpir_at_fpir", "fnir_at_fpir"))}
    standard_rules = {
        "tpir_rule": rates.tpir_rule_text(tpir_rule),
        "cmc_ties": cmc_ties,
        "resolution": "an FPIR target below 1/non-mated searches of a gallery is null (not measurable)",
    }
    rules = {
        "ijb_1n": rule,
        "identification": rule_name,
        **(standard_rules if rule == "standard" else {}),
        **feature_rules,
        "score": "cosine",
        "galleries": list(names) if rule == "standard" else [f"{names[0]}+{names[1]} merged"],
    }
    return BenchmarkResult(
        metrics=metrics,
        rules=rules,
        inputs=inputs,
        counts={**counts, "column_rules": column_rules},
        warnings=warnings,
        arrays=arrays,
        extra={"reader": "ijb_1n", "images": str(paths.get("images", "")), "timings_s": clock.laps},
    )


def _standard_1n(
    pooled: PooledTemplates,
    probe_feats: np.ndarray,
    probe_subjects: np.ndarray,
    galleries: dict[str, tuple[np.ndarray, np.ndarray]],
    arrays: dict[str, np.ndarray],
    tpir_rule: str = "insightface",
    cmc_ties: str = ">=",
) -> dict[str, Any]:
    """Per gallery and their mean: rank-k rates (ties by ``cmc_ties``), TPIR / FNIR at FPIR by ``tpir_rule``
    (None where the gallery's non-mated searches cannot resolve the target; the mean is None when any
    gallery's is), the DIR-FPIR curve in the arrays."""
    per_gallery: dict[str, Any] = {}
    unmeasurable: dict[str, str] = {}
    few: dict[str, Any] = {}
    for name, (ids, subjects) in galleries.items():
        scores = probe_feats @ pooled.features[pooled.rows(ids)[0]].T
        r = mident.open_set_identification(scores, probe_subjects, subjects, RANKS, FPIR_TARGETS, tpir_rule, cmc_ties)
        values, g_unmeasurable, g_few, curve = rates.open_set_rates(r, FPIR_TARGETS, tpir_rule)
        per_gallery[name] = {
            **{f"rank{k}": r["rank_rates"][k] for k in RANKS},
            **values,
            "n_mated": r["n_mated"],
            "n_nonmated": r["n_nonmated"],
            "n_gallery_templates": int(ids.size),
        }
        unmeasurable.update({f"per_gallery.{name}.{p}": v for p, v in g_unmeasurable.items()})
        few.update({f"per_gallery.{name}.{p}": v for p, v in g_few.items()})
        arrays[f"{name}_mated"] = r["mated"]  # per probe template (probe order): mated in this gallery
        arrays[f"{name}_mate_ranks"] = r["mate_ranks"]
        arrays[f"{name}_tpir_hits"] = r["rank1_strict"]  # TPIR's rank-1 condition (mate above every non-mate)
        arrays[f"{name}_mate_scores"] = r["mate_scores"]
        arrays[f"{name}_nonmated_scores"] = r["nonmated_scores"]
        arrays[f"{name}_cmc"] = mident.cmc_curve(r["mate_ranks"], min(CMC_MAX_RANK, int(np.unique(subjects).size)))
        arrays.update({f"{name}_{k}": v for k, v in curve.items()})
    mean: dict[str, Any] = {f"rank{k}": float(np.mean([g[f"rank{k}"] for g in per_gallery.values()])) for k in RANKS}
    for field in ("tpir_at_fpir", "fnir_at_fpir"):
        mean[field] = {}
        for f in FPIR_TARGETS:
            values = [g[field][key(f)] for g in per_gallery.values()]
            mean[field][key(f)] = None if any(v is None for v in values) else float(np.mean(values))
    for f in FPIR_TARGETS:
        reasons = [v for p, v in unmeasurable.items() if p.endswith(f"tpir_at_fpir.{key(f)}")]
        if reasons:
            unmeasurable[f"tpir_at_fpir.{key(f)}"] = "mean of the galleries: " + "; ".join(reasons)
        elif any(p.endswith(f"tpir_at_fpir.{key(f)}") for p in few):
            # the mean column: counts pooled over the galleries (the intervals of the pooled shares)
            g = list(per_gallery.values())
            few[f"tpir_at_fpir.{key(f)}"] = rates.few_events_entry(
                sum(x["nonmated_accepted"][key(f)] for x in g), sum(x["n_nonmated"] for x in g),
                sum(round(x["tpir_at_fpir"][key(f)] * x["n_mated"]) for x in g), sum(x["n_mated"] for x in g),
            )
    return {**mean, "per_gallery": per_gallery, "unmeasurable": unmeasurable, "few_events": few}


def _legacy_1n(
    pooled: PooledTemplates,
    probe_feats: np.ndarray,
    probe_subjects: np.ndarray,
    galleries: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    ids = np.concatenate([g[0] for g in galleries.values()])
    subjects = np.concatenate([g[1] for g in galleries.values()])
    scores = probe_feats @ pooled.features[pooled.rows(ids)[0]].T
    r = mident.legacy_insightface_1n(scores, probe_subjects, subjects, RANKS, FPIR_TARGETS)
    return {
        **{f"rank{k}": r["rank_rates"][k] for k in RANKS},
        "tpir_at_fpir": {key(f): r["tpir"][f] for f in FPIR_TARGETS},
        "per_gallery": {},
        "legacy": {
            "rule": r["rule"],
            "thresholds": {key(f): r["thresholds"][f] for f in FPIR_TARGETS},
            "false_alarms_per_probe": {key(f): r["false_alarms"][f] for f in FPIR_TARGETS},
            "k": {key(f): r["k"][f] for f in FPIR_TARGETS},
            "n_probes": r["n_probes"],
            "n_gallery": r["n_gallery"],
        },
    }


# ------------------------------------------------------------------------------------- shared


class _Clock:
    """Phase timings in seconds (saved under the result's ``extra.timings_s``), also logged."""

    def __init__(self, name: str) -> None:
        self.name, self.last, self.laps = name, time.perf_counter(), {}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.laps[phase] = round(now - self.last, 3)
        log.info("%s: %s %.2f s", self.name, phase.replace("_", " "), now - self.last)
        self.last = now


def _resolve(spec: Benchmark, ctx: RunContext) -> tuple[dict[str, Path], str]:
    prefix = str(spec.options.get("prefix", spec.name.split("_")[0]))
    if prefix not in ijbio.PREFIXES:
        raise FacebenchError(f"{spec.path}: options.prefix must be one of {sorted(ijbio.PREFIXES)}, got {prefix!r}")
    _, paths = ctx.files(spec)
    return paths, prefix


def _check_counts(spec: Benchmark, counts: dict[str, Any], warnings: list[str]) -> None:
    """One warning listing every count that differs from the spec's known figure."""
    differ = [
        f"{name} {counts[name]:,} (official {expected:,})"
        for name, expected in spec.counts.items()
        if name in counts and counts[name] != expected
    ]
    if differ:
        w = (
            f"{spec.name}: the meta files are not the official set ({'; '.join(differ)}): the numbers are not "
            "comparable to published results"
        )
        log.warning(w)
        warnings.append(w)


def _pool(
    spec: Benchmark, ctx: RunContext, meta: ijbio.MetaImages, paths: dict[str, Path], label: str,
    warnings: list[str],
) -> tuple[PooledTemplates, dict[str, Any]]:
    """Image features (given or extracted, checked by `features_for`) pooled into templates; the feature
    rules used. Templates that pool to a zero vector (every image weighted 0: detector score 0) are legal
    under the protocol and score 0 against everything: counted in a warning."""
    options = ctx.settings.options
    per_image_l2 = bool(options.get("per_image_l2", False))
    detector_weight = bool(options.get("detector_weight", True))
    given = ctx.settings.features is not None
    if not given and "images" not in paths:
        expected = next((s.files.get("images") for s in spec.sources if "images" in s.files), "loose_crop")
        raise FacebenchError(
            f"{spec.name}: the image directory {ctx.settings.data_root / expected} is missing: give the crops "
            f"(--data-root, or --file {spec.name}.images=DIR) or precomputed --features"
        )
    image_dir = paths.get("images", ctx.settings.data_root)
    images = meta.image_list(image_dir, origin=str(paths["landmarks"]))
    features = ctx.features_for(spec, images, label=label)
    try:
        pooled = pool_templates(
            features,
            meta.templates,
            meta.medias,
            detector_scores=meta.scores if detector_weight else None,
            per_image_l2=per_image_l2,
        )
    except ValueError as exc:
        raise FacebenchError(f"{spec.name}: {exc}") from None
    del features
    zero = int(np.count_nonzero(~pooled.features.any(axis=1)))
    if zero:
        w = (f"{spec.name}: {zero} of {pooled.features.shape[0]} templates pool to a zero vector (all their images "
             "have detector score 0) and score 0 against every template")
        log.warning(w)
        warnings.append(w)
    flip = None if given else ctx.profile.flip
    rules = {
        "flip": flip if flip else "as given (--features)",
        "per_image_l2": per_image_l2,
        "detector_weight": detector_weight,
        "test_mode": insightface_mode(flip, per_image_l2, detector_weight),
        "image_feature": feature_rule(flip, per_image_l2, detector_weight),
        "template": TEMPLATE_RULE,
    }
    return pooled, rules
