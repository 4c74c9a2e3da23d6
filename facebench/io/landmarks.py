"""5-point landmark files for raw benchmark images.

Format: one image per line, 11 whitespace-separated columns ``path x1 y1 x2 y2 x3 y3 x4 y4 x5 y5``: the left
eye, right eye, nose, left mouth corner and right mouth corner as seen in the image, in pixels of the original
image. ``path`` is relative to the image root of the benchmark (e.g. ``Abel_Pacheco/Abel_Pacheco_0001.jpg`` for
LFW) or absolute; paths may not contain whitespace. Blank lines are ignored; a path may appear only once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from facebench.errors import FacebenchError, where
from facebench.io.textlines import expect_columns, iter_fields, parse_float


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
