"""The IJB text writer: the former hand-written numpy formatter (kept below as the baseline) against
pyarrow.csv.write_csv, which facebench.io.ijb now uses, on the same columns, IJB-C-sized, in one process.

Two files of the insightface layout, both written by each writer and compared byte for byte:

- ``ijbc_template_pair_label.txt``: 15,658,489 lines ``t1 t2 label`` (int64 columns);
- ``ijbc_name_5pts_score.txt``: 469,375 lines ``image x1 y1 ... x5 y5 score``, fixed 3 and 6 decimals;
  pyarrow has no fixed-decimal formatting of floats, so its columns are cast to ``decimal128`` first.

Each writer runs ``--reps`` times alternately; the best wall and CPU seconds are printed with the ratio
pyarrow / numpy (below 1: pyarrow is cheaper), and the bytes of facebench.io.ijb's writer are checked too.
Decision (issue 18): pyarrow replaced the numpy formatter; it was already the IJB reader's engine and a
declared dependency, and it writes the same bytes for less CPU.

    python bench/bench_ijb_writer.py                 # IJB-C sizes
    python bench/bench_ijb_writer.py --scale 0.1     # a quick run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from facebench.io import ijb

PAIRS, IMAGES = 15_658_489, 469_375


# ------------------------------------------------------------------ the former writer (facebench <= 52277c5)

# Text is assembled vectorised: each column of a block of rows becomes a pair (characters (n, width)
# uint8, mask (n, width) bool), so that row i reads chars[i][mask[i]]; the block's bytes are the
# concatenated columns and separators selected by their masks (row-major), written in one call.
_Column = tuple[str, object]  # (kind: "int" | "fixed<decimals>" | "str" | "str<forbidden chars>", values)
_ROWS_PER_BLOCK = 1 << 20


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative int64 ``values``, right-aligned and zero-padded to ``width``."""
    out = np.empty((values.size, width), dtype=np.uint8)
    rest = values.copy()
    for k in range(width - 1, -1, -1):
        out[:, k] = 48 + rest % 10
        rest //= 10
    return out


def _int_chars(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal integers, a minus sign when negative, no padding."""
    v = np.asarray(values)
    if v.dtype.kind not in "iub":
        raise ValueError(f"integer column expected, got dtype {v.dtype}")
    v = v.astype(np.int64).ravel()
    magnitude = np.abs(v)
    top = int(magnitude.max()) if v.size else 0
    width = len(str(top))
    n_digits = np.ones(v.size, dtype=np.int64)
    power = 10
    while power <= top:
        n_digits += magnitude >= power
        power *= 10
    chars = _digits(magnitude, width)
    mask = np.arange(width)[None, :] >= (width - n_digits)[:, None]
    negative = v < 0
    if negative.any():
        chars = np.concatenate([np.full((v.size, 1), ord("-"), np.uint8), chars], axis=1)
        mask = np.concatenate([negative[:, None], mask], axis=1)
    return chars, mask


def _fixed_chars(values: np.ndarray, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point decimals (``-12.345``): ``|v| * 10**decimals`` rounded half to even, then split."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(v).all():
        raise ValueError("cannot write NaN or infinite values")
    scale = 10**decimals
    scaled = np.rint(np.abs(v) * scale).astype(np.int64)
    whole, frac = np.divmod(scaled, scale)
    chars, mask = _int_chars(whole)
    negative = (v < 0) & (scaled != 0)
    if negative.any():
        chars = np.concatenate([np.full((v.size, 1), ord("-"), np.uint8), chars], axis=1)
        mask = np.concatenate([negative[:, None], mask], axis=1)
    if decimals > 0:
        point = np.full((v.size, 1), ord("."), np.uint8)
        chars = np.concatenate([chars, point, _digits(frac, decimals)], axis=1)
        mask = np.concatenate([mask, np.ones((v.size, decimals + 1), dtype=bool)], axis=1)
    return chars, mask


def _str_chars(values: Sequence[str], forbidden: bytes) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 strings; an empty value or one containing whitespace or a ``forbidden`` byte is an error."""
    encoded = np.char.encode(np.asarray(values).astype(str), "utf-8")
    width = max(1, encoded.dtype.itemsize)
    chars = np.ascontiguousarray(encoded).view(np.uint8).reshape(len(encoded), width)
    mask = chars != 0
    bad = ~mask.any(axis=1)
    for byte in b" \t\r\n\v\f" + forbidden:
        bad |= (chars == byte).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"value {np.asarray(values)[i]!r} (row {i}) is empty or contains whitespace or {forbidden!r}")
    return chars, mask


def _column_chars(kind: str, values: object) -> tuple[np.ndarray, np.ndarray]:
    if kind == "int":
        return _int_chars(values)  # type: ignore[arg-type]
    if kind.startswith("fixed"):
        return _fixed_chars(values, int(kind[5:]))  # type: ignore[arg-type]
    return _str_chars(values, kind[3:].encode())  # type: ignore[arg-type]


def _write_rows(path: str | Path, columns: list[_Column], sep: bytes, header: bytes = b"") -> None:
    lengths = {len(values) for _, values in columns}  # type: ignore[arg-type]
    if len(lengths) != 1:
        raise ValueError(f"columns differ in length: {sorted(lengths)}")
    n = lengths.pop()
    sep_code = np.frombuffer(sep, dtype=np.uint8)
    with open(path, "wb") as handle:
        handle.write(header)
        for start in range(0, n, _ROWS_PER_BLOCK):
            stop = min(n, start + _ROWS_PER_BLOCK)
            m = stop - start
            parts, masks = [], []
            for k, (kind, values) in enumerate(columns):
                if k:
                    parts.append(np.broadcast_to(sep_code, (m, sep_code.size)))
                    masks.append(np.ones((m, sep_code.size), dtype=bool))
                chars, mask = _column_chars(kind, values[start:stop])  # type: ignore[index]
                parts.append(chars)
                masks.append(mask)
            parts.append(np.full((m, 1), ord("\n"), dtype=np.uint8))
            masks.append(np.ones((m, 1), dtype=bool))
            block = np.concatenate(parts, axis=1)
            handle.write(block[np.concatenate(masks, axis=1)].tobytes())


def numpy_pairs(path: Path, t1: np.ndarray, t2: np.ndarray, label: np.ndarray) -> None:
    _write_rows(path, [("int", t1), ("int", t2), ("int", label)], b" ")


def numpy_landmarks(path: Path, names: list[str], points: np.ndarray, scores: np.ndarray) -> None:
    columns: list[_Column] = [("str", names)] + [("fixed3", points[:, k]) for k in range(10)]
    _write_rows(path, columns + [("fixed6", scores)], b" ")


# ------------------------------------------------------------------ pyarrow


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
    with tempfile.TemporaryDirectory(prefix="bench_ijb_writer_") as tmp:
        work = Path(tmp)
        results = {}
        writers = {
            "pairs": lambda p: ijb.write_template_pairs(p, t1, t2, label),
            "landmarks": lambda p: ijb.write_name_5pts_score(p, names, points, scores),
        }
        jobs = {
            "pairs": (
                lambda p: numpy_pairs(p, t1, t2, label),
                lambda p: arrow_pairs(p, t1, t2, label),
                n_pairs,
            ),
            "landmarks": (
                lambda p: numpy_landmarks(p, names, points, scores),
                lambda p: arrow_landmarks(p, names, points, scores),
                n_images,
            ),
        }
        for what, (ours, arrow, lines) in jobs.items():
            best = {"numpy": (np.inf, np.inf), "pyarrow": (np.inf, np.inf)}
            for _ in range(args.reps):
                for name, fn in (("numpy", ours), ("pyarrow", arrow)):
                    wall, cpu = timed(fn, work / f"{what}.{name}.txt")
                    best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
            ours_now = writers[what]
            ours_now(work / f"{what}.io_ijb.txt")
            texts = {(work / f"{what}.{n}.txt").read_bytes() for n in ("numpy", "pyarrow", "io_ijb")}
            same = len(texts) == 1
            results[what] = best
            fb, ar = best["numpy"], best["pyarrow"]
            print(f"{what}: {lines:,} lines; numpy {fb[0]:.2f} s wall / {fb[1]:.2f} s CPU, pyarrow "
                  f"{ar[0]:.2f} s / {ar[1]:.2f} s; ratio pyarrow / numpy: wall {ar[0] / fb[0]:.2f}, CPU "
                  f"{ar[1] / fb[1]:.2f}; bytes identical (numpy, pyarrow, facebench.io.ijb): {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
