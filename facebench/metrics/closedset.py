"""Closed-set retrieval with an image-level gallery (TinyFace): CMC ranks and mean average precision.

Every probe is searched against every gallery image (the labelled matches and the unlabelled distractors
alike, image by image, no per-subject pooling). With the probe's mates (gallery images of its identity)
scoring ``s_1 >= s_2 >= ... >= s_G``:

- the gallery is ranked by score, highest first, ties by the CMC tie rule ``ties``
  (:data:`facebench.metrics.identification.BLOCKWISE_TIE_RULES`): ``">="`` (default, TinyFace) places a
  non-mate with a score equal to a mate's before it, ``">"`` after it, so the i-th mate sits at position
  ``pos_i = i + #{non-mates with score >= s_i}`` (``> s_i`` for ``">"``);
- the probe's CMC rank is ``pos_1``; ``rank_rates[k]`` is the share of probes with ``pos_1 <= k``;
- its average precision is the trapezoidal sum of the TinyFace protocol's ``compute_AP.m`` (the
  Market-1501 code): ``AP = (1/G) sum_i (p_before_i + i / pos_i) / 2`` with ``p_before_i = (i-1)/(pos_i-1)``
  (the precision just before the i-th hit; 1 when ``pos_i = 1``); mAP is the mean over probes.

:func:`count_nonmates_before` accumulates the counts block by block, so the probe x gallery matrix
(3,728 x 157,871 for TinyFace) is never held.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facebench.metrics.identification import BLOCKWISE_TIE_RULES


def sorted_mate_scores(match_scores: np.ndarray, is_mate: np.ndarray) -> np.ndarray:
    """``(P, G_max)``: each probe's mate scores, descending, padded with ``+inf`` (a padded slot counts nothing)."""
    n_mates = is_mate.sum(axis=1)
    width = max(int(n_mates.max()) if n_mates.size else 0, 1)
    out = np.full((match_scores.shape[0], width), np.inf, dtype=np.float64)
    for p in np.flatnonzero(n_mates):
        out[p, : n_mates[p]] = np.sort(match_scores[p, is_mate[p]])[::-1]
    return out


def count_nonmates_before(
    block: np.ndarray, mates: np.ndarray, nonmate: np.ndarray | None = None, ties: str = ">="
) -> np.ndarray:
    """``(P, G_max)`` counts ``#{g in block, non-mate : score >= mates[p, i]}`` (``ties=">="``; ``>`` for
    ``">"``) for one block of scores ``(P, B)``; ``nonmate`` (``(P, B)`` bool) excludes the mates, None when
    the block holds none."""
    if ties not in BLOCKWISE_TIE_RULES:
        raise ValueError(
            f"unknown tie rule {ties!r} for an image-level ranking; use {' or '.join(BLOCKWISE_TIE_RULES)}"
        )
    values = block if nonmate is None else np.where(nonmate, block, -np.inf)
    before = np.greater_equal if ties == ">=" else np.greater
    counts = np.empty(mates.shape, dtype=np.int64)
    for i in range(mates.shape[1]):
        counts[:, i] = np.count_nonzero(before(values, mates[:, i : i + 1].astype(values.dtype)), axis=1)
    return counts


def mate_positions(mates: np.ndarray, nonmates_above: np.ndarray) -> np.ndarray:
    """``pos[p, i] = i + 1 + nonmates_above[p, i]`` (padded slots stay 0)."""
    positions = np.arange(1, mates.shape[1] + 1)[None, :] + nonmates_above
    return np.where(np.isfinite(mates), positions, 0)


def average_precision(positions: Sequence[int]) -> float:
    """Trapezoidal AP of one probe from its mates' 1-based positions (module rule).

    >>> average_precision([1, 3])  # hits at 1 and 3 of the ranking
    0.7916666666666666
    """
    pos = sorted(int(x) for x in positions)
    if not pos:
        raise ValueError("average precision needs at least one mate")
    n = len(pos)
    ap = 0.0
    for i, at in enumerate(pos, start=1):  # the protocol's sum, term by term in its order and arithmetic
        before = (i - 1) / (at - 1) if at > 1 else 1.0
        ap += (i / n - (i - 1) / n) * ((before + i / at) / 2)
    return ap


def retrieval_metrics(positions: np.ndarray, ranks: Sequence[int]) -> dict:
    """Rank rates, per-probe AP and mAP from ``positions`` (``(P, G_max)``, 0 = padding, every probe with a mate)."""
    first = positions[:, 0]
    aps = np.array([average_precision(row[row > 0]) for row in positions])
    return {
        "rank_rates": {int(k): float(np.count_nonzero(first <= k) / first.size) for k in ranks},
        "mean_average_precision": float(aps.mean()),
        "ranks": first,
        "average_precision": aps,
    }
