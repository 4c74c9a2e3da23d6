"""Batched embedding extraction: decode threads decode and align while the model runs.

Rule: every image i of an ``ImageList`` becomes ``f(x_i)`` and, unless the flip mode is ``none``,
``f(flip(x_i))`` (horizontal flip of the aligned chip). The raw outputs are kept per view, shape
``(N, V, D)`` with ``V`` = 1 or 2, and combined afterwards by :func:`combine_flip`:
``add`` -> ``f(x) + f(flip(x))``, ``concat`` -> ``[f(x), f(flip(x))]``, ``none`` -> ``f(x)``. Nothing is
L2-normalised here: each protocol normalises (or keeps the norm) by its own rule.

Batches are cut in image order and the last one is padded to the full batch size, so each image always
goes through the model in the same position pattern; with a :class:`FeatureCache` the work is written in
chunks and a killed run resumes with the unfinished chunks only. Under ``torchrun`` the chunks are
sharded over ranks and rank 0 gathers them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from facebench.extraction.cache import FeatureCache
from facebench.errors import FacebenchError
from facebench.extraction.images import ChipGeometry, ImageList, content_digest
from facebench.models.base import Encoder
from facebench.extraction.preprocess import Profile, chip_geometry
from facebench.progress import progress

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 4096
T = TypeVar("T")


def combine_flip(raw: np.ndarray, mode: str) -> np.ndarray:
    """Combine per-view outputs ``(N, V, D)`` by the flip mode (``add``, ``concat``, ``none``)."""
    if raw.ndim != 3:
        raise ValueError(f"expected (N, V, D) raw outputs, got shape {raw.shape}")
    if mode == "none":
        return np.ascontiguousarray(raw[:, 0])
    if raw.shape[1] != 2:
        raise ValueError(f"flip mode {mode!r} needs 2 views, got {raw.shape[1]}")
    if mode == "add":
        return raw[:, 0] + raw[:, 1]
    if mode == "concat":
        return np.ascontiguousarray(raw.reshape(raw.shape[0], -1))
    raise ValueError(f"unknown flip mode {mode!r}; use add, concat or none")


def n_views(mode: str) -> int:
    """How many views (1 or 2) a flip mode needs."""
    return 1 if mode == "none" else 2


def _load_batch(images: ImageList, chip: ChipGeometry, indices: np.ndarray) -> tuple[np.ndarray, bytes]:
    """uint8 ``(B, H, W, 3)`` chips of ``images[indices]`` and the concatenated content digests of their
    encoded bytes (hashed as they are read, for the cache's ``--verify-cache``)."""
    chips, digests = [], []
    for i in indices:
        data = images.encoded(int(i))
        digests.append(content_digest(data))
        chips.append(images.chip_from(int(i), data, chip))
    return np.stack(chips), b"".join(digests)


def _iter_chip_batches(
    images: ImageList, chip: ChipGeometry, indices: np.ndarray, batch_size: int, workers: int
) -> Iterator[tuple[np.ndarray, bytes]]:
    """Yield uint8 ``(B, H, W, 3)`` batches of chips in index order, decoded by a ``concurrent.futures``
    pool of ``workers`` threads (OpenCV releases the GIL while it decodes and warps), each with the content
    digests of its images (`_load_batch`).

    At most ``2 * workers + 2`` batches are in flight, so memory stays bounded when the model is slower
    than decoding; a decoding error is raised here as it was raised. Threads, not processes: they end with
    the run however it ends and never see a signal, and no process is forked from one whose OpenCV thread
    pool may hold a lock (such a child can hang; ``bench/bench_decode_pool.py`` measured the threads no
    slower than the former worker processes).
    """
    batches = [indices[s : s + batch_size] for s in range(0, len(indices), batch_size)]
    if workers <= 0 or len(batches) <= 1:
        for batch in batches:
            yield _load_batch(images, chip, batch)
        return
    n_workers = min(workers, len(batches))
    with ThreadPoolExecutor(n_workers, thread_name_prefix="facebench-decode") as pool:
        yield from map_in_window(pool, lambda batch: _load_batch(images, chip, batch), batches, 2 * n_workers + 2)


def map_in_window(pool: Executor, fn: Callable[[Any], T], items: Sequence[Any], window: int) -> Iterator[T]:
    """``fn(item)`` for each item in order, run by ``pool`` with at most ``window`` items in flight; the
    first error is raised as it was raised, and the items not yet started are cancelled."""
    pending: deque[Future[T]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:  # an error or an abandoned iteration: start nothing more
            future.cancel()


def _embed_padded(encoder: Encoder, batch: np.ndarray, batch_size: int) -> np.ndarray:
    """Run the encoder on a batch padded with zeros to ``batch_size`` rows; return the real rows."""
    n = batch.shape[0]
    if n < batch_size:
        pad = np.zeros((batch_size - n, *batch.shape[1:]), dtype=batch.dtype)
        batch = np.concatenate([batch, pad])
    out = np.asarray(encoder.embed(batch))
    if out.ndim != 2 or out.shape[0] != batch.shape[0]:
        raise FacebenchError(
            f"the model returned shape {tuple(out.shape)} for a batch of {batch.shape[0]}; "
            "expected one embedding row per image (N, D)"
        )
    return np.asarray(out[:n], dtype=np.float32)


def embed_chips(encoder: Encoder, chips: np.ndarray, profile: Profile, batch_size: int) -> np.ndarray:
    """Raw outputs ``(B, V, D)`` for uint8 RGB chips ``(B, H, W, 3)`` under ``profile`` (flip views)."""
    views = [chips] if profile.flip == "none" else [chips, np.ascontiguousarray(chips[:, :, ::-1])]
    outs = [_embed_padded(encoder, profile.normalise(v), batch_size) for v in views]
    return np.stack(outs, axis=1)


@dataclass(frozen=True)
class ExtractOptions:
    """How extraction runs: batch size, decode workers, chunk size, progress display."""

    batch_size: int = 32
    workers: int = 2
    chunk_size: int = DEFAULT_CHUNK
    progress: bool = True
    label: str = "extract"


def extract_raw(
    encoder: Encoder,
    images: ImageList,
    profile: Profile,
    options: ExtractOptions = ExtractOptions(),
    cache: FeatureCache | None = None,
) -> np.ndarray:
    """Raw per-view outputs ``(N, V, D)`` float32 for every image, in list order.

    With ``cache``, finished chunks are reused and each new chunk is written atomically as soon as it is
    computed; under an initialised ``torch.distributed`` process group each rank computes the chunks
    ``c`` with ``c % world == rank`` and every rank returns the full array.
    """
    if options.batch_size < 1:
        raise FacebenchError(f"--batch-size must be >= 1, got {options.batch_size}")
    if tuple(encoder.input_size) != (profile.size, profile.size):
        raise FacebenchError(
            f"the model takes {encoder.input_size[0]}x{encoder.input_size[1]} input but profile "
            f"{profile.name!r} makes {profile.size}x{profile.size} chips; choose a matching profile or size"
        )
    chip = chip_geometry(profile)
    n = len(images)
    chunk = max(1, options.chunk_size)
    n_chunks = (n + chunk - 1) // chunk
    rank, world = _dist_rank_world()
    mine = [c for c in range(n_chunks) if c % world == rank]
    pending = [c for c in mine if cache is None or not cache.has_chunk(c)]
    results: dict[int, np.ndarray] = {}
    if cache is not None and len(pending) < len(mine):
        log.info("%s: %d of %d chunks found in the cache", options.label, len(mine) - len(pending), len(mine))
    todo = sum(min(chunk, n - c * chunk) for c in pending)
    bar = progress(todo, f"{options.label}: extract", enabled=options.progress)
    for c in pending:
        idx = np.arange(c * chunk, min((c + 1) * chunk, n))
        parts = []
        contents = hashlib.sha256()
        for batch, digests in _iter_chip_batches(images, chip, idx, options.batch_size, options.workers):
            parts.append(embed_chips(encoder, np.asarray(batch), profile, options.batch_size))
            contents.update(digests)
            bar.update(len(batch))
        block = np.concatenate(parts) if parts else np.zeros((0, n_views(profile.flip), 0), np.float32)
        if cache is not None:
            cache.write_chunk(c, block, contents.hexdigest())
        else:
            results[c] = block
    bar.close()
    if world > 1:
        results = _gather_chunks(results, cache, n_chunks)
    blocks = [results[c] if c in results else cache.read_chunk(c) for c in range(n_chunks)]  # type: ignore[union-attr]
    if not blocks:
        return np.zeros((0, n_views(profile.flip), encoder.embedding_dim or 0), dtype=np.float32)
    return np.concatenate(blocks)


def extract_embeddings(
    encoder: Encoder,
    images: ImageList,
    profile: Profile,
    options: ExtractOptions = ExtractOptions(),
    cache: FeatureCache | None = None,
) -> np.ndarray:
    """Flip-combined, unnormalised float32 embeddings ``(N, D or 2D)`` by ``profile.flip``."""
    return combine_flip(extract_raw(encoder, images, profile, options, cache), profile.flip)


def _dist_rank_world() -> tuple[int, int]:
    """(rank, world size) of an initialised ``torch.distributed`` group; (0, 1) otherwise (torch is not
    imported for this: a run that never initialised a group never loaded it)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather_chunks(
    results: dict[int, np.ndarray], cache: FeatureCache | None, n_chunks: int
) -> dict[int, np.ndarray]:
    """Bring every rank's chunks to every rank (through the cache files when there is a cache)."""
    import torch.distributed as dist

    if cache is not None:
        dist.barrier()
        return {}
    gathered: list[dict[int, np.ndarray] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, results)
    merged: dict[int, np.ndarray] = {}
    for part in gathered:
        merged.update(part or {})
    missing = [c for c in range(n_chunks) if c not in merged]
    if missing:
        raise RuntimeError(f"distributed extraction lost chunks {missing[:5]}")
    return merged


def init_distributed_from_env() -> bool:
    """Initialise ``torch.distributed`` when started by ``torchrun`` (WORLD_SIZE > 1); gloo on CPU, nccl on GPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    from facebench.optional import require_torch

    require_torch("sharded extraction under torchrun")
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return True

