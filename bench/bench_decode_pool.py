"""The extraction decode pool: the former hand-written worker processes fed through multiprocessing queues
(kept below as the baseline) against the library options, torch-free.

Each option yields the same uint8 chip batches, in order, of a list of raw JPEG files with landmarks
(decode + 5-point alignment, the demo renderer's 160x160 faces written to disk), with at most
``2 * workers + 2`` batches in flight:

- ``pool``: the former pool (``--workers`` processes; die with the parent, ignore SIGINT);
- ``processes``: ``concurrent.futures.ProcessPoolExecutor`` (same worker setup in its initializer);
- ``threads``: ``concurrent.futures.ThreadPoolExecutor`` (OpenCV releases the GIL while it decodes and
  warps): ``facebench.extraction.extract._iter_chip_batches`` since issue 18, chosen by this bench (no
  slower) and because a forked worker can hang when the parent has used OpenCV's thread pool.

The consumer stands in for the model with a fixed amount of numpy work per batch on the main thread (the
real model competes for the same cores). Every measurement runs in a fresh process (a process that has used
OpenCV's thread pool deadlocks children it forks when they call into OpenCV), alternating options; the best
wall time of ``--reps`` is printed per option with the ratio to facebench's pool (above 1: the library
option is slower), checking every option gives identical chips.

    python bench/bench_decode_pool.py [--images 512] [--workers 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import queue
import threading
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facebench.demo.suite import DEMO_SEED, raw_jpeg
from facebench.errors import FacebenchError
from facebench.extraction.extract import _iter_chip_batches, _load_batch, map_in_window
from facebench.extraction.images import ChipGeometry, ImageList, arcface_chip


# ------------------------------------------------------------- the former pool (facebench <= 52277c5)

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


def _former_pool_batches(
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


# ------------------------------------------------------------- the library options


def _process_setup(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    cv2_threads_off()


def _executor_batches(make_pool, images: ImageList, chip: ChipGeometry, indices: np.ndarray,
                      batch_size: int, window: int) -> Iterator[tuple[np.ndarray, bytes]]:
    """Batches in order from a pool made for this call (as facebench's pool is), ``window`` in flight."""
    batches = [indices[s : s + batch_size] for s in range(0, len(indices), batch_size)]
    with make_pool() as pool:
        yield from map_in_window(pool, partial(_load_batch, images, chip), batches, window)


def consume(batches: Iterator[tuple[np.ndarray, bytes]], work: np.ndarray) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = []
    for chips, _ in batches:
        out.append(chips)
        for _ in range(3):  # the model's share of the cores
            work @ work
    return time.perf_counter() - start, out


def render(directory: Path, n: int) -> None:
    """Write ``n`` raw JPEGs and their landmarks (``landmarks.npy``) into ``directory``."""
    points = []
    for i in range(n):
        blob, landmarks = raw_jpeg((DEMO_SEED, 3_000_000 + i // 4, i % 4, 0.6))
        (directory / f"{i}.jpg").write_bytes(blob)
        points.append(landmarks)
    np.save(directory / "landmarks.npy", np.asarray(points, dtype=np.float64))


def measure(directory: Path, n: int, option: str, workers: int, batch_size: int) -> tuple[float, str]:
    """Wall seconds of one option over the images, and a digest of the chips (same for every option)."""
    images = ImageList("bench", paths=[str(directory / f"{i}.jpg") for i in range(n)],
                       landmarks=np.load(directory / "landmarks.npy"))
    chip, indices, window = arcface_chip(), np.arange(n), 2 * workers + 2
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    options = {
        "pool": lambda: _former_pool_batches(images, chip, indices, batch_size, workers),
        "processes": lambda: _executor_batches(
            lambda: ProcessPoolExecutor(workers, mp_context=context, initializer=_process_setup,
                                        initargs=(os.getpid(),)), images, chip, indices, batch_size, window),
        "threads": lambda: _iter_chip_batches(images, chip, indices, batch_size, workers),  # facebench's now
    }
    work = np.random.default_rng(0).standard_normal((160, 160)).astype(np.float32)
    wall, chips = consume(options[option](), work)
    return wall, hashlib.sha256(np.concatenate(chips).tobytes()).hexdigest()


OPTIONS = ("pool", "processes", "threads")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("DIR", "OPTION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement in a fresh process: no option inherits another's OpenCV or pool state
        wall, digest = measure(Path(args.child[0]), args.images, args.child[1], args.workers, args.batch_size)
        print(json.dumps({"wall": wall, "digest": digest}))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_decode_pool_") as tmp:
        common = [sys.executable, __file__, "--images", str(args.images), "--workers", str(args.workers),
                  "--batch-size", str(args.batch_size)]
        # rendered in a child too: a parent that used OpenCV's thread pool must not fork decode workers
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                        f"from bench_decode_pool import render; from pathlib import Path; render(Path({tmp!r}), {args.images})"],
                       check=True)
        best = {name: np.inf for name in OPTIONS}
        digests = set()
        for _ in range(args.reps):
            for name in OPTIONS:
                out = subprocess.run(common + ["--child", tmp, name], check=True, capture_output=True, text=True, timeout=600)
                got = json.loads(out.stdout.strip().splitlines()[-1])
                best[name] = min(best[name], got["wall"])
                digests.add(got["digest"])
    print(f"{args.images} raw JPEGs (decode + align), batch {args.batch_size}, {args.workers} workers, best of "
          f"{args.reps}, each run in a fresh process; chips identical across options: {len(digests) == 1}")
    for name, wall in best.items():
        print(f"  {name:10s} {wall:.2f} s  {args.images / wall:7.0f} images/s  ratio to the former pool {wall / best['pool']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
