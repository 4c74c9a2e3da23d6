"""TinyFace (PROTOCOLS 7.4): closed-set 1:N of native low-resolution faces, CMC rank 1/5/20 and mAP.

- Files: ``tinyface/Testing_Set/{Probe,Gallery_Match,Gallery_Distractor}`` (`facebench.io.tinyface`);
  the gallery is Gallery_Match + Gallery_Distractor, every probe searches all of it.
- Scores: cosine of the L2-normalised flip-combined features (float32 products); ranks and AP by
  `facebench.metrics.closedset` (image-level gallery, ties by ``--cmc-ties``: ``>=`` default, a tied
  non-mate ranks before the mate, as the protocol; ``>`` the mate wins; the protocol's trapezoidal AP).
  Probes whose identity has no Gallery_Match image are left out, with a warning.
- Counts are derived from the folders and reported; a distractor count other than 153,428 is a warning.
- Images (with a checkpoint): a landmark file ``tinyface/landmarks.txt`` (``path x1 y1 ... x5 y5``, paths
  relative to Testing_Set) when present; otherwise the low-resolution recipe (`facebench.extraction.lowres`: square,
  pad, upscale, detect, align) with the built-in detector, listing the failures to enrol and their rate;
  without a detector the images are resized to the chip unaligned, and the rules say so.
- Features: ``--features DIR`` with ``tinyface_probe.npy``, ``tinyface_gallery_match.npy``,
  ``tinyface_gallery_distractor.npy`` (rows in sorted file-name order).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facebench.benchmarks import Benchmark
from facebench.evaluate import rates
from facebench.evaluate.common import BenchmarkResult, RunContext
from facebench.extraction.images import ImageList
from facebench.io import tinyface as tfio
from facebench.extraction.lowres import prepare_alignment
from facebench.metrics import closedset as mcs
from facebench.metrics.megaface import l2_normalise

log = logging.getLogger(__name__)

RANKS = (1, 5, 20)
BLOCK = 8192


def retrieval(
    probe: np.ndarray, probe_labels: np.ndarray, match: np.ndarray, match_labels: np.ndarray,
    distractor: np.ndarray, ranks: tuple[int, ...] = RANKS, block: int = BLOCK, ties: str = ">=",
) -> dict[str, Any]:
    """Closed-set retrieval of L2-normalised ``probe`` rows against ``match`` + ``distractor`` rows
    (`facebench.metrics.closedset`, tie rule ``ties``), the distractors streamed in blocks of ``block`` rows."""
    match_scores = probe @ match.T
    is_mate = probe_labels[:, None] == match_labels[None, :]
    mates = mcs.sorted_mate_scores(match_scores, is_mate)
    above = mcs.count_nonmates_before(match_scores, mates, ~is_mate, ties)
    for start in range(0, distractor.shape[0], block):
        above += mcs.count_nonmates_before(probe @ distractor[start : start + block].T, mates, ties=ties)
    return mcs.retrieval_metrics(mcs.mate_positions(mates, above), ranks)


def run_tinyface(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """Read the folders, embed the three parts, compute CMC and mAP."""
    _, cmc_ties = rates.identification_rules(ctx.settings.options, streamed=True)
    _, files = ctx.files(spec)
    root = Path(files["testing_set"])
    data = tfio.read_tinyface(root)
    warnings: list[str] = []
    counts: dict[str, Any] = {
        "n_probes": len(data.probe),
        "n_gallery_match": len(data.match),
        "n_distractors": len(data.distractor),
        "n_probe_identities": int(np.unique(data.probe_labels).size),
        "n_gallery_identities": int(np.unique(data.match_labels).size),
    }
    if len(data.distractor) != tfio.KNOWN_DISTRACTORS:
        warnings.append(
            f"{root / 'Gallery_Distractor'}: {len(data.distractor)} distractors, the published set has "
            f"{tfio.KNOWN_DISTRACTORS:,}: the numbers are not comparable to published ones"
        )
    parts = {"probe": data.probe, "gallery_match": data.match, "gallery_distractor": data.distractor}
    rules: dict[str, Any] = {"score": "cosine (float32)", "flip": ctx.profile.flip,
                             "ranks": f"image-level, 1 + earlier mates + non-mates scoring {cmc_ties} the mate",
                             "cmc_ties": cmc_ties,
                             "map": "TinyFace compute_AP.m (trapezoidal)"}
    extra: dict[str, Any] = {}
    landmarks: dict[str, np.ndarray | None] = {name: None for name in parts}
    if ctx.settings.features is None:
        landmarks, alignment = prepare_alignment(files, root, parts, warnings, counts, ctx.settings.out / "tinyface_failed_to_enrol.txt")
        rules["alignment"] = alignment
    features = {
        name: l2_normalise(ctx.features_for(spec, ImageList(str(root / name), paths, landmarks=landmarks[name], crops=True), part=name))
        for name, paths in parts.items()
    }
    inputs = ctx.hash_inputs(spec, {k: v for k, v in files.items() if k != "testing_set"}, warnings)
    has_mate = np.isin(data.probe_labels, data.match_labels)
    if not has_mate.all():
        warnings.append(f"{int((~has_mate).sum())} probe(s) have no Gallery_Match image of their identity: left out")
    result = retrieval(
        features["probe"][has_mate], data.probe_labels[has_mate], features["gallery_match"], data.match_labels,
        features["gallery_distractor"], ties=cmc_ties,
    )
    for w in warnings:
        log.warning(w)
    metrics = {
        "rank": {str(k): v for k, v in result["rank_rates"].items()},
        "map": result["mean_average_precision"],
    }
    counts["n_searches"] = int(has_mate.sum())
    arrays = {
        "mate_ranks": result["ranks"],
        "average_precision": result["average_precision"],
        "cmc": np.array([np.count_nonzero(result["ranks"] <= k) / result["ranks"].size for k in range(1, 21)]),
    }
    return BenchmarkResult(metrics, rules, inputs, counts, warnings, arrays, extra)
