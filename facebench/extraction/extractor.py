"""FeatureExtractor: a loaded checkpoint embedding image lists (the network itself is `models.base.Encoder`).

Loaded once, its input contract resolved, extraction cached.

Every command that runs a model (`run`, `overlap audit`, `doctor`) goes through :class:`FeatureExtractor`, so the
profile resolution (flag, then sidecar, then the backend's default, then insightface) and the feature-cache
key are the same everywhere.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebench.extraction.cache import FeatureCache, default_cache_root
from facebench.errors import FacebenchError
from facebench.extraction.extract import DEFAULT_CHUNK, ExtractOptions, _dist_rank_world, combine_flip, extract_raw
from facebench.atomic import sha256_file
from facebench.extraction.images import ALIGNMENT_RULE, ImageList, opencv
from facebench.models.base import Encoder
from facebench.extraction.preprocess import PREPROCESS_VERSION, Profile, resolve_profile, sidecar_path

log = logging.getLogger(__name__)


def checkpoint_files(path: Path, encoder: Encoder) -> dict[str, str]:
    """sha256 of every file a checkpoint consists of besides ``path`` itself: the backend's data files (an
    ONNX graph's external data, ``encoder.data_files``) and the sidecar profile, keyed by their names
    relative to the checkpoint's folder. A data file that is missing is an error naming it."""
    others = [Path(p) for p in getattr(encoder, "data_files", ())]
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        others.append(sidecar)
    files: dict[str, str] = {}
    for other in others:
        try:
            files[os.path.relpath(other, path.parent)] = sha256_file(other)
        except OSError as exc:
            raise FacebenchError(f"{path}: cannot read its data file {other}: {exc}") from None
    return files


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
    trust_checkpoint_code: bool = False
    verify_cache: bool = False


@dataclass
class FeatureExtractor:
    """A loaded encoder with its resolved profile; ``embed`` returns flip-combined, unnormalised features."""

    settings: ModelSettings
    encoder: Encoder
    profile: Profile
    sha256: str
    timings: dict[str, tuple[float, int]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    cache_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: ModelSettings) -> "FeatureExtractor":
        """Load ``settings.checkpoint`` (any supported format) and resolve its profile."""
        from facebench.models.loader import load_encoder

        path = Path(settings.checkpoint)
        if not path.is_file():
            raise FacebenchError(f"checkpoint not found: {path}")
        encoder = load_encoder(
            path, arch=settings.arch, device=settings.device, batch_hint=settings.batch_size, half=settings.half,
            trust_checkpoint_code=settings.trust_checkpoint_code,
        )
        profile = resolve_profile(path, settings.profile, settings.flip, default=getattr(encoder, "default_profile", None))
        return cls(settings, encoder, profile, sha256_file(path), files=checkpoint_files(path, encoder))

    def describe(self) -> dict[str, Any]:
        """Provenance: path, sha256 (and those of the checkpoint's other files), the backend's description and
        the profile."""
        info = {k: v for k, v in self.encoder.describe().items() if k not in ("path", "sha256")}
        files = {"files": self.files} if self.files else {}
        return {"path": str(self.settings.checkpoint), "sha256": self.sha256, **files, **info,
                "profile": self.profile.to_dict()}

    def cache_fields(self, images: ImageList, profile: Profile) -> dict[str, Any]:
        """Everything that determines the raw outputs of ``images``: the feature-cache key (the rule is in
        `facebench.extraction.cache`)."""
        described = self.encoder.describe()
        backend_keys = ("format", "architecture", "half", "providers", "onnxruntime_version", "torch_version",
                        "run_batch", "prelu_rewritten")
        return {
            "checkpoint_sha256": self.sha256,
            "checkpoint_files": self.files,
            "images": images.fingerprint(),
            "alignment": ALIGNMENT_RULE,
            "profile": {k: v for k, v in profile.to_dict().items() if k not in ("name", "flip")},
            "views": 1 if profile.flip == "none" else 2,
            "backend": {k: described.get(k) for k in backend_keys},
            "batch_size": self.settings.batch_size,
            "preprocess_version": PREPROCESS_VERSION,
            "opencv": opencv().__version__,
        }

    def decision_threshold(self) -> dict[str, Any] | None:
        """The checkpoint's own decision threshold: its sidecar's ``threshold``, else the backend's (dlib's
        0.6 Euclidean), else None."""
        from facebench.extraction.preprocess import read_sidecar_threshold

        return read_sidecar_threshold(self.settings.checkpoint) or self.encoder.describe().get("decision_threshold")

    def raw(self, images: ImageList, label: str, profile: Profile | None = None) -> np.ndarray:
        """Raw per-view outputs ``(N, V, D)`` through the feature cache (unless disabled)."""
        s = self.settings
        profile = profile or self.profile
        options = ExtractOptions(
            batch_size=s.batch_size, workers=s.workers, chunk_size=s.chunk_size, progress=s.progress, label=label
        )
        cache = None
        info: dict[str, Any] = {"source": "extracted", "cache": False}
        if s.cache:
            root = s.cache_dir or default_cache_root()
            cache = FeatureCache.open(root, self.cache_fields(images, profile), len(images), options.chunk_size)
            info = self._reuse(cache, images, label)
        chunk = max(1, options.chunk_size)
        decoded = sum(min(chunk, len(images) - c) for c in range(0, len(images), chunk)
                      if cache is None or not cache.has_chunk(c // chunk))
        start = time.perf_counter()
        out = extract_raw(self.encoder, images, profile, options, cache)
        if decoded:  # extraction speed only where images were decoded, not read back from the cache
            self.timings[label] = (time.perf_counter() - start, decoded)
        self.cache_info[label] = info
        return out

    def _reuse(self, cache: FeatureCache, images: ImageList, label: str) -> dict[str, Any]:
        """Which of this rank's chunks come from ``cache`` (with ``verify_cache``, after rehashing their
        images and dropping the chunks whose contents changed); the record results.json keeps."""
        rank, world = _dist_rank_world()
        n_chunks = -(-len(images) // cache.chunk_size)
        mine = [c for c in range(n_chunks) if c % world == rank]
        present = [c for c in mine if cache.has_chunk(c)]
        stale: list[int] = []
        if self.settings.verify_cache and present:
            stale = cache.stale_chunks(present, images.contents_digest, threads=max(1, self.settings.workers))
            for c in stale:
                cache.drop_chunk(c)
            if stale:
                log.warning("%s: %d cached chunk(s) of %d hold features of images whose contents changed since; "
                            "recomputing them", label, len(stale), len(present))
        reused = len(present) - len(stale)
        source = "cache" if mine and reused == len(mine) else "extracted" if reused == 0 else "cache+extracted"
        return {
            "source": source, "cache": True, "cache_key": cache.key, "chunks": len(mine),
            "chunks_from_cache": reused, "chunks_computed": len(mine) - reused,
            "verified": bool(self.settings.verify_cache), "stale_chunks": len(stale),
        }

    def embed(self, images: ImageList, label: str, flip: str | None = None) -> np.ndarray:
        """Flip-combined, unnormalised features ``(N, D or 2D)``; ``flip`` overrides the profile's mode."""
        profile = self.profile.with_flip(flip) if flip else self.profile
        return combine_flip(self.raw(images, label, profile), profile.flip)
