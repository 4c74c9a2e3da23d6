"""5-point landmark files for raw benchmark images.

Format: one image per line, 11 whitespace-separated columns ``path x1 y1 x2 y2 x3 y3 x4 y4 x5 y5``: the left
eye, right eye, nose, left mouth corner and right mouth corner as seen in the image, in pixels of the original
image. ``path`` is relative to the image root of the benchmark (e.g. ``Abel_Pacheco/Abel_Pacheco_0001.jpg`` for
LFW) or absolute; paths may not contain whitespace. Blank lines are ignored; a path may appear only once.

Plausible landmarks (:func:`check_landmarks`, applied when an image is aligned, so errors name the image):
all ten numbers finite; the five points span at least
``MIN_SPAN`` pixels; not collinear (the smaller singular value of the centred points is at least
``MIN_THICKNESS`` of the larger: a similarity fitted on a line is arbitrary across it); and, where the image
size is known, every point within the image enlarged by ``MARGIN`` of its width and height on each side.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from facebench.errors import FacebenchError, where
from facebench.io.textlines import expect_columns, iter_fields, parse_float


#: The five points must span at least this many pixels (largest distance between two of them).
MIN_SPAN = 2.0
#: Smallest ratio of the centred points' singular values (0: all on one line).
MIN_THICKNESS = 0.02
#: How far (as a fraction of the image's width/height) a point may lie outside the image.
MARGIN = 0.25


def landmark_problem(points: np.ndarray, image_size: tuple[int, int] | None = None) -> str | None:
    """Why ``points`` ((5, 2) pixels) are not usable landmarks (module rule), or None when they are.
    ``image_size`` is ``(height, width)``."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (5, 2):
        return f"expected 5 (x, y) points, got shape {points.shape}"
    if not np.isfinite(points).all():
        return "landmarks contain NaN or infinite values"
    centred = points - points.mean(axis=0)
    span = float(np.max(np.linalg.norm(points[:, None] - points[None], axis=-1)))
    if span < MIN_SPAN:
        return f"degenerate landmarks: the five points span {span:.3g} pixels (at least {MIN_SPAN:g} needed)"
    singular = np.linalg.svd(centred, compute_uv=False)
    if singular[1] < MIN_THICKNESS * singular[0]:
        return "degenerate landmarks: the five points are collinear"
    if image_size is not None:
        h, w = image_size
        low = np.array([-MARGIN * w, -MARGIN * h])
        high = np.array([(1 + MARGIN) * w, (1 + MARGIN) * h])
        outside = np.flatnonzero(((points < low) | (points > high)).any(axis=1))
        if outside.size:
            x, y = points[outside[0]]
            return f"landmark {outside[0] + 1} ({x:g}, {y:g}) lies off the {w}x{h} image"
    return None


def check_landmarks(points: np.ndarray, origin: str, image_size: tuple[int, int] | None = None) -> None:
    """Raise an error naming ``origin`` (the image, or file and line) when :func:`landmark_problem` finds one."""
    problem = landmark_problem(points, image_size)
    if problem:
        raise FacebenchError(f"{origin}: {problem}")


def read_landmarks(landmark_file: str | Path, image_root: str | Path) -> dict[str, np.ndarray]:
    """Read a landmark file into ``{absolute image path: (5, 2) float64}`` (relative paths joined to
    ``image_root``). A wrong column count, a non-number or a repeated path is an error naming file and line."""
    landmark_file = Path(landmark_file)
    out: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    for line, fields in iter_fields(landmark_file):
        expect_columns(landmark_file, line, fields, 11, "path x1 y1 ... x5 y5")
        key = os.path.abspath(os.path.join(image_root, fields[0]))
        if key in out:
            raise FacebenchError(f"{where(landmark_file, line)}: {fields[0]} repeats line {first_line[key]}")
        values = [
            parse_float(landmark_file, line, text, f"{'xy'[k % 2]}{k // 2 + 1}") for k, text in enumerate(fields[1:])
        ]
        out[key] = np.asarray(values, dtype=np.float64).reshape(5, 2)
        first_line[key] = line
    if not out:
        raise FacebenchError(f"{landmark_file}: no landmarks found")
    return out


def landmark_array(paths: Sequence[str], landmarks: Mapping[str, np.ndarray], origin: str) -> np.ndarray:
    """``(N, 5, 2)`` landmarks for ``paths`` (absolute), NaN rows for images the mapping does not list.

    When the mapping lists none of the images, the landmark file was made for another image root: that is an
    error showing one key of each side, since silently using no landmarks would skip alignment.
    """
    out = np.full((len(paths), 5, 2), np.nan, dtype=np.float64)
    found = 0
    for i, path in enumerate(paths):
        points = landmarks.get(path)
        if points is not None:
            out[i] = points
            found += 1
    if paths and landmarks and found == 0:
        example = next(iter(landmarks))
        raise FacebenchError(
            f"{origin}: the landmark file lists none of its {len(set(paths))} images (an image is {paths[0]}, a "
            f"landmark entry is {example}): give paths relative to the image root"
        )
    return out


def format_landmarks(entries: Mapping[str, np.ndarray]) -> str:
    """Landmark-file text (module format) of ``{relative path: (5, 2)}``, in the mapping's order, 4 decimals;
    a path with whitespace cannot be written (the format splits on it) and is an error."""
    lines = []
    for path, points in entries.items():
        if not path or any(c.isspace() for c in path):
            raise FacebenchError(f"{path!r}: a landmark-file path may not be empty or contain whitespace")
        values = np.asarray(points, dtype=np.float64).reshape(-1)
        if values.shape != (10,) or not np.isfinite(values).all():
            raise FacebenchError(f"{path}: need 5 finite (x, y) points, got {values.tolist()}")
        lines.append(path + " " + " ".join(f"{v:.4f}" for v in values) + "\n")
    return "".join(lines)
