"""The feature cache: raw extraction outputs stored in chunks, keyed by everything that determines them.

Key = sha256 of the fields :meth:`facebench.extraction.extractor.FeatureExtractor.cache_fields` lists: the sha256 of every file
the checkpoint consists of (the model file, ONNX external-data files, the sidecar profile), the image list's
fingerprint (with the detector's identity where faces were detected, and the warp rule), the profile's colour/mean/std/chip/size, the number of flip views, the backend and its
version, the preprocessing code version (``PREPROCESS_VERSION``) and OpenCV's version.

Image files are identified the way git and make decide a file is unchanged: by path, size and modification
time in nanoseconds (:func:`facebench.extraction.images.file_identity`). Rewriting an image changes its mtime, so the
key changes and the features are recomputed. A change that keeps size and mtime (a tool that restores
mtimes, a clock set back) is caught by ``--verify-cache``: each chunk stores the sha256 of its images' bytes
(hashed as they were decoded), and with ``--verify-cache`` every cached chunk's images are read and hashed
again; a chunk whose contents differ is recomputed.

A cache entry is a directory ``<root>/<key[:2]>/<key>/`` holding ``manifest.json``, ``chunk_NNNNNN.npy``
files and beside each its ``chunk_NNNNNN.sha256`` (the contents digest, written first); each file is
written atomically, so a chunk file that exists is complete and a killed run resumes by computing only the
missing chunks.

Default root: ``$FACEBENCH_CACHE`` or ``~/.cache/facebench/features``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from facebench.errors import FacebenchError
from facebench.atomic import save_npy, write_json, write_text
from facebench.io.textdoc import parse_json

MANIFEST = "manifest.json"


def default_cache_root() -> Path:
    """``$FACEBENCH_CACHE`` or ``~/.cache/facebench/features``."""
    env = os.environ.get("FACEBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "facebench" / "features"


def cache_key(fields: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the key fields."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass
class FeatureCache:
    """One cache entry (a directory of chunk files plus a manifest)."""

    directory: Path
    key: str
    fields: dict[str, Any]
    n_images: int
    chunk_size: int

    @classmethod
    def open(cls, root: str | Path, fields: dict[str, Any], n_images: int, chunk_size: int) -> "FeatureCache":
        """Open (creating if needed) the entry for ``fields``; a manifest that disagrees is an error."""
        key = cache_key(fields)
        directory = Path(root) / key[:2] / key
        directory.mkdir(parents=True, exist_ok=True)
        manifest = directory / MANIFEST
        expected = {"key": key, "fields": fields, "n_images": n_images, "chunk_size": chunk_size}
        if manifest.is_file():
            try:
                found = parse_json(manifest.read_text(encoding="utf-8"), str(manifest))
            except json.JSONDecodeError as exc:
                raise FacebenchError(f"{manifest}: corrupt cache manifest ({exc}); clear it with `facebench cache clear`") from exc
            if {k: found.get(k) for k in expected} != expected:
                raise FacebenchError(
                    f"{manifest}: cache entry does not match this extraction (different chunk size or list); "
                    "clear it with `facebench cache clear` or pass --no-cache"
                )
        else:
            write_json(manifest, {**expected, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return cls(directory, key, fields, n_images, chunk_size)

    @classmethod
    def find(cls, root: str | Path, fields: dict[str, Any]) -> "FeatureCache | None":
        """The existing entry for ``fields`` under ``root``, without creating anything; None when there is none
        (or its manifest is unreadable or disagrees)."""
        key = cache_key(fields)
        directory = Path(root) / key[:2] / key
        try:
            found = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(found, dict) or found.get("key") != key or found.get("fields") != json.loads(json.dumps(fields)):
            return None
        n_images, chunk_size = found.get("n_images"), found.get("chunk_size")
        if not (isinstance(n_images, int) and isinstance(chunk_size, int) and chunk_size > 0):
            return None
        return cls(directory, key, fields, n_images, chunk_size)

    def read_all(self) -> np.ndarray | None:
        """Every image's block ``(N, V, D)`` when all chunks are present, else None."""
        n_chunks = -(-self.n_images // self.chunk_size)
        if not all(self.has_chunk(c) for c in range(n_chunks)):
            return None
        return np.concatenate([self.read_chunk(c) for c in range(n_chunks)]) if n_chunks else None

    def chunk_path(self, c: int) -> Path:
        return self.directory / f"chunk_{c:06d}.npy"

    def contents_path(self, c: int) -> Path:
        return self.directory / f"chunk_{c:06d}.sha256"

    def has_chunk(self, c: int) -> bool:
        return self.chunk_path(c).is_file()

    def chunk_rows(self, c: int) -> range:
        """The image indices chunk ``c`` holds."""
        return range(c * self.chunk_size, min((c + 1) * self.chunk_size, self.n_images))

    def write_chunk(self, c: int, block: np.ndarray, contents: str | None = None) -> None:
        """Store chunk ``c`` and the sha256 of its images' contents (``None``: an entry whose key already
        covers the contents, such as detections), each atomically (the digest first)."""
        if contents is not None:
            write_text(self.contents_path(c), contents + "\n")
        save_npy(self.chunk_path(c), np.asarray(block, dtype=np.float32))

    def chunk_contents(self, c: int) -> str | None:
        """The contents digest stored with chunk ``c`` (``None`` when absent)."""
        try:
            return self.contents_path(c).read_text(encoding="utf-8").strip()
        except OSError:
            return None

    def stale_chunks(self, chunks: list[int], contents_of: Callable[[range], str], threads: int = 1) -> list[int]:
        """The chunks among ``chunks`` whose stored contents digest differs from ``contents_of(rows)`` (the
        images read and hashed again now), or that have none; hashed on ``threads`` threads."""
        def stale(c: int) -> bool:
            return self.chunk_contents(c) != contents_of(self.chunk_rows(c))

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            flags = list(pool.map(stale, chunks))
        return [c for c, bad in zip(chunks, flags) if bad]

    def drop_chunk(self, c: int) -> None:
        """Delete chunk ``c`` (so that it is recomputed)."""
        for path in (self.chunk_path(c), self.contents_path(c)):
            path.unlink(missing_ok=True)

    def read_chunk(self, c: int) -> np.ndarray:
        """Load chunk ``c``; a damaged file is an error that says how to recover."""
        path = self.chunk_path(c)
        try:
            block = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise FacebenchError(f"{path}: unreadable cache chunk ({exc}); delete it to recompute") from exc
        expected = min(self.chunk_size, self.n_images - c * self.chunk_size)
        if block.ndim != 3 or block.shape[0] != expected:
            raise FacebenchError(f"{path}: cache chunk has shape {block.shape}, expected {expected} rows; delete it")
        return block


def list_entries(root: str | Path) -> list[dict[str, Any]]:
    """Every cache entry under ``root``: key, fields, images, chunks present, bytes."""
    entries = []
    root = Path(root)
    if not root.is_dir():
        return entries
    for manifest in sorted(root.glob(f"*/*/{MANIFEST}")):
        try:
            info = parse_json(manifest.read_text(encoding="utf-8"), str(manifest))
        except (OSError, json.JSONDecodeError):
            info = {"key": manifest.parent.name, "fields": {}, "n_images": None, "chunk_size": None}
        chunks = list(manifest.parent.glob("chunk_*.npy"))
        n_images, chunk_size = info.get("n_images"), info.get("chunk_size")
        total = (n_images + chunk_size - 1) // chunk_size if n_images and chunk_size else None
        entries.append(
            {
                "key": info.get("key", manifest.parent.name),
                "path": str(manifest.parent),
                "fields": info.get("fields", {}),
                "n_images": n_images,
                "chunks": len(chunks),
                "chunks_total": total,
                "bytes": sum(p.stat().st_size for p in chunks),
                "created": info.get("created"),
            }
        )
    return entries


def clear_entries(root: str | Path, key_prefix: str | None = None) -> int:
    """Delete cache entries (all, or those whose key starts with ``key_prefix``); return how many."""
    removed = 0
    for entry in list_entries(root):
        if key_prefix is None or entry["key"].startswith(key_prefix):
            shutil.rmtree(entry["path"], ignore_errors=True)
            removed += 1
    return removed
