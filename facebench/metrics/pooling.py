"""Template pooling and template-pair scoring for IJB-B/C (numpy and scipy.sparse).

Pooling rule (insightface ``ijb_11.py``; PROTOCOLS 2), per image i of template t and media m:

    x_i  = feature_i                 (flip-combined, raw norm)
    x_i /= ||x_i||                   only with ``per_image_l2`` (a zero row stays zero)
    x_i *= detector_score_i          only when detector scores are given
    u_t  = sum over the media m of t of  mean(x_i for the images of t with media m)
    f_t  = u_t / ||u_t||             (a zero u_t stays zero, as sklearn's ``normalize``)

Score of a template pair = ``f_a . f_b`` (cosine). Computed in float64 whatever the feature dtype.

Speed: pooling is a single streamed pass over the feature rows (one weight per image; each block's
weighted sums per template as one sparse-by-dense product), so a memory-mapped feature file is read once,
in order. Scoring forms the dense product of the templates the pair list touches on each side (IJB-C:
~19.6K x ~3.5K) in row blocks of 16 MiB, one block per thread at a time (each thread reuses its own buffer
and multiplies with single-threaded BLAS), and gathers each block's pairs from it, instead of gathering two
feature rows per pair; when the pair list is sparse over that
rectangle it gathers rows in batches. Memory is kept to the scores plus small per-block arrays: on a
fresh virtual machine every new page costs a host fault (~1.5-2.5 ms per MiB measured here), so memory
not allocated is time saved.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from facebench.metrics.blas import blas_threads, single_threaded_blas
from facebench.progress import progress as progress_bar
from facebench.progress import track

DENSE_RATIO = 16.0
"""Use the dense product when (left templates x right templates) <= DENSE_RATIO x pairs: a BLAS product
costs about 1/16 of a row gather per entry (measured: 15.6M IJB-C pairs, 2 cores)."""


@dataclass(frozen=True)
class PooledTemplates:
    """Template features: ``ids`` sorted unique template ids, ``features`` (T, D) float64 unit rows (zero
    when a template's sum is zero), ``n_images`` and ``n_media`` per template."""

    ids: np.ndarray
    features: np.ndarray
    n_images: np.ndarray
    n_media: np.ndarray

    def rows(self, template_ids: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id in ``features``, mask of the known ids): :func:`lookup_rows` on ``ids``."""
        return lookup_rows(self.ids, template_ids)


def lookup_rows(sorted_ids: np.ndarray, query: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(position of each ``query`` id in the sorted unique ``sorted_ids``, mask of the ids found there);
    ids not found get position 0. Positions come in the smallest signed integer type that holds them
    (int16 up to 32,767 ids: a 15.6M-pair IJB-C list costs 31 MB a side).

    A lookup table over the id range when it is compact (IJB ids stay below a few 100K: one gather per
    id, indexed by the id itself when the ids start near 0), else a binary search.
    """
    ids = np.asarray(query)
    if ids.size == 0 or sorted_ids.size == 0:
        return np.zeros(ids.size, dtype=np.intp), np.zeros(ids.size, dtype=bool)
    low, high = int(sorted_ids[0]), int(sorted_ids[-1])
    if ids.dtype.kind in "iu" and sorted_ids.dtype.kind in "iu" and high - low <= 8 * sorted_ids.size + (1 << 20):
        base = 0 if 0 <= low <= (1 << 20) else low
        table = np.full(high - base + 1, -1, dtype=position_dtype(sorted_ids.size))
        table[sorted_ids - base] = np.arange(sorted_ids.size, dtype=table.dtype)
        if int(ids.min()) >= low and int(ids.max()) <= high:  # the usual case: one gather
            pos = table[ids - base] if base else table[ids]
        else:
            inside = (ids >= low) & (ids <= high)
            pos = np.where(inside, table[np.where(inside, ids, low) - base], -1).astype(table.dtype, copy=False)
        known = pos >= 0
        if not known.all():
            pos = np.where(known, pos, 0).astype(table.dtype, copy=False)
        return pos, known
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return pos, sorted_ids[pos] == ids


def position_dtype(n: int) -> np.dtype:
    """The smallest signed integer dtype holding 0 .. n-1 and -1."""
    for dtype in (np.int16, np.int32):
        if n <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def image_weights(
    templates: np.ndarray,
    medias: np.ndarray,
    detector_scores: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-image pooling weights before any per-image normalisation.

    Returns ``(template_ids, template_row, weight, n_images, n_media)``: ``template_row[i]`` indexes
    ``template_ids`` (sorted unique), ``weight[i] = score_i / |images of (template_i, media_i)|``.
    """
    template_ids, template_row = np.unique(templates, return_inverse=True)
    template_row = template_row.ravel()
    media_ids, media_index = np.unique(medias, return_inverse=True)
    key = template_row.astype(np.int64) * media_ids.size + media_index.ravel()
    _, media_row, media_count = np.unique(key, return_inverse=True, return_counts=True)
    media_row = media_row.ravel()
    weight = 1.0 / media_count[media_row].astype(np.float64)
    if detector_scores is not None:
        weight = weight * np.asarray(detector_scores, dtype=np.float64)
    n_images = np.bincount(template_row, minlength=template_ids.size)
    # a media row belongs to one template: count distinct media per template
    media_template = np.zeros(media_count.size, dtype=np.int64)
    media_template[media_row] = template_row
    n_media = np.bincount(media_template, minlength=template_ids.size)
    return template_ids, template_row, weight, n_images, n_media


def pool_templates(
    features: np.ndarray,
    templates: ArrayLike,
    medias: ArrayLike,
    detector_scores: ArrayLike | None = None,
    per_image_l2: bool = False,
    block_rows: int = 4096,
    workers: int = 0,
) -> PooledTemplates:
    """Template features by the rule of this module (media mean, template sum, L2).

    ``features`` is ``(N, D)`` (any float dtype, a memory map is fine: it is read once, in blocks of
    ``block_rows`` rows); ``templates``, ``medias`` and ``detector_scores`` have one entry per row. Blocks are
    summed by ``workers`` threads (0: one per BLAS thread, :func:`facebench.metrics.blas.blas_threads`; numpy
    leaves the GIL in the conversions and sums) and added in block order, so the result does not depend on
    their number.
    """
    features = np.asarray(features) if not isinstance(features, np.ndarray) else features
    templates = np.asarray(templates)
    medias = np.asarray(medias)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (images, dim); got shape {features.shape}")
    n = features.shape[0]
    if templates.shape != (n,) or medias.shape != (n,):
        raise ValueError(
            f"templates {templates.shape} and medias {medias.shape} must have one entry per feature row ({n})"
        )
    scores = None
    if detector_scores is not None:
        scores = np.asarray(detector_scores, dtype=np.float64)
        if scores.shape != (n,):
            raise ValueError(f"detector_scores has shape {scores.shape}; expected ({n},)")
    if n == 0:
        raise ValueError("no images to pool")
    ids, row, weight, n_images, n_media = image_weights(templates, medias, scores)
    sums = np.zeros((ids.size, features.shape[1]), dtype=np.float64)
    blocks = range(0, n, block_rows)

    def block_sums(start: int) -> tuple[np.ndarray, np.ndarray]:
        stop = min(n, start + block_rows)
        return _segment_sums(features[start:stop], row[start:stop], weight[start:stop], per_image_l2)

    with ThreadPoolExecutor(max_workers=workers or blas_threads()) as pool:
        for touched, partial in pool.map(block_sums, blocks):
            sums[touched] += partial
    norms = np.sqrt(np.einsum("ij,ij->i", sums, sums))
    sums /= np.where(norms == 0, 1.0, norms)[:, None]
    return PooledTemplates(ids, sums, n_images, n_media)


def _segment_sums(
    block: np.ndarray, rows: np.ndarray, weight: np.ndarray, per_image_l2: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(the template rows a block of features touches, increasing; each one's weighted sum over the block's
    images): ``sum_i w_i * x_i`` in float64 as one sparse (touched templates x images) by dense product,
    ``x_i`` first scaled to unit norm with ``per_image_l2``."""
    import scipy.sparse  # imported on use (half a second): the IJB evaluator lists it in its PRELOAD

    x = np.array(block, dtype=np.float64)
    if per_image_l2:
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        weight = weight / np.where(norms == 0, 1.0, norms)
    touched, local = np.unique(rows, return_inverse=True)
    segments = scipy.sparse.csr_matrix((weight, (local.ravel(), np.arange(rows.size))), shape=(touched.size, rows.size))
    return touched, segments @ x


def score_pairs(
    features: np.ndarray,
    left: ArrayLike,
    right: ArrayLike,
    dense_ratio: float = DENSE_RATIO,
    block_bytes: int = 16 << 20,
    batch: int = 1 << 16,
    progress: bool = True,
    workers: int = 0,
) -> np.ndarray:
    """``scores[k] = features[left[k]] . features[right[k]]`` (float64), for unit template rows: cosine.

    The dense path computes ``features[L] @ features[R].T`` for the distinct rows L and R the pairs use,
    in row blocks of about ``block_bytes``, and gathers each pair's entry from its block; it is chosen when
    ``|L| * |R| <= dense_ratio * n_pairs``. Blocks go to ``workers`` threads (0: one per BLAS thread,
    :func:`facebench.metrics.blas.blas_threads`), each multiplying with single-threaded BLAS into its own
    buffer and gathering that block's pairs (numpy leaves the GIL): every block is one single-threaded
    product, so the scores do not depend on the number of threads. Otherwise pairs are scored in batches
    of ``batch`` rows. ``progress``: report long work on stderr (:mod:`facebench.progress`).
    """
    features = np.asarray(features, dtype=np.float64)
    left = np.asarray(left)
    right = np.asarray(right)
    if left.shape != right.shape or left.ndim != 1:
        raise ValueError(f"left and right must be 1-D of equal length; got {left.shape} and {right.shape}")
    n_templates = features.shape[0]
    for name, idx in (("left", left), ("right", right)):
        if idx.size and (idx.min() < 0 or idx.max() >= n_templates):
            raise ValueError(f"{name} indexes rows outside 0..{n_templates - 1}")
    scores = np.empty(left.size, dtype=np.float64)
    if left.size == 0:
        return scores
    # the dense product's rows are the side that changes less often from one pair to the next (pair lists
    # are grouped by one side); when each row's pairs form one run (a grouped list), the rows are numbered
    # in order of first appearance, so that each block of rows owns one contiguous run of pairs
    swap = np.count_nonzero(right[1:] != right[:-1]) < np.count_nonzero(left[1:] != left[:-1])
    rows_side, cols_side = (right, left) if swap else (left, right)
    runs = _runs(rows_side, n_templates)
    if runs is None:
        row_ids, row_of = _distinct(rows_side, n_templates)
        row_pos = row_of[rows_side]
    else:
        row_ids, run_starts = runs
    col_ids, col_of = _distinct(cols_side, n_templates)  # col_of[template row] = its column in the product
    if row_ids.size * col_ids.size > dense_ratio * left.size:
        for start in track(range(0, left.size, batch), "score pairs", "batches", enabled=progress):
            stop = min(left.size, start + batch)
            scores[start:stop] = np.einsum("ij,ij->i", features[left[start:stop]], features[right[start:stop]])
        return scores
    cols_t = np.ascontiguousarray(features[col_ids].T)
    n_cols = col_ids.size
    rows_per_block = int(min(row_ids.size, max(1, block_bytes // (8 * n_cols))))
    own = threading.local()

    def block(r0: int) -> int:
        """Multiply rows r0.. of the product into this thread's buffer and gather the block's pairs."""
        r1 = min(row_ids.size, r0 + rows_per_block)
        if not hasattr(own, "buffer"):
            own.buffer = np.empty((rows_per_block, n_cols))
        product = own.buffer[: r1 - r0]
        np.matmul(features[row_ids[r0:r1]], cols_t, out=product)
        flat = product.reshape(-1)
        if runs is not None:  # the block's pairs: one run, gathered straight into the scores
            a, b = int(run_starts[r0]), int(run_starts[r1])
            row_start = np.arange(0, (r1 - r0) * n_cols, n_cols, dtype=np.int64)
            entry = np.repeat(row_start, np.diff(run_starts[r0 : r1 + 1]))
            entry += col_of[cols_side[a:b]]
            flat.take(entry, out=scores[a:b], mode="clip")
        else:
            where = np.flatnonzero((row_pos >= r0) & (row_pos < r1))
            entry = (row_pos[where] - r0).astype(np.int64) * n_cols + col_of[cols_side[where]]
            scores[where] = flat.take(entry)
        return r1 - r0

    blocks = range(0, row_ids.size, rows_per_block)
    threads = workers or blas_threads()  # (asked before the products are limited to one thread)
    with single_threaded_blas(), ThreadPoolExecutor(max_workers=threads) as pool, \
            progress_bar(len(blocks), "score pairs", "blocks", enabled=progress) as bar:
        for _ in pool.map(block, blocks):
            bar.update(1)
    return scores


def _runs(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """For a grouped ``index`` (each value's entries one run): (the values in order of appearance, the
    start of each run and then ``index.size``); None when some value has several runs."""
    heads = np.flatnonzero(index[1:] != index[:-1]) + 1
    if heads.size >= size:  # more runs than values
        return None
    first = np.r_[index[:1], index[heads]]
    if np.unique(first).size != first.size:
        return None
    return first, np.r_[0, heads, index.size]


def _distinct(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values of ``index`` in increasing order, a table giving each value's position among
    them): with ``table[index]``, a unique with inverse in O(n + size) instead of a sort."""
    present = np.zeros(size, dtype=bool)
    present[index] = True
    values = np.flatnonzero(present)
    table = np.zeros(size, dtype=position_dtype(values.size))
    table[values] = np.arange(values.size, dtype=table.dtype)
    return values, table
