"""Where dlib's ``get_face_chip`` puts a face: the mean-face template of its 150x150 chip (numpy only)."""

from __future__ import annotations

import numpy as np

from facebench.extraction.images import ChipGeometry

# dlib's mean face shape (points 17..67 of the 68-point markup, unit square), from get_face_chip_details.
_MEAN_FACE_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)  # fmt: skip
_MEAN_FACE_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)  # fmt: skip
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25


def mean_face_point(index: int) -> tuple[float, float]:
    """Point ``index`` (17..67, 68-point markup) of dlib's mean face, in the unit square."""
    if not 17 <= index <= 67:
        raise ValueError(f"dlib's mean face covers points 17..67, got {index}")
    return _MEAN_FACE_X[index - 17], _MEAN_FACE_Y[index - 17]


def dlib_chip(size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING) -> ChipGeometry:
    """Where the 5 ArcFace-convention landmarks land in dlib's ``get_face_chip(size, padding)`` chip.

    Rule: the landmarks are taken from dlib's mean face (68-point markup): eye centres = mean of points
    36-41 (left in the image) and 42-47 (right), nose tip = 30, mouth corners = 48 and 54. dlib places a
    mean-face point ``m`` at ``(padding + m) / (1 + 2 padding) * size`` and ``extract_image_chip`` maps the
    chip extent onto pixels ``0 .. size-1``, so the pixel position is ``(padding + m) / (1 + 2 padding) *
    (size - 1)``. The alignment is fitted on the two eye centres only (``fit=(0, 1)``): below the eyes
    dlib's template is not the ArcFace one, so an ArcFace 112x112 crop maps onto the dlib chip by the
    similarity that carries eye centre onto eye centre.
    """
    unit = np.array(
        [
            np.mean([mean_face_point(i) for i in range(36, 42)], axis=0),
            np.mean([mean_face_point(i) for i in range(42, 48)], axis=0),
            mean_face_point(30),
            mean_face_point(48),
            mean_face_point(54),
        ],
        dtype=np.float64,
    )
    template = (padding + unit) / (1.0 + 2.0 * padding) * (size - 1)
    return ChipGeometry("dlib", int(size), template, fit=(0, 1))
