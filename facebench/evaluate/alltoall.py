"""All-to-all verification on your own images (``--benchmark alltoall:PATH``): every pair, TAR down to FAR 1e-6.

``PATH`` is either an identity folder (``PATH/<identity>/<image>``, read as ``folder:PATH`` reads it, see
`facebench.evaluate.folder`; identities with one image still give impostor pairs but are listed by that
reader as skipped) or a list file of ``path label`` lines (paths relative to the list's folder, any label
text; whitespace separated), which is how any benchmark's images can be scored all against all. Raw
photos need 5-point landmarks: ``landmarks.txt`` beside the list (or in the folder), or
``--file alltoall_<stem>.landmarks=FILE``.

Every unordered pair of images is scored (cosine of the L2-normalised flip-combined features, float32),
genuine when the labels agree; TAR at FAR 1e-6 ... 1e-1 by :mod:`facebench.metrics.alltoall` (the best
TAR of any threshold whose FAR is at most the target: the kernel's ``le`` read-off, accept ``score > t``),
streamed in tiles, so N = 100,000 (5e9 impostor pairs) runs in the features plus well under 1 GB. A
target below 1/impostor pairs is null with the reason in the warnings; a point accepting fewer than
:data:`facebench.metrics.operating.FEW_EVENTS` impostors carries Clopper-Pearson intervals
(``metrics.few_events``), as every 1:1 benchmark. The genuine scores and the thresholds are saved.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facebench.benchmarks import Benchmark
from facebench.evaluate import rates
from facebench.evaluate.common import BenchmarkResult, RunContext
from facebench.evaluate.folder import images_digest, list_folder
from facebench.extraction.images import ImageList
from facebench.io.landmarks import landmark_array, read_landmarks
from facebench.io.textlines import read_path_labels
from facebench.metrics import alltoall as ma
from facebench.metrics import operating
from facebench.metrics.megaface import l2_normalise
from facebench.metrics.roc import DEFAULT_FAR_TARGETS
from facebench.keys import rate_key

log = logging.getLogger(__name__)


def read_image_labels(path: str | Path) -> tuple[Path, list[str], np.ndarray, list[str]]:
    """``(root, absolute paths, integer labels, label names)`` of an identity folder or a ``path label``
    list (module rules); errors name the file and line."""
    path = Path(path)
    if path.is_dir():
        listing = list_folder(path)
        return listing.root, list(listing.paths), listing.labels, list(listing.identities)
    root = path.parent.resolve()
    paths, names = read_path_labels(path, root)
    distinct, labels = np.unique(np.asarray(names), return_inverse=True)
    return root, paths, labels.astype(np.int64), [str(d) for d in distinct]


def run_alltoall(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """Embed every image once, then TAR@FAR over all pairs."""
    _, files = ctx.files(spec)
    root, paths, labels, names = read_image_labels(files["images"])
    warnings: list[str] = []
    landmarks = None
    if "landmarks" in files:
        landmarks = landmark_array(paths, read_landmarks(files["landmarks"], root), str(files["landmarks"]))
    images = ImageList(origin=str(root), paths=paths, landmarks=landmarks, crops=False)
    inputs = ctx.hash_inputs(spec, {k: v for k, v in files.items() if k != "images"}, warnings)
    inputs[f"{Path(files['images']).name} ({len(paths)} images)"] = images_digest(root, paths)
    features = ctx.features_for(spec, images)
    result = ma.all_to_all_tar_at_far(l2_normalise(features), labels, DEFAULT_FAR_TARGETS)
    metrics: dict[str, Any] = {"tar_at_far": {}, "unmeasurable": {}, "few_events": {}}
    extra: dict[str, Any] = {"far": {}, "thresholds": {}, "passes": result.passes}
    for f, p in result.points.items():
        k = rate_key(f)
        if not operating.resolvable(result.n_impostor, f):
            metrics["tar_at_far"][k] = extra["far"][k] = extra["thresholds"][k] = None
            reason = operating.unresolvable_reason(result.n_impostor, "impostor pairs")
            metrics["unmeasurable"][f"tar_at_far.{k}"] = reason
            continue
        metrics["tar_at_far"][k], extra["far"][k], extra["thresholds"][k] = p.tar, p.far, p.threshold
        accepted = round(p.far * result.n_impostor)
        if accepted < operating.FEW_EVENTS:
            metrics["few_events"][f"tar_at_far.{k}"] = rates.few_events_entry(
                accepted, result.n_impostor, round(p.tar * result.n_genuine), result.n_genuine
            )
    for w in rates.unmeasurable_warnings(spec.name, metrics):
        log.warning(w)
        warnings.append(w)
    return BenchmarkResult(
        metrics=metrics,
        rules={
            "tar_at_far": "le (best TAR with FAR <= target; operating.rate_threshold '>', accept score > t)",
            "resolution": rates.RULES_1TO1["resolution"],
            "pairs": ma.RULE,
            "score": "cosine (float32) of L2-normalised features",
            "flip": ctx.profile.flip,
        },
        inputs=inputs,
        counts={
            "n_images": len(paths),
            "n_identities": len(names),
            "n_genuine": result.n_genuine,
            "n_impostor": result.n_impostor,
        },
        warnings=warnings,
        arrays={"genuine_scores": result.genuine_scores, "genuine_i": result.genuine_i, "genuine_j": result.genuine_j},
        extra=extra,
    )
