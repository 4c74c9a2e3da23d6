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

