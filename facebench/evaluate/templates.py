"""Template pooling and template-pair scoring for IJB-B/C (numpy and scipy.sparse; no facebench imports).

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
~3.5K x ~19.6K, one BLAS call in row blocks) and gathers the pairs from it, instead of gathering two
feature rows per pair; when the pair list is sparse over that rectangle it gathers rows in batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike

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
    ids not found get position 0.

    A lookup table over the id range when it is compact (IJB ids stay below a few 100K: one gather per
    id), else a binary search.
    """
    ids = np.asarray(query)
    if ids.size == 0 or sorted_ids.size == 0:
        return np.zeros(ids.size, dtype=np.intp), np.zeros(ids.size, dtype=bool)
    low, high = int(sorted_ids[0]), int(sorted_ids[-1])
    if ids.dtype.kind in "iu" and sorted_ids.dtype.kind in "iu" and high - low <= 8 * sorted_ids.size + (1 << 20):
        table = np.full(high - low + 1, -1, dtype=np.int32 if sorted_ids.size < 2**31 else np.int64)
        table[sorted_ids - low] = np.arange(sorted_ids.size, dtype=table.dtype)
        if int(ids.min()) >= low and int(ids.max()) <= high:  # the usual case: one gather
            pos = table[ids - low]
        else:
            inside = (ids >= low) & (ids <= high)
            pos = np.where(inside, table[np.where(inside, ids - low, 0)], -1)
        known = pos >= 0
        if not known.all():
            pos = np.where(known, pos, 0)
        return pos, known
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return pos, sorted_ids[pos] == ids


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
    block_rows: int = 16384,
) -> PooledTemplates:
    """Template features by the rule of this module (media mean, template sum, L2).

    ``features`` is ``(N, D)`` (any float dtype, a memory map is fine: it is read once, in blocks of
    ``block_rows`` rows); ``templates``, ``medias`` and ``detector_scores`` have one entry per row.
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
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        x = np.array(features[start:stop], dtype=np.float64)
        w = weight[start:stop]
        if per_image_l2:
            norms = np.sqrt(np.einsum("ij,ij->i", x, x))
            w = w / np.where(norms == 0, 1.0, norms)
        # the block's weighted segment sums as one sparse (templates in block x rows) product
        touched, local = np.unique(row[start:stop], return_inverse=True)
        segments = scipy.sparse.csr_matrix(
            (w, (local.ravel(), np.arange(stop - start))), shape=(touched.size, stop - start)
        )
        sums[touched] += segments @ x
    norms = np.sqrt(np.einsum("ij,ij->i", sums, sums))
    sums /= np.where(norms == 0, 1.0, norms)[:, None]
    return PooledTemplates(ids, sums, n_images, n_media)


def score_pairs(
    features: np.ndarray,
    left: ArrayLike,
    right: ArrayLike,
    dense_ratio: float = DENSE_RATIO,
    block_bytes: int = 640 << 20,
    batch: int = 1 << 16,
) -> np.ndarray:
    """``scores[k] = features[left[k]] . features[right[k]]`` (float64), for unit template rows: cosine.

    The dense path computes ``features[L] @ features[R].T`` for the distinct rows L and R the pairs use,
    in blocks of about ``block_bytes``, and gathers each pair's entry; it is chosen when
    ``|L| * |R| <= dense_ratio * n_pairs``. Otherwise pairs are scored in batches of ``batch`` rows.
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
    left_rows, left_pos = _compact(left, n_templates)
    right_rows, right_pos = _compact(right, n_templates)
    if left_rows.size * right_rows.size > dense_ratio * left.size:
        for start in range(0, left.size, batch):
            stop = min(left.size, start + batch)
            scores[start:stop] = np.einsum("ij,ij->i", features[left[start:stop]], features[right[start:stop]])
        return scores
    # the product's row index is the side that changes less often from one pair to the next, so that a
    # run of pairs sharing it reads along one row of the product (pair lists are grouped by one side)
    if np.count_nonzero(np.diff(right_pos)) < np.count_nonzero(np.diff(left_pos)):
        left_rows, right_rows, left_pos, right_pos = right_rows, left_rows, right_pos, left_pos
    right_t = np.ascontiguousarray(features[right_rows].T)
    rows_per_block = max(1, block_bytes // (8 * right_rows.size))
    for r0 in range(0, left_rows.size, rows_per_block):
        r1 = min(left_rows.size, r0 + rows_per_block)
        product = features[left_rows[r0:r1]] @ right_t
        if r0 == 0 and r1 == left_rows.size:
            scores[:] = product[left_pos, right_pos]
            break
        sel = np.flatnonzero((left_pos >= r0) & (left_pos < r1))
        scores[sel] = product[left_pos[sel] - r0, right_pos[sel]]
    return scores


def _compact(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values of ``index`` in increasing order, position of each entry among them): a unique
    with inverse in O(n + size) instead of a sort."""
    present = np.zeros(size, dtype=bool)
    present[index] = True
    values = np.flatnonzero(present)
    lookup = np.zeros(size, dtype=np.int32 if values.size < 2**31 else np.int64)
    lookup[values] = np.arange(values.size, dtype=lookup.dtype)
    return values, lookup[index]
