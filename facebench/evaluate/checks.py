"""Embeddings are checked before they are scored.

A model (or a features file) that outputs zero rows, NaN or infinite values, zero-dimensional rows, or the
same row for every image gives numbers that look like results: a zero row has cosine 0 with everything,
so all-zero MegaFace distractors never outrank a mate and rank-1 reads 100%. :func:`find_degenerate` is the
one pure check (arrays in, row indices out); :func:`check_embeddings` turns its findings into an error
naming the image rows, and every evaluator (pairs, folder, IJB, MegaFace) calls it on the features it
scores. Rows a protocol itself zeroes (MegaFace's facexzoo noise rule) are zeroed after this check and
reported as a counted warning by that protocol.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from facebench.errors import FacebenchError
from facebench.metrics.blas import blas_threads

BLOCK_BYTES = 8 << 20
"""Rows are checked in blocks of about this many bytes (features may be a memory-mapped file)."""
SHOWN = 5


@dataclass(frozen=True)
class Degenerate:
    """What :func:`find_degenerate` found: rows (absolute indices) with a NaN or infinite value, rows of zero
    L2 norm, whether the rows have zero dimensions, and whether all (two or more) rows are identical."""

    n_rows: int
    zero_dim: bool
    nonfinite: np.ndarray
    zero_norm: np.ndarray
    constant: bool

    @property
    def ok(self) -> bool:
        return not (self.zero_dim or self.nonfinite.size or self.zero_norm.size or self.constant)


def find_degenerate(features: np.ndarray, row_offset: int = 0, workers: int = 0) -> Degenerate:
    """Degenerate rows of a 2-D ``(N, D)`` array, read in blocks.

    Rules: a row is non-finite when any value is NaN or +-inf; a row has zero norm when all its values are
    exactly 0 (finite rows only); the output is constant when N >= 2, D >= 1 and every row equals row 0
    exactly; zero-dimensional when D == 0 (then no row is examined). Row indices are reported plus
    ``row_offset``. Blocks are checked by ``workers`` threads (0: one per BLAS thread); the findings do not
    depend on their number.
    """
    if features.ndim != 2:
        raise ValueError(f"expected (N, D) embeddings, got shape {features.shape}")
    n, d = features.shape
    empty = np.zeros(0, dtype=np.int64)
    if d == 0:
        return Degenerate(n, True, empty, empty, False)
    step = max(1, BLOCK_BYTES // max(1, features.itemsize * d))
    first = np.asarray(features[:1]) if n else None
    first_square = np.einsum("ij,ij->i", first, first) if n else None

    def scan(start: int) -> tuple[np.ndarray, np.ndarray, bool]:
        block = np.asarray(features[start : start + step])
        # one pass: a row's squared norm is not finite when the row has a NaN or an infinity and 0 when it is
        # all zeros; huge or tiny finite values can overflow or underflow it too, so the rows it flags are
        # then checked value by value. Rows equal to row 0 have its squared norm: only then are they compared.
        squares = np.einsum("ij,ij->i", block, block)
        flagged = np.flatnonzero(~np.isfinite(squares) | (squares == 0))
        rows = block[flagged]
        finite = np.isfinite(rows).all(axis=1)
        same = n >= 2 and bool((squares == first_square).all()) and bool((block == first).all())
        return flagged[~finite] + start, flagged[finite & ~rows.any(axis=1)] + start, same

    with ThreadPoolExecutor(max_workers=workers or blas_threads()) as pool:  # numpy leaves the GIL here
        found = list(pool.map(scan, range(0, n, step)))
    nonfinite = [f[0] for f in found]
    zero = [f[1] for f in found]
    constant = n >= 2 and all(f[2] for f in found)
    join = lambda parts: np.concatenate([empty, *parts]).astype(np.int64) + row_offset  # noqa: E731
    return Degenerate(n, False, join(nonfinite), join(zero), constant)


def may_be_degenerate(squared_norms: np.ndarray) -> bool:
    """Whether rows with these float64 squared L2 norms may be degenerate (:func:`find_degenerate`); False
    proves they are not. A row with a NaN or infinite value has a non-finite squared norm (a finite float32
    square cannot overflow float64), an all-zero row a zero one, and identical rows (or zero dimensions)
    equal ones; so a caller that has the norms anyway runs the full check only when this says so."""
    sq = np.asarray(squared_norms)
    if sq.size == 0:
        return False
    return not (np.isfinite(sq).all() and sq.all()) or (sq.size > 1 and sq.min() == sq.max())


def check_embeddings(
    features: np.ndarray, origin: str, describe: Callable[[int], str] | None = None, row_offset: int = 0,
    found: Degenerate | None = None,
) -> None:
    """Raise a FacebenchError when ``features`` are degenerate (:func:`find_degenerate`, or ``found``, its
    result when the caller already has it), naming ``origin``, the count and the first image rows
    (``describe(row)`` names an image)."""
    found = found if found is not None else find_degenerate(features, row_offset)
    if found.ok:
        return
    if found.zero_dim:
        raise FacebenchError(f"{origin}: the embeddings have 0 dimensions ({found.n_rows} rows); nothing to score")

    def row(r: int) -> str:
        return f"row {r} ({describe(r)})" if describe else f"row {r}"

    def others(indices: np.ndarray) -> str:
        if indices.size == 1:
            return f" (1 of {found.n_rows} rows)"
        named = ", ".join(row(int(r)) for r in indices[1:SHOWN])
        more = f" and {indices.size - SHOWN} more" if indices.size > SHOWN else ""
        return f" ({indices.size} of {found.n_rows} rows; also {named}{more})"

    if found.nonfinite.size:
        first = int(found.nonfinite[0])
        raise FacebenchError(f"{origin}: {row(first)} contains NaN or infinite values{others(found.nonfinite)}")
    if found.zero_norm.size:
        first = int(found.zero_norm[0])
        raise FacebenchError(
            f"{origin}: {row(first)} is all zeros{others(found.zero_norm)}: a zero embedding has cosine 0 with "
            "everything, so it cannot be scored; check the model or the features file"
        )
    raise FacebenchError(
        f"{origin}: all {found.n_rows} embeddings are identical (the output does not depend on the image); "
        "check the model, its input contract (`facebench doctor`) or the features file"
    )
