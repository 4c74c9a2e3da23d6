"""The sort-and-count kernel every threshold rule in this package wraps (private).

Each function takes scores already sorted ascending and an array of thresholds of the same dtype (so the
comparison happens in that dtype, exactly as an element-wise ``np.less``/``np.greater`` would) and returns,
for every threshold, how many scores fall on one side of it. Binary search makes a whole threshold grid
cost O(T log N) instead of the O(T N) of comparing every score with every threshold, with the same counts.
No validation here: the public functions check their inputs first.
"""

from __future__ import annotations

import numpy as np


def count_below(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``#(score < t)`` for each threshold t."""
    return np.searchsorted(sorted_scores, thresholds, side="left")


def count_at_or_below(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``#(score <= t)`` for each threshold t."""
    return np.searchsorted(sorted_scores, thresholds, side="right")


def count_at_or_above(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``#(score >= t)`` for each threshold t."""
    return sorted_scores.size - count_below(sorted_scores, thresholds)


def count_above(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``#(score > t)`` for each threshold t."""
    return sorted_scores.size - count_at_or_below(sorted_scores, thresholds)



def weighted_roc_counts(
    genuine_weights: np.ndarray, impostor_weights: np.ndarray, drop_intermediate: bool = True, lookahead: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC points of weighted scores, as scikit-learn's ``roc_curve`` builds them with
    ``sample_weight``: ``(kept, tps, fps)``.

    Input: one entry per run of equal scores, runs in descending score order, with the summed genuine and
    impostor weights of each run (an unweighted set has the counts; a bootstrap resample the multiplicities).
    Runs of zero total weight are no points. Point k is the cumulative weights ``tps[k]`` and ``fps[k]`` of
    the runs down to run ``kept[k]`` (accept ``score >=`` that run's score). With ``drop_intermediate`` a
    point is kept only when the weight increments into it and out of it differ (sklearn's non-zero second
    difference of ``fps`` or ``tps``), the first and last always. With ``lookahead`` the input is a prefix
    of the runs: its last run only decides whether the one before is kept and is not a point itself. The
    cumulative sums keep the weights' dtype (integers stay exact).
    """
    present = np.flatnonzero((genuine_weights + impostor_weights) != 0)
    dt, df = genuine_weights[present], impostor_weights[present]
    n = present.size
    usable = n - 1 if lookahead else n
    keep = np.ones(max(usable, 0), dtype=bool)
    if drop_intermediate and usable > 1 and (n > 2 or lookahead):
        # point k (0 < k < n-1) is kept when an increment changes at k+1
        keep[1 : n - 1] = (df[2:n] != df[1 : n - 1]) | (dt[2:n] != dt[1 : n - 1])
    tps = np.cumsum(dt[:usable])[keep]
    fps = np.cumsum(df[:usable])[keep]
    return present[:usable][keep], tps, fps
