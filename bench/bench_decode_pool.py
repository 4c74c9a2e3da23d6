"""The extraction decode pool (worker processes fed through multiprocessing queues,
``facebench.extraction.extract._iter_chip_batches``) against the library options, torch-free, in one process.

Each option yields the same uint8 chip batches, in order, of a list of raw JPEG files with landmarks
(decode + 5-point alignment, the demo renderer's 160x160 faces written to disk), with at most
``2 * workers + 2`` batches in flight:

- ``pool``: facebench's pool (``--workers`` processes; die with the parent, ignore SIGINT);
- ``processes``: ``concurrent.futures.ProcessPoolExecutor`` (same worker setup in its initializer);
- ``threads``: ``concurrent.futures.ThreadPoolExecutor`` (OpenCV releases the GIL while it decodes and warps).

The consumer stands in for the model with a fixed amount of numpy work per batch on the main thread (the
real model competes for the same cores). Runs alternate; the best wall time of ``--reps`` is printed per
option with the ratio to facebench's pool (above 1: the library option is slower), checking every option
gives identical chips.

    python bench/bench_decode_pool.py [--images 512] [--workers 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from facebench.demo.suite import DEMO_SEED, raw_jpeg
from facebench.extraction.extract import _iter_chip_batches, _load_batch, cv2_threads_off, die_with_parent
from facebench.extraction.images import ChipGeometry, ImageList, arcface_chip


def _process_setup(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    cv2_threads_off()


def _executor_batches(make_pool, images: ImageList, chip: ChipGeometry, indices: np.ndarray,
                      batch_size: int, window: int) -> Iterator[tuple[np.ndarray, bytes]]:
    """Batches in order from a pool made for this call (as facebench's pool is), ``window`` in flight."""
    batches = [indices[s : s + batch_size] for s in range(0, len(indices), batch_size)]
    with make_pool() as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(_load_batch, images, chip, batch))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def consume(batches: Iterator[tuple[np.ndarray, bytes]], work: np.ndarray) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = []
    for chips, _ in batches:
        out.append(chips)
        for _ in range(3):  # the model's share of the cores
            work @ work
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    chip = arcface_chip()
    window = 2 * args.workers + 2
    work = np.random.default_rng(0).standard_normal((160, 160)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="bench_decode_pool_") as tmp:
        paths, points = [], []
        for i in range(args.images):
            blob, landmarks = raw_jpeg((DEMO_SEED, 3_000_000 + i // 4, i % 4, 0.6))
            path = Path(tmp) / f"{i}.jpg"
            path.write_bytes(blob)
            paths.append(str(path))
            points.append(landmarks)
        images = ImageList("bench", paths=paths, landmarks=np.asarray(points, dtype=np.float64))
        indices = np.arange(args.images)
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        processes = lambda: ProcessPoolExecutor(  # noqa: E731
            args.workers, mp_context=context, initializer=_process_setup, initargs=(os.getpid(),))
        threads = lambda: ThreadPoolExecutor(args.workers)  # noqa: E731
        options = {
            "pool": lambda: _iter_chip_batches(images, chip, indices, args.batch_size, args.workers),
            "processes": lambda: _executor_batches(processes, images, chip, indices, args.batch_size, window),
            "threads": lambda: _executor_batches(threads, images, chip, indices, args.batch_size, window),
        }
        best = {name: np.inf for name in options}
        reference = None
        for _ in range(args.reps):
            for name, make in options.items():
                wall, chips = consume(make(), work)
                best[name] = min(best[name], wall)
                stacked = np.concatenate(chips)
                if reference is None:
                    reference = stacked
                assert np.array_equal(stacked, reference), f"{name} gives other chips"
    print(f"{args.images} raw JPEGs (decode + align), batch {args.batch_size}, {args.workers} workers, "
          f"best of {args.reps}; identical chips from every option")
    for name, wall in best.items():
        print(f"  {name:10s} {wall:.2f} s  {args.images / wall:7.0f} images/s  ratio to pool {wall / best['pool']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
