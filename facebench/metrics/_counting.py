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


def lowest_threshold_at_rate(sorted_scores: np.ndarray, rate: float) -> float:
    """The lowest score value v with ``#(score >= v) / n <= rate``; above the maximum when none qualifies.

    Candidates are the score values themselves (between two consecutive values the share accepted does
    not change). With c the largest count whose share ``c / n`` (float division) is still ``<= rate``,
    the answer is the c-th largest score unless it is tied with the score below it, in which case it is
    the next larger distinct value. When no value qualifies (c = 0, or only ties above), it is the next
    float above the maximum, where the share is 0. O(log n) on the sorted scores.
    """
    n = sorted_scores.size
    allowed = min(n, int(np.floor(rate * n)))
    while allowed < n and (allowed + 1) / n <= rate:
        allowed += 1
    while allowed > 0 and allowed / n > rate:
        allowed -= 1
    above_max = float(np.nextafter(sorted_scores[-1], np.inf))
    if allowed == 0:
        return above_max
    j = n - allowed
    if j == 0 or sorted_scores[j - 1] < sorted_scores[j]:
        return float(sorted_scores[j])
    nxt = int(np.searchsorted(sorted_scores, sorted_scores[j], side="right"))
    return float(sorted_scores[nxt]) if nxt < n else above_max
