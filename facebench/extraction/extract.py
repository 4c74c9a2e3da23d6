"""Batched embedding extraction: worker processes decode and align while the model runs.

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
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from facebench.extraction.cache import FeatureCache
from facebench.errors import FacebenchError
from facebench.extraction.images import ChipGeometry, ImageList, content_digest
from facebench.models.base import Encoder
from facebench.extraction.preprocess import Profile, chip_geometry
from facebench.progress import progress

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 4096


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


def _decode_worker(images: ImageList, chip: ChipGeometry, tasks: Any, results: Any, parent: int) -> None:
    """Worker loop: ``(batch_no, indices)`` tasks in, ``(batch_no, chips | error)`` out, until ``None``.

    The worker dies with its parent (`die_with_parent`) and ignores Ctrl-C: the terminal's SIGINT reaches
    the whole process group, and the parent alone reports it and stops the workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    cv2_threads_off()
    while (task := tasks.get()) is not None:
        batch_no, indices = task
        try:
            results.put((batch_no, *_load_batch(images, chip, indices), None))
        except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
            results.put((batch_no, None, None, exc if isinstance(exc, FacebenchError) else RuntimeError(repr(exc))))


PR_SET_PDEATHSIG = 1
"""``prctl`` option (linux/prctl.h): the signal a process receives when its parent thread exits."""
WATCHDOG_SECONDS = 1.0


def die_with_parent(parent: int) -> None:
    """Make this (child) process exit when process ``parent`` is gone, however the parent ended.

    Rule: on Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG, SIGKILL)``);
    everywhere, a daemon thread checks every ``WATCHDOG_SECONDS`` that ``os.getppid()`` is still ``parent``
    and ends the process (``os._exit(1)``) when it is not (the parent died and the child was re-parented).
    A parent that died before this call is caught by the same comparison, at once.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl in this libc: the watchdog alone remains
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="facebench-parent-watchdog", daemon=True).start()


def cv2_threads_off() -> None:
    """One OpenCV thread per decode worker (the workers are the parallelism)."""
    import cv2

    cv2.setNumThreads(1)


def _iter_chip_batches(
    images: ImageList, chip: ChipGeometry, indices: np.ndarray, batch_size: int, workers: int
) -> Iterator[tuple[np.ndarray, bytes]]:
    """Yield uint8 ``(B, H, W, 3)`` batches of chips in index order, decoded by ``workers`` processes, each
    with the content digests of its images (`_load_batch`).

    At most ``2 * workers + 2`` batches are in flight, so memory stays bounded when the model is slower
    than decoding; a worker's error is raised here with its message.
    """
    batches = [indices[s : s + batch_size] for s in range(0, len(indices), batch_size)]
    if workers <= 0 or len(batches) <= 1:
        for batch in batches:
            yield _load_batch(images, chip, batch)
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_decode_worker, args=(images, chip, tasks, results, os.getpid()), daemon=True)
             for _ in range(min(workers, len(batches)))]
    for proc in procs:
        proc.start()
    window = 2 * len(procs) + 2
    sent = 0
    done: dict[int, tuple[np.ndarray, bytes]] = {}
    try:
        for batch_no in range(len(batches)):
            while sent < len(batches) and sent < batch_no + window:
                tasks.put((sent, batches[sent]))
                sent += 1
            while batch_no not in done:
                got, chips, digests, error = _get_result(results, procs)
                if error is not None:
                    raise error
                done[got] = (chips, digests)
            yield done.pop(batch_no)
    finally:
        for _ in procs:
            tasks.put(None)
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        tasks.close()
        results.close()


def _get_result(results: Any, procs: list[Any]) -> tuple[int, np.ndarray | None, bytes | None, BaseException | None]:
    """The next result; a worker that died without answering (killed, out of memory) is an error."""
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            dead = [p for p in procs if not p.is_alive()]
            if dead:
                raise RuntimeError(f"a decode worker exited with status {dead[0].exitcode}") from None


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

