"""Parameters of the demo renderer: who a face is (:class:`FaceIdentity`) and how one image of it was taken
(:class:`Nuisance`), each drawn from its own seeded stream.

Streams: identity ``i`` of demo seed ``s`` is drawn from ``np.random.SeedSequence(s, spawn_key=(1, i))``;
image ``j`` of that identity at any difficulty from ``SeedSequence(s, spawn_key=(2, i, j))``. Nothing reads
global random state, so the same ``(seed, identity_id, image_id, difficulty)`` always gives the same
parameters, whatever else was drawn before. Every draw of an image happens at every difficulty, and the
difficulty only scales what was drawn, so raising it makes the same image progressively harder.

Geometry is in the *face frame*: units of the 112x112 ArcFace chip, origin at the head centre, which sits
at chip pixel ``(56, 62)``; ``u`` grows to the image right, ``v`` downwards. An average identity puts its
eyes, nose tip and mouth corners on the ArcFace template. Colours are RGB floats in 0..255.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

HEAD_CENTRE = (56.0, 62.0)
"""Chip pixel of the face-frame origin."""

Colour = tuple[float, float, float]

HAIR_STYLES = ("bald", "buzz", "short", "medium", "long", "bun", "curly")
HAIRLINES = ("arc", "side", "peak", "receding", "bangs")
NOSE_STYLES = ("line", "nostrils", "shaded")
BEARDS = ("none", "moustache", "goatee", "full")
GLASSES = ("none", "round", "square")
OCCLUDERS = ("none", "rect", "hand", "sunglasses", "mask", "cap")

_SKIN_ANCHORS = np.array(
    [
        [255, 226, 200],
        [241, 200, 165],
        [224, 172, 130],
        [198, 134, 94],
        [160, 100, 66],
        [118, 72, 46],
        [80, 50, 34],
    ],
    dtype=np.float64,
)
_HAIR_BASES = (  # (weight, rgb)
    (0.24, (28, 22, 20)),
    (0.21, (62, 42, 30)),
    (0.15, (102, 70, 44)),
    (0.10, (150, 110, 72)),
    (0.10, (214, 180, 118)),
    (0.06, (156, 64, 32)),
    (0.08, (150, 148, 146)),
    (0.03, (222, 220, 214)),
    (0.03, None),  # dyed: any saturated colour
)
_IRIS_BASES = (
    (100, 62, 32),
    (52, 34, 24),
    (132, 100, 52),
    (82, 122, 70),
    (76, 128, 190),
    (128, 140, 152),
)


@dataclass(frozen=True)
class FaceIdentity:
    """One person's face: every parameter the renderer keeps fixed across that person's images.

    Lengths are face-frame units (ArcFace 112 chip pixels), angles degrees, ``*_style``-like fields index
    the tuples of this module (``HAIR_STYLES``, ``HAIRLINES``, ``NOSE_STYLES``, ``BEARDS``, ``GLASSES``).
    """

    # outline: half width, upper / lower half height, jaw narrowing towards the chin and its profile,
    # superellipse exponents of the skull and the chin (2 = ellipse, larger = squarer)
    face_width: float
    face_top: float
    face_bottom: float
    jaw_taper: float
    jaw_power: float
    skull_square: float
    chin_square: float
    skin: Colour
    # eyes: centre distance, centre height, half width, upper / lower opening (fractions of the half width),
    # tilt (outer corner up), lid curve exponent, iris radius (fraction of the half width), iris colour,
    # upper lid line thickness, lashes flick
    eye_spacing: float
    eye_v: float
    eye_width: float
    eye_upper: float
    eye_lower: float
    eye_tilt: float
    eye_lid_power: float
    iris_radius: float
    iris: Colour
    lid_thickness: float
    lashes: int
    # brows: gap above the eye centre, thickness, half length, arch, slope, inner end offset, colour
    brow_gap: float
    brow_thickness: float
    brow_length: float
    brow_arch: float
    brow_angle: float
    brow_inner: float
    brow_colour: Colour
    # nose: tip height, half width, style, bridge side (-1 / +1)
    nose_v: float
    nose_width: float
    nose_style: int
    nose_side: int
    # mouth: corner height, half width, lip thicknesses, resting curve (corners up), cupid's bow, colour
    mouth_v: float
    mouth_width: float
    upper_lip: float
    lower_lip: float
    mouth_curve: float
    cupid: float
    lip_colour: Colour
    # ears: half height, half width, height, how far they stick out
    ear_height: float
    ear_width: float
    ear_v: float
    ear_out: float
    # hair: colour, style, volume, hairline height at the centre and its shape, shape parameter, length
    hair: Colour
    hair_style: int
    hair_volume: float
    hairline_v: float
    hairline: int
    hairline_param: float
    hair_length: float
    # marks: beard style, cheek blush, forehead lines, freckles (u, v), moles (u, v, radius)
    beard: int
    blush: float
    forehead_lines: int
    freckles: tuple[tuple[float, float], ...]
    moles: tuple[tuple[float, float, float], ...]
    # glasses: style, frame colour, frame size (fraction of the eye half width), thickness
    glasses: int
    glasses_colour: Colour
    glasses_size: float
    glasses_thickness: float

    def to_vector(self) -> np.ndarray:
        """The parameters as one float64 vector (fixed length: freckles as count and mean position, moles
        padded to 3)."""
        out: list[float] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "freckles":
                pts = np.asarray(value, dtype=np.float64).reshape(-1, 2)
                out += [float(len(pts)), *(pts.mean(axis=0) if len(pts) else (0.0, 0.0))]
            elif f.name == "moles":
                pad = list(value) + [(0.0, 0.0, 0.0)] * (3 - len(value))
                out += [float(x) for m in pad[:3] for x in m]
            elif isinstance(value, tuple):
                out += [float(x) for x in value]
            else:
                out.append(float(value))
        return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class Nuisance:
    """How one image is taken; the defaults are a clean, frontal, neutral, evenly lit, centred shot.

    Pose in degrees (``yaw`` > 0 turns the face towards the image right, ``pitch`` > 0 looks up, ``roll`` >
    0 turns clockwise in the image); ``scale`` multiplies the face size and ``shift_x``/``shift_y`` move it
    by fractions of the image size. Expression strengths are in 0..1 (``brow_raise`` in -1..1, negative is a
    frown; ``gaze_*`` move the irises by fractions of the eye). Photometry: a directional light ramp of
    ``light_strength`` towards ``light_angle`` (radians), ``brightness``/``contrast`` gains, per-channel
    ``cast`` gains, ``gamma``; optics and sensor: ``downscale`` (shoot at 1/downscale resolution),
    Gaussian ``blur`` sigma and ``noise`` sigma in output pixels / grey levels. ``occluder`` names one of
    ``OCCLUDERS`` placed at ``occluder_pos`` (face frame) with size ``occluder_size``; ``clutter`` counts
    background shapes; ``detail_seed`` seeds the small random details (clutter, occluder colours, noise).
    """

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    smile: float = 0.0
    mouth_open: float = 0.0
    squint: float = 0.0
    brow_raise: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    light_angle: float = 0.0
    light_strength: float = 0.0
    brightness: float = 1.0
    contrast: float = 1.0
    cast: Colour = (1.0, 1.0, 1.0)
    gamma: float = 1.0
    downscale: float = 1.0
    blur: float = 0.0
    noise: float = 0.0
    occluder: str = "none"
    occluder_pos: tuple[float, float] = (0.0, 0.0)
    occluder_size: float = 0.0
    glasses_on: bool = True
    background: Colour = (196.0, 196.0, 190.0)
    shirt: Colour = (92.0, 104.0, 128.0)
    clutter: int = 0
    detail_seed: int = 0


def _rng(seed: int, *key: int) -> np.random.Generator:
    for k in (seed, *key):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"seeds and ids must be non-negative integers, got {k!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key)))


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * rng.random())


def _colour(rgb) -> Colour:
    return tuple(float(min(255.0, max(0.0, c))) for c in rgb)  # type: ignore[return-value]


def _mix(a, b, t: float) -> Colour:
    return _colour([x + (y - x) * t for x, y in zip(a, b)])


def _skin(rng: np.random.Generator) -> Colour:
    t = float(rng.beta(1.3, 1.6)) * (len(_SKIN_ANCHORS) - 1)
    k = min(int(t), len(_SKIN_ANCHORS) - 2)
    base = _SKIN_ANCHORS[k] + (_SKIN_ANCHORS[k + 1] - _SKIN_ANCHORS[k]) * (t - k)
    red, yellow = float(rng.normal(0, 7)), float(rng.normal(0, 6))
    return _colour([base[0] + red, base[1] + 0.3 * yellow - 0.2 * red, base[2] - yellow - 0.5 * red])


def _hair(rng: np.random.Generator) -> tuple[Colour, bool]:
    weights = np.array([w for w, _ in _HAIR_BASES])
    k = int(rng.choice(len(_HAIR_BASES), p=weights / weights.sum()))
    base = _HAIR_BASES[k][1]
    jitter = rng.normal(0, 1, 4)
    if base is None:
        hue = rng.random(3)
        base = tuple(40 + 190 * h for h in hue)
    gain = math.exp(0.12 * float(jitter[0]))
    rgb = [c * gain + 6 * float(j) for c, j in zip(base, jitter[1:])]
    light = k in (4, 6, 7)  # blond, grey, white: brows are darker than the hair
    return _colour(rgb), light


def identity_params(seed: int, identity_id: int) -> FaceIdentity:
    """The face of identity ``identity_id`` in demo seed ``seed`` (drawn from its own SeedSequence stream)."""
    rng = _rng(seed, 1, identity_id)
    u = lambda lo, hi: _u(rng, lo, hi)  # noqa: E731
    skin = _skin(rng)
    hair, light_hair = _hair(rng)
    face_width = u(34.0, 42.5)
    eye_spacing = 35.23 * u(0.92, 1.08)
    eye_v = -10.4 + u(-2.5, 2.5)
    eye_width = u(5.6, 8.4)
    iris_idx = int(rng.integers(len(_IRIS_BASES)))
    iris = _colour([c * math.exp(0.15 * float(rng.normal())) for c in _IRIS_BASES[iris_idx]])
    brow_base = _mix(hair, (52, 40, 32), u(0.35, 0.75)) if light_hair else _mix(hair, (0, 0, 0), u(0.0, 0.3))
    lip_target = (186, 72, 84) if rng.random() < 0.88 else tuple(float(c) for c in rng.uniform(60, 220, 3))
    lip_colour = _mix(_mix(skin, lip_target, u(0.3, 0.7)), (0, 0, 0), u(0.05, 0.2))
    hair_style = int(rng.choice(len(HAIR_STYLES), p=[0.06, 0.1, 0.26, 0.2, 0.22, 0.06, 0.1]))
    n_freckles = int(rng.integers(8, 36)) if rng.random() < 0.22 else 0
    fu = rng.uniform(-1.0, 1.0, n_freckles)
    fv = rng.uniform(-1.0, 1.0, n_freckles)
    freckles = tuple(
        (float(eye_spacing * 0.72 * a), float(eye_v + 13.0 + 6.0 * b)) for a, b in zip(fu, fv)
    )
    n_moles = int(rng.choice(4, p=[0.55, 0.28, 0.12, 0.05]))
    moles = tuple(
        (u(-0.8, 0.8) * face_width, u(-30.0, 42.0), u(0.9, 1.9)) for _ in range(n_moles)
    )
    beard = int(rng.choice(len(BEARDS), p=[0.74, 0.1, 0.06, 0.1]))
    glasses = int(rng.choice(len(GLASSES), p=[0.74, 0.13, 0.13]))
    glasses_colour = _colour(rng.uniform(0, 1, 3) * (u(20, 90) if rng.random() < 0.6 else u(90, 230)))
    return FaceIdentity(
        face_width=face_width,
        face_top=u(46.0, 56.0),
        face_bottom=u(44.0, 54.0),
        jaw_taper=u(0.05, 0.42),
        jaw_power=u(1.2, 3.0),
        skull_square=u(2.0, 2.8),
        chin_square=u(1.7, 3.2),
        skin=skin,
        eye_spacing=eye_spacing,
        eye_v=eye_v,
        eye_width=eye_width,
        eye_upper=u(0.36, 0.62),
        eye_lower=u(0.24, 0.46),
        eye_tilt=u(-8.0, 11.0),
        eye_lid_power=u(0.55, 1.1),
        iris_radius=u(0.46, 0.66),
        iris=iris,
        lid_thickness=u(0.8, 2.0),
        lashes=int(rng.random() < 0.4),
        brow_gap=u(7.0, 11.5),
        brow_thickness=u(1.5, 4.2),
        brow_length=u(6.5, 11.0),
        brow_arch=u(-0.5, 3.5),
        brow_angle=u(-10.0, 14.0),
        brow_inner=u(-2.0, 2.5),
        brow_colour=brow_base,
        nose_v=9.7 + u(-2.5, 2.5),
        nose_width=u(4.0, 8.0),
        nose_style=int(rng.integers(len(NOSE_STYLES))),
        nose_side=int(rng.choice((-1, 1))),
        mouth_v=30.3 + u(-2.5, 2.5),
        mouth_width=14.6 * u(0.8, 1.18),
        upper_lip=u(1.4, 4.0),
        lower_lip=u(2.0, 5.5),
        mouth_curve=u(-1.5, 2.0),
        cupid=u(0.0, 1.4),
        lip_colour=lip_colour,
        ear_height=u(8.0, 12.5),
        ear_width=u(4.0, 6.5),
        ear_v=u(-7.0, 2.0),
        ear_out=u(0.0, 3.0),
        hair=hair,
        hair_style=hair_style,
        hair_volume=u(1.5, 9.0) if HAIR_STYLES[hair_style] != "curly" else u(9.0, 16.0),
        hairline_v=u(-47.0, -30.0),
        hairline=int(rng.integers(len(HAIRLINES))),
        hairline_param=u(-1.0, 1.0),
        hair_length=u(35.0, 95.0),
        beard=beard,
        blush=u(0.0, 1.0) if rng.random() < 0.3 else 0.0,
        forehead_lines=int(rng.choice(4, p=[0.7, 0.1, 0.12, 0.08])),
        freckles=freckles,
        moles=moles,
        glasses=glasses,
        glasses_colour=glasses_colour,
        glasses_size=u(1.35, 1.75),
        glasses_thickness=u(0.9, 2.2),
    )


def image_nuisance(seed: int, identity_id: int, image_id: int, difficulty: float) -> Nuisance:
    """The nuisance of image ``image_id`` of identity ``identity_id`` at ``difficulty`` (0 = clean; 1 =
    the demo's hard setting; larger values are allowed and clipped to sane poses).

    At difficulty ``d``: yaw ~ N(0, 16d) clipped to +-38, pitch ~ N(0, 7d) to +-18, roll ~ N(0, 8d) to
    +-25 degrees; log scale ~ N(0, 0.12d) clipped to [0.6, 1.3]; shift ~ N(0, 0.05d) clipped to +-0.15;
    expression, light, blur, noise and downscale grow linearly with ``d``; an occluder appears with
    probability min(0.5, 0.3d); glasses of a wearer are off with probability min(0.5, 0.2d); background
    and shirt colours move from neutral towards random colours as min(1, 2d).
    """
    if not (isinstance(difficulty, (int, float, np.floating)) and math.isfinite(difficulty) and difficulty >= 0):
        raise ValueError(f"difficulty must be a finite number >= 0, got {difficulty!r}")
    d = float(difficulty)
    rng = _rng(seed, 2, identity_id, image_id)
    g = rng.normal(0.0, 1.0, 12)
    r = rng.random(16)
    clip = lambda x, lim: float(min(lim, max(-lim, x)))  # noqa: E731
    background = _mix((196.0, 196.0, 190.0), tuple(float(c) for c in rng.uniform(20, 235, 3)), min(1.0, 2 * d))
    shirt = _mix((92.0, 104.0, 128.0), tuple(float(c) for c in rng.uniform(20, 235, 3)), min(1.0, 2 * d))
    occ_kind = 1 + int(rng.integers(len(OCCLUDERS) - 1))
    occ_pos = (float(rng.uniform(-22, 22)), float(rng.uniform(-25, 35)))
    detail_seed = int(rng.integers(0, 2**62))
    cast = rng.normal(0.0, 1.0, 3)
    return Nuisance(
        yaw=clip(16.0 * d * g[0], 38.0),
        pitch=clip(7.0 * d * g[1], 18.0),
        roll=clip(8.0 * d * g[2], 25.0),
        scale=float(min(1.3, max(0.6, math.exp(0.12 * d * g[3])))),
        shift_x=clip(0.05 * d * g[4], 0.15),
        shift_y=clip(0.05 * d * g[5], 0.15),
        smile=float(min(1.0, d) * r[0]) if r[1] < 0.6 else 0.0,
        mouth_open=float(min(1.0, d) * r[2]) if r[3] < 0.35 else 0.0,
        squint=float(min(1.0, d) * 0.7 * r[4]) if r[5] < 0.3 else 0.0,
        brow_raise=clip(0.5 * d * g[6], 1.0),
        gaze_x=clip(0.2 * d * g[7], 0.35),
        gaze_y=clip(0.1 * d * g[8], 0.2),
        light_angle=float(2 * math.pi * r[6]),
        light_strength=float(min(0.8, 0.6 * d * r[7])),
        brightness=float(math.exp(clip(0.18 * d * g[9], 0.6))),
        contrast=float(math.exp(clip(0.15 * d * g[10], 0.5))),
        cast=tuple(float(math.exp(clip(0.07 * d * c, 0.3))) for c in cast),  # type: ignore[arg-type]
        gamma=float(math.exp(clip(0.2 * d * g[11], 0.6))),
        downscale=float(1.0 + 1.6 * d * r[9]) if r[8] < min(1.0, 0.35 * d) else 1.0,
        blur=float(1.3 * d * r[11]) if r[10] < 0.5 else 0.0,
        noise=float(7.0 * d * r[12]),
        occluder=OCCLUDERS[occ_kind] if r[13] < min(0.5, 0.3 * d) else "none",
        occluder_pos=occ_pos,
        occluder_size=float(0.7 + 0.6 * r[14]),
        glasses_on=bool(r[15] >= min(0.5, 0.2 * d)),
        background=background,
        shirt=shirt,
        clutter=int(rng.poisson(4.0 * d)),
        detail_seed=detail_seed,
    )
