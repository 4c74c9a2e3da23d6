"""Procedural cartoon faces with exact 5-point landmarks: the project's own demo images (nothing downloaded).

``render(identity, nuisance, size)`` draws one loose ``size`` x ``size`` RGB shot of a :class:`FaceIdentity`
under a :class:`Nuisance` and returns it with its five landmarks in the ArcFace order (left eye centre,
right eye centre, nose tip, left mouth corner, right mouth corner, as seen in the image), so that
``facebench.extraction.images.align(image, landmarks, arcface_chip())`` gives a well-aligned 112x112 crop;
:func:`render_aligned` does exactly that.

Drawing rule: every shape is a polygon in the face frame (see :mod:`facebench.demo.params`) projected into
the image by one camera: features on the face get the depth ``z`` of a head ellipsoid (the nose more), are
turned by yaw and pitch and projected orthographically; the outline and the hair are silhouettes that keep
their width; then roll, scale and shift place the face in the image, where the 112 chip spans
``FACE_FILL`` of the side at scale 1. The landmarks are the same face-frame points through the same
camera, so they sit on the drawn eyes, nose and mouth under every pose. Polygons are filled with cv2's
anti-aliased rasteriser at 1/16 pixel precision; then come the optics (downscale, Gaussian blur, both cv2's
bit-exact 8-bit paths), the light (gamma table, contrast, brightness, colour cast, a directional ramp) and
sensor noise, in float32 element-wise arithmetic, rounded half up. Geometry is float64 element-wise numpy
and Python ``math``, rounded to the rasteriser's fixed point; nothing reads global random state. So one
``(identity, nuisance, size)`` gives the same bytes every time (checked with numpy's and OpenCV's SIMD
dispatch switched off: identical bytes).

How a render runs: the drawing functions record their polygons on a :class:`_Sketch` in drawing order,
points still in the face frame; the sketch then maps all points in one camera call, rounds them in one
call and fills or strokes the polygons in their recorded order, one cv2 call each. Every step of the
mapping and the rounding is element-wise, so each point gets the same float64 operations on the same
operands as when each polygon is mapped on its own, and the pixels are the same bytes
(``tests/test_demo_render_identity.py`` compares them with the digests of what the renderer before this
scheme, commit 843f183, drew; ``bench/bench_render.py`` measures both).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from facebench.demo.params import (
    BEARDS,
    GLASSES,
    HAIR_STYLES,
    HAIRLINES,
    HEAD_CENTRE,
    NOSE_STYLES,
    OCCLUDERS,
    FaceIdentity,
    Nuisance,
    _skin,
    identity_params,
    image_nuisance,
)
from facebench.demo.splits import SPLIT_CAPACITY, SPLIT_NAMES, split_identities, split_of, split_range
from facebench.extraction.images import ARCFACE_SIZE, ChipGeometry, align, arcface_chip

__all__ = [
    "DEFAULT_SIZE",
    "FACE_FILL",
    "FaceIdentity",
    "Nuisance",
    "PUPIL",
    "SCLERA",
    "SPLIT_CAPACITY",
    "SPLIT_NAMES",
    "identity_params",
    "image_nuisance",
    "landmarks",
    "render",
    "render_aligned",
    "split_identities",
    "split_of",
    "split_range",
]

DEFAULT_SIZE = 160
"""Default side of a raw render, pixels."""

FACE_FILL = 0.7
"""Fraction of the raw image side that the 112 ArcFace chip spans at ``Nuisance.scale == 1``."""

PUPIL = (16, 12, 12)
"""Colour of the pupils, drawn centred on the eye landmarks when the gaze is straight."""
SCLERA = (240, 238, 232)
"""Colour of the whites of the eyes."""

_SHIFT = 4
_ONE = float(1 << _SHIFT)
_AA = cv2.LINE_AA
_CHIP_CENTRE = ARCFACE_SIZE / 2.0
_HEAD_DY = HEAD_CENTRE[1] - _CHIP_CENTRE  # face-frame origin below the chip centre


def _ring(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.array([2.0 * math.pi * k / n for k in range(n)])
    c = np.array([math.cos(a) for a in t])
    s = np.array([math.sin(a) for a in t])
    c.flags.writeable = False
    s.flags.writeable = False
    return c, s


_RING48 = _ring(48)
_RING24 = _ring(24)
_RING16 = _ring(16)
_ARC = tuple(
    np.array([fn(math.pi * k / 24) for k in range(25)])
    for fn in (math.cos, lambda a: -math.sin(a), lambda a: abs(math.sin(7.0 * a)))
)  # the upper half circle (right, over the top, left) and the curls' bump profile
for _a in _ARC:
    _a.flags.writeable = False
_XS = np.linspace(-1.0, 1.0, 13)  # positions across a feature (eye, mouth, forehead line, nose ridge)
_XS_BULGE = 1.0 - _XS**2
_XS_ENV = np.sqrt(np.clip(_XS_BULGE, 0.0, 1.0))
_LIP_GAP = _XS_ENV**0.8
_CUPID_BOW = np.exp(-(((np.abs(_XS) - 0.28) / 0.16) ** 2))
_NOSE_RIDGE = 1.0 - 0.4 * np.abs(_XS)
_HAIR_XS = np.linspace(-0.97, 0.97, 17)  # positions along the hairline
_TEMPLES = np.abs(_HAIR_XS) ** 6  # the hairline's weight towards the temples
_HAIR_XS2 = _HAIR_XS**2
_WIDOWS_PEAK = np.clip(1.0 - np.abs(_HAIR_XS) / 0.3, 0.0, 1.0)
_RECESSION = np.exp(-(((np.abs(_HAIR_XS) - 0.55) / 0.2) ** 2))
_FRINGE = 2.0 * (np.arange(len(_HAIR_XS)) % 2)
for _a in (_XS, _XS_BULGE, _XS_ENV, _LIP_GAP, _CUPID_BOW, _NOSE_RIDGE, _HAIR_XS, _TEMPLES, _HAIR_XS2, _WIDOWS_PEAK,
           _RECESSION, _FRINGE):
    _a.flags.writeable = False
_T9 = np.linspace(0.0, 1.0, 9)
_T9.flags.writeable = False
_T6 = np.linspace(0.0, 1.0, 6)
_T6.flags.writeable = False


def _col(rgb, gain: float = 1.0) -> tuple[int, int, int]:
    """Each channel times ``gain``, rounded (Python's ``round``: half to even) and clipped to 0..255."""
    r, g, b = rgb
    r, g, b = round(r * gain), round(g * gain), round(b * gain)
    return (0 if r < 0 else 255 if r > 255 else int(r), 0 if g < 0 else 255 if g > 255 else int(g),
            0 if b < 0 else 255 if b > 255 else int(b))


def _mixc(a, b, t: float) -> tuple[int, int, int]:
    return _col([x + (y - x) * t for x, y in zip(a, b)])


def _fix(points: np.ndarray) -> np.ndarray:
    return np.rint(points * _ONE).astype(np.int32)


class _Camera:
    """Face frame -> image pixels for one render (see the module docstring). Every mapping is element-wise
    float64 arithmetic on the points, so a point's pixel does not depend on what else is mapped with it."""

    def __init__(self, face: FaceIdentity, nz: Nuisance, size: int) -> None:
        yaw, pitch, roll = (math.radians(a) for a in (nz.yaw, nz.pitch, nz.roll))
        self.cy, self.sy = math.cos(yaw), math.sin(yaw)
        self.cp, self.sp = math.cos(pitch), math.sin(pitch)
        self.ax = face.face_width * 1.04
        self.bz = 0.5 * (face.face_top + face.face_bottom) * 1.05
        self.cz = 0.78 * face.face_width
        kx, ky = self.cz / self.ax, self.cz / self.bz
        self.sil_x = math.sqrt(self.cy * self.cy + kx * kx * self.sy * self.sy)
        self.sil_y = math.sqrt(self.cp * self.cp + ky * ky * self.sp * self.sp)
        self.scale = FACE_FILL * size / ARCFACE_SIZE * nz.scale
        cr, sr = math.cos(roll), math.sin(roll)
        self.m = (self.scale * cr, -self.scale * sr, self.scale * sr, self.scale * cr)
        self.tx = size / 2.0 + nz.shift_x * size
        self.ty = size / 2.0 + nz.shift_y * size

    def depth(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Depth of the head ellipsoid's front at face-frame ``(u, v)``."""
        q = 1.0 - (u / self.ax) ** 2 - (v / self.bz) ** 2
        return self.cz * np.sqrt(np.clip(q, 0.0, 1.0))

    def _image(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        a, b, c, d = self.m
        y = y + _HEAD_DY
        col = a * x + b * y + self.tx
        out = np.empty(col.shape + (2,))
        out[..., 0] = col
        out[..., 1] = c * x + d * y + self.ty
        return out

    def project(self, kind: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Points ``(u, v)`` ``(n,)`` in image pixels ``(n, 2)``, each by the mapping its ``kind`` names:
        ``_SURFACE``: on the face surface, ``w`` in front of it (depth ``depth(u, v) + w``), then as ``_AT``;
        ``_AT``: at depth ``w``, turned by yaw then pitch; ``_SILHOUETTE``: outline points that keep the
        head's projected width, ``w`` shifting them with the turn; ``_BODY``: neck and shoulders, placed with
        the head but not turned; ``_PIXELS``: already in the image. Each mapping is computed for every point
        and the point's own picked, so a point's pixel does not depend on the others."""
        z = np.where(kind == _SURFACE, self.depth(u, v) + w, w)
        turned = kind <= _AT
        silhouette = kind == _SILHOUETTE
        x = np.where(turned, u * self.cy + z * self.sy, np.where(silhouette, u * self.sil_x + w * self.sy, u))
        z1 = z * self.cy - u * self.sy
        y = np.where(turned, v * self.cp - z1 * self.sp, np.where(silhouette, v * self.sil_y - w * self.sp, v))
        out = self._image(x, y)
        pixels = kind == _PIXELS
        if pixels.any():
            out[pixels, 0], out[pixels, 1] = u[pixels], v[pixels]
        return out

    def px(self, units: float) -> int:
        """A face-frame length as a whole line thickness in pixels (at least 1)."""
        return max(1, int(round(units * self.scale)))


_SURFACE, _AT, _SILHOUETTE, _BODY, _PIXELS = range(5)
"""The point kinds of :meth:`_Camera.project`."""


def _column(x, n: int) -> np.ndarray:
    """``x`` (a number or ``n`` values) as ``n`` float64 values."""
    a = np.asarray(x, np.float64)
    return a.ravel() if a.size == n else np.full(n, a)


class _Sketch:
    """The drawing steps of one render in order, their points not yet in the image.

    ``surface``, ``at``, ``silhouette``, ``body`` and ``pixels`` (the point kinds of
    :meth:`_Camera.project`) record points and return their rows; ``fill``, ``lines`` and ``dot`` (a filled
    16-gon: cv2's anti-aliased circles are ragged below a few pixels) record a step on rows recorded one
    after another. :meth:`draw` maps all points with one call of :meth:`_Camera.project`, computes the
    dots' corners from their mapped centres, rounds every point to the rasteriser's fixed point in one call
    and then runs the steps in their recorded order, one cv2 call each. The mapping and the rounding are
    element-wise, so each point gets the same float64 operations on the same operands as when each polygon
    is mapped and drawn on its own, and the image is the same to the byte."""

    def __init__(self, cam: _Camera) -> None:
        self.cam = cam
        self._u: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._w: list[float] = []  # lift, depth or silhouette shift of each record, when it is one number
        self._w_points: list[tuple[int, np.ndarray]] = []  # (first row, values) of records with one per point
        self._kinds: list[int] = []
        self._sizes: list[int] = []
        self._rows = 0
        self._dots: list[tuple[int, float]] = []  # (centre row, radius in pixels)
        self._steps: list[tuple[bool, int, int, tuple[int, int, int], int, bool]] = []

    def _record(self, kind: int, u, v, w) -> range:
        u = np.asarray(u, np.float64).ravel()
        n = u.size
        start = self._rows
        self._u.append(u)
        self._v.append(_column(v, n))
        if isinstance(w, np.ndarray) and w.ndim:
            if w.size != n:
                raise ValueError(f"{w.size} depths or lifts for {n} points")
            self._w_points.append((start, np.asarray(w, np.float64).ravel()))
            w = 0.0
        self._w.append(float(w))
        self._kinds.append(kind)
        self._sizes.append(n)
        self._rows += n
        return range(start, self._rows)

    def surface(self, u, v, lift=0.0) -> range:
        return self._record(_SURFACE, u, v, lift)

    def at(self, u, v, z) -> range:
        return self._record(_AT, u, v, z)

    def silhouette(self, u, v, z=0.0) -> range:
        return self._record(_SILHOUETTE, u, v, z)

    def body(self, u, v) -> range:
        return self._record(_BODY, u, v, 0.0)

    def pixels(self, points: np.ndarray) -> range:
        """Image points ``(..., 2)``, drawn as they are."""
        points = np.asarray(points, np.float64)
        return self._record(_PIXELS, points[..., 0], points[..., 1], 0.0)

    def fill(self, colour, *pieces: range) -> None:
        """Fill the polygon through the points of ``pieces`` (recorded one after another) with ``colour``."""
        self._steps.append((False, *_span(pieces), colour, -1, False))

    def lines(self, colour, thickness: int, *pieces: range, closed: bool = False) -> None:
        """Stroke the polyline through the points of ``pieces`` ``thickness`` pixels wide."""
        self._steps.append((False, *_span(pieces), colour, thickness, closed))

    def dot(self, centre: int, radius_px: float, colour) -> None:
        """A filled disc of ``max(0.5, radius_px)`` pixels around the point of row ``centre``."""
        k = len(self._dots)
        self._dots.append((centre, max(0.5, radius_px)))
        self._steps.append((True, 16 * k, 16 * k + 16, colour, -1, False))

    def project(self) -> np.ndarray:
        """Every recorded point in image pixels, ``(rows, 2)`` float64, then the dots' 16 corners each."""
        kind = np.repeat(np.array(self._kinds), self._sizes)
        w = np.repeat(np.array(self._w), self._sizes)
        for start, values in self._w_points:
            w[start : start + values.size] = values
        points = self.cam.project(kind, np.concatenate(self._u), np.concatenate(self._v), w)
        if self._dots:
            points = np.concatenate([points, np.empty((16 * len(self._dots), 2))])
            centres = points[[row for row, _ in self._dots]]
            radii = np.array([r for _, r in self._dots])[:, None]
            c, s = _RING16
            corners = points[self._rows :].reshape(-1, 16, 2)
            corners[..., 0] = centres[:, :1] + radii * c
            corners[..., 1] = centres[:, 1:] + radii * s
        return points

    def draw(self, img: np.ndarray) -> np.ndarray:
        """Run the steps on ``img`` in their recorded order; returns :meth:`project`'s points."""
        points = self.project()
        fixed = _fix(points)
        offset = (0, self._rows)
        for dot, start, stop, colour, thickness, closed in self._steps:
            poly = [fixed[offset[dot] + start : offset[dot] + stop]]
            if thickness < 0:
                cv2.fillPoly(img, poly, colour, _AA, _SHIFT)
            else:
                cv2.polylines(img, poly, closed, colour, thickness, _AA, _SHIFT)
        return points


def _span(pieces: tuple[range, ...]) -> tuple[int, int]:
    """First and end row of ``pieces`` recorded one after another."""
    if len(pieces) == 1:
        return pieces[0].start, pieces[0].stop
    for a, b in zip(pieces, pieces[1:]):
        if a.stop != b.start:
            raise ValueError("the pieces of one polygon must be recorded one after another")
    return pieces[0].start, pieces[-1].stop


class _OutlineRing(NamedTuple):
    """What an outline takes of ring cosines ``c`` and sines ``s`` (``s`` > 0 is the lower half)."""

    lower: np.ndarray  # s > 0
    below: np.ndarray  # clip(s, 0, 1)
    sign_c: np.ndarray
    abs_c: np.ndarray
    sign_s: np.ndarray
    abs_s: np.ndarray


def _outline_ring(c: np.ndarray, s: np.ndarray) -> _OutlineRing:
    ring = _OutlineRing(s > 0, np.clip(s, 0.0, 1.0), np.sign(c), np.abs(c), np.sign(s), np.abs(s))
    for a in ring:
        a.flags.writeable = False
    return ring


_FACE_RING = _outline_ring(*_RING48)
_HAIR_RING = _outline_ring(*_ARC[:2])
_JAW_RING = _outline_ring(*(a[_RING48[1] > 0.02] for a in _RING48))  # the lower half, for beards and masks


def _outline(f: FaceIdentity, ring: _OutlineRing, grow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Face outline points ``(u, v)`` on ``ring``: with ``e = 2 / (chin_square if lower else
    skull_square)``, ``u = (face_width + grow) sign(c) |c|^e (1 - jaw_taper clip(s, 0, 1)^jaw_power)``,
    ``v = (face_bottom or face_top, + grow) sign(s) |s|^e``."""
    n = np.where(ring.lower, f.chin_square, f.skull_square)
    e = 2.0 / n
    taper = 1.0 - f.jaw_taper * ring.below**f.jaw_power
    u = (f.face_width + grow) * ring.sign_c * ring.abs_c**e * taper
    v = np.where(ring.lower, f.face_bottom + grow, f.face_top + grow) * ring.sign_s * ring.abs_s**e
    return u, v


def _outline_shift(f: FaceIdentity, v: np.ndarray) -> np.ndarray:
    """How far outline points at height ``v`` move with the turn (the jaw's depth): ``0.3 x 0.78 face_width
    clip(v / face_bottom, 0, 1)^3``."""
    return 0.3 * 0.78 * f.face_width * np.clip(v / f.face_bottom, 0.0, 1.0) ** 3


def _unit_superellipse(ring, n: float) -> tuple[np.ndarray, ...]:
    """``sign(c), |c|^(2/n), sign(s), |s|^(2/n)`` of a ring's cosines ``c`` and sines ``s``."""
    c, s = ring
    e = 2.0 / n
    parts = (np.sign(c), np.abs(c) ** e, np.sign(s), np.abs(s) ** e)
    for a in parts:
        a.flags.writeable = False
    return parts


_ROUND16 = _unit_superellipse(_RING16, 2.0)  # ears, blush, nostrils
_ROUND24 = _unit_superellipse(_RING24, 2.0)  # bun, round glasses
_SQUARE24 = _unit_superellipse(_RING24, 5.0)  # square glasses
_EAR_FOLDS = {1.0: tuple(a[[13, 14, 15, 0, 1, 2, 3]] for a in _ROUND16), -1.0: tuple(a[5:12] for a in _ROUND16)}
"""The points of the inner ear's ring its fold is drawn through, on each side."""


def _superellipse(rx: float, ry: float, unit) -> tuple[np.ndarray, np.ndarray]:
    """A superellipse's points relative to its centre, ``(rx sign(c) |c|^(2/n), ry sign(s) |s|^(2/n))`` over
    the points of ``unit`` (see :func:`_unit_superellipse`; products left to right): the shape centred on
    ``(cx, cy)`` is ``(cx + du, cy + dv)``."""
    sc, pc, ss, ps = unit
    return rx * sc * pc, ry * ss * ps


def _hairline(f: FaceIdentity) -> np.ndarray:
    """The hairline's height at the positions ``xn`` of ``_HAIR_XS``."""
    p = f.hairline_param
    kind = HAIRLINES[f.hairline]
    base = f.hairline_v
    xn, xn2 = _HAIR_XS, _HAIR_XS2
    if kind == "arc":
        h = base + 8.0 * (1.0 + 0.5 * p) * xn2
    elif kind == "side":
        h = base + 6.0 * xn2 + 7.0 * p * xn
    elif kind == "peak":
        h = base + 7.0 * xn2 + (4.0 + 3.0 * p) * _WIDOWS_PEAK
    elif kind == "receding":
        h = base + 6.0 * xn2 - (5.0 + 3.0 * p) * _RECESSION
    else:  # bangs: a low fringe with a ragged edge
        h = base + 12.0 + 3.0 * p + _FRINGE
    brow_top = f.eye_v - f.brow_gap - 0.5 * f.brow_thickness - 2.0
    return np.clip(h, -f.face_top + 5.0, brow_top)


_BOX_CORNERS = np.array([0, 1, 2, 1, 2, 3, 0, 3])


def _draw_clutter(sk: _Sketch, rng: np.random.Generator, count: int, size: int) -> None:
    for _ in range(count):
        kind = int(rng.integers(3))
        colour = _col(rng.uniform(0, 255, 3).tolist())
        p = rng.uniform(-0.1, 1.1, 4) * size
        if kind == 0:
            sk.fill(colour, sk.pixels(p[_BOX_CORNERS].reshape(4, 2)))  # (p0, p1), (p2, p1), (p2, p3), (p0, p3)
        elif kind == 1:
            sk.dot(sk.pixels(p[:2])[0], float(rng.uniform(0.03, 0.2)) * size, colour)
        else:
            sk.lines(colour, max(1, int(rng.uniform(0.01, 0.05) * size)), sk.pixels(p.reshape(2, 2)))


_SHOULDERS = tuple(a[_RING24[1] <= 0.05] for a in _RING24)  # the upper part of a ring: the shoulders' line
for _a in (*_SHOULDERS, _BOX_CORNERS, *_EAR_FOLDS[1.0], *_EAR_FOLDS[-1.0]):
    _a.flags.writeable = False


def _draw_body(sk: _Sketch, f: FaceIdentity, nz: Nuisance) -> None:
    w, hb = f.face_width, f.face_bottom
    skin = f.skin
    nw = 0.47 * w
    neck_u = np.array([-nw, nw, 1.12 * nw, -1.12 * nw])
    neck_v = np.array([0.35 * hb, 0.35 * hb, hb + 45.0, hb + 45.0])
    sk.fill(_col(skin, 0.84), sk.silhouette(neck_u, neck_v))
    c, s = _SHOULDERS
    u = 2.3 * w * c
    v = hb + 30.0 + 0.32 * w + 26.0 * s
    u = np.concatenate([u, [-2.3 * w, 2.3 * w]])
    v = np.concatenate([v, [hb + 200.0, hb + 200.0]])
    sk.fill(_col(nz.shirt), sk.body(u, v))
    collar_u = np.array([-0.9 * nw, 0.0, 0.9 * nw])
    collar_v = np.array([hb + 30.0 + 0.32 * w - 20.0, hb + 30.0 + 0.32 * w - 6.0, hb + 30.0 + 0.32 * w - 20.0])
    sk.fill(_col(skin, 0.84), sk.body(collar_u, collar_v))


def _hair_outer(f: FaceIdentity, grow: float, side_v: float):
    """Hair's outer edge from the right side over the top to the left side, down to ``side_v``."""
    u, v = _outline(f, _HAIR_RING, grow)
    v = v - 0.3 * grow
    if HAIR_STYLES[f.hair_style] == "curly":
        bump = 0.22 * f.hair_volume * _ARC[2]
        r = np.hypot(u, v)
        u, v = u * (1 + bump / r), v * (1 + bump / r)
    u = np.concatenate([[f.face_width + grow], u, [-(f.face_width + grow)]])
    v = np.concatenate([[side_v], v, [side_v]])
    return u, v


def _draw_back_hair(sk: _Sketch, f: FaceIdentity) -> None:
    style = HAIR_STYLES[f.hair_style]
    colour = _col(f.hair, 0.8)
    if style == "bun":
        du, dv = _superellipse(10.0, 8.5, _ROUND24)
        sk.fill(colour, sk.silhouette(0.0 + du, (-f.face_top - 6.0) + dv, -4.0))
    if style not in ("medium", "long", "curly"):
        return
    grow = f.hair_volume + 1.0
    length = f.hair_length if style != "medium" else min(f.hair_length, 30.0)
    u, v = _hair_outer(f, grow, length)
    bottom_u = np.array([-(f.face_width + grow) * 0.8, 0.0, (f.face_width + grow) * 0.8])
    bottom_v = np.array([length + 5.0, length + 8.0, length + 5.0])
    sk.fill(colour, sk.silhouette(np.concatenate([u, bottom_u]), np.concatenate([v, bottom_v]), -4.0))


def _draw_ears(sk: _Sketch, f: FaceIdentity) -> None:
    v0 = f.eye_v + 6.0 + f.ear_v
    du, dv = _superellipse(f.ear_width, f.ear_height, _ROUND16)
    ev = v0 + dv
    z = -0.12 * sk.cam.cz
    for side in (-1.0, 1.0):
        u0 = side * (f.face_width - 1.0 + 0.5 * f.ear_out)
        sk.fill(_col(f.skin, 0.93), sk.at(u0 + du, ev, z))
        fu, fv = _superellipse(0.5 * f.ear_width, 0.6 * f.ear_height, _EAR_FOLDS[side])
        sk.lines(_col(f.skin, 0.72), 1, sk.at((u0 + side * 1.0) + fu, v0 + fv, z))


def _draw_marks(sk: _Sketch, f: FaceIdentity) -> None:
    cam = sk.cam
    if f.blush > 0:
        colour = _mixc(f.skin, (236, 104, 112), 0.32 * f.blush)
        du, dv = _superellipse(6.5, 3.8, _ROUND16)
        bv = (f.eye_v + 15.0) + dv
        for side in (-1.0, 1.0):
            sk.fill(colour, sk.surface(side * (0.5 * f.eye_spacing + 1.5) + du, bv))
    for k in range(f.forehead_lines):
        xs = _XS * 0.42 * f.face_width
        v = f.eye_v - f.brow_gap - 7.0 - 3.4 * k - 1.5 * _XS_BULGE
        sk.lines(_col(f.skin, 0.8), 1, sk.surface(xs, v))
    if f.freckles:
        pts = np.asarray(f.freckles, dtype=np.float64)
        rows = sk.surface(pts[:, 0], pts[:, 1])
        colour = _mixc(f.skin, (120, 70, 40), 0.45)
        r = 0.7 * cam.scale
        for row in rows:
            sk.dot(row, r, colour)
    for mu, mv, mr in f.moles:
        sk.dot(sk.surface(mu, mv)[0], mr * cam.scale, (74, 48, 38))


def _eye_lids(f: FaceIdentity, nz: Nuisance):
    hu = f.eye_upper * f.eye_width * (1.0 - 0.65 * nz.squint)
    hl = f.eye_lower * f.eye_width * (1.0 - 0.45 * nz.squint)
    return hu, hl


class _Eye(NamedTuple):
    """One eye in its own frame, the same for both eyes: the points ``(x, y)`` of the white (26), the iris
    (24), the pupil (24), the highlight (1, when it shows) and the lid (13), and what drawing them needs."""

    x: np.ndarray
    y: np.ndarray
    iris: tuple[int, int, int]
    highlight: bool
    r_iris: float
    hu: float


def _eye_shape(f: FaceIdentity, nz: Nuisance) -> _Eye:
    ew, p = f.eye_width, f.eye_lid_power
    hu, hl = _eye_lids(f, nz)
    prof = _XS_BULGE**p
    x = _XS * ew
    up, lo = -hu * prof, hl * prof
    xs, ys = [x, x[::-1]], [up, lo[::-1]]  # the white
    gx, gy = nz.gaze_x * 0.5 * ew, nz.gaze_y * hu
    c, s = _RING24
    for radius in (f.iris_radius * ew, 0.5 * f.iris_radius * ew):  # iris, pupil
        px = gx + radius * c
        q = np.clip(1.0 - (px / ew) ** 2, 0.0, 1.0) ** p  # powers over the same 24 points as ever
        xs.append(px)
        ys.append(np.clip(gy + radius * s, -hu * q, hl * q))
    r_iris = f.iris_radius * ew
    hx, hy = gx - 0.5 * r_iris, gy - 0.5 * r_iris
    highlight = bool(hy - 0.17 * r_iris > -hu * (1.0 - (hx / ew) ** 2) ** p)
    if highlight:
        xs.append(np.array([hx]))
        ys.append(np.array([hy]))
    xs.append(x)  # the lid
    ys.append(up)
    return _Eye(np.concatenate(xs), np.concatenate(ys), _col(f.iris), highlight, r_iris, hu)


def _draw_eye(sk: _Sketch, f: FaceIdentity, eye: _Eye, side: float) -> None:
    """White, iris, pupil, highlight and lid (with the lash flick's tip beyond its outer end) of the eye on
    ``side``; a point ``(x, y)`` of the eye's frame sits on the face surface at ``(cx + x ca - y sa, cy + x sa
    + y ca)``."""
    cx, cy = side * 0.5 * f.eye_spacing, f.eye_v
    a = -side * math.radians(f.eye_tilt)
    ca, sa = math.cos(a), math.sin(a)
    x, y = eye.x, eye.y
    if f.lashes:
        tip_x, tip_y = np.array([side * f.eye_width * 1.28]), np.array([-0.7 * eye.hu])
        lid = len(x) - 13
        x = np.concatenate([x, tip_x] if side > 0 else [x[:lid], tip_x, x[lid:]])
        y = np.concatenate([y, tip_y] if side > 0 else [y[:lid], tip_y, y[lid:]])
    rows = sk.surface(cx + x * ca - y * sa, cy + x * sa + y * ca)
    sk.fill(SCLERA, rows[:26])
    sk.fill(eye.iris, rows[26:50])
    sk.fill(PUPIL, rows[50:74])
    if eye.highlight:
        sk.dot(rows[74], 0.17 * eye.r_iris * sk.cam.scale, (250, 250, 250))
    sk.lines(_col(f.skin, 0.3), sk.cam.px(f.lid_thickness), rows[74 + eye.highlight :])


def _brow_shape(f: FaceIdentity, nz: Nuisance) -> tuple[np.ndarray, np.ndarray]:
    """A brow's outline, the same for both brows but for the side: its reach from the face's centre line
    ``inner + d`` along the brow and its height (upper edge out, lower edge back)."""
    length = 2.0 * f.brow_length
    inner = 0.5 * f.eye_spacing - 0.9 * f.eye_width + f.brow_inner
    raise_, frown = max(0.0, nz.brow_raise), max(0.0, -nz.brow_raise)
    d = _T9 * length
    v = (
        f.eye_v
        - f.brow_gap
        - 3.0 * raise_
        - (f.brow_arch + 1.5 * raise_) * 4.0 * _T9 * (1.0 - _T9)
        - math.tan(math.radians(f.brow_angle)) * 0.5 * d
        + 3.0 * frown * (1.0 - _T9)
    )
    th = f.brow_thickness * (1.0 - 0.55 * _T9)
    return inner + d, np.concatenate([v - th / 2, (v + th / 2)[::-1]])


def _draw_brow(sk: _Sketch, f: FaceIdentity, brow: tuple[np.ndarray, np.ndarray], side: float) -> None:
    reach, v = brow
    u = side * reach
    sk.fill(_col(f.brow_colour), sk.surface(np.concatenate([u, u[::-1]]), v))


def _draw_nose(sk: _Sketch, f: FaceIdentity) -> None:
    style = NOSE_STYLES[f.nose_style]
    nv, nw, side = f.nose_v, f.nose_width, float(f.nose_side)
    tip = 0.3 * sk.cam.cz
    shade = _col(f.skin, 0.6)
    if style == "shaded":
        t = np.array([0.0, 0.35, 0.7, 0.9, 1.0, 0.9, 0.7, 0.35, 0.0])
        u = np.array([-1.6, -0.5 * nw, -0.9 * nw, -0.75 * nw, 0.0, 0.75 * nw, 0.9 * nw, 0.5 * nw, 1.6])
        v = np.array([f.eye_v + 4.0, nv - 4.0, nv + 0.5, nv + 2.2, nv + 2.8, nv + 2.2, nv + 0.5, nv - 4.0,
                      f.eye_v + 4.0])
        sk.fill(_col(f.skin, 0.87), sk.surface(u, v, tip * t))
    elif style == "line":
        t = _T6
        u = side * np.array([2.0, 2.6, 3.4, 0.55 * nw, 0.6 * nw, 0.2 * nw])
        v = f.eye_v + 3.0 + (nv + 1.5 - f.eye_v - 3.0) * np.array([0.0, 0.3, 0.6, 0.85, 0.95, 1.0])
        sk.lines(shade, 1, sk.surface(u, v, tip * t))
    du, dv = _superellipse(0.26 * nw, 1.1, _ROUND16)
    nostril_v = (nv + 1.4) + dv
    for s in (-1.0, 1.0):
        sk.fill(_col(f.skin, 0.45), sk.surface(s * 0.5 * nw + du, nostril_v, 0.6 * tip))
    if style != "line":
        u = _XS * 0.85 * nw
        v = nv + 2.4 * _XS_BULGE - 0.8
        sk.lines(shade, 1, sk.surface(u, v, tip * _NOSE_RIDGE))


def _mouth_shape(f: FaceIdentity, nz: Nuisance):
    """The mouth's points ``(x, yc, yu, yl_in, yl, gap)``: corners line, upper lip top, lower lip's inner
    and outer edge at the 13 positions ``x``, and the opening."""
    mw = f.mouth_width * (1.0 + 0.1 * nz.smile)
    lift = f.mouth_curve + 3.2 * nz.smile
    gap = 7.0 * nz.mouth_open
    x = _XS * mw
    yc = f.mouth_v + lift * _XS_BULGE - 0.5 * lift
    bow = f.cupid * _CUPID_BOW
    yu = yc - f.upper_lip * _XS_ENV * (1.0 - 0.4 * nz.smile) - 0.6 * bow
    yl_in = yc + gap * _LIP_GAP
    yl = yl_in + f.lower_lip * _XS_ENV * (1.0 - 0.3 * nz.smile)
    return x, yc, yu, yl_in, yl, gap


def _draw_mouth(sk: _Sketch, f: FaceIdentity, mouth) -> None:
    x, yc, yu, yl_in, yl, gap = mouth
    lift = 0.08 * sk.cam.cz
    xx = np.concatenate([x, x[::-1]])
    if gap > 0.3:
        sk.fill((62, 22, 28), sk.surface(xx, np.concatenate([yc, yl_in[::-1]]), lift))
        teeth = yc + min(0.5 * gap, 2.6) * _XS_ENV
        sk.fill((236, 232, 220), sk.surface(xx * 0.8, np.concatenate([yc, teeth[::-1]]), lift))
    sk.fill(_col(f.lip_colour, 0.9), sk.surface(xx, np.concatenate([yu, yc[::-1]]), lift))
    sk.fill(_col(f.lip_colour), sk.surface(xx, np.concatenate([yl_in, yl[::-1]]), lift))
    sk.lines(_col(f.lip_colour, 0.5), 1, sk.surface(x, yc, lift))


def _draw_beard(sk: _Sketch, f: FaceIdentity, mouth, moustache: bool) -> None:
    kind = BEARDS[f.beard]
    colour = _col(f.hair, 0.9)
    x, yc, yu, yl_in, yl, _ = mouth
    mw = x[-1]
    if moustache:
        if kind in ("moustache", "full"):
            bottom = yu - 0.3
            top = bottom - (2.2 + 1.6 * _XS_ENV)
            u = np.concatenate([x * 1.08, [mw * 1.18], (x * 1.08)[::-1], [-mw * 1.18]])
            v = np.concatenate([top, [yc[-1] + 2.5], bottom[::-1], [yc[0] + 2.5]])
            sk.fill(colour, sk.surface(u, v, 0.08 * sk.cam.cz))
        return
    if kind == "goatee":
        c, s = _RING16
        u = 0.55 * mw * c
        v = yl.max() + 1.0 + (f.face_bottom - 3.0 - yl.max() - 1.0) * np.clip(s, 0.0, 1.0) + 0.6 * np.clip(-s, 0, 1)
        sk.fill(colour, sk.surface(u, v))
    elif kind == "full":
        ou, ov = _outline(f, _JAW_RING, 1.2)
        oz = _outline_shift(f, ov)
        side = ov > f.nose_v + 2.0
        iu = np.array([-0.82 * f.face_width, -(mw + 3.0), -(mw + 2.0), 0.0, mw + 2.0, mw + 3.0, 0.82 * f.face_width])
        iv = np.array([f.nose_v + 3.0, f.mouth_v - 4.0, f.mouth_v + 4.0, yl.max() + 3.0, f.mouth_v + 4.0,
                       f.mouth_v - 4.0, f.nose_v + 3.0])
        # the outline runs from the image right (s small, c > 0) through the chin to the left; inner back
        sk.fill(colour, sk.silhouette(ou[side], ov[side], oz[side]), sk.surface(iu, iv))


def _draw_hair(sk: _Sketch, f: FaceIdentity) -> None:
    style = HAIR_STYLES[f.hair_style]
    if style == "bald":
        return
    w = f.face_width
    if style == "buzz":
        grow, colour = 0.8, _mixc(f.skin, f.hair, 0.6)
    else:
        grow, colour = f.hair_volume, _col(f.hair)
    temple = f.eye_v - 4.0
    if style in ("long", "curly", "medium"):
        side_v = f.eye_v + (34.0 if style != "medium" else 20.0)
        inset = 2.0 + 0.25 * f.hair_volume
    else:
        side_v, inset = temple, 0.0
    ou, ov = _hair_outer(f, grow, side_v)
    hu = _HAIR_XS * w
    hv = _hairline(f)
    hv = hv * (1.0 - _TEMPLES) + temple * _TEMPLES
    iu = np.concatenate([[-(w - inset), -(w - inset)], hu, [w - inset, w - inset]])
    iv = np.concatenate([[side_v, temple], hv, [temple, side_v]])
    sk.fill(colour, sk.silhouette(np.concatenate([ou, iu]), np.concatenate([ov, iv])))


def _glasses_rings(f: FaceIdentity, size: float, square: bool):
    """The two rims ``[(u, v) left, (u, v) right]``."""
    rw = f.eye_width * size
    du, dv = _superellipse(rw, 0.72 * rw, _SQUARE24 if square else _ROUND24)
    v = (f.eye_v + 0.6) + dv
    return [(side * 0.5 * f.eye_spacing + du, v) for side in (-1.0, 1.0)]


def _draw_glasses(sk: _Sketch, f: FaceIdentity, size: float, square: bool, colour, thickness: float,
                  lens=None) -> None:
    cam = sk.cam
    lift = 5.0
    rings = _glasses_rings(f, size, square)
    z0 = float(cam.depth(np.array(0.5 * f.eye_spacing), np.array(f.eye_v))) + lift
    px = cam.px(thickness)
    for side, (ru, rv) in zip((-1.0, 1.0), rings):
        ring = sk.at(ru, rv, z0)
        if lens is not None:
            sk.fill(lens, ring)
        sk.lines(colour, px, ring, closed=True)
        rw = f.eye_width * size
        edge = side * (0.5 * f.eye_spacing + rw)
        arm = sk.at(np.array([edge, side * f.face_width * 0.99]), np.array([f.eye_v, f.eye_v - 1.0]),
                    np.array([z0, 0.0]))
        sk.lines(colour, px, arm)
    inner = 0.5 * f.eye_spacing - f.eye_width * size
    bridge = sk.at(np.array([-inner, 0.0, inner]), np.array([f.eye_v - 0.5, f.eye_v - 2.0, f.eye_v - 0.5]), z0)
    sk.lines(colour, px, bridge)


def _draw_occluder(sk: _Sketch, f: FaceIdentity, nz: Nuisance, rng: np.random.Generator) -> None:
    kind = nz.occluder
    if kind == "none":
        return
    cam = sk.cam
    colour = _col(rng.uniform(0, 255, 3))
    angle = float(rng.uniform(0, 2 * math.pi))
    ca, sa = math.cos(angle), math.sin(angle)
    size = nz.occluder_size
    centre = cam.project(np.array([_SURFACE]), np.array(nz.occluder_pos[:1]), np.array(nz.occluder_pos[1:]),
                         np.zeros(1))[0]
    k = cam.scale
    if kind == "rect":
        w, h = 14.0 * size * k, 14.0 * size * k * float(rng.uniform(0.45, 1.6))
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
        rot = np.stack([corners[:, 0] * ca - corners[:, 1] * sa, corners[:, 0] * sa + corners[:, 1] * ca], -1)
        sk.fill(colour, sk.pixels(rot + centre))
    elif kind == "hand":
        skin = _col(_skin(rng))
        palm = np.stack([11.0 * size * k * _RING16[0], 13.0 * size * k * _RING16[1]], -1)
        rot = lambda p: np.stack([p[..., 0] * ca - p[..., 1] * sa, p[..., 0] * sa + p[..., 1] * ca], -1)  # noqa: E731
        sk.fill(skin, sk.pixels(rot(palm) + centre))
        thick = max(1, int(round(5.0 * size * k)))
        for j, (fx, length) in enumerate(((-7.5, 13.0), (-2.5, 16.0), (2.5, 15.0), (7.5, 11.0))):
            base = np.array([fx * size * k, -8.0 * size * k])
            tip = base + np.array([0.15 * fx * size * k, -length * size * k])
            seg = sk.pixels(rot(np.stack([base, tip])) + centre)
            sk.lines(skin, thick, seg)
            sk.dot(seg[1], thick / 2.0, skin)
        knuckles = np.array([[-9.0 * size * k, -7.0 * size * k], [9.0 * size * k, -7.0 * size * k]])
        sk.lines(_col(skin, 0.8), 1, sk.pixels(rot(knuckles) + centre))
    elif kind == "sunglasses":
        lens = _col(rng.uniform(0, 60, 3))
        _draw_glasses(sk, f, 1.7, bool(rng.random() < 0.5), colour, 1.6, lens=lens)
    elif kind == "mask":
        light = _mixc((240, 240, 240), colour, 0.35)
        ou, ov = _outline(f, _JAW_RING, 0.5)
        oz = _outline_shift(f, ov)
        sel = ov > f.nose_v - 1.0
        top_u = np.linspace(-0.92, 0.92, 9) * f.face_width
        top_v = f.nose_v - 1.0 - 3.5 * (1.0 - (top_u / f.face_width) ** 2)
        sk.fill(light, sk.silhouette(ou[sel], np.minimum(ov[sel], f.face_bottom - 3.0), oz[sel]),
                sk.surface(top_u, top_v, 0.1 * cam.cz * (1.0 - (top_u / f.face_width) ** 2)))
        for side in (-1.0, 1.0):
            strap = sk.at(np.array([side * 0.9 * f.face_width, side * f.face_width]),
                          np.array([f.nose_v, f.eye_v + 6.0]), np.array([0.0, -0.1 * cam.cz]))
            sk.lines(_col(light, 0.8), 1, strap)
    elif kind == "cap":
        brim = f.eye_v - f.brow_gap - 2.0 + float(rng.uniform(-1.0, 4.0))
        ou, ov = _hair_outer(f, f.hair_volume + 2.5, brim)
        sk.fill(colour, sk.silhouette(ou, ov))
        bu = np.array([-1.05, 1.05, 0.9, 0.0, -0.9]) * f.face_width
        bv = np.array([brim, brim, brim + 4.0, brim + 6.0, brim + 4.0])
        sk.fill(_col(colour, 0.75), sk.surface(bu, bv, 6.0))


_UNIT_LEVELS = tuple(k / 255.0 for k in range(256))


def _light(img: np.ndarray, nz: Nuisance, rng: np.random.Generator) -> np.ndarray:
    """The photometric chain. Per channel ``c`` one table maps each level ``k`` to
    ``round_half_up(clip((255 (k/255)^gamma - 127.5) contrast + 127.5) x brightness x cast[c])``; then, in
    float32, the directional ramp ``1 + strength/2 (x cos a + y sin a)`` (``x``, ``y`` in [-1, 1] across the
    image) multiplies it and luminance noise ``noise x N(0, 1)`` (one draw per pixel, shared by the
    channels) is added, rounded half up and clipped to 0..255. (``(k/255)^gamma`` is Python's ``math.pow``;
    each channel plane is looked up, ramped and noised on its own: the same float32 operations per pixel.)"""
    levels = 255.0 * np.fromiter(map(math.pow, _UNIT_LEVELS, (nz.gamma,) * 256), np.float64, 256)
    levels = np.clip((levels - 127.5) * nz.contrast + 127.5, 0.0, 255.0)
    gains = np.array([nz.brightness * c for c in nz.cast])
    table = np.floor(np.clip(levels[:, None] * gains[None, :], 0.0, 255.0) + 0.5).astype(np.uint8)
    planes = cv2.split(img)
    if nz.light_strength <= 0.0 and nz.noise <= 0.0:
        return cv2.merge([cv2.LUT(plane, np.ascontiguousarray(table[:, c])) for c, plane in enumerate(planes)])
    size = img.shape[0]
    ramp = None
    if nz.light_strength > 0.0:
        grid = (np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2.0)) * np.float32(2.0 / size)
        gx = grid * np.float32(nz.light_strength * 0.5 * math.cos(nz.light_angle))
        gy = grid * np.float32(nz.light_strength * 0.5 * math.sin(nz.light_angle))
        ramp = gy[:, None] + gx[None, :]
        ramp += np.float32(1.0)
    shade = np.float32(0.5)
    if nz.noise > 0.0:
        shade = rng.standard_normal((size, size), dtype=np.float32)
        shade *= np.float32(nz.noise)
        shade += np.float32(0.5)
    levels32 = table.T.astype(np.float32, order="C")  # the table's levels as float32 (exact), a row a channel
    out_planes = []
    for c, plane in enumerate(planes):  # one plane at a time: few, small temporary arrays
        out = cv2.LUT(plane, levels32[c])
        if ramp is not None:
            out *= ramp
        out += shade
        np.clip(out, 0.0, 255.0, out=out)
        out_planes.append(out.astype(np.uint8))
    return cv2.merge(out_planes)


def _validate(identity: FaceIdentity, nuisance: Nuisance, size: int) -> None:
    if not isinstance(identity, FaceIdentity):
        raise TypeError(f"identity must be a FaceIdentity, got {type(identity).__name__}")
    if not isinstance(nuisance, Nuisance):
        raise TypeError(f"nuisance must be a Nuisance, got {type(nuisance).__name__}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 32:
        raise ValueError(f"size must be an integer >= 32, got {size!r}")
    if nuisance.occluder not in OCCLUDERS:
        raise ValueError(f"unknown occluder {nuisance.occluder!r}; expected one of {', '.join(OCCLUDERS)}")
    if not (nuisance.scale > 0 and nuisance.downscale >= 1 and nuisance.blur >= 0 and nuisance.noise >= 0):
        raise ValueError("nuisance needs scale > 0, downscale >= 1, blur >= 0 and noise >= 0")


def landmarks(identity: FaceIdentity, nuisance: Nuisance = Nuisance(), size: int = DEFAULT_SIZE) -> np.ndarray:
    """The five ArcFace-order landmarks ``(5, 2)`` float32 of ``render(identity, nuisance, size)``, without
    drawing: eye centres, nose tip, mouth corners, through the render's camera."""
    _validate(identity, nuisance, size)
    sk = _Sketch(_Camera(identity, nuisance, size))
    rows = _landmarks(sk, identity, _mouth_shape(identity, nuisance))
    return sk.project()[rows.start : rows.stop].astype(np.float32)


def _landmarks(sk: _Sketch, f: FaceIdentity, mouth) -> range:
    """Records the five landmarks on the face surface (the nose tip and mouth corners lifted as drawn)."""
    x, yc, *_ = mouth
    half = 0.5 * f.eye_spacing
    u = np.array([-half, half, 0.0, x[0], x[-1]])
    v = np.array([f.eye_v, f.eye_v, f.nose_v, yc[0], yc[-1]])
    cz = sk.cam.cz
    return sk.surface(u, v, np.array([0.0, 0.0, 0.3 * cz, 0.08 * cz, 0.08 * cz]))


def render(identity: FaceIdentity, nuisance: Nuisance = Nuisance(), size: int = DEFAULT_SIZE
           ) -> tuple[np.ndarray, np.ndarray]:
    """Draw one ``size`` x ``size`` shot; returns ``(image uint8 RGB (size, size, 3), landmarks float32
    (5, 2))`` with landmarks in pixel coordinates (pixel centres at integers), ArcFace order."""
    _validate(identity, nuisance, size)
    f, nz = identity, nuisance
    sk = _Sketch(_Camera(f, nz, size))
    rng = np.random.default_rng(np.random.SeedSequence(int(nz.detail_seed)))
    mouth = _mouth_shape(f, nz)
    _draw_clutter(sk, rng, nz.clutter, size)
    _draw_back_hair(sk, f)
    _draw_body(sk, f, nz)
    _draw_ears(sk, f)
    fu, fv = _outline(f, _FACE_RING)
    sk.fill(_col(f.skin), sk.silhouette(fu, fv, _outline_shift(f, fv)))
    _draw_marks(sk, f)
    eye, brow = _eye_shape(f, nz), _brow_shape(f, nz)
    for side in (-1.0, 1.0):
        _draw_eye(sk, f, eye, side)
        _draw_brow(sk, f, brow, side)
    _draw_nose(sk, f)
    _draw_beard(sk, f, mouth, moustache=False)
    _draw_mouth(sk, f, mouth)
    _draw_beard(sk, f, mouth, moustache=True)
    _draw_hair(sk, f)
    if GLASSES[f.glasses] != "none" and nz.glasses_on:
        _draw_glasses(sk, f, f.glasses_size, GLASSES[f.glasses] == "square", _col(f.glasses_colour),
                      f.glasses_thickness)
    _draw_occluder(sk, f, nz, rng)
    marks = _landmarks(sk, f, mouth)
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[0] = _col(nz.background)
    img[1:] = img[0]  # the first row copied down: far faster than spreading three values over the image
    points = sk.draw(img)
    if nz.downscale > 1.0:
        small = max(8, int(round(size / nz.downscale)))
        sigma = 0.5 * math.sqrt(nz.downscale * nz.downscale - 1.0)
        img = cv2.GaussianBlur(img, (0, 0), sigma, sigmaY=sigma, hint=cv2.ALGO_HINT_ACCURATE)
        img = cv2.resize(img, (small, small), interpolation=cv2.INTER_LINEAR_EXACT)
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR_EXACT)
    if nz.blur > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), nz.blur, sigmaY=nz.blur, hint=cv2.ALGO_HINT_ACCURATE)
    if (nz.gamma, nz.contrast, nz.brightness, *nz.cast, nz.light_strength, nz.noise) != (1.0,) * 6 + (0.0,) * 2:
        img = _light(img, nz, rng)
    return img, points[marks.start : marks.stop].astype(np.float32)


def render_aligned(identity: FaceIdentity, nuisance: Nuisance = Nuisance(), size: int = DEFAULT_SIZE,
                   chip: ChipGeometry | None = None) -> np.ndarray:
    """``render`` then ``facebench.extraction.images.align`` with its own landmarks onto ``chip`` (default: the 112x112
    ArcFace chip): the aligned crop a pack stores."""
    image, points = render(identity, nuisance, size)
    return align(image, points, chip if chip is not None else arcface_chip())
