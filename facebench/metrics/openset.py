"""Open-set 1:N searches streamed over the gallery: mate ranks and non-mated best scores.

The same quantities as :func:`facebench.metrics.identification.open_set_identification` (bob.measure /
NIST rules: a subject's score is the maximum over its gallery images; the mate's rank by the ``>=`` or
``>`` rule of :data:`facebench.metrics.identification.CMC_TIE_RULES`; a non-mated search's score is its best
gallery score), computed without the probes x gallery matrix: the gallery is visited in blocks of whole
subjects, each block's subject maxima are folded into per-probe counts and maxima, so memory is one block.

TPIR at FPIR, FNIR and the DIR-FPIR curve are then read off the arrays by the one kernel of every 1:N
benchmark (:func:`facebench.evaluate.rates.search_rates`: ``identification.tpir_at_fpir`` by the run's
``--tpir-rule``, ``identification.dir_fpir_curve``), with ``rank1_strict`` (the mate above every non-mate)
as TPIR's rank-1 condition whatever the CMC tie rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from facebench.metrics.identification import BLOCKWISE_TIE_RULES


@dataclass(frozen=True)
class Searches:
    """Per probe (probe order): ``mated``; for mated probes (in probe order) ``mate_scores``,
    ``mate_ranks`` (by the tie rule asked) and ``rank1_strict`` (no non-mate subject scores ``>=`` the mate:
    TPIR's rank-1 condition); for non-mated ones ``nonmated_scores`` (best gallery score)."""

    mated: np.ndarray
    mate_scores: np.ndarray
    mate_ranks: np.ndarray
    nonmated_scores: np.ndarray
    rank1_strict: np.ndarray


def stream_searches(
    score_block: Callable[[np.ndarray], np.ndarray],
    probe_subjects: np.ndarray,
    gallery_subjects: np.ndarray,
    mate_scores_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
    block: int = 8192,
    dtype: type = np.float32,
    cmc_ties: str = ">=",
) -> Searches:
    """Stream the open-set searches (module rules); mate rank = 1 + the non-mate subjects scoring ``>=``
    the mate (``cmc_ties=">="``, bob.measure) or ``>`` it (``">"``, ties favour the mate).

    ``score_block(columns)`` returns the ``(n_probes, len(columns))`` scores against those gallery images;
    ``mate_scores_of(probe_rows, gallery_columns)`` the scores of given (probe, gallery image) pairs (the
    same values ``score_block`` would give). Blocks hold whole subjects, about ``block`` images each. Scores
    are kept in ``dtype`` (that of the products), so thresholds read off them are values of that type.
    """
    if cmc_ties not in BLOCKWISE_TIE_RULES:
        raise ValueError(
            f"CMC tie rule {cmc_ties!r} cannot be streamed (it needs the order of each full row); use "
            f"{' or '.join(BLOCKWISE_TIE_RULES)}"
        )
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
    above = np.zeros(n, dtype=np.int64)  # non-mate subjects >= the mate
    strictly = np.zeros(n, dtype=np.int64) if cmc_ties == ">" else above  # non-mate subjects > the mate
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
        if cmc_ties == ">":
            strictly += np.count_nonzero(maxima > mate[:, None], axis=1)
        np.maximum(best, maxima.max(axis=1), out=best)
        first = last
    return Searches(mated, mate[mated], 1 + strictly[mated], best[~mated], above[mated] == 0)
