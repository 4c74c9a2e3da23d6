"""Failure gallery: the hardest false accepts and false rejects of a pair benchmark, with their images.

A false accept is a different-person pair whose 10-fold held-out decision was wrong (accepted), a false
reject a same-person pair wrongly rejected; the hardest are the false accepts with the highest cosine
score and the false rejects with the lowest. Images come from where the run read them (the run's
``extra.images``): a ``.bin`` pack is read again (its sha256 must match the run's record, so a changed
file is never shown as the run's), an original distribution is read through its pair list and aligned as
the run aligned it. The images are re-encoded as small JPEG thumbnails (never embedded as given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from facebench import kinds
from facebench.errors import FacebenchError
from facebench.extraction.images import opencv
from facebench.report.runs import Run
from facebench.results import BenchmarkEntry

THUMB = 96
JPEG_QUALITY = 88


@dataclass(frozen=True)
class FailurePair:
    """One wrongly decided pair: index in the benchmark, fold, cosine score and the two thumbnails."""

    index: int
    fold: int
    score: float
    genuine: bool
    images: tuple[bytes, bytes] | None = None


@dataclass
class Gallery:
    """The failures of one run on one pair benchmark (``note`` says why images are missing, if they are)."""

    run: str
    benchmark: str
    title: str
    false_accepts: list[FailurePair] = field(default_factory=list)
    false_rejects: list[FailurePair] = field(default_factory=list)
    n_false_accepts: int = 0
    n_false_rejects: int = 0
    note: str = ""


def thumbnail(rgb: np.ndarray, size: int = THUMB) -> bytes:
    """An RGB image resized to ``size`` pixels on its long side, as JPEG bytes."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    cv2 = opencv()
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover
        raise FacebenchError("cannot encode a thumbnail")
    return buffer.tobytes()


def _image_loader(run: Run, benchmark: str, entry: BenchmarkEntry) -> Callable[[int], np.ndarray]:
    """A function image index -> RGB image, for the images the run evaluated; FacebenchError if unavailable."""
    extra = entry.extra
    reader = extra.get("reader")
    files = extra.get("images")
    if reader == "folder":
        raise FacebenchError("the gallery does not re-read folder benchmarks (their pairs are drawn from a listing)")
    if not reader or not isinstance(files, dict) or not files:
        raise FacebenchError("the run does not record where its images are")
    paths = {role: Path(p).expanduser() for role, p in files.items()}  # results.json writes ~ for home
    if reader == "binpack":
        from facebench.io.binpack import read_bin
        from facebench.extraction.images import decode_image

        pack_path = paths.get("pack")
        if pack_path is None or not pack_path.is_file():
            raise FacebenchError(f"the pack {pack_path} is not at hand")
        pack = read_bin(pack_path)
        recorded = entry.inputs.get(pack_path.name)
        if recorded and recorded != pack.sha256:
            raise FacebenchError(f"{pack_path} changed since the run (sha256 differs from the run's record)")
        return lambda i: decode_image(pack.blobs[i], f"{pack_path} item {i}")
    from facebench.benchmarks import load_benchmarks
    from facebench.io.pairsets import read_pair_set
    from facebench.extraction.images import arcface_chip

    specs = load_benchmarks()
    if benchmark not in specs:
        raise FacebenchError(f"unknown benchmark {benchmark}")
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise FacebenchError(f"not at hand: {', '.join(missing)}")
    data = read_pair_set(reader, paths, specs[benchmark].options)
    images = _enrolled(run, data.images, benchmark)
    chip = arcface_chip()
    return lambda i: images.load_chip(i, chip)


def _enrolled(run: Run, images: Any, benchmark: str) -> Any:
    """The run's images with the landmarks its detector found (cached), as `run` aligned them."""
    from facebench.extraction.cache import default_cache_root
    from facebench.extraction.enrol import EnrolOptions, enrol

    settings = run.document.settings
    options = settings.get("options") or {}
    root = Path(settings["cache_dir"]) if settings.get("cache_dir") else default_cache_root()
    enrol_options = EnrolOptions(
        detector=options.get("detector") or "dlib-hog",
        on_no_face="center-crop",  # the gallery shows pairs the run scored: none of them is a skipped image
        landmark_frame=options.get("landmark_frame") or "upright",
        cache_root=root / "detections",
    )
    return enrol(images, enrol_options, benchmark).images


def failure_gallery(run: Run, benchmark: str, k: int = 6) -> Gallery | None:
    """The ``k`` hardest false accepts and false rejects of a run's pair benchmark (None when the run has
    no per-pair decisions for it)."""
    entry = run.entry(benchmark)
    if not entry or not kinds.for_entry(entry.kind).pair_verification:
        return None
    arrays = run.arrays(benchmark)
    if not all(name in arrays for name in ("scores", "labels", "correct")):
        return None
    scores = np.asarray(arrays["scores"], dtype=float)
    labels = np.asarray(arrays["labels"], dtype=bool)
    correct = np.asarray(arrays["correct"], dtype=bool)
    n_folds = int(entry.rules.get("n_folds") or 10)
    from facebench.metrics.kfold import kfold_indices

    # pair i of the arrays is pair `listed[i]` of the benchmark's list when unenrolled pairs were left out
    listed = np.flatnonzero(arrays["pairs_kept"]) if "pairs_kept" in arrays else np.arange(scores.size)
    fold_of = np.empty(scores.size, dtype=np.int64)
    for f, idx in enumerate(kfold_indices(scores.size, n_folds)):
        fold_of[idx] = f
    fa = np.flatnonzero(~labels & ~correct)
    fr = np.flatnonzero(labels & ~correct)
    fa = fa[np.argsort(-scores[fa], kind="stable")][:k]
    fr = fr[np.argsort(scores[fr], kind="stable")][:k]
    gallery = Gallery(
        run.label,
        benchmark,
        entry.title,
        n_false_accepts=int(np.count_nonzero(~labels & ~correct)),
        n_false_rejects=int(np.count_nonzero(labels & ~correct)),
    )
    loader = None
    if fa.size or fr.size:
        try:
            loader = _image_loader(run, benchmark, entry)
        except FacebenchError as exc:
            gallery.note = f"images not shown: {exc}"
    for indices, target in ((fa, gallery.false_accepts), (fr, gallery.false_rejects)):
        for i in indices.tolist():
            images = None
            if loader is not None:
                try:
                    images = (thumbnail(loader(2 * int(listed[i]))), thumbnail(loader(2 * int(listed[i]) + 1)))
                except FacebenchError as exc:
                    gallery.note = f"some images not shown: {exc}"
            target.append(FailurePair(int(listed[i]), int(fold_of[i]) + 1, float(scores[i]), bool(labels[i]), images))
    return gallery
