"""A checkpoint ready to embed image lists: loaded once, its input contract resolved, extraction cached.

Every command that runs a model (`run`, `overlap audit`, `doctor`) goes through :class:`Embedder`, so the
profile resolution (flag, then sidecar, then the backend's default, then insightface) and the feature-cache
key are the same everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebench.cache import FeatureCache, default_cache_root
from facebench.errors import FacebenchError
from facebench.extract import DEFAULT_CHUNK, ExtractOptions, combine_flip, extract_raw
from facebench.fileio import sha256_file
from facebench.images import ImageList
from facebench.models.base import Encoder
from facebench.preprocess import Profile, resolve_profile


@dataclass(frozen=True)
class ModelSettings:
    """How to run a checkpoint: the same knobs as ``facebench run``."""

    checkpoint: Path
    arch: str | None = None
    profile: str | None = None
    flip: str | None = None
    batch_size: int = 32
    workers: int = 2
    device: str = "auto"
    half: bool = False
    cache: bool = True
    cache_dir: Path | None = None
    progress: bool = True
    chunk_size: int = DEFAULT_CHUNK


@dataclass
class Embedder:
    """A loaded encoder with its resolved profile; ``embed`` returns flip-combined, unnormalised features."""

    settings: ModelSettings
    encoder: Encoder
    profile: Profile
    sha256: str
    timings: dict[str, tuple[float, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: ModelSettings) -> "Embedder":
        """Load ``settings.checkpoint`` (any supported format) and resolve its profile."""
        from facebench.models.loader import load_encoder

        path = Path(settings.checkpoint)
        if not path.is_file():
            raise FacebenchError(f"checkpoint not found: {path}")
        encoder = load_encoder(
            path, arch=settings.arch, device=settings.device, batch_hint=settings.batch_size, half=settings.half
        )
        profile = resolve_profile(path, settings.profile, settings.flip, default=getattr(encoder, "default_profile", None))
        return cls(settings, encoder, profile, sha256_file(path))

    def describe(self) -> dict[str, Any]:
        """Provenance: path, sha256, the backend's description and the profile."""
        info = {k: v for k, v in self.encoder.describe().items() if k not in ("path", "sha256")}
        return {"path": str(self.settings.checkpoint), "sha256": self.sha256, **info, "profile": self.profile.to_dict()}

    def cache_fields(self, images: ImageList, profile: Profile) -> dict[str, Any]:
        """Everything that determines the raw outputs of ``images``: the feature-cache key."""
        described = self.encoder.describe()
        return {
            "checkpoint_sha256": self.sha256,
            "images": images.fingerprint(),
            "profile": {k: v for k, v in profile.to_dict().items() if k not in ("name", "flip")},
            "views": 1 if profile.flip == "none" else 2,
            "backend": {k: described.get(k) for k in ("format", "arch", "half", "providers")},
            "batch_size": self.settings.batch_size,
        }

    def raw(self, images: ImageList, label: str, profile: Profile | None = None) -> np.ndarray:
        """Raw per-view outputs ``(N, V, D)`` through the feature cache (unless disabled)."""
        s = self.settings
        profile = profile or self.profile
        options = ExtractOptions(
            batch_size=s.batch_size, workers=s.workers, chunk_size=s.chunk_size, progress=s.progress, label=label
        )
        cache = None
        if s.cache:
            root = s.cache_dir or default_cache_root()
            cache = FeatureCache.open(root, self.cache_fields(images, profile), len(images), options.chunk_size)
        chunk = max(1, options.chunk_size)
        decoded = sum(min(chunk, len(images) - c) for c in range(0, len(images), chunk)
                      if cache is None or not cache.has_chunk(c // chunk))
        start = time.perf_counter()
        out = extract_raw(self.encoder, images, profile, options, cache)
        if decoded:  # extraction speed only where images were decoded, not read back from the cache
            self.timings[label] = (time.perf_counter() - start, decoded)
        return out

    def embed(self, images: ImageList, label: str, flip: str | None = None) -> np.ndarray:
        """Flip-combined, unnormalised features ``(N, D or 2D)``; ``flip`` overrides the profile's mode."""
        profile = self.profile.with_flip(flip) if flip else self.profile
        return combine_flip(self.raw(images, label, profile), profile.flip)
