"""All-to-all verification at 100,000 x 512 (about 5e9 impostor pairs): the whole TAR@FAR computation
(:func:`facebench.metrics.alltoall.all_to_all_tar_at_far`, targets 1e-6 ... 1e-1) against the bare blocked
float32 GEMM over the same upper-triangle tiles (results discarded), in one process.

Synthetic features: ``--ids`` identities with ``--per-id`` images each, image = identity centre + noise,
L2-normalised float32. It times, alternately, the baseline then the evaluation (``--reps`` times each) and
prints the ratio of the median wall times (goal <= 1.2), the CPU-time ratio, the passes made and the
evaluation's peak resident memory above the features (goal <= 1 GiB; Linux VmHWM, reset before each run).

    python bench/bench_alltoall.py                     # 100,000 x 512
    python bench/bench_alltoall.py --ids 2000          # 20,000 x 512, a quick run
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np

from facebench.metrics.alltoall import DEFAULT_BLOCK, all_to_all_tar_at_far, block_scores, upper_blocks
from facebench.metrics.megaface import l2_normalise

from bench_megaface import _reset_peak, _status_kib  # the same peak-RSS reading as the MegaFace bench


def features(ids: int, per_id: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(ids), per_id)
    centres = rng.standard_normal((ids, dim), dtype=np.float32)
    x = centres[labels]
    x += 2.5 * rng.standard_normal(x.shape, dtype=np.float32)
    return l2_normalise(x), labels


def bare_gemm(emb: np.ndarray, block: int) -> None:
    for _ in block_scores(emb, upper_blocks(emb.shape[0], block), block):
        pass


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
    print(f"{n} x {args.dim} features ({emb.nbytes / 2**20:.0f} MiB), {n * (n - 1) // 2:,} pairs, block {args.block}")
    base_wall, base_cpu, eval_wall, eval_cpu, peaks = [], [], [], [], []
    result = None
    for _ in range(args.reps):
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        bare_gemm(emb, args.block)
        base_wall.append(time.perf_counter() - w)
        base_cpu.append(time.process_time() - c)
        gc.collect()
        before = _status_kib("VmRSS")
        reset = _reset_peak()
        w, c = time.perf_counter(), time.process_time()
        result = all_to_all_tar_at_far(emb, labels, block=args.block)
        eval_wall.append(time.perf_counter() - w)
        eval_cpu.append(time.process_time() - c)
        if reset:
            peaks.append((_status_kib("VmHWM") - before) / 2**20)
        print(f"  bare {base_wall[-1]:.1f} s, evaluation {eval_wall[-1]:.1f} s ({result.passes} pass(es))")
    assert result is not None
    print(f"genuine {result.n_genuine:,}, impostor {result.n_impostor:,}")
    for far, point in result.points.items():
        print(f"  TAR@FAR={far:.0e}: {point.tar:.6f} (FAR {point.far:.3e}, tau {point.threshold:.6f})")
    ratio = np.median(eval_wall) / np.median(base_wall)
    print(f"wall ratio {ratio:.3f} (median of {args.reps}; goal <= 1.2), cpu ratio {np.median(eval_cpu) / np.median(base_cpu):.3f}")
    if peaks:
        print(f"peak RSS above the features during evaluation: {max(peaks):.2f} GiB (goal <= 1 GiB)")


if __name__ == "__main__":
    main()
