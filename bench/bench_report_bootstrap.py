"""Template bootstrap of TAR@FAR at IJB-C scale: the fast exact kernel against re-computing a full ROC per
resample, in the same process, on the same draws.

    python bench/bench_report_bootstrap.py [--pairs 15658489] [--boot 200] [--baseline 3]

Builds an IJB-C-sized synthetic set (23,124 templates: 3,531 gallery x 19,593 probe; 15,658,489 pairs of
which 19,557 genuine; float32 cosine-like scores), then

- fast: :func:`facebench.report.bootstrap.tar_at_far_bootstrap` with the template design (a pair counted
  m(t1) m(t2) times), rule ``nearest``, for the table's FARs (1e-5, 1e-4) and for all six (1e-6 ... 1e-1);
- baseline: for the first few resamples of the same draws, the resample materialised (``np.repeat``) and
  read by ``facebench.metrics.roc.roc_curve`` + ``tar_at_far`` -- the straightforward computation;

and prints seconds per resample, the ratio, whether the baseline's TARs equal the fast ones bit for bit,
and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facebench.metrics.roc import roc_curve, tar_at_far  # noqa: E402
from facebench.report import bootstrap as fb  # noqa: E402

N_GALLERY, N_PROBE, N_GENUINE = 3_531, 19_593, 19_557


def synthetic(n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(scores float32, labels bool, template1, template2) shaped like IJB-C 1:1."""
    rng = np.random.default_rng(seed)
    n_subjects = 3_531
    subject = np.r_[np.arange(N_GALLERY) % n_subjects, rng.integers(0, n_subjects, N_PROBE)]
    genuine_g = rng.integers(0, N_GALLERY, N_GENUINE)
    # a probe of the same subject as each genuine gallery template
    probe_subjects = subject[N_GALLERY:]
    order = np.argsort(probe_subjects, kind="stable")
    bounds = np.searchsorted(probe_subjects[order], np.arange(n_subjects + 1))
    genuine_p = np.empty(N_GENUINE, dtype=np.int64)
    for i, g in enumerate(genuine_g):
        s = subject[g]
        lo, hi = bounds[s], bounds[s + 1]
        genuine_p[i] = N_GALLERY + (order[rng.integers(lo, hi)] if hi > lo else rng.integers(0, N_PROBE))
    n_imp = n_pairs - N_GENUINE
    t1 = np.r_[genuine_g, rng.integers(0, N_GALLERY, n_imp)].astype(np.int32)
    t2 = np.r_[genuine_p, N_GALLERY + rng.integers(0, N_PROBE, n_imp)].astype(np.int32)
    labels = subject[t1] == subject[t2]
    scores = np.where(labels, rng.normal(0.55, 0.12, n_pairs), rng.normal(0.0, 0.1, n_pairs)).astype(np.float32)
    return scores, labels, t1, t2


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=15_658_489)
    parser.add_argument("--boot", type=int, default=200, help="fast-path resamples timed")
    parser.add_argument("--baseline", type=int, default=3, help="resamples recomputed the straightforward way")
    args = parser.parse_args()

    t = time.perf_counter()
    scores, labels, t1, t2 = synthetic(args.pairs)
    print(
        f"synthetic set: {scores.size:,} pairs, {int(labels.sum()):,} genuine, "
        f"{np.unique(np.r_[t1, t2]).size:,} templates ({time.perf_counter() - t:.1f} s)"
    )

    t = time.perf_counter()
    design = fb.template_design(labels, t1, t2)
    t_design = time.perf_counter() - t
    print(f"design (template index, sparse impostor matrix): {t_design:.2f} s")

    results = {}
    sets = (
        ("table FARs 1e-5, 1e-4", (1e-5, 1e-4)),
        ("all six FARs 1e-6 ... 1e-1", (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
    )
    for name, targets in sets:
        t = time.perf_counter()
        res = fb.tar_at_far_bootstrap(scores, design, targets, "nearest", n_boot=args.boot, seed=0)
        total = time.perf_counter() - t
        # the same work split into the one-off sort and the resamples
        t = time.perf_counter()
        pairs = fb.SortedPairs.build(scores, design, max(targets))
        t_sort = time.perf_counter() - t
        t = time.perf_counter()
        for batch, w_gen, w_imp in fb._batches(design, args.boot, 0):
            for j in range(batch.shape[1]):
                fb.resampled_tar(pairs, batch[:, j], int(w_gen[j]), int(w_imp[j]), targets, "nearest")
        per = (time.perf_counter() - t) / args.boot
        results[name] = (targets, res, total, per)
        r4 = res[1e-4]
        print(
            f"fast, {name}: {total:.1f} s for {args.boot} resamples; split: sort once {t_sort:.1f} s "
            f"(prefix {pairs.prefix.genuine.size:,} pairs), then {1e3 * per:.1f} ms per resample; "
            f"TAR@1e-4 {100 * r4.estimate:.2f} [{100 * r4.low:.2f}, {100 * r4.high:.2f}]"
        )

    targets, res, _, per_fast = results["all six FARs 1e-6 ... 1e-1"]
    t = time.perf_counter()
    equal = True
    for b, m in enumerate(design.multiplicities(args.baseline, 0)):
        w = m[design.keys[0]] * m[design.keys[1]]
        idx = np.repeat(np.arange(scores.size), w)
        points = tar_at_far(roc_curve(labels[idx], scores[idx]), targets, "nearest")
        equal &= all(points[f].tar == res[f].samples[b] for f in targets)
        del idx
    per_baseline = (time.perf_counter() - t) / args.baseline
    per_fast_table = results["table FARs 1e-5, 1e-4"][3]
    print(f"baseline (materialise + roc_curve + tar_at_far): {per_baseline:.2f} s per resample")
    print(
        f"ratio per resample, baseline / fast: {per_baseline / per_fast:.0f}x (all six FARs), "
        f"{per_baseline / per_fast_table:.0f}x (table FARs)"
    )
    print(
        f"1000 resamples (plus design and sort once): fast {1000 * per_fast_table:.0f} s (table FARs) / "
        f"{1000 * per_fast:.0f} s (all six) "
        f"vs baseline {1000 * per_baseline / 60:.0f} min"
    )
    print(f"baseline TARs equal the fast ones bit for bit on {args.baseline} resamples: {equal}")
    print(f"peak resident memory: {peak_mb():,.0f} MB")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
