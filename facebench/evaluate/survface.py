"""QMUL-SurvFace (PROTOCOLS 7.5): the open-set watch-list protocol of surveillance faces.

- Files: ``QMUL-SurvFace/Face_Identification_Test_Set/{gallery,mated_probe,unmated_probe}``; the identity of
  a gallery or mated-probe image is the integer before the first ``_`` of its file name (as in TinyFace, the
  same group's layout) [unverified against the distribution: the counts are derived at load and reported];
  unmated probes are unlabelled (true non-mated searches).
- Searches: every mated and unmated probe against the gallery subjects (subject score = max over its
  images, cosine of L2-normalised features), streamed over the gallery (`facebench.metrics.openset`);
  mate rank = 1 + non-mate subjects scoring ``>=`` the mate (``--cmc-ties >=``, default) or ``>`` it
  (``--cmc-ties >``; ``argsort`` needs full rows and is refused).
- Metrics: rank 1/5/10/20 over mated searches; TPIR / FNIR at FPIR 0.3, 0.2, 0.1, 0.01 by ``--tpir-rule``
  (``insightface`` default, ``ge``, ``best``: the IJB 1:N rules,
  :func:`facebench.evaluate.rates.search_rates`; a mated search counts when its mate scores above every
  non-mate and passes the threshold; a target below 1/non-mated searches is null with the reason in
  the warnings; few-event points carry Clopper-Pearson intervals); the DIR-FPIR curve is saved
  (``dir_fpir_fpir``, ``dir_fpir_dir``; FNIR = 1 - DIR).
- Images (with a checkpoint): ``Face_Identification_Test_Set/landmarks.txt`` when present, else the
  low-resolution recipe (`facebench.extraction.lowres`), failures to enrol listed.
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
from facebench.evaluate import rates
from facebench.evaluate.common import BenchmarkResult, RunContext
from facebench.extraction.images import ImageList
from facebench.io.tinyface import identity_of, list_images
from facebench.extraction.lowres import prepare_alignment
from facebench.metrics import openset
from facebench.metrics.identification import cmc_curve
from facebench.metrics.megaface import l2_normalise

log = logging.getLogger(__name__)

PARTS = ("gallery", "mated_probe", "unmated_probe")
RANKS = (1, 5, 10, 20)
FPIR_TARGETS = (0.3, 0.2, 0.1, 0.01)
BLOCK = 8192


def watch_list_searches(
    gallery: np.ndarray,
    gallery_subjects: np.ndarray,
    probes: np.ndarray,
    probe_subjects: np.ndarray,
    block: int = BLOCK,
    cmc_ties: str = ">=",
) -> openset.Searches:
    """Every probe against the gallery subjects (L2-normalised rows; float32 products), ranks by ``cmc_ties``."""
    return openset.stream_searches(
        lambda cols: probes @ gallery[cols].T,
        probe_subjects,
        gallery_subjects,
        lambda rows, cols: np.einsum("ij,ij->i", probes[rows], gallery[cols]),
        block,
        cmc_ties=cmc_ties,
    )


def run_survface(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """Read the three folders, embed them, stream the searches, read off ranks and TPIR at FPIR."""
    tpir_rule, cmc_ties = rates.identification_rules(ctx.settings.options, streamed=True)
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
        "ranks": f"1 + non-mate subjects scoring {cmc_ties} the mate",
        "cmc_ties": cmc_ties,
        "tpir_rule": rates.tpir_rule_text(tpir_rule),
        "resolution": "an FPIR target below 1/non-mated searches is null (not measurable)",
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
    searches = watch_list_searches(feats["gallery"], gallery_ids, probes, probe_subjects, cmc_ties=cmc_ties)
    values, unmeasurable, few, curve = rates.search_rates(
        searches.mate_scores, searches.rank1_strict, searches.nonmated_scores, FPIR_TARGETS, tpir_rule
    )
    n_subjects = counts["n_gallery_subjects"]
    metrics = {
        "rank": {str(k): float(np.count_nonzero(searches.mate_ranks <= k) / searches.mate_ranks.size) for k in RANKS if k <= n_subjects},
        "tpir_at_fpir": values["tpir_at_fpir"],
        "fnir_at_fpir": values["fnir_at_fpir"],
        "unmeasurable": unmeasurable,
        "few_events": few,
    }
    warnings += rates.unmeasurable_warnings(spec.name, metrics)
    for w in warnings:
        log.warning(w)
    extra = {field: values[field] for field in ("fpir", "thresholds", "nonmated_accepted")}
    counts.update(n_mated=int(searches.mate_ranks.size), n_nonmated=int(searches.nonmated_scores.size))
    arrays = {
        "mate_ranks": searches.mate_ranks, "mate_scores": searches.mate_scores, "tpir_hits": searches.rank1_strict,
        "nonmated_scores": searches.nonmated_scores, "cmc": cmc_curve(searches.mate_ranks, min(n_subjects, 50)),
        **curve,
    }
    return BenchmarkResult(metrics, rules, inputs, counts, warnings, arrays, extra)
