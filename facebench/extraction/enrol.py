"""Enrolment of raw photos: 5 landmarks for every image file that is neither a ready chip nor listed in a
landmark file, and the failure-to-enrol report.

Rules (used by `facebench run` for every benchmark, and by `facebench align`):

- Which images: image files of a raw list (``ImageList.crops`` false) without a landmark row whose upright
  size is not 112x112 (a 112x112 image is a ready ArcFace chip). Pack blobs are never detected.
- Landmark frame (``--landmark-frame``): ``upright`` (default) -- landmark-file points are in the upright
  frame facebench decodes (EXIF orientation applied); ``stored`` -- they were measured on the stored pixels
  (tools that ignore EXIF) and are mapped by :func:`facebench.extraction.images.stored_to_upright`.
- Detection: the detector of :mod:`facebench.extraction.detection` on the upright pixels; with several faces the
  ``largest`` rule picks one. Results are cached per image list under a key of the detector's description
  (library, landmarker sha256, settings) and the sha256 of every image file, in chunks, so an interrupted
  run resumes.
- Failure to enrol (no face found), policy ``--on-no-face``:
  ``error`` (default): stop, listing the files; ``center-crop``: the ArcFace template is placed on the
  centre square of the upright image (:func:`centre_crop_landmarks`, the crop rule of
  :func:`facebench.extraction.images.to_arcface_crop`); ``skip``: the image takes part in no comparison (its feature
  row is NaN: pair benchmarks drop the pairs it is in, folder identification drops it from gallery and
  probes; other kinds refuse it). Every policy lists the files.
- Failure-to-enrol rate = image files with no face / image files sent to the detector (a file a pair list
  names twice counts once); files with several faces are listed apart (they are enrolled by the rule).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebench.extraction.cache import FeatureCache
from facebench.errors import FacebenchError
from facebench.registry import Registry
from facebench.atomic import sha256_file
from facebench.extraction.images import ARCFACE_SIZE, ARCFACE_TEMPLATE, ImageList, read_header, read_image, stored_to_upright

ON_NO_FACE: Registry[str] = Registry("no-face policy", [
    ("error", "stop, listing the files"),
    ("center-crop", "the ArcFace template on the centre square of the upright image"),
    ("skip", "the image takes part in no comparison"),
])
"""``--on-no-face`` -> what happens to an image with no face (module docstring)."""
LANDMARK_FRAMES: Registry[str] = Registry("landmark frame", [
    ("upright", "the upright (EXIF-rotated) frame facebench decodes"),
    ("stored", "the stored pixels (tools that ignore EXIF)"),
])
"""``--landmark-frame`` -> the frame landmark-file points are measured in."""
ROW = 16
"""Cached detection row per image: n_faces, score, box (4), landmarks (10); NaN when not detected."""
DETECT_CHUNK = 64
MAX_LISTED = 50


@dataclass(frozen=True)
class EnrolOptions:
    """How raw images are enrolled: detector name, no-face policy, landmark-file frame, cache, progress."""

    detector: str = "dlib-hog"
    on_no_face: str = "error"
    landmark_frame: str = "upright"
    cache_root: Path | None = None
    progress: bool = False
    workers: int = 0

    def __post_init__(self) -> None:
        ON_NO_FACE.check(self.on_no_face, "--on-no-face")
        LANDMARK_FRAMES.check(self.landmark_frame, "--landmark-frame")


@dataclass
class EnrolReport:
    """Failure to enrol of one image list: what was detected, what failed, under which policy."""

    n_images: int
    detected: int = 0
    no_face: list[str] = field(default_factory=list)
    several_faces: list[str] = field(default_factory=list)
    reoriented: int = 0
    policy: str = "error"
    detector: dict[str, Any] | None = None

    @property
    def rate(self) -> float | None:
        """Failure-to-enrol rate: no-face images / images sent to the detector (None when none was)."""
        return len(self.no_face) / self.detected if self.detected else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.n_images,
            "detected": self.detected,
            "failure_to_enrol_rate": self.rate,
            "no_face": len(self.no_face),
            "several_faces": len(self.several_faces),
            "no_face_files": self.no_face[:MAX_LISTED],
            "several_faces_files": self.several_faces[:MAX_LISTED],
            "on_no_face": self.policy,
            "several_faces_rule": "largest (largest box area; ties -> nearest the image centre)",
            "landmarks_reoriented_from_stored": self.reoriented,
            "detector": self.detector,
        }


@dataclass
class Enrolment:
    """The image list ready to align, which rows did not enrol (``skip``) and the report."""

    images: ImageList
    unenrolled: np.ndarray
    report: EnrolReport
    rows: np.ndarray | None = None


def centre_crop_landmarks(width: int, height: int) -> np.ndarray:
    """The ArcFace template placed on the centre crop of a ``width`` x ``height`` image, as
    :func:`facebench.extraction.images.to_arcface_crop` cuts it: short side scaled to 112 (rounded sizes), centre
    112x112 crop; a chip pixel ``u`` maps back to ``(u + offset + 0.5) * side / resized - 0.5``."""
    scale = ARCFACE_SIZE / min(width, height)
    nh, nw = max(ARCFACE_SIZE, round(height * scale)), max(ARCFACE_SIZE, round(width * scale))
    top, left = (nh - ARCFACE_SIZE) // 2, (nw - ARCFACE_SIZE) // 2
    x = (ARCFACE_TEMPLATE[:, 0] + left + 0.5) * (width / nw) - 0.5
    y = (ARCFACE_TEMPLATE[:, 1] + top + 0.5) * (height / nh) - 0.5
    return np.stack([x, y], axis=1)


def detection_row(detections: list[Any], width: int, height: int) -> np.ndarray:
    """The cached row of one image from its detections (module rule ``ROW``; the ``largest`` face kept)."""
    from facebench.extraction.detection import choose_face

    row = np.full(ROW, np.nan, dtype=np.float32)
    row[0] = len(detections)
    if detections:
        best = detections[choose_face(detections, width, height)]
        row[1] = best.score
        row[2:6] = best.box
        row[6:] = np.asarray(best.landmarks, dtype=np.float64).reshape(-1)
    return row


def files_digest(paths: list[str]) -> str:
    """sha256 over (path, sha256 of the file content) of every file, in order: the images' identity."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.encode("utf-8", "surrogateescape") + b"\0" + bytes.fromhex(sha256_file(p)))
    return digest.hexdigest()


def detect_block(detector: Any, paths: list[str]) -> np.ndarray:
    """Detection rows ``(len(paths), 1, ROW)`` of image files (a cache chunk)."""
    rows = []
    for path in paths:
        image = read_image(path)
        rows.append(detection_row(detector.detect(image), image.shape[1], image.shape[0]))
    return np.stack(rows)[:, None, :]


def detect_chunk(detector_name: str, paths: list[str]) -> np.ndarray:
    """:func:`detect_block` with a detector built in this process (a worker task)."""
    from facebench.extraction.detection import get_detector

    return detect_block(get_detector(detector_name), paths)


def detect_files(
    paths: list[str], detector: Any, cache_root: Path | None, progress: bool, label: str, workers: int = 0
) -> np.ndarray:
    """Detection rows ``(N, ROW)`` float32 of image files, through a resumable chunked cache when
    ``cache_root`` is given (key: the detector's description and the files' content). With ``workers`` > 0
    the chunks run in that many processes (each builds its own detector)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from facebench.progress import progress as counter

    n = len(paths)
    cache = None
    if cache_root is not None and n:
        fields = {"kind": "face detections", "detector": detector.describe(), "images": files_digest(paths)}
        cache = FeatureCache.open(Path(cache_root), fields, n, DETECT_CHUNK)
    n_chunks = (n + DETECT_CHUNK - 1) // DETECT_CHUNK
    pending = [c for c in range(n_chunks) if cache is None or not cache.has_chunk(c)]
    todo = sum(min(DETECT_CHUNK, n - c * DETECT_CHUNK) for c in pending)
    bar = counter(todo, f"{label}: detect", enabled=progress)
    blocks: dict[int, np.ndarray] = {}

    def keep(c: int, block: np.ndarray) -> None:
        if cache is not None:
            cache.write_chunk(c, block)
        blocks[c] = block
        bar.update(block.shape[0])

    chunk_paths = {c: paths[c * DETECT_CHUNK : (c + 1) * DETECT_CHUNK] for c in pending}
    if workers > 0 and len(pending) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(pending))) as pool:
            futures = {pool.submit(detect_chunk, detector.name, chunk_paths[c]): c for c in pending}
            for future in as_completed(futures):
                keep(futures[future], future.result())
    else:
        for c in pending:
            keep(c, detect_block(detector, chunk_paths[c]))
    bar.close()
    if not n:
        return np.zeros((0, ROW), dtype=np.float32)
    parts = [blocks[c] if c in blocks else cache.read_chunk(c) for c in range(n_chunks)]  # type: ignore[union-attr]
    return np.concatenate(parts)[:, 0, :].astype(np.float32)


def enrol(images: ImageList, options: EnrolOptions, label: str = "images") -> Enrolment:
    """Landmarks for every image that needs them (module rules); the policy applied and reported."""
    n = len(images)
    report = EnrolReport(n_images=n, policy=options.on_no_face)
    unenrolled = np.zeros(n, dtype=bool)
    if images.paths is None or images.crops:
        return Enrolment(images, unenrolled, report)
    paths = list(images.paths)
    landmarks = (
        np.array(images.landmarks, dtype=np.float64, copy=True)
        if images.landmarks is not None
        else np.full((n, 5, 2), np.nan, dtype=np.float64)
    )
    given = np.isfinite(landmarks).all(axis=(1, 2))
    headers = {}
    if options.landmark_frame == "stored":
        for i in np.flatnonzero(given):
            h = headers[i] = read_header(paths[i])
            if h.orientation != 1:
                landmarks[i] = stored_to_upright(landmarks[i], h.orientation, h.width, h.height)
                report.reoriented += 1
    need = []
    for i in np.flatnonzero(~given):
        h = headers.get(i) or read_header(paths[i])
        if h.upright_size != (ARCFACE_SIZE, ARCFACE_SIZE):
            need.append(int(i))
    if not need:
        kept = landmarks if images.landmarks is not None else None
        return Enrolment(dataclasses.replace(images, landmarks=kept), unenrolled, report)
    from facebench.extraction.detection import get_detector

    detector = get_detector(options.detector)
    report.detector = detector.describe()
    unique = list(dict.fromkeys(paths[i] for i in need))  # pair lists repeat images: detect each file once
    rows_u = detect_files(unique, detector, options.cache_root, options.progress, label, options.workers)
    found = dict(zip(unique, rows_u))
    report.detected = len(unique)
    for path, row in found.items():
        if row[0] == 0:
            report.no_face.append(path)
        elif row[0] > 1:
            report.several_faces.append(path)
    rows = np.stack([found[paths[i]] for i in need])
    for i, row in zip(need, rows):
        if row[0] >= 1:
            landmarks[i] = row[6:].reshape(5, 2)
            continue
        width, height = read_header(paths[i]).upright_size
        landmarks[i] = centre_crop_landmarks(width, height)  # skip: extracted, then its row is set to NaN
        unenrolled[i] = options.on_no_face == "skip"
    if report.no_face and options.on_no_face == "error":
        listed = ", ".join(report.no_face[:10]) + (" ..." if len(report.no_face) > 10 else "")
        raise FacebenchError(
            f"{images.origin}: no face found in {len(report.no_face)} of {report.detected} images ({listed}); "
            "choose --on-no-face skip or center-crop, or give a landmark file"
        )
    provenance = json.dumps({**report.detector, "on_no_face": options.on_no_face}, sort_keys=True)
    ready = dataclasses.replace(images, landmarks=landmarks, alignment=provenance)
    full = np.full((n, ROW), np.nan, dtype=np.float32)
    full[need] = rows
    return Enrolment(ready, unenrolled, report, full)
