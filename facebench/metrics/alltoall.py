"""All-to-all verification: every pair among N embeddings, TAR at FAR down to 1e-6, never holding N x N scores.

Pairs are the unordered pairs ``i < j``; *genuine* when ``labels[i] == labels[j]``, *impostor* otherwise.
The score is the float32 dot product of the two rows as a blocked float32 GEMM computes it (pass
L2-normalised rows for cosines). TAR at FAR f is the operating-point kernel's
:func:`facebench.metrics.operating.rate_threshold` with comparison ``">"`` (the supremum of TAR over the
thresholds whose FAR is at most f: the ``le`` read-off of :func:`facebench.metrics.roc.tar_at_far` on the
full ROC, the TPIR rule ``best``, MegaFace's :func:`facebench.metrics.megaface.tar_at_far`), found without
holding the impostor scores:

- ``k = max{k : k / n_impostor <= f}`` (:func:`facebench.metrics.operating.allowed_count`);
- ``tau`` = the (k+1)-th largest impostor score; a pair is accepted when ``score > tau``;
- ``TAR = #{genuine > tau} / n_genuine``, the achieved ``FAR = #{impostor > tau} / n_impostor`` (<= f);
- when ``k >= n_impostor`` every pair may be accepted: TAR 1, FAR 1, ``tau = -inf``.

How tau is found exactly in a streamed pass over the upper-triangle blocks of the score matrix:

1. A seeded sample of impostor scores (random rows x random columns) brackets each tau: ``(lo, hi]``
   with the sample ranks ``r -+ (6 sd + 2)`` around the expected rank ``r = (k+1)/n_impostor * m``.
2. One pass computes each block once; scores above the lowest ``lo`` are extracted, and per target the
   exact number above ``hi`` is counted and the values inside ``(lo, hi]`` are kept. Genuine scores are
   gathered from the same blocks (so they are the very values counted) and subtracted from the counts and
   the kept values afterwards. The blocks go to a pool of threads, one per BLAS thread, each computing a
   block with single-threaded BLAS and scanning it at once (:func:`tile_results`), so the scans run on
   every core beside the products instead of competing with a multi-threaded product for the cores; the
   counts and values are merged in block order. A block is scanned in strips of rows that stay in the CPU
   cache; when the lowest bracket lies below a large share of the scores (FAR 1e-1: a tenth of all
   pairs), its count above ``hi`` is taken from a mask and only its band is extracted with the scores
   above the next bracket's ``lo``, instead of extracting every score above its ``lo``.
3. When ``#{impostor > hi} <= k < #{impostor > lo}``, tau is the ``(k - #{> hi} + 1)``-th largest kept
   value: exact. Otherwise (an unlucky sample, or more than ``max_band`` values in the bracket) further
   passes narrow the bracket with exact counts at 256 edges (a histogram with float32 edges compared
   exactly), then keep the values of the one bin that holds tau. Every pass is exact, so the result does
   not depend on the sample, only the number of passes does.
"""

from __future__ import annotations

import queue
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from facebench.metrics._validation import as_scores, check_rate
from facebench.metrics.blas import blas_threads, single_threaded_blas
from facebench.metrics.megaface import VerificationPoint, genuine_pairs
from facebench.metrics.operating import allowed_count, count_accepted

RULE = (
    "all-to-all: every unordered pair i<j; genuine = same label; TAR at the best threshold with FAR <= target "
    "(operating.rate_threshold '>': accept score > tau, tau = the (k+1)-th largest impostor score, "
    "k = max{k : k/n_impostor <= target}; the le read-off)"
)
#: The acceptance comparison of :data:`RULE` (:data:`facebench.metrics.operating.COMPARISONS`).
COMPARISON = ">"
DEFAULT_BLOCK = 4096
DEFAULT_SAMPLE = (512, 8192)
DEFAULT_MAX_BAND = 1 << 24
HISTOGRAM_EDGES = 256
DENSE_SHARE = 1 / 32
"""A lowest bracket whose lo more than this share of the pairs exceeds is counted with masks (`_stream_pass`)."""
STRIP_CELLS = 1 << 19
"""Scores a tile is scanned in at a time (2 MiB of float32: a strip of rows stays in the CPU cache)."""
TILE_MEMORY = 1 << 29
"""Bytes the workers' float32 tiles may take together (:func:`tile_side`)."""
_Z = 6.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class AllToAllResult:
    """TAR at each FAR target, the genuine pairs ``(genuine_i[g], genuine_j[g])`` with their scores (as
    the blocks computed them), the pair counts and how many passes over the score matrix were made."""

    points: dict[float, VerificationPoint]
    genuine_scores: np.ndarray
    genuine_i: np.ndarray
    genuine_j: np.ndarray
    n_genuine: int
    n_impostor: int
    passes: int
    rule: str = RULE


@dataclass
class _Bracket:
    """What one pass learns about a target: tau lies in ``(lo, hi]``; ``edges`` set: histogram mode."""

    lo: float
    hi: float
    edges: np.ndarray | None = None
    above: int = 0  # all pairs (genuine included) scoring > hi
    kept: list[np.ndarray] = field(default_factory=list)
    n_kept: int = 0
    overflow: bool = False
    bins: np.ndarray | None = None
    share: float = 0.0  # the sample's estimate of the fraction of pairs scoring > lo (0: unknown)


def upper_blocks(n: int, block: int) -> list[tuple[int, int, int, int]]:
    """The blocks ``(r0, r1, c0, c1)`` covering the upper triangle of an n x n matrix, row block <= column
    block, in row-major order."""
    starts = list(range(0, n, block))
    return [(r, min(r + block, n), c, min(c + block, n)) for i, r in enumerate(starts) for c in starts[i:]]


def tile_side(block: int, workers: int) -> int:
    """The side of the tiles that ``workers`` threads compute at once: ``block``, or less (but at least 256)
    so that their float32 tiles fit in :data:`TILE_MEMORY` together (the memory bound on many cores)."""
    fit = int(np.sqrt(TILE_MEMORY / 4 / max(1, workers)))
    return min(block, max(256, fit))


def tile_results(
    emb: np.ndarray,
    blocks: Sequence[tuple[int, int, int, int]],
    block: int,
    scan: Callable[[int, int, np.ndarray], _T],
    workers: int = 0,
) -> Iterator[_T]:
    """``scan(r0, c0, S)`` for each block ``(r0, r1, c0, c1)`` of ``blocks``, in block order, where
    ``S = emb[r0:r1] @ emb[c0:c1].T`` (float32). A pool of ``workers`` threads (0: as many as the BLAS
    library has) computes each tile with single-threaded BLAS into a ``block`` x ``block`` buffer of its
    own and scans it at once, while it is fresh in the cache; ``scan`` may overwrite ``S`` but not keep
    it. At most ``2 * workers`` tiles' results wait to be taken; the BLAS library stays single-threaded
    (for the whole process) until the iteration ends."""
    n_workers = max(1, min(workers or blas_threads(), len(blocks)))
    buffers: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
    for _ in range(n_workers):
        buffers.put(np.empty(block * block, dtype=np.float32))

    def work(tile: tuple[int, int, int, int]) -> _T:
        r0, r1, c0, c1 = tile
        buffer = buffers.get()
        try:
            scores = buffer[: (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
            np.dot(emb[r0:r1], emb[c0:c1].T, out=scores)
            return scan(r0, c0, scores)
        finally:
            buffers.put(buffer)

    with single_threaded_blas(), ThreadPoolExecutor(n_workers, thread_name_prefix="alltoall") as pool:
        pending: deque[Future[_T]] = deque()
        for tile in blocks:
            pending.append(pool.submit(work, tile))
            if len(pending) > 2 * n_workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def all_to_all_tar_at_far(
    embeddings: ArrayLike,
    labels: ArrayLike,
    targets: Sequence[float] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    block: int = DEFAULT_BLOCK,
    sample: tuple[int, int] = DEFAULT_SAMPLE,
    seed: int = 0,
    max_band: int = DEFAULT_MAX_BAND,
    workers: int = 0,
) -> AllToAllResult:
    """TAR at each FAR target over every pair of ``embeddings`` (module rule), streamed in ``block`` x
    ``block`` tiles of the score matrix (fewer on many cores: :func:`tile_side`) by ``workers`` threads (0:
    as many as the BLAS library has); the result depends on neither. Memory beyond the embeddings is one
    tile and its masks per worker, the genuine scores and at most ``max_band`` kept scores per target.

    >>> emb = np.eye(4, dtype=np.float32)[[0, 0, 1, 2, 3]]
    >>> r = all_to_all_tar_at_far(emb, [0, 0, 1, 2, 3], targets=[0.0])
    >>> r.n_genuine, r.n_impostor, r.points[0.0].tar
    (1, 9, 1.0)
    """
    emb = np.ascontiguousarray(as_scores(embeddings, "embeddings", ndim=2), dtype=np.float32)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size != emb.shape[0]:
        raise ValueError(f"labels must be 1-D with one entry per embedding ({emb.shape[0]}); got shape {labels.shape}")
    if block < 1:
        raise ValueError(f"block must be >= 1; got {block}")
    wanted = [check_rate(t, "FAR target") for t in targets]
    n = emb.shape[0]
    gi, gj = genuine_pairs(labels)
    workers = workers or blas_threads()
    block = min(tile_side(block, workers), n) if n else 1
    gkey = _block_key(gi, gj, block, n)
    order = np.lexsort((gj, gi, gkey))
    gi, gj, gkey = gi[order], gj[order], gkey[order]
    n_genuine = int(gi.size)
    n_impostor = n * (n - 1) // 2 - n_genuine
    if n_genuine == 0 or n_impostor == 0:
        raise ValueError(
            f"all-to-all verification needs genuine and impostor pairs; got {n_genuine} genuine and {n_impostor} "
            "impostor (every identity needs two images, and two identities are needed)"
        )
    blocks = upper_blocks(n, block)
    ks = {t: allowed_count(n_impostor, t) for t in wanted}
    open_targets = [t for t in wanted if ks[t] < n_impostor]
    brackets = _sample_brackets(emb, labels, [ks[t] for t in open_targets], n_impostor, sample, seed)
    pending = dict(zip(open_targets, brackets))
    genuine = np.empty(0, dtype=np.float32)
    bound = float(np.max(np.einsum("ij,ij->i", emb, emb, dtype=np.float64))) * 1.001 + 1e-6  # |score| <= this
    resolved: dict[float, tuple[float, int]] = {}
    passes = 0
    genuine_sorted = genuine
    while pending:
        passes += 1
        found = _stream_pass(
            emb, blocks, block, list(pending.values()), gi, gj, gkey, passes == 1, max_band, workers
        )
        if passes == 1:
            genuine, genuine_sorted = found, np.sort(found)
        for t in list(pending):
            outcome = _resolve(pending[t], ks[t], genuine_sorted, bound, max_band)
            if isinstance(outcome, _Bracket):
                pending[t] = outcome
            else:
                resolved[t] = outcome
                del pending[t]
    points: dict[float, VerificationPoint] = {}
    for t in wanted:
        if t not in resolved:
            points[t] = VerificationPoint(1.0, 1.0, float("-inf"))
            continue
        tau, accepted = resolved[t]
        tar = count_accepted(genuine_sorted, tau, COMPARISON) / n_genuine
        points[t] = VerificationPoint(float(tar), accepted / n_impostor, tau)
    return AllToAllResult(points, genuine, gi, gj, n_genuine, n_impostor, passes)


def _sample_brackets(
    emb: np.ndarray, labels: np.ndarray, ks: Sequence[int], n_impostor: int, sample: tuple[int, int], seed: int
) -> list[_Bracket]:
    """Brackets ``(lo, hi]`` for the (k+1)-th largest impostor score from a seeded sample (module step 1);
    an end the sample cannot place is infinite."""
    n = emb.shape[0]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, min(n, sample[0]), replace=False))
    cols = np.sort(rng.choice(n, min(n, sample[1]), replace=False))
    scores = emb[rows] @ emb[cols].T
    values = np.sort(scores[labels[rows][:, None] != labels[cols][None, :]])[::-1]
    m = values.size
    brackets = []
    for k in ks:
        q = (k + 1) / n_impostor
        r = q * m
        spread = _Z * np.sqrt(m * q * (1 - q)) + 2
        top, bottom = int(np.floor(r - spread)), int(np.ceil(r + spread))
        hi = float(values[top]) if 0 <= top < m else float("inf")
        lo = float(values[bottom]) if bottom < m else float("-inf")
        if not lo < hi:
            lo = float("-inf")
        brackets.append(_Bracket(lo, hi, share=min(1.0, bottom / m) if bottom < m else 1.0))
    return brackets


def _block_key(gi: np.ndarray, gj: np.ndarray, block: int, n: int) -> np.ndarray:
    """The tile of each pair ``(i, j)``, ``i < j``, numbered row-major: ``(i // block) * width + j // block``."""
    width = n // block + 1
    return (gi // block) * width + gj // block


def _stream_pass(
    emb: np.ndarray,
    blocks: Sequence[tuple[int, int, int, int]],
    block: int,
    brackets: Sequence[_Bracket],
    gi: np.ndarray,
    gj: np.ndarray,
    gkey: np.ndarray,
    gather_genuine: bool,
    max_band: int,
    workers: int,
) -> np.ndarray:
    """One pass over the upper-triangle blocks: fills each bracket's counts (all pairs, genuine included)
    and kept values or histogram; returns the genuine scores (pair order of ``gi, gj``) when asked. The
    tiles are computed and scanned by :func:`tile_results`' workers; their counts and values are merged
    here in block order."""
    n = emb.shape[0]
    genuine = np.empty(gi.size if gather_genuine else 0, dtype=np.float32)
    lower = np.tril(np.ones((block, block), dtype=bool))
    order = sorted(range(len(brackets)), key=lambda i: brackets[i].lo)
    for b in brackets:
        b.above, b.kept, b.n_kept, b.overflow = 0, [], 0, False
        b.bins = None if b.edges is None else np.zeros(b.edges.size + 1, dtype=np.int64)
    # the lowest bracket is "dense" when a large share of the pairs scores above its lo: it is then counted
    # with masks and only its band extracted, instead of extracting every score above its lo
    first = brackets[order[0]]
    rest = order[1:]
    dense = order[0] if (
        first.edges is None and np.isfinite(first.lo) and first.share > DENSE_SHARE
        and (not rest or first.hi <= brackets[rest[0]].lo)
    ) else None
    if dense is None:
        rest = order
    floor = brackets[rest[0]].lo if rest else np.inf

    def scan(r0: int, c0: int, scores: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Per bracket: the scores of the tile above its hi, and its band values or histogram counts."""
        h, w = scores.shape
        if gather_genuine:  # each tile writes its own slice of `genuine`
            tile = int(_block_key(np.int64(r0), np.int64(c0), block, n))
            start, stop = np.searchsorted(gkey, [tile, tile + 1])
            if stop > start:
                genuine[start:stop] = scores[gi[start:stop] - r0, gj[start:stop] - c0]
        if r0 == c0:
            np.copyto(scores, -np.inf, where=lower[:h, :w])
        above = np.zeros(len(brackets), dtype=np.int64)
        found: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(brackets)
        strip = max(1, STRIP_CELLS // w)
        mask, spare = np.empty(strip * w, dtype=bool), np.empty(strip * w, dtype=bool)
        pieces = []
        for s0 in range(0, h, strip):  # strips of rows that stay in the CPU cache across the passes below
            part = scores[s0 : s0 + strip]
            selected = mask[: part.size].reshape(part.shape)
            if dense is None:
                np.greater(part, floor, out=selected)
                pieces.append(part[selected])
                continue
            # selected = (lo, hi] of the dense bracket or above the floor of the others (its hi <= floor)
            b = brackets[dense]
            other = spare[: part.size].reshape(part.shape)
            np.greater(part, b.lo, out=selected)
            np.greater(part, b.hi, out=other)
            above[dense] += np.count_nonzero(other)
            np.bitwise_xor(selected.view(np.uint8), other.view(np.uint8), out=selected.view(np.uint8))
            if rest:
                np.greater(part, floor, out=other)
                np.bitwise_or(selected.view(np.uint8), other.view(np.uint8), out=selected.view(np.uint8))
            pieces.append(part[selected])
        values = np.concatenate(pieces)
        if dense is not None:
            in_band = values <= brackets[dense].hi
            found[dense], values = values[in_band], values[~in_band]
        current = floor
        for i in rest:  # by increasing lo: each bracket's scores are among the previous one's
            b = brackets[i]
            if b.lo > current:
                values, current = values[values > b.lo], b.lo
            if b.edges is not None:
                found[i] = np.bincount(np.searchsorted(b.edges, values, side="left"), minlength=b.edges.size + 1)
                continue
            over = values > b.hi
            above[i] = np.count_nonzero(over)
            found[i] = values[~over]
        return above, found

    for above, found in tile_results(emb, blocks, block, scan, workers):
        for b, count, values in zip(brackets, above.tolist(), found):
            b.above += count
            if b.edges is not None:
                b.bins += values
            else:
                _keep(b, values, max_band)
    return genuine


def _keep(b: _Bracket, band: np.ndarray, max_band: int) -> None:
    """Count (and unless the bracket overflowed, keep) the scores of ``band``, all inside ``(lo, hi]``."""
    b.n_kept += int(band.size)
    if b.overflow:
        return
    if b.n_kept > max_band:
        b.overflow, b.kept = True, []
    elif band.size:
        b.kept.append(band)


def _float_key(value: float) -> int:
    """The position of a float32 value in the order of all float32 values (``-0.0`` and ``0.0`` share 0)."""
    bits = int(np.float32(value).view(np.int32))
    return bits if bits >= 0 else -(bits & 0x7FFFFFFF)


def _key_float(key: int) -> float:
    """The float32 value at an order position (inverse of :func:`_float_key`)."""
    bits = key if key >= 0 else (-key) | -0x80000000
    return float(np.int32(bits).view(np.float32))


def _histogram_bracket(lo: float, hi: float) -> _Bracket:
    """A histogram-mode bracket over ``(lo, hi]``: up to 257 float32 edges from lo to hi, evenly spaced in
    the order of float32 values, so that each histogram pass narrows the candidates 256-fold."""
    keys = np.unique(np.linspace(_float_key(lo), _float_key(hi), HISTOGRAM_EDGES + 1).round().astype(np.int64))
    edges = np.array([_key_float(int(k)) for k in keys], dtype=np.float32)
    return _Bracket(float(edges[0]), float(edges[-1]), edges)


def _next_bracket(lo: float, hi: float, count: int, max_band: int) -> _Bracket:
    """Collect ``(lo, hi]`` when it holds at most ``max_band`` scores, else histogram it."""
    return _Bracket(lo, hi) if count <= max_band else _histogram_bracket(lo, hi)


def _resolve(
    b: _Bracket, k: int, genuine_sorted: np.ndarray, bound: float, max_band: int
) -> tuple[float, int] | _Bracket:
    """After a pass: ``(tau, #impostors > tau)`` when the bracket pins the (k+1)-th largest impostor score
    down, else the bracket of the next pass (module step 3)."""
    if b.edges is not None:
        edges, bins = b.edges, b.bins.copy()
        gen = genuine_sorted[genuine_sorted > edges[0]]
        bins -= np.bincount(np.searchsorted(edges, gen, side="left"), minlength=bins.size)
        above = np.cumsum(bins[::-1])[::-1]  # above[m]: impostors in bins >= m
        if above[1] < k + 1:  # tau <= lo
            return _histogram_bracket(-bound, float(edges[0]))
        m = int(np.flatnonzero(above >= k + 1)[-1])  # the bin holding the (k+1)-th largest
        beyond = int(above[m + 1]) if m + 1 < above.size else 0
        if m == edges.size:  # above hi
            return _next_bracket(float(edges[-1]), bound, int(b.bins[m]), max_band)
        lo, hi = float(edges[m - 1]), float(edges[m])
        if np.nextafter(np.float32(lo), np.float32(np.inf)) == np.float32(hi):
            return hi, beyond  # one float value in the bin: it is tau
        return _next_bracket(lo, hi, int(b.bins[m]), max_band)
    above_hi = b.above - count_accepted(genuine_sorted, b.hi, ">")
    if above_hi >= k + 1:  # tau > hi
        return _next_bracket(b.hi, bound, b.above, max_band)
    in_band = b.n_kept - (count_accepted(genuine_sorted, b.lo, ">") - count_accepted(genuine_sorted, b.hi, ">"))
    if above_hi + in_band < k + 1:  # tau <= lo
        return _histogram_bracket(-bound, b.lo)
    if b.overflow:
        return _histogram_bracket(max(b.lo, -bound), min(b.hi, bound))
    band = np.concatenate(b.kept) if b.kept else np.zeros(0, np.float32)
    lo_g = np.searchsorted(genuine_sorted, np.float32(b.lo), side="right")
    hi_g = np.searchsorted(genuine_sorted, np.float32(b.hi), side="right")
    band = _multiset_difference(np.sort(band), genuine_sorted[lo_g:hi_g])
    tau = band[band.size - 1 - (k - above_hi)]
    return float(tau), above_hi + int(np.count_nonzero(band > tau))


def _multiset_difference(values: np.ndarray, remove: np.ndarray) -> np.ndarray:
    """``values`` (ascending) without one occurrence of each element of ``remove`` (all present)."""
    if remove.size == 0:
        return values
    distinct, counts = np.unique(values, return_counts=True)
    gone, gone_counts = np.unique(remove, return_counts=True)
    at = np.searchsorted(distinct, gone)
    counts[at] -= gone_counts
    return np.repeat(distinct, counts)
