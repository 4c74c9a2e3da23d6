"""QMUL-SurvFace (PROTOCOLS 7.5): the open-set watch-list protocol of surveillance faces.

- Files: ``QMUL-SurvFace/Face_Identification_Test_Set/{gallery,mated_probe,unmated_probe}``; the identity of
  a gallery or mated-probe image is the integer before the first ``_`` of its file name (as in TinyFace, the
  same group's layout) [unverified against the distribution: the counts are derived at load and reported];
  unmated probes are unlabelled (true non-mated searches).
- Searches: every mated and unmated probe against the gallery subjects (subject score = max over its
  images, cosine of L2-normalised features), streamed over the gallery (`facebench.metrics.openset`);
  mate rank = 1 + non-mate subjects scoring ``>=`` the mate.
- Metrics: rank 1/5/10/20 over mated searches; TPIR at FPIR 0.3, 0.2, 0.1, 0.01 (the rule of
  `facebench.metrics.identification.open_set_identification`: the lowest threshold with FPIR <= target;
  a mated search counts when its mate is at rank 1 and scores ``>=`` it); the FPIR/FNIR curve is saved.
- Images (with a checkpoint): ``Face_Identification_Test_Set/landmarks.txt`` when present, else the
  low-resolution recipe (`facebench.lowres`), failures to enrol listed.
- Features: ``--features DIR`` with ``survface_gallery.npy``, ``survface_mated_probe.npy``,
  ``survface_unmated_probe.npy`` (rows in sorted file-name order).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facebench.benchmarks import Benchmark
from facebench.errors import FacebenchError
from facebench.evaluate.common import BenchmarkResult, RunContext
from facebench.evaluate.rates import key as far_key
from facebench.images import ImageList
from facebench.io.tinyface import identity_of, list_images
from facebench.lowres import prepare_alignment
from facebench.metrics import openset
from facebench.metrics.identification import cmc_curve
from facebench.metrics.megaface import l2_normalise

log = logging.getLogger(__name__)

PARTS = ("gallery", "mated_probe", "unmated_probe")
RANKS = (1, 5, 10, 20)
FPIR_TARGETS = (0.3, 0.2, 0.1, 0.01)
BLOCK = 8192


def watch_list_searches(
    gallery: np.ndarray, gallery_subjects: np.ndarray, probes: np.ndarray, probe_subjects: np.ndarray, block: int = BLOCK
) -> openset.Searches:
    """Every probe against the gallery subjects (L2-normalised rows; float32 products)."""
    return openset.stream_searches(
        lambda cols: probes @ gallery[cols].T,
        probe_subjects,
        gallery_subjects,
        lambda rows, cols: np.einsum("ij,ij->i", probes[rows], gallery[cols]),
        block,
    )


def run_survface(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """Read the three folders, embed them, stream the searches, read off ranks and TPIR at FPIR."""
    _, files = ctx.files(spec)
    root = Path(files["test_set"])
    parts = {name: list_images(root / name) for name in PARTS}
    gallery_ids = np.array([identity_of(p) for p in parts["gallery"]], dtype=np.int64)
    mated_ids = np.array([identity_of(p) for p in parts["mated_probe"]], dtype=np.int64)
    if not parts["gallery"] or not parts["mated_probe"] or not parts["unmated_probe"]:
        raise FacebenchError(f"{root}: gallery, mated_probe and unmated_probe must each hold images")
    warnings: list[str] = []
    counts: dict[str, Any] = {
        "n_gallery_images": len(parts["gallery"]),
        "n_gallery_subjects": int(np.unique(gallery_ids).size),
        "n_mated_probes": len(parts["mated_probe"]),
        "n_mated_subjects": int(np.unique(mated_ids).size),
        "n_unmated_probes": len(parts["unmated_probe"]),
    }
    strays = ~np.isin(mated_ids, gallery_ids)
    if strays.any():
        warnings.append(f"{int(strays.sum())} mated probe(s) have no gallery image of their identity: counted as non-mated")
    rules: dict[str, Any] = {
        "score": "cosine (float32), subject score = max over its gallery images",
        "ranks": "1 + non-mate subjects scoring >= the mate",
        "tpir_at_fpir": "lowest threshold with FPIR <= target; mate at rank 1 and score >= threshold",
        "flip": ctx.profile.flip,
    }
    landmarks: dict[str, np.ndarray | None] = {name: None for name in parts}
    if ctx.settings.features is None:
        landmarks, rules["alignment"] = prepare_alignment(
            files, root, parts, warnings, counts, ctx.settings.out / "survface_failed_to_enrol.txt"
        )
    feats = {
        name: l2_normalise(ctx.features_for(spec, ImageList(str(root / name), paths, landmarks=landmarks[name], crops=True), part=name))
        for name, paths in parts.items()
    }
    inputs = ctx.hash_inputs(spec, {k: v for k, v in files.items() if k != "test_set"}, warnings)
    probes = np.concatenate([feats["mated_probe"], feats["unmated_probe"]])
    probe_subjects = np.concatenate([mated_ids, np.full(len(parts["unmated_probe"]), -1, dtype=np.int64)])
    searches = watch_list_searches(feats["gallery"], gallery_ids, probes, probe_subjects)
    points = openset.tpir_at_fpir(searches, FPIR_TARGETS)
    thresholds, fpir, fnir = openset.fpir_fnir_curve(searches)
    for w in warnings:
        log.warning(w)
    n_subjects = counts["n_gallery_subjects"]
    metrics = {
        "rank": {str(k): float(np.count_nonzero(searches.mate_ranks <= k) / searches.mate_ranks.size) for k in RANKS if k <= n_subjects},
        "tpir_at_fpir": {far_key(f): p[0] for f, p in points.items()},
    }
    extra = {
        "fpir": {far_key(f): p[1] for f, p in points.items()},
        "thresholds": {far_key(f): p[2] for f, p in points.items()},
    }
    counts.update(n_mated=int(searches.mate_ranks.size), n_nonmated=int(searches.nonmated_scores.size))
    arrays = {
        "mate_ranks": searches.mate_ranks, "mate_scores": searches.mate_scores,
        "nonmated_scores": searches.nonmated_scores, "cmc": cmc_curve(searches.mate_ranks, min(n_subjects, 50)),
        "fpir_fnir_thresholds": thresholds, "fpir": fpir, "fnir": fnir,
    }
    return BenchmarkResult(metrics, rules, inputs, counts, warnings, arrays, extra)
