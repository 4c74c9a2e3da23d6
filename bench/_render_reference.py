# Frozen copy of facebench/demo/render.py at commit 843f183 (git show 843f183:facebench/demo/render.py),
# unchanged below this header: the pixel reference that bench/bench_render.py and
# tests/test_demo_render_identity.py compare the current renderer against, byte for byte. It is a kept
# file rather than read from git at run time so that the test runs from any checkout (shallow clones,
# source archives) and the reference cannot move with history. Do not edit or "fix" it: its output is the
# definition of the demo's pixels; if the renderer's output is meant to change, the demo report is
# regenerated and this copy is replaced by the new renderer.
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
"""

from __future__ import annotations

import math

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
_XS = np.linspace(-1.0, 1.0, 13)
_XS.flags.writeable = False
_T9 = np.linspace(0.0, 1.0, 9)
_T9.flags.writeable = False


def _col(rgb, gain: float = 1.0) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * gain)))) for c in rgb)  # type: ignore[return-value]


def _mixc(a, b, t: float) -> tuple[int, int, int]:
    return _col([x + (y - x) * t for x, y in zip(a, b)])


def _fix(points: np.ndarray) -> np.ndarray:
    return np.rint(points * _ONE).astype(np.int32)


class _Camera:
    """Face frame -> image pixels for one render (see the module docstring)."""

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
        return np.stack([a * x + b * y + self.tx, c * x + d * y + self.ty], axis=-1)

    def at(self, u, v, z) -> np.ndarray:
        """Points at explicit depth ``z``, turned by yaw then pitch."""
        u, v, z = np.asarray(u, np.float64), np.asarray(v, np.float64), np.asarray(z, np.float64)
        x1 = u * self.cy + z * self.sy
        z1 = z * self.cy - u * self.sy
        return self._image(x1, v * self.cp - z1 * self.sp)

    def surface(self, u, v, lift=0.0) -> np.ndarray:
        """Points on the face surface, ``lift`` in front of it."""
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        return self.at(u, v, self.depth(u, v) + lift)

    def silhouette(self, u, v, z=0.0) -> np.ndarray:
        """Outline points: the silhouette keeps the head's projected width; ``z`` shifts them with the turn."""
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        return self._image(u * self.sil_x + z * self.sy, v * self.sil_y - z * self.sp)

    def body(self, u, v) -> np.ndarray:
        """Neck and shoulders: placed with the head but not turned."""
        return self._image(np.asarray(u, np.float64), np.asarray(v, np.float64))

    def px(self, units: float) -> int:
        """A face-frame length as a whole line thickness in pixels (at least 1)."""
        return max(1, int(round(units * self.scale)))


def _fill(img: np.ndarray, pts: np.ndarray, colour) -> None:
    cv2.fillPoly(img, [_fix(pts)], colour, _AA, _SHIFT)


def _lines(img: np.ndarray, pts: np.ndarray, colour, thickness: int, closed: bool = False) -> None:
    cv2.polylines(img, [_fix(pts)], closed, colour, thickness, _AA, _SHIFT)


def _dot(img: np.ndarray, centre: np.ndarray, radius_px: float, colour) -> None:
    """A filled disc (a 16-gon: cv2's anti-aliased circles are ragged below a few pixels)."""
    c, s = _RING16
    r = max(0.5, radius_px)
    _fill(img, np.stack([centre[0] + r * c, centre[1] + r * s], axis=-1), colour)


def _outline(f: FaceIdentity, c: np.ndarray, s: np.ndarray, grow: float = 0.0):
    """Face outline points ``(u, v, z)`` for ring cosines ``c`` and sines ``s`` (``s`` > 0 is the lower half)."""
    lower = s > 0
    n = np.where(lower, f.chin_square, f.skull_square)
    e = 2.0 / n
    taper = 1.0 - f.jaw_taper * np.clip(s, 0.0, 1.0) ** f.jaw_power
    u = (f.face_width + grow) * np.sign(c) * np.abs(c) ** e * taper
    v = np.where(lower, f.face_bottom + grow, f.face_top + grow) * np.sign(s) * np.abs(s) ** e
    z = 0.3 * 0.78 * f.face_width * np.clip(v / f.face_bottom, 0.0, 1.0) ** 3
    return u, v, z


def _superellipse(cx: float, cy: float, rx: float, ry: float, n: float, ring) -> tuple[np.ndarray, np.ndarray]:
    c, s = ring
    e = 2.0 / n
    return cx + rx * np.sign(c) * np.abs(c) ** e, cy + ry * np.sign(s) * np.abs(s) ** e


def _hairline(f: FaceIdentity, xn: np.ndarray) -> np.ndarray:
    p = f.hairline_param
    kind = HAIRLINES[f.hairline]
    base = f.hairline_v
    if kind == "arc":
        h = base + 8.0 * (1.0 + 0.5 * p) * xn**2
    elif kind == "side":
        h = base + 6.0 * xn**2 + 7.0 * p * xn
    elif kind == "peak":
        h = base + 7.0 * xn**2 + (4.0 + 3.0 * p) * np.clip(1.0 - np.abs(xn) / 0.3, 0.0, 1.0)
    elif kind == "receding":
        h = base + 6.0 * xn**2 - (5.0 + 3.0 * p) * np.exp(-(((np.abs(xn) - 0.55) / 0.2) ** 2))
    else:  # bangs: a low fringe with a ragged edge
        h = base + 12.0 + 3.0 * p + 2.0 * (np.arange(len(xn)) % 2)
    brow_top = f.eye_v - f.brow_gap - 0.5 * f.brow_thickness - 2.0
    return np.clip(h, -f.face_top + 5.0, brow_top)


def _draw_clutter(img: np.ndarray, rng: np.random.Generator, count: int, size: int) -> None:
    for _ in range(count):
        kind = int(rng.integers(3))
        colour = _col(rng.uniform(0, 255, 3))
        p = rng.uniform(-0.1, 1.1, 4) * size
        if kind == 0:
            _fill(img, np.array([[p[0], p[1]], [p[2], p[1]], [p[2], p[3]], [p[0], p[3]]]), colour)
        elif kind == 1:
            _dot(img, p[:2], float(rng.uniform(0.03, 0.2)) * size, colour)
        else:
            _lines(img, p.reshape(2, 2), colour, max(1, int(rng.uniform(0.01, 0.05) * size)))


def _draw_body(img: np.ndarray, cam: _Camera, f: FaceIdentity, nz: Nuisance) -> None:
    w, hb = f.face_width, f.face_bottom
    skin = f.skin
    nw = 0.47 * w
    neck_u = np.array([-nw, nw, 1.12 * nw, -1.12 * nw])
    neck_v = np.array([0.35 * hb, 0.35 * hb, hb + 45.0, hb + 45.0])
    _fill(img, cam.silhouette(neck_u, neck_v), _col(skin, 0.84))
    c, s = _RING24
    top = s <= 0.05
    u = 2.3 * w * c[top]
    v = hb + 30.0 + 0.32 * w + 26.0 * s[top]
    u = np.concatenate([u, [-2.3 * w, 2.3 * w]])
    v = np.concatenate([v, [hb + 200.0, hb + 200.0]])
    _fill(img, cam.body(u, v), _col(nz.shirt))
    collar_u = np.array([-0.9 * nw, 0.0, 0.9 * nw])
    collar_v = np.array([hb + 30.0 + 0.32 * w - 20.0, hb + 30.0 + 0.32 * w - 6.0, hb + 30.0 + 0.32 * w - 20.0])
    _fill(img, cam.body(collar_u, collar_v), _col(skin, 0.84))


def _hair_outer(f: FaceIdentity, grow: float, side_v: float):
    """Hair's outer edge from the right side over the top to the left side, down to ``side_v``."""
    c, s, curl = _ARC
    u, v, _ = _outline(f, c, s, grow)
    v = v - 0.3 * grow
    if HAIR_STYLES[f.hair_style] == "curly":
        bump = 0.22 * f.hair_volume * curl
        r = np.hypot(u, v)
        u, v = u * (1 + bump / r), v * (1 + bump / r)
    u = np.concatenate([[f.face_width + grow], u, [-(f.face_width + grow)]])
    v = np.concatenate([[side_v], v, [side_v]])
    return u, v


def _draw_back_hair(img: np.ndarray, cam: _Camera, f: FaceIdentity) -> None:
    style = HAIR_STYLES[f.hair_style]
    colour = _col(f.hair, 0.8)
    if style == "bun":
        _fill(img, cam.silhouette(*_superellipse(0.0, -f.face_top - 6.0, 10.0, 8.5, 2.0, _RING24), -4.0), colour)
    if style not in ("medium", "long", "curly"):
        return
    grow = f.hair_volume + 1.0
    length = f.hair_length if style != "medium" else min(f.hair_length, 30.0)
    u, v = _hair_outer(f, grow, length)
    bottom_u = np.array([-(f.face_width + grow) * 0.8, 0.0, (f.face_width + grow) * 0.8])
    bottom_v = np.array([length + 5.0, length + 8.0, length + 5.0])
    _fill(img, cam.silhouette(np.concatenate([u, bottom_u]), np.concatenate([v, bottom_v]), -4.0), colour)


def _draw_ears(img: np.ndarray, cam: _Camera, f: FaceIdentity) -> None:
    v0 = f.eye_v + 6.0 + f.ear_v
    for side in (-1.0, 1.0):
        u0 = side * (f.face_width - 1.0 + 0.5 * f.ear_out)
        eu, ev = _superellipse(u0, v0, f.ear_width, f.ear_height, 2.0, _RING16)
        z = -0.12 * cam.cz
        _fill(img, cam.at(eu, ev, z), _col(f.skin, 0.93))
        iu, iv = _superellipse(u0 + side * 1.0, v0, 0.5 * f.ear_width, 0.6 * f.ear_height, 2.0, _RING16)
        order = np.array([13, 14, 15, 0, 1, 2, 3]) if side > 0 else np.arange(5, 12)
        iu, iv = iu[order], iv[order]
        _lines(img, cam.at(iu, iv, z), _col(f.skin, 0.72), 1)


def _draw_marks(img: np.ndarray, cam: _Camera, f: FaceIdentity) -> None:
    if f.blush > 0:
        colour = _mixc(f.skin, (236, 104, 112), 0.32 * f.blush)
        for side in (-1.0, 1.0):
            bu, bv = _superellipse(side * (0.5 * f.eye_spacing + 1.5), f.eye_v + 15.0, 6.5, 3.8, 2.0, _RING16)
            _fill(img, cam.surface(bu, bv), colour)
    for k in range(f.forehead_lines):
        xs = _XS * 0.42 * f.face_width
        v = f.eye_v - f.brow_gap - 7.0 - 3.4 * k - 1.5 * (1.0 - _XS**2)
        _lines(img, cam.surface(xs, v), _col(f.skin, 0.8), 1)
    if f.freckles:
        pts = np.asarray(f.freckles, dtype=np.float64)
        proj = cam.surface(pts[:, 0], pts[:, 1])
        colour = _mixc(f.skin, (120, 70, 40), 0.45)
        r = 0.7 * cam.scale
        for p in proj:
            _dot(img, p, r, colour)
    for mu, mv, mr in f.moles:
        _dot(img, cam.surface(mu, mv), mr * cam.scale, (74, 48, 38))


def _eye_lids(f: FaceIdentity, nz: Nuisance):
    hu = f.eye_upper * f.eye_width * (1.0 - 0.65 * nz.squint)
    hl = f.eye_lower * f.eye_width * (1.0 - 0.45 * nz.squint)
    return hu, hl


def _draw_eye(img: np.ndarray, cam: _Camera, f: FaceIdentity, nz: Nuisance, side: float) -> None:
    cx, cy, ew, p = side * 0.5 * f.eye_spacing, f.eye_v, f.eye_width, f.eye_lid_power
    hu, hl = _eye_lids(f, nz)
    a = -side * math.radians(f.eye_tilt)
    ca, sa = math.cos(a), math.sin(a)

    def place(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return cam.surface(cx + x * ca - y * sa, cy + x * sa + y * ca)

    prof = (1.0 - _XS**2) ** p
    x = _XS * ew
    up, lo = -hu * prof, hl * prof
    _fill(img, place(np.concatenate([x, x[::-1]]), np.concatenate([up, lo[::-1]])), SCLERA)
    gx, gy = nz.gaze_x * 0.5 * ew, nz.gaze_y * hu
    c, s = _RING24
    for radius, colour in ((f.iris_radius * ew, _col(f.iris)), (0.5 * f.iris_radius * ew, PUPIL)):
        px = gx + radius * c
        q = np.clip(1.0 - (px / ew) ** 2, 0.0, 1.0) ** p
        py = np.clip(gy + radius * s, -hu * q, hl * q)
        _fill(img, place(px, py), colour)
    r_iris = f.iris_radius * ew
    hx, hy = gx - 0.5 * r_iris, gy - 0.5 * r_iris
    if hy - 0.17 * r_iris > -hu * (1.0 - (hx / ew) ** 2) ** p:
        _dot(img, place(np.array(hx), np.array(hy)), 0.17 * r_iris * cam.scale, (250, 250, 250))
    dark = _col(f.skin, 0.3)
    lid = place(x, up)
    if f.lashes:
        flick = place(np.array([side * ew, side * ew * 1.28]), np.array([0.0, -0.7 * hu]))
        lid = np.concatenate([lid, flick[1:]]) if side > 0 else np.concatenate([flick[1:], lid])
    _lines(img, lid, dark, cam.px(f.lid_thickness))


def _draw_brow(img: np.ndarray, cam: _Camera, f: FaceIdentity, nz: Nuisance, side: float) -> None:
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
    u = side * (inner + d)
    _fill(img, cam.surface(np.concatenate([u, u[::-1]]), np.concatenate([v - th / 2, (v + th / 2)[::-1]])),
          _col(f.brow_colour))


def _draw_nose(img: np.ndarray, cam: _Camera, f: FaceIdentity) -> None:
    style = NOSE_STYLES[f.nose_style]
    nv, nw, side = f.nose_v, f.nose_width, float(f.nose_side)
    tip = 0.3 * cam.cz
    shade = _col(f.skin, 0.6)
    if style == "shaded":
        t = np.array([0.0, 0.35, 0.7, 0.9, 1.0, 0.9, 0.7, 0.35, 0.0])
        u = np.array([-1.6, -0.5 * nw, -0.9 * nw, -0.75 * nw, 0.0, 0.75 * nw, 0.9 * nw, 0.5 * nw, 1.6])
        v = np.array([f.eye_v + 4.0, nv - 4.0, nv + 0.5, nv + 2.2, nv + 2.8, nv + 2.2, nv + 0.5, nv - 4.0,
                      f.eye_v + 4.0])
        _fill(img, cam.surface(u, v, tip * t), _col(f.skin, 0.87))
    elif style == "line":
        t = np.linspace(0.0, 1.0, 6)
        u = side * np.array([2.0, 2.6, 3.4, 0.55 * nw, 0.6 * nw, 0.2 * nw])
        v = f.eye_v + 3.0 + (nv + 1.5 - f.eye_v - 3.0) * np.array([0.0, 0.3, 0.6, 0.85, 0.95, 1.0])
        _lines(img, cam.surface(u, v, tip * t), shade, 1)
    for s in (-1.0, 1.0):
        nu, nvv = _superellipse(s * 0.5 * nw, nv + 1.4, 0.26 * nw, 1.1, 2.0, _RING16)
        _fill(img, cam.surface(nu, nvv, 0.6 * tip), _col(f.skin, 0.45))
    if style != "line":
        u = _XS * 0.85 * nw
        v = nv + 2.4 * (1.0 - _XS**2) - 0.8
        _lines(img, cam.surface(u, v, tip * (1.0 - 0.4 * np.abs(_XS))), shade, 1)


def _mouth_shape(f: FaceIdentity, nz: Nuisance):
    mw = f.mouth_width * (1.0 + 0.1 * nz.smile)
    lift = f.mouth_curve + 3.2 * nz.smile
    gap = 7.0 * nz.mouth_open
    xn = _XS
    x = xn * mw
    env = np.sqrt(np.clip(1.0 - xn**2, 0.0, 1.0))
    yc = f.mouth_v + lift * (1.0 - xn**2) - 0.5 * lift
    bow = f.cupid * np.exp(-(((np.abs(xn) - 0.28) / 0.16) ** 2))
    yu = yc - f.upper_lip * env * (1.0 - 0.4 * nz.smile) - 0.6 * bow
    yl_in = yc + gap * env**0.8
    yl = yl_in + f.lower_lip * env * (1.0 - 0.3 * nz.smile)
    return x, yc, yu, yl_in, yl, gap


def _draw_mouth(img: np.ndarray, cam: _Camera, f: FaceIdentity, nz: Nuisance) -> None:
    x, yc, yu, yl_in, yl, gap = _mouth_shape(f, nz)
    lift = 0.08 * cam.cz
    xx = np.concatenate([x, x[::-1]])
    if gap > 0.3:
        _fill(img, cam.surface(xx, np.concatenate([yc, yl_in[::-1]]), lift), (62, 22, 28))
        teeth = yc + min(0.5 * gap, 2.6) * np.sqrt(np.clip(1.0 - _XS**2, 0.0, 1.0))
        _fill(img, cam.surface(xx * 0.8, np.concatenate([yc, teeth[::-1]]), lift), (236, 232, 220))
    _fill(img, cam.surface(xx, np.concatenate([yu, yc[::-1]]), lift), _col(f.lip_colour, 0.9))
    _fill(img, cam.surface(xx, np.concatenate([yl_in, yl[::-1]]), lift), _col(f.lip_colour))
    _lines(img, cam.surface(x, yc, lift), _col(f.lip_colour, 0.5), 1)


def _draw_beard(img: np.ndarray, cam: _Camera, f: FaceIdentity, nz: Nuisance, moustache: bool) -> None:
    kind = BEARDS[f.beard]
    colour = _col(f.hair, 0.9)
    x, yc, yu, yl_in, yl, _ = _mouth_shape(f, nz)
    mw = x[-1]
    if moustache:
        if kind in ("moustache", "full"):
            bottom = yu - 0.3
            top = bottom - (2.2 + 1.6 * np.sqrt(np.clip(1.0 - _XS**2, 0.0, 1.0)))
            u = np.concatenate([x * 1.08, [mw * 1.18], (x * 1.08)[::-1], [-mw * 1.18]])
            v = np.concatenate([top, [yc[-1] + 2.5], bottom[::-1], [yc[0] + 2.5]])
            _fill(img, cam.surface(u, v, 0.08 * cam.cz), colour)
        return
    if kind == "goatee":
        c, s = _RING16
        u = 0.55 * mw * c
        v = yl.max() + 1.0 + (f.face_bottom - 3.0 - yl.max() - 1.0) * np.clip(s, 0.0, 1.0) + 0.6 * np.clip(-s, 0, 1)
        _fill(img, cam.surface(u, v), colour)
    elif kind == "full":
        c, s = _RING48
        keep = s > 0.02
        ou, ov, oz = _outline(f, c[keep], s[keep], 1.2)
        side = ov > f.nose_v + 2.0
        outer = cam.silhouette(ou[side], ov[side], oz[side])
        iu = np.array([-0.82 * f.face_width, -(mw + 3.0), -(mw + 2.0), 0.0, mw + 2.0, mw + 3.0, 0.82 * f.face_width])
        iv = np.array([f.nose_v + 3.0, f.mouth_v - 4.0, f.mouth_v + 4.0, yl.max() + 3.0, f.mouth_v + 4.0,
                       f.mouth_v - 4.0, f.nose_v + 3.0])
        inner = cam.surface(iu, iv)
        # outer runs from the image right (s small, c > 0) through the chin to the left; inner back
        _fill(img, np.concatenate([outer, inner]), colour)


def _draw_hair(img: np.ndarray, cam: _Camera, f: FaceIdentity) -> None:
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
    xn = np.linspace(-0.97, 0.97, 17)
    hu = xn * w
    hv = _hairline(f, xn)
    weight = np.abs(xn) ** 6
    hv = hv * (1.0 - weight) + temple * weight
    iu = np.concatenate([[-(w - inset), -(w - inset)], hu, [w - inset, w - inset]])
    iv = np.concatenate([[side_v, temple], hv, [temple, side_v]])
    _fill(img, cam.silhouette(np.concatenate([ou, iu]), np.concatenate([ov, iv])), colour)


def _glasses_rings(f: FaceIdentity, size: float, square: bool):
    rings = []
    for side in (-1.0, 1.0):
        cx = side * 0.5 * f.eye_spacing
        rw = f.eye_width * size
        rings.append(_superellipse(cx, f.eye_v + 0.6, rw, 0.72 * rw, 5.0 if square else 2.0, _RING24))
    return rings


def _draw_glasses(img: np.ndarray, cam: _Camera, f: FaceIdentity, size: float, square: bool, colour,
                  thickness: float, lens=None) -> None:
    lift = 5.0
    rings = _glasses_rings(f, size, square)
    z0 = float(cam.depth(np.array(0.5 * f.eye_spacing), np.array(f.eye_v))) + lift
    px = cam.px(thickness)
    for side, (ru, rv) in zip((-1.0, 1.0), rings):
        ring = cam.at(ru, rv, z0)
        if lens is not None:
            _fill(img, ring, lens)
        _lines(img, ring, colour, px, closed=True)
        rw = f.eye_width * size
        edge = side * (0.5 * f.eye_spacing + rw)
        arm = cam.at(np.array([edge, side * f.face_width * 0.99]), np.array([f.eye_v, f.eye_v - 1.0]),
                     np.array([z0, 0.0]))
        _lines(img, arm, colour, px)
    inner = 0.5 * f.eye_spacing - f.eye_width * size
    bridge = cam.at(np.array([-inner, 0.0, inner]), np.array([f.eye_v - 0.5, f.eye_v - 2.0, f.eye_v - 0.5]), z0)
    _lines(img, bridge, colour, px)


def _draw_occluder(img: np.ndarray, cam: _Camera, f: FaceIdentity, nz: Nuisance, rng: np.random.Generator) -> None:
    kind = nz.occluder
    if kind == "none":
        return
    colour = _col(rng.uniform(0, 255, 3))
    angle = float(rng.uniform(0, 2 * math.pi))
    ca, sa = math.cos(angle), math.sin(angle)
    size = nz.occluder_size
    centre = cam.surface(np.array(nz.occluder_pos[0]), np.array(nz.occluder_pos[1]))
    k = cam.scale
    if kind == "rect":
        w, h = 14.0 * size * k, 14.0 * size * k * float(rng.uniform(0.45, 1.6))
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
        rot = np.stack([corners[:, 0] * ca - corners[:, 1] * sa, corners[:, 0] * sa + corners[:, 1] * ca], -1)
        _fill(img, rot + centre, colour)
    elif kind == "hand":
        skin = _col(_skin(rng))
        palm = np.stack([11.0 * size * k * _RING16[0], 13.0 * size * k * _RING16[1]], -1)
        rot = lambda p: np.stack([p[..., 0] * ca - p[..., 1] * sa, p[..., 0] * sa + p[..., 1] * ca], -1)  # noqa: E731
        _fill(img, rot(palm) + centre, skin)
        thick = max(1, int(round(5.0 * size * k)))
        for j, (fx, length) in enumerate(((-7.5, 13.0), (-2.5, 16.0), (2.5, 15.0), (7.5, 11.0))):
            base = np.array([fx * size * k, -8.0 * size * k])
            tip = base + np.array([0.15 * fx * size * k, -length * size * k])
            seg = rot(np.stack([base, tip])) + centre
            _lines(img, seg, skin, thick)
            _dot(img, seg[1], thick / 2.0, skin)
        _lines(img, rot(np.array([[-9.0 * size * k, -7.0 * size * k], [9.0 * size * k, -7.0 * size * k]])) + centre,
               _col(skin, 0.8), 1)
    elif kind == "sunglasses":
        lens = _col(rng.uniform(0, 60, 3))
        _draw_glasses(img, cam, f, 1.7, bool(rng.random() < 0.5), colour, 1.6, lens=lens)
    elif kind == "mask":
        light = _mixc((240, 240, 240), colour, 0.35)
        c, s = _RING48
        keep = s > 0.02
        ou, ov, oz = _outline(f, c[keep], s[keep], 0.5)
        sel = ov > f.nose_v - 1.0
        outer = cam.silhouette(ou[sel], np.minimum(ov[sel], f.face_bottom - 3.0), oz[sel])
        top_u = np.linspace(-0.92, 0.92, 9) * f.face_width
        top_v = f.nose_v - 1.0 - 3.5 * (1.0 - (top_u / f.face_width) ** 2)
        top = cam.surface(top_u, top_v, 0.1 * cam.cz * (1.0 - (top_u / f.face_width) ** 2))
        _fill(img, np.concatenate([outer, top]), light)
        for side in (-1.0, 1.0):
            strap = cam.at(np.array([side * 0.9 * f.face_width, side * f.face_width]),
                           np.array([f.nose_v, f.eye_v + 6.0]), np.array([0.0, -0.1 * cam.cz]))
            _lines(img, strap, _col(light, 0.8), 1)
    elif kind == "cap":
        brim = f.eye_v - f.brow_gap - 2.0 + float(rng.uniform(-1.0, 4.0))
        ou, ov = _hair_outer(f, f.hair_volume + 2.5, brim)
        _fill(img, cam.silhouette(ou, ov), colour)
        bu = np.array([-1.05, 1.05, 0.9, 0.0, -0.9]) * f.face_width
        bv = np.array([brim, brim, brim + 4.0, brim + 6.0, brim + 4.0])
        _fill(img, cam.surface(bu, bv, 6.0), _col(colour, 0.75))


def _light(img: np.ndarray, nz: Nuisance, rng: np.random.Generator) -> np.ndarray:
    """The photometric chain. Per channel ``c`` one table maps each level ``k`` to
    ``round_half_up(clip((255 (k/255)^gamma - 127.5) contrast + 127.5) x brightness x cast[c])``; then, in
    float32, the directional ramp ``1 + strength/2 (x cos a + y sin a)`` (``x``, ``y`` in [-1, 1] across the
    image) multiplies it and luminance noise ``noise x N(0, 1)`` (one draw per pixel, shared by the
    channels) is added, rounded half up and clipped to 0..255."""
    levels = np.array([255.0 * math.pow(k / 255.0, nz.gamma) for k in range(256)])
    levels = np.clip((levels - 127.5) * nz.contrast + 127.5, 0.0, 255.0)
    gains = np.array([nz.brightness * c for c in nz.cast])
    table = np.floor(np.clip(levels[:, None] * gains[None, :], 0.0, 255.0) + 0.5).astype(np.uint8)
    img = cv2.LUT(img, table.reshape(256, 1, 3))
    if nz.light_strength <= 0.0 and nz.noise <= 0.0:
        return img
    size = img.shape[0]
    planes = np.stack(cv2.split(img))  # channel planes: the same arithmetic, faster loops
    if nz.light_strength > 0.0:
        grid = (np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2.0)) * np.float32(2.0 / size)
        gx = grid * np.float32(nz.light_strength * 0.5 * math.cos(nz.light_angle))
        gy = grid * np.float32(nz.light_strength * 0.5 * math.sin(nz.light_angle))
        ramp = (gy[:, None] + gx[None, :]) + np.float32(1.0)
        out = planes * ramp
    else:
        out = planes.astype(np.float32)
    if nz.noise > 0.0:
        shade = rng.standard_normal((size, size), dtype=np.float32)
        shade *= np.float32(nz.noise)
        shade += np.float32(0.5)
        out += shade
    else:
        out += np.float32(0.5)
    np.clip(out, 0.0, 255.0, out=out)
    return cv2.merge(list(out.astype(np.uint8)))


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
    return _landmarks(identity, nuisance, _Camera(identity, nuisance, size))


def _landmarks(f: FaceIdentity, nz: Nuisance, cam: _Camera) -> np.ndarray:
    x, yc, *_ = _mouth_shape(f, nz)
    half = 0.5 * f.eye_spacing
    u = np.array([-half, half, 0.0, x[0], x[-1]])
    v = np.array([f.eye_v, f.eye_v, f.nose_v, yc[0], yc[-1]])
    z = cam.depth(u, v) + np.array([0.0, 0.0, 0.3 * cam.cz, 0.08 * cam.cz, 0.08 * cam.cz])
    return cam.at(u, v, z).astype(np.float32)


def render(identity: FaceIdentity, nuisance: Nuisance = Nuisance(), size: int = DEFAULT_SIZE
           ) -> tuple[np.ndarray, np.ndarray]:
    """Draw one ``size`` x ``size`` shot; returns ``(image uint8 RGB (size, size, 3), landmarks float32
    (5, 2))`` with landmarks in pixel coordinates (pixel centres at integers), ArcFace order."""
    _validate(identity, nuisance, size)
    f, nz = identity, nuisance
    cam = _Camera(f, nz, size)
    rng = np.random.default_rng(np.random.SeedSequence(int(nz.detail_seed)))
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = _col(nz.background)
    _draw_clutter(img, rng, nz.clutter, size)
    _draw_back_hair(img, cam, f)
    _draw_body(img, cam, f, nz)
    _draw_ears(img, cam, f)
    c, s = _RING48
    fu, fv, fz = _outline(f, c, s)
    _fill(img, cam.silhouette(fu, fv, fz), _col(f.skin))
    _draw_marks(img, cam, f)
    for side in (-1.0, 1.0):
        _draw_eye(img, cam, f, nz, side)
        _draw_brow(img, cam, f, nz, side)
    _draw_nose(img, cam, f)
    _draw_beard(img, cam, f, nz, moustache=False)
    _draw_mouth(img, cam, f, nz)
    _draw_beard(img, cam, f, nz, moustache=True)
    _draw_hair(img, cam, f)
    if GLASSES[f.glasses] != "none" and nz.glasses_on:
        _draw_glasses(img, cam, f, f.glasses_size, GLASSES[f.glasses] == "square", _col(f.glasses_colour),
                      f.glasses_thickness)
    _draw_occluder(img, cam, f, nz, rng)
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
    return img, _landmarks(f, nz, cam)


def render_aligned(identity: FaceIdentity, nuisance: Nuisance = Nuisance(), size: int = DEFAULT_SIZE,
                   chip: ChipGeometry | None = None) -> np.ndarray:
    """``render`` then ``facebench.extraction.images.align`` with its own landmarks onto ``chip`` (default: the 112x112
    ArcFace chip): the aligned crop a pack stores."""
    image, points = render(identity, nuisance, size)
    return align(image, points, chip if chip is not None else arcface_chip())
