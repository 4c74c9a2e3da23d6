"""Why MegaFace keeps its own streamed engine: per block of distractors, the top-k accumulator
(``metrics.megaface.TopScores``) against exact per-trial counts (the rule of ``metrics.openset.stream_searches``,
which counts, for each search, the gallery scores above its one mate score), next to the block's matrix
product, in one process, single-threaded BLAS.

MegaFace has sum M(M-1) trials (153,634 on the real FaceScrub list): every image of an identity is in turn
the gallery mate of the others, so exact counts compare every distractor with every trial's mate score,
while the top-k engine keeps each probe's 10 largest distractor scores and reads every trial's rank off
them at the end. The accumulator is timed in steady state (lists already full, as for most of a 1M stream).

    python bench/bench_megaface_engines.py [--blocks 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bench_megaface import _probe_list
from facebench.metrics import megaface as mmf

BLOCK = 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks (default 5)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    _, labels = _probe_list(rng).identity_index()
    trial_p, trial_g = mmf.megaface_trials(labels)
    probes = mmf.l2_normalise(rng.standard_normal((labels.size, 512), dtype=np.float32))
    probes_t = np.ascontiguousarray(probes.T)
    mate = (probes @ probes.T)[trial_p, trial_g]
    top = mmf.TopScores(labels.size, 10, 0)
    # steady state: each probe's 10 largest of about 500,000 random distractor scores (~4.3 sigma)
    sigma = 1 / np.sqrt(512)
    top.per_probe[:] = -np.sort(-(4.3 + 0.15 * rng.standard_normal((labels.size, 10))) * sigma, axis=1)
    gemm = update = counts = 0.0
    above = np.zeros(trial_p.size, dtype=np.int64)
    with threadpool_limits(1, user_api="blas"):
        for _ in range(args.blocks):
            emb = mmf.l2_normalise(rng.standard_normal((BLOCK, 512), dtype=np.float32))
            t = time.process_time()
            scores = emb @ probes_t
            gemm += time.process_time() - t
            t = time.process_time()
            top.update(scores)
            update += time.process_time() - t
            t = time.process_time()
            for a in range(0, BLOCK, 64):  # exact counts, 64 distractors at a time
                above += np.count_nonzero(scores[a : a + 64, trial_p] > mate, axis=0)
            counts += time.process_time() - t
    per = 1e3 / args.blocks
    print(f"{labels.size:,} probes, {trial_p.size:,} trials; per {BLOCK}-distractor block (CPU ms, mean of {args.blocks}):")
    print(f"  matrix product {gemm * per:.1f}; top-10 accumulator {update * per:.1f} ({update / gemm:.3f} x the product); "
          f"exact per-trial counts {counts * per:.1f} ({counts / gemm:.1f} x the product)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
