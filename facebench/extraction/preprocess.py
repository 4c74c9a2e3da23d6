"""Input contracts: colour order, pixel normalisation, chip geometry and flip mode.

A checkpoint's input contract is a property of how it was trained, so it is always explicit and recorded.
Named profiles:

- ``insightface``: RGB, ``(x/255 - 0.5)/0.5`` (= ``(x - 127.5)/127.5``), ArcFace 112x112 chip.
- ``facexzoo``: BGR, ``(x - 127.5)/128``, ArcFace 112x112 chip.
- ``raw``: RGB, pixels as float ``0..255`` (graphs that normalise inside).
- ``dlib``: RGB, ``(x - mean_c)/256`` with dlib's channel means, dlib's 150x150 chip.

A sidecar file ``<checkpoint>.facebench.json`` next to a checkpoint overrides the default profile;
a ``--profile`` flag overrides both.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facebench.errors import FacebenchError
from facebench.atomic import write_json
from facebench.extraction.images import ChipGeometry, arcface_chip
from facebench.io.textdoc import parse_json
from facebench.registry import Registry
from facebench.schema import from_table

Colour = Literal["rgb", "bgr"]
Chip = Literal["arcface", "dlib"]
FlipMode = Literal["add", "concat", "none"]

FLIP_MODES: Registry[str] = Registry("flip mode", [
    ("add", "the sum of the two"),
    ("concat", "the two concatenated (twice the dimension)"),
    ("none", "the image alone"),
])
"""Flip mode -> how the features of an image and its mirror image are combined."""
SIDECAR_SUFFIX = ".facebench.json"
PREPROCESS_VERSION = 1
"""The code version of preprocessing (decode, alignment, chip mapping, flip, normalisation), part of the
feature-cache key: bump it whenever a change to that code changes a single pixel fed to a model."""


@dataclass(frozen=True)
class Profile:
    """One input contract. Pixels are normalised as ``(x - mean[c]) / std[c]`` in the profile's colour order."""

    name: str
    colour: Colour = "rgb"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    chip: Chip = "arcface"
    size: int = 112
    flip: FlipMode = "add"

    def __post_init__(self) -> None:
        if self.colour not in ("rgb", "bgr"):
            raise FacebenchError(f"profile {self.name!r}: colour must be 'rgb' or 'bgr', got {self.colour!r}")
        if self.chip not in ("arcface", "dlib"):
            raise FacebenchError(f"profile {self.name!r}: chip must be 'arcface' or 'dlib', got {self.chip!r}")
        FLIP_MODES.check(self.flip, f"profile {self.name!r}: flip")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise FacebenchError(f"profile {self.name!r}: mean and std need 3 values each, std non-zero")
        if not 16 <= int(self.size) <= 1024:
            raise FacebenchError(f"profile {self.name!r}: size {self.size} is outside 16..1024")

    def normalise(self, batch: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` RGB chips -> float32 ``(N, 3, H, W)`` in this profile's colour order and scale."""
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) RGB chips, got shape {batch.shape}")
        if self.colour == "bgr":
            batch = batch[..., ::-1]
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, 3, 1, 1)
        if self.colour == "bgr":
            # mean/std are given in RGB order; the channels are now BGR
            mean, std = mean[:, ::-1], std[:, ::-1]
        x -= mean
        x /= std
        return x

    def with_flip(self, flip: str) -> "Profile":
        """The same profile with another flip mode."""
        return dataclasses.replace(self, flip=flip)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (recorded in every result)."""
        return {
            "name": self.name,
            "colour": self.colour,
            "mean": list(self.mean),
            "std": list(self.std),
            "chip": self.chip,
            "size": self.size,
            "flip": self.flip,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "profile") -> "Profile":
        """Build a profile from its dict form (fields not given: those of the named profile, else of
        ``insightface``); an unknown key or a bad value is an error naming ``source`` and the field."""
        named = data.get("name")
        base = PROFILES[named] if isinstance(named, str) and named in PROFILES else PROFILES["insightface"]
        merged = {**base.to_dict(), **data}
        if isinstance(merged["colour"], str):
            merged["colour"] = merged["colour"].lower()
        return from_table(cls, merged, source)


DLIB_MEAN = (122.782, 117.001, 104.298)

PROFILES: Registry[Profile] = Registry("profile", [(p.name, p) for p in (
    Profile("insightface", "rgb", (127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    Profile("facexzoo", "bgr", (127.5, 127.5, 127.5), (128.0, 128.0, 128.0)),
    Profile("raw", "rgb", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    Profile("dlib", "rgb", DLIB_MEAN, (256.0, 256.0, 256.0), chip="dlib", size=150, flip="none"),
)])


def chip_geometry(profile: Profile) -> ChipGeometry:
    """The chip a profile's images are aligned onto: the ArcFace template at ``size``, or dlib's chip."""
    if profile.chip == "dlib":
        from facebench.extraction.dlib_chip import dlib_chip

        return dlib_chip(profile.size)
    return arcface_chip(profile.size)


def get_profile(name: str) -> Profile:
    """A named profile; an unknown name is an error listing the known ones."""
    return PROFILES.get(name)


def sidecar_path(checkpoint: str | Path) -> Path:
    """Where a checkpoint's sidecar profile lives: ``<checkpoint>.facebench.json``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + SIDECAR_SUFFIX)


def _read_sidecar_json(path: Path) -> dict[str, Any] | None:
    """The JSON object of a sidecar file, or ``None`` when there is none; anything else is an error."""
    if not path.is_file():
        return None
    try:
        data = parse_json(path.read_text(encoding="utf-8"), str(path))
    except (OSError, json.JSONDecodeError) as exc:
        raise FacebenchError(f"{path}: not a readable JSON profile: {exc}") from exc
    if not isinstance(data, dict):
        raise FacebenchError(f"{path}: expected a JSON object with profile fields, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class SidecarThreshold:
    """The model's own decision threshold: Euclidean on the features as evaluated (same when distance < v)
    or cosine (same when cosine >= v)."""

    metric: Literal["euclidean", "cosine"]
    value: float


@dataclass(frozen=True)
class Sidecar:
    """``<checkpoint>.facebench.json``: ``{"profile": {profile fields}, "threshold": {"metric", "value"}}``,
    both optional; the older flat form holds the profile fields themselves beside ``threshold``."""

    profile: dict[str, Any] | None = None
    threshold: SidecarThreshold | None = None


def _read_sidecar_file(path: Path) -> Sidecar | None:
    """The validated sidecar at ``path`` (the flat form read as ``{"profile": fields}``), or ``None``."""
    data = _read_sidecar_json(path)
    if data is None:
        return None
    if "profile" not in data:
        data = {"profile": {k: v for k, v in data.items() if k != "threshold"},
                **({"threshold": data["threshold"]} if "threshold" in data else {})}
    return from_table(Sidecar, data, f"{path}:")


def read_sidecar(checkpoint: str | Path) -> Profile | None:
    """The profile stored beside ``checkpoint``, or ``None`` when there is no sidecar file (:class:`Sidecar`:
    the profile fields, or ``{"profile": {...}}``; beside them only ``threshold``)."""
    path = sidecar_path(checkpoint)
    sidecar = _read_sidecar_file(path)
    if sidecar is None or sidecar.profile is None:
        return None
    return Profile.from_dict(sidecar.profile, source=f"{path}: profile")


def read_sidecar_threshold(checkpoint: str | Path) -> dict[str, Any] | None:
    """The decision threshold a sidecar declares, ``"threshold": {"metric": "euclidean"|"cosine", "value": v}``
    (:class:`SidecarThreshold`), with the rule naming the file."""
    path = sidecar_path(checkpoint)
    sidecar = _read_sidecar_file(path)
    if sidecar is None or sidecar.threshold is None:
        return None
    return {"metric": sidecar.threshold.metric, "value": sidecar.threshold.value, "rule": f"from {path.name}"}


def write_sidecar(checkpoint: str | Path, profile: Profile) -> Path:
    """Store ``profile`` as the sidecar of ``checkpoint`` (atomically, keeping a ``threshold`` it holds);
    return its path."""
    path = sidecar_path(checkpoint)
    old = _read_sidecar_json(path) if path.is_file() else None
    kept = {"threshold": old["threshold"]} if old and "threshold" in old else {}
    write_json(path, {"profile": profile.to_dict(), **kept})
    return path


def resolve_profile(
    checkpoint: str | Path | None,
    name: str | None = None,
    flip: str | None = None,
    default: Profile | None = None,
) -> Profile:
    """The profile for a run: ``--profile`` flag, else the sidecar, else the backend's ``default`` (dlib's
    own contract; ``raw`` for graphs that normalise inside), else ``insightface``; then ``--flip``."""
    if name:
        profile = get_profile(name)
    else:
        profile = (read_sidecar(checkpoint) if checkpoint else None) or default or PROFILES["insightface"]
    return profile.with_flip(flip) if flip else profile
