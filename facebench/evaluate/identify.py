"""1:N identification on your own data (``--benchmark identify:PATH``): closed or open set, CMC, mAP, TPIR@FPIR.

``PATH`` is either

- a folder holding ``gallery.txt`` and ``probes.txt``: lines ``path label`` (paths relative to ``PATH``,
  whitespace separated); a probe whose label is ``-`` or is no gallery label is an unmated search (open
  set); or
- an identity folder (``PATH/<identity>/<image>``, as ``folder:PATH``): split by the seeded open-set rule of
  `facebench.evaluate.folder` (``--folder-seed``): 20% of the identities unenrolled, one gallery image per
  enrolled identity, the other images mated probes.

Raw photos need ``PATH/landmarks.txt`` (5 points per image), otherwise images are 112x112 crops.

Metrics (cosine of L2-normalised features): ranks 1/5/10 over mated searches (subject score = max over its
gallery images; rank = 1 + non-mate subjects scoring ``>=`` the mate, or ``>`` it with ``--cmc-ties >``)
and TPIR / FNIR at FPIR 1e-2/1e-1 by ``--tpir-rule`` when there are unmated searches (the IJB 1:N rules,
:func:`facebench.evaluate.rates.search_rates`: a target below 1/unmated searches is null with the reason
in the warnings), both streamed over the gallery (`facebench.metrics.openset`, the engine of the SurvFace
watch list); mAP over mated searches with the image-level ranking of `facebench.metrics.closedset`
(TinyFace's rule, every gallery image ranked, ties by the same ``--cmc-ties``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facebench.benchmarks import Benchmark
from facebench.errors import FacebenchError
from facebench.evaluate import rates
from facebench.evaluate.common import BenchmarkResult, RunContext
from facebench.evaluate.folder import DEFAULT_SEED, identification_split, images_digest, list_folder
from facebench.evaluate.tinyface import retrieval
from facebench.extraction.images import ImageList
from facebench.io.landmarks import landmark_array, read_landmarks
from facebench.io.textlines import read_path_labels
from facebench.metrics import openset
from facebench.metrics.identification import cmc_curve
from facebench.metrics.megaface import l2_normalise

RANKS = (1, 5, 10)
FPIR_TARGETS = (1e-2, 1e-1)
UNMATED = "-"


def read_split(root: Path, seed: int) -> tuple[list[str], np.ndarray, list[str], np.ndarray, str]:
    """``(gallery paths, gallery subjects, probe paths, probe subjects (-1 = unmated), rule)`` (module rules)."""
    if (root / "gallery.txt").is_file() or (root / "probes.txt").is_file():
        gallery, g_labels = read_path_labels(root / "gallery.txt", root)
        probes, p_labels = read_path_labels(root / "probes.txt", root)
        names = sorted(set(g_labels))
        code = {name: k for k, name in enumerate(names)}
        g = np.array([code[x] for x in g_labels], dtype=np.int64)
        p = np.array([code.get(x, -1) if x != UNMATED else -1 for x in p_labels], dtype=np.int64)
        return gallery, g, probes, p, "lists gallery.txt and probes.txt"
    listing = list_folder(root)
    split = identification_split(listing.groups, seed)
    enrolled = set(split.gallery_subjects.tolist())
    probe_subjects = np.array([s if s in enrolled else -1 for s in split.probe_subjects.tolist()], dtype=np.int64)
    paths = list(listing.paths)
    return (
        [paths[i] for i in split.gallery], split.gallery_subjects, [paths[i] for i in split.probes], probe_subjects,
        f"seeded split of the identity folder (seed {seed}; facebench.evaluate.folder rule)",
    )


def run_identify(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """Embed gallery and probes, stream the searches, compute ranks, TPIR at FPIR and mAP."""
    tpir_rule, cmc_ties = rates.identification_rules(ctx.settings.options, streamed=True)
    _, files = ctx.files(spec)
    root = Path(files["images"])
    seed = int(ctx.settings.options.get("folder_seed", DEFAULT_SEED) or 0)
    gallery, g_subjects, probes, p_subjects, split_rule = read_split(root, seed)
    warnings: list[str] = []
    lm = read_landmarks(files["landmarks"], root) if "landmarks" in files else None
    feats = {}
    for part, paths in (("gallery", gallery), ("probes", probes)):
        landmarks = landmark_array(paths, lm, str(files["landmarks"])) if lm is not None else None
        feats[part] = l2_normalise(ctx.features_for(spec, ImageList(str(root), paths, landmarks=landmarks), part=part))
    g, p = feats["gallery"], feats["probes"]
    searches = openset.stream_searches(
        lambda cols: p @ g[cols].T, p_subjects, g_subjects, lambda r, c: np.einsum("ij,ij->i", p[r], g[c]),
        cmc_ties=cmc_ties,
    )
    n_subjects = int(np.unique(g_subjects).size)
    if searches.mate_ranks.size == 0:
        raise FacebenchError(f"{root}: no probe has a gallery image of its identity; nothing to identify")
    metrics: dict[str, Any] = {
        "rank": {str(k): float(np.count_nonzero(searches.mate_ranks <= k) / searches.mate_ranks.size)
                 for k in RANKS if k <= n_subjects},
    }
    extra: dict[str, Any] = {}
    curve: dict[str, np.ndarray] = {}
    if searches.nonmated_scores.size:
        values, unmeasurable, few, curve = rates.search_rates(
            searches.mate_scores, searches.rank1_strict, searches.nonmated_scores, FPIR_TARGETS, tpir_rule
        )
        metrics.update(tpir_at_fpir=values["tpir_at_fpir"], fnir_at_fpir=values["fnir_at_fpir"],
                       unmeasurable=unmeasurable, few_events=few)
        warnings += rates.unmeasurable_warnings(spec.name, metrics)
        extra = {field: values[field] for field in ("fpir", "thresholds", "nonmated_accepted")}
    mated = searches.mated
    closed = retrieval(p[mated], p_subjects[mated], g, g_subjects, g[:0], ranks=(1,), ties=cmc_ties)
    metrics["map"] = closed["mean_average_precision"]
    inputs = {f"{root.name}/ ({len(gallery) + len(probes)} images)": images_digest(root, gallery + probes)}
    inputs.update(ctx.hash_inputs(spec, {k: v for k, v in files.items() if k != "images"}, warnings))
    counts = {
        "n_gallery_images": len(gallery), "n_gallery_subjects": n_subjects, "n_probes": len(probes),
        "n_mated": int(searches.mate_ranks.size), "n_nonmated": int(searches.nonmated_scores.size),
    }
    rules = {
        "split": split_rule, "score": "cosine (float32)", "flip": ctx.profile.flip,
        "ranks": f"subject score = max over its images; 1 + non-mate subjects scoring {cmc_ties} the mate",
        "cmc_ties": cmc_ties,
        "map": f"image-level ranking, ties by {cmc_ties}, TinyFace compute_AP.m (trapezoidal)",
    }
    if searches.nonmated_scores.size:
        rules["tpir_rule"] = rates.tpir_rule_text(tpir_rule)
        rules["resolution"] = "an FPIR target below 1/non-mated searches is null (not measurable)"
    arrays = {"mate_ranks": searches.mate_ranks, "mate_scores": searches.mate_scores,
              "tpir_hits": searches.rank1_strict, "nonmated_scores": searches.nonmated_scores,
              "cmc": cmc_curve(searches.mate_ranks, n_subjects), **curve}
    return BenchmarkResult(metrics, rules, inputs, counts, warnings, arrays, extra)
