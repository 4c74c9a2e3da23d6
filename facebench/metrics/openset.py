"""Open-set 1:N searches streamed over the gallery: mate ranks, non-mated best scores, FPIR/FNIR curves.

The same quantities as :func:`facebench.metrics.identification.open_set_identification` (bob.measure /
NIST rules: a subject's score is the maximum over its gallery images; the mate's rank is 1 + the number of
non-mate subjects scoring ``>=`` the mate; a non-mated search's score is its best gallery score), computed
without the probes x gallery matrix: the gallery is visited in blocks of whole subjects, each block's
subject maxima are folded into per-probe counts and maxima, so memory is one block.

:func:`fpir_fnir_curve` and :func:`tpir_at_fpir` then read the operating points off those arrays with the
default rule of ``open_set_identification`` (the lowest threshold whose FPIR is still at most the target;
a mated search counts when its mate is at rank 1 and scores ``>=`` the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from facebench.metrics import _counting


@dataclass(frozen=True)
class Searches:
    """Per probe (probe order): ``mated``; for mated probes (in probe order) ``mate_scores`` and
    ``mate_ranks``; for non-mated ones ``nonmated_scores`` (best gallery score)."""

    mated: np.ndarray
    mate_scores: np.ndarray
    mate_ranks: np.ndarray
    nonmated_scores: np.ndarray


def stream_searches(
    score_block: Callable[[np.ndarray], np.ndarray],
    probe_subjects: np.ndarray,
    gallery_subjects: np.ndarray,
    mate_scores_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
    block: int = 8192,
    dtype: type = np.float32,
) -> Searches:
    """Stream the open-set searches (module rules).

    ``score_block(columns)`` returns the ``(n_probes, len(columns))`` scores against those gallery images;
    ``mate_scores_of(probe_rows, gallery_columns)`` the scores of given (probe, gallery image) pairs (the
    same values ``score_block`` would give). Blocks hold whole subjects, about ``block`` images each. Scores
    are kept in ``dtype`` (that of the products), so thresholds read off them are values of that type.
    """
    probe_subjects = np.asarray(probe_subjects)
    gallery_subjects = np.asarray(gallery_subjects)
    order = np.argsort(gallery_subjects, kind="stable")
    subjects, starts = np.unique(gallery_subjects[order], return_index=True)
    n = probe_subjects.size
    position = np.clip(np.searchsorted(subjects, probe_subjects), 0, max(subjects.size - 1, 0))
    mated = subjects[position] == probe_subjects if subjects.size else np.zeros(n, dtype=bool)
    # mate score = max over the mate subject's gallery images
    mate = np.full(n, -np.inf, dtype=dtype)
    ends = np.append(starts[1:], order.size)
    rows = np.flatnonzero(mated)
    if rows.size:
        counts = ends[position[rows]] - starts[position[rows]]
        pair_rows = np.repeat(rows, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        pair_cols = order[np.repeat(starts[position[rows]], counts) + offsets]
        values = np.asarray(mate_scores_of(pair_rows, pair_cols), dtype=dtype)
        np.maximum.at(mate, pair_rows, values)
    above = np.zeros(n, dtype=np.int64)
    best = np.full(n, -np.inf, dtype=dtype)
    first = 0
    while first < subjects.size:
        last = int(np.searchsorted(starts, starts[first] + block, side="left"))
        last = max(last, first + 1)
        columns = order[starts[first] : ends[last - 1]]
        scores = np.asarray(score_block(columns), dtype=dtype)
        maxima = np.maximum.reduceat(scores, starts[first:last] - starts[first], axis=1)
        own = mated[:, None] & (position[:, None] == np.arange(first, last)[None, :])
        maxima[own] = -np.inf  # the mate subject is not a competitor
        above += np.count_nonzero(maxima >= mate[:, None], axis=1)
        np.maximum(best, maxima.max(axis=1), out=best)
        first = last
    return Searches(mated, mate[mated], 1 + above[mated], best[~mated])


def tpir_at_fpir(searches: Searches, targets: Sequence[float]) -> dict[float, tuple[float, float, float]]:
    """``target -> (TPIR, FPIR reached, threshold)`` by the default rule of ``open_set_identification``."""
    ordered = np.sort(searches.nonmated_scores)
    first = searches.mate_ranks == 1
    out = {}
    for target in targets:
        t = _counting.lowest_threshold_at_rate(ordered, float(target))
        fpir = np.count_nonzero(searches.nonmated_scores >= t) / ordered.size
        tpir = np.count_nonzero(first & (searches.mate_scores >= t)) / searches.mate_scores.size
        out[float(target)] = (float(tpir), float(fpir), float(t))
    return out


def fpir_fnir_curve(searches: Searches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds descending, FPIR, FNIR)`` at every distinct score of a search: FPIR(t) = share of
    non-mated searches with best score ``>= t``; FNIR(t) = 1 - share of mated searches with the mate at
    rank 1 and score ``>= t``."""
    hits = np.sort(searches.mate_scores[searches.mate_ranks == 1])
    nonmated = np.sort(searches.nonmated_scores)
    thresholds = np.unique(np.concatenate([hits, nonmated]))[::-1]
    fpir = _counting.count_at_or_above(nonmated, thresholds) / max(nonmated.size, 1)
    fnir = 1.0 - _counting.count_at_or_above(hits, thresholds) / max(searches.mate_scores.size, 1)
    return thresholds, fpir, fnir
