"""Identity centres and centre-to-centre cosine similarity (pure numpy, streamed in chunks).

Centre rule (insightface's MegaFace overlap check): every feature row is L2-normalised, the rows of one
identity are summed, and the sum is L2-normalised: ``c_k = normalise(sum_{i in k} f_i / |f_i|)``. Rows
with a zero, NaN or infinite norm are left out (and counted); an identity with no usable row has no
centre (a NaN row). Similarity is the cosine of two centres, ``c_t . c_b``; a pair is suspected when it is
strictly above the threshold (insightface: "cosine similarity larger than 0.4", default 0.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLD = 0.4
"""insightface asks MegaFace submitters to drop training identities with centre cosine > 0.4."""


@dataclass(frozen=True)
class Centres:
    """``centres[k]`` (unit rows, NaN where identity k has no usable row), rows used and rows left out."""

    centres: np.ndarray
    counts: np.ndarray
    skipped_rows: int

    @property
    def valid(self) -> np.ndarray:
        return self.counts > 0


def identity_centres(
    features: np.ndarray,
    row_identity: np.ndarray,
    n_identities: int,
    *,
    chunk_rows: int = 1 << 14,
) -> Centres:
    """Centres of ``n_identities`` identities from ``features`` (N, D) and each row's identity (N,).

    ``features`` may be a memory map: it is read ``chunk_rows`` rows at a time, so memory is one chunk
    plus the (K, D) float32 sums. Rows of an identity need not be contiguous.
    """
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {features.shape}")
    row_identity = np.asarray(row_identity)
    if row_identity.shape != (features.shape[0],):
        raise ValueError(f"row_identity must have {features.shape[0]} entries, got {row_identity.shape}")
    if row_identity.size and (row_identity.min() < 0 or row_identity.max() >= n_identities):
        raise ValueError(f"row identities must lie in [0, {n_identities})")
    dim = features.shape[1]
    sums = np.zeros((n_identities, dim), dtype=np.float32)
    from scipy import sparse  # imported on use: the CLI imports this module to build its help (bench/README.md)

    counts = np.zeros(n_identities, dtype=np.int64)
    skipped = 0
    for lo in range(0, features.shape[0], chunk_rows):
        x = np.array(features[lo : lo + chunk_rows], dtype=np.float32)  # a private, writable copy
        ids = row_identity[lo : lo + chunk_rows]
        norms = np.linalg.norm(x, axis=1)
        ok = np.isfinite(norms) & (norms > 0)
        if not ok.all():
            skipped += int((~ok).sum())
            x, ids, norms = x[ok], ids[ok], norms[ok]
        if ids.size == 0:
            continue
        x /= norms[:, None]
        present, slot = np.unique(ids, return_inverse=True)
        members = sparse.csr_matrix(
            (np.ones(ids.size, dtype=np.float32), (slot, np.arange(ids.size))), shape=(present.size, ids.size)
        )
        sums[present] += members @ x
        counts += np.bincount(ids, minlength=n_identities)
    norms = np.sqrt(np.einsum("ij,ij->i", sums, sums, dtype=np.float64)).astype(np.float32)
    good = (counts > 0) & (norms > 0)
    np.divide(sums, norms[:, None], out=sums, where=good[:, None])  # in place: no (K, D) copies
    sums[~good] = np.nan
    counts = np.where(good, counts, 0)
    return Centres(sums, counts, skipped)


def similar_pairs(
    train: np.ndarray,
    bench: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    chunk_elems: int = 1 << 25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train_index, bench_index, cosine)`` of every centre pair with cosine strictly above ``threshold``.

    Rows of NaN (identities without a centre) never match. The (T, B) score matrix is computed in row
    blocks of about ``chunk_elems`` scores, so 100K x 6K identities run in bounded memory. Pairs come in
    row-major order.
    """
    train = np.asarray(train, dtype=np.float32)
    bench = np.asarray(bench, dtype=np.float32)
    if train.ndim != 2 or bench.ndim != 2 or train.shape[1] != bench.shape[1]:
        raise ValueError(f"centres must be (T, D) and (B, D) with one D, got {train.shape} and {bench.shape}")
    bench_ok = np.isfinite(bench).all(axis=1)
    b = np.where(bench_ok[:, None], bench, 0.0).astype(np.float32)
    train_ok = np.isfinite(train).all(axis=1)
    rows = max(1, chunk_elems // max(1, b.shape[0]))
    ti: list[np.ndarray] = []
    bi: list[np.ndarray] = []
    cs: list[np.ndarray] = []
    for lo in range(0, train.shape[0], rows):
        block = train[lo : lo + rows]
        ok = train_ok[lo : lo + rows]
        scores = np.where(ok[:, None], block, 0.0).astype(np.float32) @ b.T
        scores[:, ~bench_ok] = -np.inf
        scores[~ok] = -np.inf
        r, c = np.nonzero(scores > threshold)
        ti.append(r + lo)
        bi.append(c)
        cs.append(scores[r, c])
    if not ti:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(ti).astype(np.int64), np.concatenate(bi).astype(np.int64), np.concatenate(cs)


def pair_cosines(train: np.ndarray, bench: np.ndarray, ti: np.ndarray, bi: np.ndarray) -> np.ndarray:
    """Cosine of the listed centre pairs (NaN when either has no centre)."""
    if len(ti) == 0:
        return np.zeros(0, np.float32)
    return np.einsum("ij,ij->i", train[ti], bench[bi]).astype(np.float32)
