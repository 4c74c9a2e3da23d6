"""The low-resolution alignment recipe for native tiny faces (TinyFace, QMUL-SurvFace; PROTOCOLS 7.4).

Alignment decides these benchmarks (TinyFace rank-1 46 vs 72 is reported from alignment alone), and a
detector tuned to normal photos misses most 20-pixel faces. The recipe, as AdaFace documents it for its
TinyFace numbers, makes the face look like a normal photo before detection:

1. square: pad the shorter side with black to the longer side, and add a black margin of ``pad`` times
   the side on every edge (AdaFace's ``pad_0.1``);
2. upscale: resize the padded square to ``size`` x ``size`` (bicubic);
3. detect the 5 landmarks on that image with a :class:`LandmarkDetector`;
4. map them back to the original image (the inverse of steps 1-2, a shift and a scale), where the usual
   5-point alignment warps the ArcFace chip straight from the original pixels.

An image where the detector finds no face is a failure to enrol: its landmarks are NaN (it is then
resized to the chip without alignment, as a pack crop is) and its path is listed; the rate is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

DEFAULT_PAD = 0.1
DEFAULT_SIZE = 224


class LandmarkDetector(Protocol):
    """Finds the most prominent face of an RGB uint8 image: its 5 landmarks ``(5, 2)`` (left eye, right
    eye, nose, left and right mouth corner, in pixels) or None when it finds no face."""

    def __call__(self, image: np.ndarray) -> np.ndarray | None: ...


@dataclass(frozen=True)
class Squared:
    """An image made square, padded and upscaled; ``corner`` is where the original's top-left pixel sits
    in the padded square (x, y), ``scale`` the upscaling factor."""

    image: np.ndarray
    scale: float
    corner: np.ndarray

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates in the upscaled square mapped back to the original image (pixel centres as
        ``cv2.resize`` places them: ``p = (q + 0.5) * scale - 0.5``)."""
        return (np.asarray(points, dtype=np.float64) + 0.5) / self.scale - 0.5 - self.corner


def square_and_upscale(image: np.ndarray, pad: float = DEFAULT_PAD, size: int = DEFAULT_SIZE) -> Squared:
    """Steps 1-2 of the recipe."""
    import cv2

    h, w = image.shape[:2]
    side = max(h, w)
    margin = int(round(pad * side))
    full = side + 2 * margin
    canvas = np.zeros((full, full) + image.shape[2:], dtype=image.dtype)
    top, left = margin + (side - h) // 2, margin + (side - w) // 2
    canvas[top : top + h, left : left + w] = image
    scale = size / full
    resized = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_CUBIC)
    return Squared(resized, scale, np.array([left, top], dtype=np.float64))


def lowres_landmarks(
    paths: Sequence[str],
    detector: LandmarkDetector,
    read: Callable[[str], np.ndarray],
    pad: float = DEFAULT_PAD,
    size: int = DEFAULT_SIZE,
) -> tuple[np.ndarray, list[str]]:
    """``(landmarks (N, 5, 2) in original pixels, NaN for failures; the failed paths)`` (module rule)."""
    landmarks = np.full((len(paths), 5, 2), np.nan)
    failed: list[str] = []
    for i, path in enumerate(paths):
        squared = square_and_upscale(read(path), pad, size)
        points = detector(squared.image)
        if points is None:
            failed.append(path)
            continue
        landmarks[i] = squared.to_original(np.asarray(points, dtype=np.float64).reshape(5, 2))
    return landmarks, failed


def builtin_detector(name: str = "dlib-hog") -> LandmarkDetector | None:
    """facebench's built-in face detector (`facebench.extraction.detection`, extra ``facebench[detect]``) as a
    :class:`LandmarkDetector` (the face kept by its several-faces rule), or None when it is not installed."""
    from facebench.extraction.detection import choose_face, get_detector
    from facebench.errors import FacebenchError

    try:
        detector = get_detector(name)
    except FacebenchError:  # dlib or its model files are not installed
        return None

    def landmarks(image: np.ndarray) -> np.ndarray | None:
        found = detector.detect(image)
        if not found:
            return None
        return found[choose_face(found, image.shape[1], image.shape[0])].landmarks

    return landmarks


def prepare_alignment(
    files: Mapping[str, Path],
    root: Path,
    parts: Mapping[str, Sequence[str]],
    warnings: list[str],
    counts: dict[str, Any],
    failures_file: Path,
) -> tuple[dict[str, np.ndarray | None], str]:
    """Landmarks for each part's images and the alignment rule, for a low-resolution benchmark: the landmark
    file of role ``landmarks`` when given (paths relative to ``root``); else the recipe with the built-in
    detector, writing the failures to enrol to ``failures_file`` and their count and rate into ``counts``;
    else none (images resized to the chip), with a warning."""
    from facebench.atomic import write_text
    from facebench.extraction.images import read_image
    from facebench.io.landmarks import landmark_array, read_landmarks

    if "landmarks" in files:
        lm = read_landmarks(files["landmarks"], root)
        rule = f"5-point landmarks from {Path(files['landmarks']).name}"
        return {k: landmark_array(list(p), lm, str(files["landmarks"])) for k, p in parts.items()}, rule
    detector = builtin_detector()
    if detector is None:
        warnings.append(
            "no face detector in this installation and no landmark file: images are resized to the chip without "
            "alignment (published numbers use the low-resolution recipe)"
        )
        return {k: None for k in parts}, "none: images resized to the chip (no detector, no landmark file)"
    landmarks: dict[str, np.ndarray | None] = {}
    failed: list[str] = []
    for name, paths in parts.items():
        landmarks[name], lost = lowres_landmarks(paths, detector, read_image)
        failed += lost
    total = sum(len(p) for p in parts.values())
    counts.update(failed_to_enrol=len(failed), failure_to_enrol_rate=len(failed) / max(total, 1))
    write_text(failures_file, "".join(f"{p}\n" for p in failed))
    if failed:
        warnings.append(f"{len(failed)} of {total} images failed to enrol (no face found): resized unaligned; list in "
                        f"{failures_file}")
    return landmarks, (
        f"low-resolution recipe (square, pad {DEFAULT_PAD}, upscale to {DEFAULT_SIZE}, built-in detector, "
        "5-point alignment)"
    )
