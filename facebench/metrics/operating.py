"""Operating points at a target rate: the one threshold kernel behind every TAR@FAR, TPIR@FPIR, MegaFace
TAR@1e-6 and deployment threshold of facebench.

A *negative* is an impostor pair (verification) or a non-mated search's best score (identification); a
*positive* is a genuine pair or a mated search. A score is accepted when it compares to the threshold t by
``comparison``: ``">="`` (``score >= t``, scikit-learn's and bob.measure's side) or ``">"`` (``score > t``,
insightface's 1:N rule and the MegaFace convention). Every function here takes scores sorted ascending and
counts with :mod:`._counting` (binary search), so one rule cannot differ by accident between benchmarks.

Three thresholds for a target rate r over n negatives (``c = allowed_count(n, r)``, the most negatives a
threshold may accept, ``s_1 >= s_2 >= ...`` the negatives descending):

- :func:`rate_threshold` with ``">="``: the lowest score value t with ``#(neg >= t) / n <= r`` (bob.measure
  ``far_threshold``): ``s_c`` unless tied with ``s_(c+1)``, then the next larger distinct value.
- :func:`rate_threshold` with ``">"``: ``s_(c+1)``; accepting ``> s_(c+1)`` is the supremum of the positive
  rate over all thresholds whose negative rate is ``<= r`` (the ``le`` read-off of the full ROC).
- insightface ``evaluation_1N`` (``identification.tpir_threshold(..., "insightface")``): ``s_k`` with
  ``k = max(int(n * r), 1)``, accept ``>``.

Both comparisons at :func:`rate_threshold` accept the same negatives; they differ only on positives lying
between ``s_(c+1)`` and ``s_c``, which ``">="`` rejects.

*Resolution*: a rate below ``1 / n`` cannot be measured with n negatives (no threshold accepts a share of
them in ``(0, r]``); :func:`resolvable` says whether a target can be, and evaluators report ``None`` for
one that cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facebench.metrics import _counting

#: The acceptance comparisons, ``score >= t`` first (the default).
COMPARISONS: tuple[str, ...] = (">=", ">")

#: Fewer negatives than this above a threshold make its rate rest on very few events: tables add the interval.
FEW_EVENTS = 10


@dataclass(frozen=True)
class RatePoint:
    """One operating point: the threshold, its comparison, and the counts accepted on each side.

    ``positive_rate`` = ``positives_accepted / n_positives`` (TAR, TPIR); ``negative_rate`` =
    ``negatives_accepted / n_negatives`` (the FAR / FPIR reached, ``<=`` the target for the rate rules).
    """

    threshold: float
    comparison: str
    positives_accepted: int
    n_positives: int
    negatives_accepted: int
    n_negatives: int

    @property
    def positive_rate(self) -> float:
        return self.positives_accepted / self.n_positives if self.n_positives else float("nan")

    @property
    def negative_rate(self) -> float:
        return self.negatives_accepted / self.n_negatives if self.n_negatives else float("nan")


def check_comparison(comparison: str) -> str:
    """``comparison`` itself when it is ``">="`` or ``">"``; a ValueError naming both otherwise."""
    if comparison not in COMPARISONS:
        raise ValueError(f"unknown comparison {comparison!r}; use '>=' or '>'")
    return comparison


def allowed_count(n: int, rate: float) -> int:
    """The most negatives a threshold may accept at ``rate``: ``max{c in 0..n : c / n <= rate}`` (float
    division, so that ``c / n`` reproduces the rate a caller computes). 0 when ``n <= 0``."""
    if n <= 0:
        return 0
    c = min(int(np.floor(rate * n)), n)
    while c > 0 and c / n > rate:
        c -= 1
    while c < n and (c + 1) / n <= rate:
        c += 1
    return max(c, 0)


def resolvable(n: int, rate: float) -> bool:
    """Whether ``n`` negatives can measure ``rate``: at least one may be accepted (``1 / n <= rate``)."""
    return allowed_count(n, rate) >= 1


def unresolvable_reason(n: int, unit: str) -> str:
    """Why a target below ``1 / n`` cannot be measured with ``n`` negatives (``unit``: what they are)."""
    return f"{n:,} {unit} resolve rates down to {1 / max(n, 1):.1e} only (one in {n:,})"


def count_accepted(sorted_scores: np.ndarray, threshold: float, comparison: str) -> int:
    """``#(score >= t)`` or ``#(score > t)`` over ascending ``sorted_scores``, compared in their dtype."""
    t = np.asarray([threshold], dtype=sorted_scores.dtype if sorted_scores.dtype.kind == "f" else np.float64)
    if comparison == ">=":
        return int(_counting.count_at_or_above(sorted_scores, t)[0])
    return int(_counting.count_above(sorted_scores, t)[0])


def rate_threshold(sorted_negatives: np.ndarray, rate: float, comparison: str = ">=", n: int | None = None) -> float:
    """The lowest threshold t whose accepted share ``#(neg CMP t) / n`` is ``<= rate`` (module docstring).

    ``sorted_negatives``: ascending; all n negatives, or (``n`` given, MegaFace streaming) the largest
    ``allowed_count(n, rate) + 1`` or more of them. ``">="``: a score value, or the next float above the
    maximum when none qualifies. ``">"``: the (c+1)-th largest negative, or ``-inf`` when every negative
    may be accepted. O(log n).
    """
    check_comparison(comparison)
    kept = sorted_negatives.size
    total = kept if n is None else int(n)
    if kept == 0 or total < kept:
        raise ValueError(f"rate_threshold needs negatives (got {kept} of n={total})")
    c = allowed_count(total, rate)
    if c >= total:
        return float("-inf") if comparison == ">" else float(sorted_negatives[0])
    if kept < c + 1:
        raise ValueError(f"a rate of {rate:g} over {total} negatives needs the {c + 1} largest; {kept} given")
    if comparison == ">":
        return float(sorted_negatives[kept - 1 - c])
    above_max = float(np.nextafter(sorted_negatives[-1], np.inf))
    if c == 0:
        return above_max
    j = kept - c  # index of the c-th largest
    if sorted_negatives[j - 1] < sorted_negatives[j]:
        return float(sorted_negatives[j])
    nxt = int(np.searchsorted(sorted_negatives, sorted_negatives[j], side="right"))
    return float(sorted_negatives[nxt]) if nxt < kept else above_max


def operating_point(
    sorted_positives: np.ndarray,
    sorted_negatives: np.ndarray,
    rate: float,
    comparison: str = ">=",
    n_negatives: int | None = None,
) -> RatePoint:
    """The point of :func:`rate_threshold` and the positives and negatives it accepts (both ascending).

    With ``n_negatives`` larger than ``sorted_negatives.size`` (only the largest negatives kept), the
    negatives accepted are counted among those kept, which hold every accepted one.
    """
    total = sorted_negatives.size if n_negatives is None else int(n_negatives)
    t = rate_threshold(sorted_negatives, rate, comparison, total)
    neg = total if np.isneginf(t) else count_accepted(sorted_negatives, t, comparison)
    pos = count_accepted(sorted_positives, t, comparison)
    return RatePoint(t, comparison, pos, int(sorted_positives.size), neg, total)
