"""Fairness and quality analyses of a pair set, run after its verification metrics (any pair benchmark:
``pairs``, ``folder``, ``rfw``).

- Fairness (``--groups FILE`` and built-in groups: RFW's race, MFR2's mask type): per attribute, the rules
  of `facebench.metrics.fairness` at one global threshold set at ``--fairness-fmr`` (default 1e-3) over all
  impostor pairs of the benchmark; per-group TAR@FAR on the group's own pairs; bootstrap intervals by
  identity (``--fairness-boot`` resamples, default 200; clusters = the identity of each pair's first image,
  or the pair itself when identities are unknown). Pairs with an image no key matches are left out of
  that attribute and counted (``unassigned_pairs``).
- Quality (``--quality norm|FILE``; or the benchmark's own ``quality`` file, e.g. XQLFW's): the rules of
  `facebench.metrics.quality`: FNMR at FMR 1e-3 and 1e-4 (where resolvable) per discard fraction under both
  threshold conventions, AUC over the whole grid and pAUC up to ``--discard-limit`` (default 0.2).
  ``norm`` = the L2 norm of each image's flip-combined, unnormalised feature (MagFace's quality).

Scores are the cosines of the L2-normalised features (accept ``cos >= t``). Metrics added: ``ser.<attr>``,
``fdr.<attr>``, ``ir.<attr>``, ``garbe.<attr>``, ``group_std.<attr>``, ``group_fmr.<attr>/<group>`` and
``group_fnmr.<attr>/<group>`` (at the global threshold), ``erc_auc_<fixed|refit>.<fmr>`` and
``erc_pauc_<fixed|refit>.<fmr>``; table columns by default: FDR, GARBE and the EDC pAUC (fractions; SER and IR
are ratios, in results.json and the heat map's report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facebench.errors import FacebenchError
from facebench.io.attributes import match_images, read_groups, read_quality
from facebench.metrics import fairness as mfair
from facebench.metrics import quality as mqual
from facebench.keys import rate_key

DEFAULT_FAIRNESS_FMR = 1e-3
DEFAULT_BOOT = 200
DEFAULT_DISCARD_LIMIT = 0.2
QUALITY_FMRS = (1e-3, 1e-4)
SUMMARY_WEIGHT = 0.5
STD_DDOF = 1


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse analysis options that cannot work, naming the flag: ``--fairness-fmr`` in (0, 1),
    ``--fairness-boot`` >= 0, ``--discard-limit`` a point of the discard grid."""
    fmr = options.get("fairness_fmr")
    if fmr is not None and not 0 < float(fmr) < 1:
        raise FacebenchError(f"--fairness-fmr {fmr}: expected a rate between 0 and 1 (e.g. 1e-3)")
    if int(options.get("fairness_boot", 0) or 0) < 0:
        raise FacebenchError(f"--fairness-boot {options['fairness_boot']}: expected 0 (no intervals) or more resamples")
    limit = options.get("discard_limit")
    if limit is not None and not np.isclose(mqual.DISCARD_GRID, float(limit)).any():
        raise FacebenchError(
            f"--discard-limit {limit}: expected a point of the discard grid 0, 0.05, ..., 0.95 (e.g. 0.2)"
        )


@dataclass
class Analyses:
    """What the analyses add to a benchmark result."""

    metrics: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def fairness_report(
    scores: np.ndarray,
    issame: np.ndarray,
    group_a: Sequence[str],
    group_b: Sequence[str],
    clusters: np.ndarray,
    fmr: float,
    tar_rule: str,
    n_boot: int,
    seed: int = 0,
) -> tuple[dict[str, Any], np.ndarray]:
    """The JSON-ready fairness analysis of one attribute and the pair group labels (module rules)."""
    labels, cross = mfair.pair_groups(group_a, group_b)
    threshold = mfair.global_threshold(scores, issame, fmr)
    rows = mfair.group_rates(scores, issame, labels, cross, threshold)
    tar = mfair.within_group_tar(scores, issame, labels, fmr, tar_rule)
    summaries = mfair.summaries(rows, SUMMARY_WEIGHT, STD_DDOF)
    boot = mfair.fairness_bootstrap(
        scores, issame, labels, cross, clusters, fmr, n_boot=n_boot, seed=seed, weight=SUMMARY_WEIGHT, ddof=STD_DDOF
    ) if n_boot > 0 else None
    accept = scores >= threshold
    report = {
        "threshold": threshold,
        "fmr_target": fmr,
        "overall": {
            "fmr": float(np.count_nonzero(accept & ~issame) / max(1, np.count_nonzero(~issame))),
            "fnmr": float(np.count_nonzero(~accept & issame) / max(1, np.count_nonzero(issame))),
        },
        "groups": {
            r.group: {
                "cross": r.cross, "n_genuine": r.n_genuine, "n_impostor": r.n_impostor,
                "false_matches": r.false_matches, "false_non_matches": r.false_non_matches,
                "fmr": r.fmr, "fnmr": r.fnmr, "accuracy": r.accuracy, "tar_at_far": tar[r.group],
            }
            for r in rows
        },
        "summaries": summaries,
        "summary_infinite": sorted(k for k, v in summaries.items() if v == float("inf")),
        "alpha": SUMMARY_WEIGHT,
        "std_ddof": STD_DDOF,
    }
    if boot is not None:
        report["intervals"] = {k: list(v) for k, v in boot.intervals.items()}
        report["bootstrap"] = {
            "n_boot": boot.n_boot, "clusters": boot.n_clusters, "seed": boot.seed, "alpha": 0.05,
            "unit": "identity", "undefined": {k: v for k, v in boot.undefined.items() if v},
        }
    return report, labels


def quality_report(
    scores: np.ndarray, issame: np.ndarray, quality_a: np.ndarray, quality_b: np.ndarray, limit: float
) -> dict[str, Any]:
    """The JSON-ready error-versus-discard analysis (module rules)."""
    q = mqual.pair_quality(quality_a, quality_b)
    out: dict[str, Any] = {"fractions": mqual.DISCARD_GRID.tolist(), "discard_limit": limit, "curves": {}}
    for fmr in QUALITY_FMRS:
        for convention in mqual.CONVENTIONS:
            c = mqual.discard_curve(scores, issame, q, fmr, convention)
            out["curves"][f"{convention}_{rate_key(fmr)}"] = {
                "convention": convention,
                "fmr": fmr,
                "fnmr": c.fnmr.tolist(),
                "thresholds": c.thresholds.tolist(),
                "n_genuine": c.n_genuine.tolist(),
                "n_impostor": c.n_impostor.tolist(),
                "auc": mqual.area_under(c.fractions, c.fnmr),
                "pauc": mqual.area_under(c.fractions, c.fnmr, limit),
            }
    return out


def _clusters(identities: Sequence[str] | None, n_pairs: int) -> tuple[np.ndarray, str]:
    if identities is None:
        return np.arange(n_pairs), "pair"
    return np.unique(np.asarray(identities[0::2], dtype=str), return_inverse=True)[1], "identity of the first image"


def image_attributes(
    options: Mapping[str, Any], paths: Sequence[str], identities: Sequence[str] | None
) -> tuple[dict[str, list[str | None]], str]:
    """Attribute -> value per image from ``--groups`` (empty without it) and the rule text."""
    groups_file = options.get("groups")
    if not groups_file:
        return {}, ""
    names, table = read_groups(groups_file)
    values, by_identity = match_images(table, paths, identities, str(groups_file))
    rule = f"{Path(groups_file).name}: image keys first, then identity keys ({by_identity} images by identity)"
    return {attr: [v[j] if v is not None else None for v in values] for j, attr in enumerate(names)}, rule


def search_analyses(
    name: str,
    options: Mapping[str, Any],
    attributes: Mapping[str, Sequence[str | None]],
    mated_probes: np.ndarray,
    nonmated_probes: np.ndarray,
    mate_ranks: np.ndarray,
    mate_scores: np.ndarray,
    nonmated_scores: np.ndarray,
) -> Analyses:
    """Open-set identification by group: probe images ``mated_probes`` / ``nonmated_probes`` (indices into
    the images ``attributes`` describe, in the order of the search results); one threshold at overall FPIR
    ``--fairness-fmr`` over all non-mated searches; per group rank-1, FNIR and FPIR; SER, FDR, IR, GARBE
    (`facebench.metrics.fairness.search_group_rates`)."""
    out = Analyses()
    if not attributes:
        return out
    from facebench.metrics.roc import threshold_at_far

    fpir = float(options.get("fairness_fmr") or DEFAULT_FAIRNESS_FMR)
    threshold = threshold_at_far(nonmated_scores, fpir)
    out.extra["search_fairness"] = {}
    for attr, per_image in attributes.items():
        mg = np.array([per_image[i] for i in mated_probes], dtype=object)
        ng = np.array([per_image[i] for i in nonmated_probes], dtype=object)
        km, kn = mg != None, ng != None  # noqa: E711 (element-wise on an object array)
        if not km.any() or not kn.any():
            out.warnings.append(f"{name}: attribute {attr!r}: no mated or no non-mated probe is assigned")
            continue
        rows = mfair.search_group_rates(mate_ranks[km], mate_scores[km], mg[km], nonmated_scores[kn], ng[kn], threshold)
        summaries = mfair.search_summaries(rows, SUMMARY_WEIGHT)
        out.extra["search_fairness"][attr] = {
            "threshold": threshold,
            "fpir_target": fpir,
            "groups": {
                r.group: {"n_mated": r.n_mated, "n_nonmated": r.n_nonmated, "rank1": r.rank1, "fnir": r.fnir,
                          "fpir": r.fpir}
                for r in rows
            },
            "summaries": summaries,
            "unassigned_probes": int((~km).sum() + (~kn).sum()),
        }
        out.metrics.setdefault("search_fdr", {})[attr] = summaries["fdr"]
        out.columns[f"search_fdr.{attr}"] = f"{name} 1:N FDR({attr})"
    out.rules["search_fairness"] = (
        f"one threshold at overall FPIR {rate_key(fpir)} on all non-mated searches; per probe group rank-1, FNIR "
        f"(mate not at rank 1 or below it), FPIR; FDR/IR/GARBE of FPIR and FNIR, alpha {SUMMARY_WEIGHT}"
    )
    return out


def pair_analyses(
    name: str,
    options: Mapping[str, Any],
    tar_rule: str,
    features: np.ndarray,
    issame: np.ndarray,
    paths: Sequence[str] | None,
    identities: Sequence[str] | None,
    builtin: Mapping[str, Sequence[str]] | None = None,
    quality_file: Path | None = None,
) -> Analyses:
    """Fairness and quality of a pair set whose 2N images (pair order) have ``features``, ``paths`` and
    ``identities`` (None when unknown, e.g. a ``.bin`` pack); ``builtin`` = attribute -> value per image."""
    check_options(options)
    out = Analyses()
    features = np.asarray(features, dtype=np.float64)
    attributes: dict[str, list[str | None]] = {k: list(v) for k, v in (builtin or {}).items()}
    if options.get("groups"):
        if paths is None and identities is None:
            raise FacebenchError(f"{name}: --groups needs image paths or identities; a .bin pack has neither")
        from_file, rule = image_attributes(options, paths or [""] * len(identities or []), identities)
        attributes.update(from_file)
        out.rules["groups"] = rule
    quality = options.get("quality")
    if not attributes and not quality and quality_file is None:
        return out
    scores = _cosines(features)  # once, for the fairness and the quality parts alike
    if attributes:
        _pair_fairness(out, name, options, tar_rule, scores, issame, identities, attributes)
    if quality == "norm":
        norms = np.linalg.norm(features, axis=1)
        source = "norm: L2 norm of the flip-combined, unnormalised feature (MagFace)"
        _pair_quality(out, name, options, scores, issame, norms[0::2], norms[1::2], source)
    elif quality or quality_file is not None:
        qfile = Path(quality) if quality else quality_file
        assert qfile is not None
        if paths is None:
            raise FacebenchError(f"{name}: a quality file needs image paths; a .bin pack has none (use --quality norm)")
        values, _ = match_images(read_quality(qfile), paths, None, str(qfile))
        missing = [p for p, v in zip(paths, values) if v is None]
        if missing:
            raise FacebenchError(f"{qfile}: no quality score for {len(missing)} image(s), e.g. {missing[0]}")
        q = np.asarray(values, dtype=np.float64)
        source = f"file {qfile.name}: 'path score' per image"
        _pair_quality(out, name, options, scores, issame, q[0::2], q[1::2], source)
    return out


def _cosines(features: np.ndarray) -> np.ndarray:
    """Cosine of each pair (rows 2i, 2i+1) of float64 features (a zero row scores 0)."""
    emb = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return np.sum(emb[0::2] * emb[1::2], axis=1)


def _pair_fairness(
    out: Analyses,
    name: str,
    options: Mapping[str, Any],
    tar_rule: str,
    scores: np.ndarray,
    issame: np.ndarray,
    identities: Sequence[str] | None,
    attributes: Mapping[str, Sequence[str | None]],
) -> None:
    """The fairness part of `pair_analyses`, written into ``out``."""
    fmr = float(options.get("fairness_fmr") or DEFAULT_FAIRNESS_FMR)
    n_boot = int(options.get("fairness_boot", DEFAULT_BOOT))
    clusters, unit = _clusters(identities, len(issame))
    out.extra["fairness"] = {}
    for attr, per_image in attributes.items():
        a, b = per_image[0::2], per_image[1::2]
        keep = np.array([x is not None and y is not None for x, y in zip(a, b)], dtype=bool)
        if not keep.any() or keep[issame].sum() == 0 or keep[~issame].sum() == 0:
            out.warnings.append(f"{name}: attribute {attr!r}: no genuine or no impostor pair has both images assigned")
            continue
        ga = [str(x) for x, k in zip(a, keep) if k]
        gb = [str(y) for y, k in zip(b, keep) if k]
        report, labels = fairness_report(scores[keep], issame[keep], ga, gb, clusters[keep], fmr, tar_rule, n_boot)
        report["unassigned_pairs"] = int((~keep).sum())
        report["bootstrap_unit"] = unit
        out.extra["fairness"][attr] = report
        full = np.full(len(issame), "", dtype=object)
        full[keep] = labels
        out.arrays[f"groups_{attr}"] = full.astype(str)
        for metric in ("ser", "fdr", "ir", "garbe"):
            out.metrics.setdefault(metric, {})[attr] = report["summaries"][metric]
        for metric in ("fdr", "garbe"):  # fractions; SER and IR are ratios (tables print percentages)
            out.columns[f"{metric}.{attr}"] = f"{name} {metric.upper()}({attr})"
        out.metrics.setdefault("group_std", {})[attr] = report["summaries"]["std"]
        for group, row in report["groups"].items():  # for --column NAME:group_fnmr.<attr>/<group>
            out.metrics.setdefault("group_fmr", {})[f"{attr}/{group}"] = row["fmr"]
            out.metrics.setdefault("group_fnmr", {})[f"{attr}/{group}"] = row["fnmr"]
    out.rules["fairness"] = (
        f"one global threshold at FMR {rate_key(fmr)} on all impostor pairs (facebench.metrics.roc.threshold_at_far, "
        f"accept cos >= t); cross-group pairs apart; FDR/IR/GARBE alpha {SUMMARY_WEIGHT}; STD ddof={STD_DDOF}; "
        f"bootstrap {n_boot} resamples by {unit}"
    )


def _pair_quality(
    out: Analyses,
    name: str,
    options: Mapping[str, Any],
    scores: np.ndarray,
    issame: np.ndarray,
    quality_a: np.ndarray,
    quality_b: np.ndarray,
    source: str,
) -> None:
    """The quality part of `pair_analyses`, written into ``out``."""
    limit = float(options.get("discard_limit") or DEFAULT_DISCARD_LIMIT)
    report = quality_report(scores, issame, quality_a, quality_b, limit)
    report["source"] = source
    out.extra["quality"] = report
    out.arrays["pair_quality"] = mqual.pair_quality(quality_a, quality_b)
    for key, curve in report["curves"].items():
        convention, fkey = key.split("_", 1)
        out.metrics.setdefault(f"erc_auc_{convention}", {})[fkey] = curve["auc"]
        out.metrics.setdefault(f"erc_pauc_{convention}", {})[fkey] = curve["pauc"]
    out.columns[f"erc_pauc_fixed.{rate_key(QUALITY_FMRS[0])}"] = f"{name} EDC pAUC@{limit:g}"
    out.rules["quality"] = (
        f"{source}; pair quality = min of the two; discard grid 0..0.95 step 0.05 (lowest pair quality first, "
        f"ties in stored order); FNMR at FMR 1e-3 and 1e-4 where resolvable; thresholds 'fixed' (EDC: once on "
        f"all pairs) and 'refit' (re-set on the retained pairs); AUC over the grid, pAUC up to {limit:g}"
    )
