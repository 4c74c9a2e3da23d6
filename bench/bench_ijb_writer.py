"""The IJB text writer (facebench.io.ijb, formatting vectorised in numpy) against pyarrow.csv.write_csv on
the same columns, IJB-C-sized, in one process: should the hand-written writer give way to the library?

Two files of the insightface layout, both written by each writer and compared byte for byte:

- ``ijbc_template_pair_label.txt``: 15,658,489 lines ``t1 t2 label`` (int64 columns);
- ``ijbc_name_5pts_score.txt``: 469,375 lines ``image x1 y1 ... x5 y5 score``, fixed 3 and 6 decimals;
  pyarrow has no fixed-decimal formatting of floats, so its columns are cast to ``decimal128`` first.

Each writer runs ``--reps`` times alternately; the best wall and CPU seconds are printed with the ratio
pyarrow / facebench (below 1: pyarrow is faster). Decision rule of issue 18: pyarrow replaces the writer only
with a clear win, since pyarrow is not otherwise needed by the light package.

    python bench/bench_ijb_writer.py                 # IJB-C sizes
    python bench/bench_ijb_writer.py --scale 0.1     # a quick run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from facebench.io import ijb

PAIRS, IMAGES = 15_658_489, 469_375


def arrow_write(path: Path, columns: list[pa.Array], names: list[str]) -> None:
    table = pa.table(columns, names=names)
    options = pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none")
    pacsv.write_csv(table, str(path), options)


def arrow_pairs(path: Path, t1: np.ndarray, t2: np.ndarray, label: np.ndarray) -> None:
    arrow_write(path, [pa.array(t1), pa.array(t2), pa.array(label.astype(np.int64))], ["a", "b", "c"])


def arrow_landmarks(path: Path, names: list[str], points: np.ndarray, scores: np.ndarray) -> None:
    def fixed(values: np.ndarray, decimals: int) -> pa.Array:
        # round half to even as facebench does, then an exact decimal of that many places
        scaled = np.rint(values * 10**decimals).astype(np.int64)
        words = np.empty((scaled.size, 2), dtype=np.int64)  # decimal128: little-endian low, high (sign) words
        words[:, 0], words[:, 1] = scaled, np.where(scaled < 0, -1, 0)
        decimal = pa.Array.from_buffers(pa.decimal128(18, decimals), scaled.size, [None, pa.py_buffer(words)])
        return decimal.cast(pa.string())

    cols = [pa.array(names)] + [fixed(points[:, k], 3) for k in range(10)] + [fixed(scores, 6)]
    arrow_write(path, cols, [f"c{i}" for i in range(len(cols))])


def timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of IJB-C's sizes (default 1)")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_pairs, n_images = int(PAIRS * args.scale), int(IMAGES * args.scale)
    t1 = rng.integers(1, 230_000, n_pairs)
    t2 = rng.integers(1, 230_000, n_pairs)
    label = (rng.random(n_pairs) < 0.001).astype(np.int64)
    names = [f"{i}.jpg" for i in range(n_images)]
    points = np.round(rng.uniform(0, 112, (n_images, 10)), 3)
    scores = np.round(rng.uniform(0, 1, n_images), 6)
    # pyarrow's decimals are exact: it must be fed the already rounded values facebench formats
    points_fb, scores_fb = points.copy(), scores.copy()
    with tempfile.TemporaryDirectory(prefix="bench_ijb_writer_") as tmp:
        work = Path(tmp)
        results = {}
        jobs = {
            "pairs": (
                lambda p: ijb.write_template_pairs(p, t1, t2, label),
                lambda p: arrow_pairs(p, t1, t2, label),
                n_pairs,
            ),
            "landmarks": (
                lambda p: ijb.write_name_5pts_score(p, names, points_fb, scores_fb),
                lambda p: arrow_landmarks(p, names, points, scores),
                n_images,
            ),
        }
        for what, (ours, arrow, lines) in jobs.items():
            best = {"facebench": (np.inf, np.inf), "pyarrow": (np.inf, np.inf)}
            for _ in range(args.reps):
                for name, fn in (("facebench", ours), ("pyarrow", arrow)):
                    wall, cpu = timed(fn, work / f"{what}.{name}.txt")
                    best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
            same = (work / f"{what}.facebench.txt").read_bytes() == (work / f"{what}.pyarrow.txt").read_bytes()
            results[what] = best
            fb, ar = best["facebench"], best["pyarrow"]
            print(f"{what}: {lines:,} lines; facebench {fb[0]:.2f} s wall / {fb[1]:.2f} s CPU, pyarrow "
                  f"{ar[0]:.2f} s / {ar[1]:.2f} s; ratio pyarrow / facebench: wall {ar[0] / fb[0]:.2f}, CPU "
                  f"{ar[1] / fb[1]:.2f}; bytes identical: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
