"""All-to-all verification at 100,000 x 512 (about 5e9 impostor pairs): the whole TAR@FAR computation
(:func:`facebench.metrics.alltoall.all_to_all_tar_at_far`, targets 1e-6 ... 1e-1) against the bare blocked
float32 GEMM over the same upper-triangle tiles (same tile size, products discarded), in one process.

The bare GEMM is run two ways and the faster one is the baseline: ``blas``, the tiles one after the other,
each product on all of the BLAS library's threads; ``pool``, the tiles as the evaluation computes them
(:func:`facebench.metrics.alltoall.tile_results`: a pool of threads, one per BLAS thread, each running
single-threaded products), with nothing scanned.

Synthetic features: ``--ids`` identities with ``--per-id`` images each, image = identity centre + noise,
L2-normalised float32. It times, alternately, both baselines then the evaluation (``--reps`` times each)
and prints the ratio of the median wall times to the faster baseline's (goal <= 1.2), the same for CPU
time, the passes made and the evaluation's peak resident memory above the features (goal <= 1 GiB; Linux
VmHWM, reset before each run).

    python bench/bench_alltoall.py                     # 100,000 x 512
    python bench/bench_alltoall.py --ids 2000          # 20,000 x 512, a quick run
"""

from __future__ import annotations

import argparse
import gc
import os
import time

from facebench.cpu import avoid_slow_avx512_sort

avoid_slow_avx512_sort(os.environ)  # numpy's code paths as the facebench command chooses them (facebench.cpu)

import numpy as np  # noqa: E402

from facebench.metrics.alltoall import DEFAULT_BLOCK, all_to_all_tar_at_far, tile_results, tile_side, upper_blocks
from facebench.metrics.blas import blas_threads
from facebench.metrics.megaface import l2_normalise

from bench_megaface import _reset_peak, _status_kib  # the same peak-RSS reading as the MegaFace bench


def features(ids: int, per_id: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(ids), per_id)
    centres = rng.standard_normal((ids, dim), dtype=np.float32)
    x = centres[labels]
    x += 2.5 * rng.standard_normal(x.shape, dtype=np.float32)
    return l2_normalise(x), labels


def bare_blas(emb: np.ndarray, block: int) -> None:
    """Each tile's product in turn on every BLAS thread, into one reused buffer."""
    buffer = np.empty(block * block, dtype=np.float32)
    for r0, r1, c0, c1 in upper_blocks(emb.shape[0], block):
        np.dot(emb[r0:r1], emb[c0:c1].T, out=buffer[: (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0))


def bare_pool(emb: np.ndarray, block: int) -> None:
    """The evaluation's tiles (a pool of single-threaded products), nothing scanned."""
    for _ in tile_results(emb, upper_blocks(emb.shape[0], block), block, lambda r0, c0, scores: None):
        pass


BASELINES = {"blas": bare_blas, "pool": bare_pool}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=10000)
    parser.add_argument("--per-id", type=int, default=10)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--block", type=int, default=DEFAULT_BLOCK)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    emb, labels = features(args.ids, args.per_id, args.dim, args.seed)
    n = emb.shape[0]
    block = min(tile_side(args.block, blas_threads()), n)  # the tiles the evaluation computes
    print(f"{n} x {args.dim} features ({emb.nbytes / 2**20:.0f} MiB), {n * (n - 1) // 2:,} pairs, block {block}")
    base: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in BASELINES}
    eval_wall, eval_cpu, peaks = [], [], []
    result = None
    for _ in range(args.reps):
        for name, bare in BASELINES.items():
            gc.collect()
            w, c = time.perf_counter(), time.process_time()
            bare(emb, block)
            base[name][0].append(time.perf_counter() - w)
            base[name][1].append(time.process_time() - c)
        gc.collect()
        before = _status_kib("VmRSS")
        reset = _reset_peak()
        w, c = time.perf_counter(), time.process_time()
        result = all_to_all_tar_at_far(emb, labels, block=block)
        eval_wall.append(time.perf_counter() - w)
        eval_cpu.append(time.process_time() - c)
        if reset:
            peaks.append((_status_kib("VmHWM") - before) / 2**20)
        bare_times = ", ".join(f"{name} {walls[-1]:.1f} s" for name, (walls, _) in base.items())
        print(f"  bare GEMM: {bare_times}; evaluation {eval_wall[-1]:.1f} s ({result.passes} pass(es))")
    assert result is not None
    print(f"genuine {result.n_genuine:,}, impostor {result.n_impostor:,}")
    for far, point in result.points.items():
        print(f"  TAR@FAR={far:.0e}: {point.tar:.6f} (FAR {point.far:.3e}, tau {point.threshold:.6f})")
    wall = {name: float(np.median(walls)) for name, (walls, _) in base.items()}
    cpu = {name: float(np.median(cpus)) for name, (_, cpus) in base.items()}
    fast_wall, fast_cpu = min(wall, key=wall.__getitem__), min(cpu, key=cpu.__getitem__)
    for name in wall:
        print(
            f"bare GEMM {name}: wall {wall[name]:.2f} s, cpu {cpu[name]:.2f} s; evaluation / {name}: "
            f"wall {np.median(eval_wall) / wall[name]:.3f}, cpu {np.median(eval_cpu) / cpu[name]:.3f}"
        )
    print(
        f"wall ratio {np.median(eval_wall) / wall[fast_wall]:.3f} (vs {fast_wall}, the faster; median of {args.reps}; "
        f"goal <= 1.2), cpu ratio {np.median(eval_cpu) / cpu[fast_cpu]:.3f} (vs {fast_cpu})"
    )
    if peaks:
        print(f"peak RSS above the features during evaluation: {max(peaks):.2f} GiB (goal <= 1 GiB)")


if __name__ == "__main__":
    main()
