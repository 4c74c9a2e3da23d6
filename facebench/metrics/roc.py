"""ROC curve, TAR@FAR read-off rules, AUC, EER and FAR thresholds for pair verification.

Convention throughout: a higher score means "more likely the same person", and a pair is accepted when
``score >= threshold`` (scikit-learn's convention). Squared-Euclidean distances between unit vectors
convert with :func:`sqeuclidean_to_cos` (``d = 2 - 2 cos``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from facebench.metrics import _counting, operating
from facebench.metrics._validation import (
    as_labels,
    as_scores,
    check_both_classes,
    check_rate,
    check_same_length,
)

#: The TAR@FAR read-off rules :func:`tar_at_far` knows, default first.
TAR_AT_FAR_RULES = ("nearest", "le", "interp")

#: The FAR targets reported by default (the IJB tables' columns).
DEFAULT_FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass(frozen=True, eq=False)
class RocCurve:
    """A ROC curve as :func:`sklearn.metrics.roc_curve` returns it.

    ``fpr`` and ``tpr`` are non-decreasing; ``thresholds`` decreasing, ``thresholds[0] = inf`` (the
    point (0, 0) where nothing is accepted). Point i is the rates of ``score >= thresholds[i]``.
    ``drop_intermediate`` records whether collinear points were thinned out (sklearn's default).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    n_genuine: int
    n_impostor: int
    drop_intermediate: bool


@dataclass(frozen=True)
class OperatingPoint:
    """One point read off a curve: the true accept rate, the false accept rate and the threshold.

    ``threshold`` is NaN for an interpolated point that no single threshold realises.
    """

    tar: float
    far: float
    threshold: float


def roc_curve(
    labels: ArrayLike, scores: ArrayLike, drop_intermediate: bool = True, overwrite_scores: bool = False
) -> RocCurve:
    """The ROC curve of similarity ``scores`` against same/different ``labels``.

    Equal, bit for bit, to :func:`sklearn.metrics.roc_curve` (``pos_label=1``, no weights): one point per
    distinct score value t, from the highest down, with the counts of genuine and impostor scores
    ``>= t``; with ``drop_intermediate`` a point is kept only when the count increments into it and out of
    it differ (sklearn's non-zero second difference), the first and last always; then (0, 0) at
    threshold ``inf`` in front, and the counts divided by the class sizes. Inputs are checked: ``labels``
    booleans or 0/1 (1 = same person), ``scores`` finite, both classes present.

    Computed from all the scores sorted and the genuine ones sorted (:func:`_thinned_thresholds`), by
    binary search: on 15.6M IJB-C pairs 0.15 s against sklearn's 1-5 s, in a fraction of its memory. With
    ``overwrite_scores`` an ndarray ``scores`` is sorted in place instead of copied (and left sorted).

    >>> roc = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> roc.fpr.tolist(), roc.tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    issame = as_labels(labels, "labels")
    values = as_scores(scores, "scores")
    check_same_length(labels=issame, scores=values)
    n_genuine, n_impostor = check_both_classes(issame, "roc_curve")
    genuine = values[issame]
    genuine.sort()
    if overwrite_scores and values is scores and values.flags.writeable:
        ordered = values
        ordered.sort()
    else:
        ordered = np.sort(values)
    if drop_intermediate:
        kept = _thinned_thresholds(ordered, genuine)  # the points sklearn's thinning keeps, found directly
    else:
        kept = ordered[np.r_[ordered[1:] != ordered[:-1], True]][::-1]
    # the counts at the kept thresholds, as runs (what each threshold adds) for the one weighted kernel
    tps = np.diff(_counting.count_at_or_above(genuine, kept), prepend=0)
    fps = np.diff(_counting.count_at_or_above(ordered, kept), prepend=0) - tps
    curve = weighted_roc_curve(kept, tps, fps, n_genuine, n_impostor, drop_intermediate=False)
    return RocCurve(curve.fpr, curve.tpr, curve.thresholds, n_genuine, n_impostor, bool(drop_intermediate))


def weighted_roc_curve(
    run_scores: np.ndarray,
    genuine_weights: np.ndarray,
    impostor_weights: np.ndarray,
    total_genuine: float,
    total_impostor: float,
    drop_intermediate: bool = True,
    lookahead: bool = False,
) -> RocCurve:
    """The ROC of weighted scores given as runs of equal scores (``run_scores`` descending, the summed
    genuine and impostor weights of each run): the points of the one weighted kernel
    (:func:`facebench.metrics._counting.weighted_roc_counts`: sklearn's ``roc_curve`` with
    ``sample_weight``, its thinning under ``drop_intermediate``), then (0, 0) at threshold ``inf`` in
    front and the cumulative weights divided by the totals. Unweighted curves pass counts; bootstrap
    resamples the multiplicities. With ``lookahead`` the runs are a prefix (the curve stops before its last
    run). No validation: the public builders check their inputs.
    """
    kept, tps, fps = _counting.weighted_roc_counts(genuine_weights, impostor_weights, drop_intermediate, lookahead)
    fpr = np.empty(fps.size + 1)
    tpr = np.empty(tps.size + 1)
    thresholds = np.empty(fps.size + 1)
    fpr[0] = tpr[0] = 0.0
    thresholds[0] = np.inf
    np.divide(fps, float(total_impostor), out=fpr[1:])
    np.divide(tps, float(total_genuine), out=tpr[1:])
    thresholds[1:] = run_scores[kept]
    return RocCurve(fpr, tpr, thresholds, int(total_genuine), int(total_impostor), bool(drop_intermediate))


def _thinned_thresholds(ordered: np.ndarray, genuine: np.ndarray) -> np.ndarray:
    """The thresholds sklearn's ``drop_intermediate`` keeps, descending; ``ordered`` is all the scores
    sorted ascending, ``genuine`` the genuine ones.

    Let u_1 > ... > u_K be the distinct scores and inc_k = (impostors equal to u_k, genuine equal to u_k)
    the step into point k. sklearn keeps u_1, u_K and every u_k with inc_k != inc_(k+1). Call a value
    *plain* when inc = (1, 0) (one impostor, no genuine score): two plain neighbours never differ, so only
    the *special* values (genuine and tied scores, few) and the value just above each one can be kept. A
    special s is kept when its step differs from that of the next value below; the value just above s,
    when plain, always is (its step (1, 0) differs from s's).
    """
    tied = ordered[1:][ordered[1:] == ordered[:-1]]
    special = np.unique(np.concatenate([genuine, tied]))
    n = ordered.size

    def steps(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        equal = _counting.count_at_or_below(ordered, v) - _counting.count_below(ordered, v)
        gen = _counting.count_at_or_below(genuine, v) - _counting.count_below(genuine, v)
        return equal - gen, gen

    def is_special(v: np.ndarray, exists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.minimum(np.searchsorted(special, v), special.size - 1)
        return exists & (special[at] == v), at

    imp_s, gen_s = steps(special)
    i_below = _counting.count_below(ordered, special) - 1  # the next distinct score below each special one
    has_below = i_below >= 0
    below = ordered[np.maximum(i_below, 0)]
    below_special, at = is_special(below, has_below)
    # a special value is kept when the step into the value below (plain: (1, 0)) differs from its own
    keep_special = ~has_below | (imp_s != np.where(below_special, imp_s[at], 1))
    keep_special |= gen_s != np.where(below_special, gen_s[at], 0)
    i_above = _counting.count_at_or_below(ordered, special)  # the next distinct score above
    has_above = i_above < n
    above = ordered[np.minimum(i_above, n - 1)]
    above_special, _ = is_special(above, has_above)
    ends = ordered[[n - 1, 0]]
    kept = np.unique(np.concatenate([ends, special[keep_special], above[has_above & ~above_special]]))
    return kept[::-1]


def tar_at_far(
    roc: RocCurve,
    targets: ArrayLike = DEFAULT_FAR_TARGETS,
    rule: str = "nearest",
) -> dict[float, OperatingPoint]:
    """The true accept rate at each target false accept rate, read off ``roc`` by ``rule``.

    Rules (PROTOCOLS 2.4):

    - ``nearest`` (insightface ``recognition/_evaluation_/ijb/ijb_11.py``): the arrays are reversed
      (descending FPR) and the first point minimising ``|fpr - target|`` is taken, i.e.
      ``np.argmin(np.abs(fpr[::-1] - target))``. Ties therefore go to the point met first in descending
      order: at equal FPR (the two ends of a vertical step) the higher TPR; for two FPRs exactly as far
      below and above the target, the one above. The chosen FPR may exceed the target. Defined on the
      curve as given; insightface reads it from sklearn's default thinned curve (``drop_intermediate``).
    - ``le`` (bob.measure's sense of "at FAR"): the highest TPR among points with ``fpr <= target``;
      of the points reaching it, the one with the lowest FPR (highest threshold) is reported. Exact on
      any curve except in one corner: thinning drops collinear points, and when the target falls
      inside a run of thresholds each tying genuine and impostor scores in the same counts, the dropped
      point could be higher; use ``roc_curve(..., drop_intermediate=False)`` for quantised scores.
      (bob's own ``roc_for_far`` only tries impostor scores as thresholds, so it can report less when
      genuine scores fall strictly between two impostor scores.)
    - ``interp``: TPR linearly interpolated at FPR = target between the last point with
      ``fpr <= target`` and the next one; ``far`` is the target. A target hit exactly returns that point
      (the top of a vertical step) with its threshold; a strictly interpolated point has threshold NaN.

    Unknown rules are a ValueError. Keys of the result are the targets as given (as floats).

    >>> roc = roc_curve([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.5, 0.9])
    >>> roc.fpr.tolist(), roc.tpr.tolist()
    ([0.0, 0.0, 0.25, 0.25, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    >>> tar_at_far(roc, [0.2], "le")[0.2]
    OperatingPoint(tar=0.5, far=0.0, threshold=0.9)
    >>> tar_at_far(roc, [0.2], "nearest")[0.2]
    OperatingPoint(tar=1.0, far=0.25, threshold=0.5)
    >>> tar_at_far(roc, [0.2], "interp")[0.2].tar  # between (0, 0.5) and (0.25, 0.5)
    0.5
    """
    if rule not in TAR_AT_FAR_RULES:
        raise ValueError(f"unknown TAR@FAR rule {rule!r}; the rules are {', '.join(TAR_AT_FAR_RULES)}")
    wanted = [check_rate(t, "FAR target") for t in np.atleast_1d(np.asarray(targets, dtype=float))]
    fpr, tpr, thresholds = roc.fpr, roc.tpr, roc.thresholds
    points: dict[float, OperatingPoint] = {}
    for target in wanted:
        if rule == "nearest":
            reversed_index = int(np.argmin(np.abs(fpr[::-1] - target)))
            i = fpr.size - 1 - reversed_index
            points[target] = OperatingPoint(float(tpr[i]), float(fpr[i]), float(thresholds[i]))
            continue
        i = int(np.searchsorted(fpr, target, side="right")) - 1  # last point with fpr <= target
        if rule == "le":
            i = int(np.searchsorted(tpr, tpr[i], side="left"))  # first point reaching that TPR
            points[target] = OperatingPoint(float(tpr[i]), float(fpr[i]), float(thresholds[i]))
            continue
        if fpr[i] == target or i == fpr.size - 1:
            points[target] = OperatingPoint(float(tpr[i]), float(fpr[i]), float(thresholds[i]))
            continue
        j = i + 1
        weight = (target - fpr[i]) / (fpr[j] - fpr[i])
        points[target] = OperatingPoint(float(tpr[i] + weight * (tpr[j] - tpr[i])), target, float("nan"))
    return points


def auc(roc: RocCurve) -> float:
    """Area under the ROC curve by the trapezoidal rule: ``sum(diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)``.

    On a curve from :func:`roc_curve` this is the sum :func:`sklearn.metrics.auc` forms on sklearn's
    ``roc_curve`` output with the same ``drop_intermediate``, bit for bit; ``roc_auc_score`` uses the
    default thinned curve, so it equals this on a ``drop_intermediate=True`` curve only (on an unthinned
    one the value agrees to rounding: thinning drops collinear points, which changes no area but can
    change the floating-point sum). Ties between a genuine and an impostor score count one half.
    """
    fpr, tpr = roc.fpr, roc.tpr
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def eer(roc: RocCurve) -> float:
    """Equal error rate by the ROC-crossing rule: where the ROC crosses FNR = FPR (FNR = 1 - TPR).
    (The convex-hull alternative is :func:`eer_rocch`.)

    With d = FPR - FNR (non-decreasing along the curve, -1 at the first point, +1 at the last), take the
    first point k with d >= 0. If d is exactly 0 there, the EER is its FPR; otherwise the ROC segment
    from point k-1 to k is followed linearly to where it meets the line TPR = 1 - FPR and the EER is the
    FPR there: ``fpr[k-1] + w (fpr[k] - fpr[k-1])`` with ``w = -d[k-1] / (d[k] - d[k-1])``. This is the
    exact root that insightface/facenet find with ``brentq`` on ``interp1d(fpr, tpr)``; thinning does not
    change it.

    >>> eer(roc_curve([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]))
    0.5
    """
    d = roc.fpr - (1.0 - roc.tpr)
    k = int(np.argmax(d >= 0))
    if d[k] == 0:
        return float(roc.fpr[k])
    a = k - 1
    weight = -d[a] / (d[k] - d[a])
    return float(roc.fpr[a] + weight * (roc.fpr[k] - roc.fpr[a]))


def det_curve(roc: RocCurve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detection error trade-off points ``(fpr, fnr, thresholds)`` of a ROC, as
    :func:`sklearn.metrics.det_curve` (scikit-learn >= 1.8, which starts from the point at threshold
    ``inf``) returns them: FNR = 1 - TPR, the points from the last one with FPR 0 to the first one with
    FNR 0, in order of decreasing FPR (increasing threshold). Pass a ``drop_intermediate=False`` curve for
    sklearn's default output (sklearn thins DET curves by another rule than ROC curves). Plotted on normal-deviate axes
    (``scipy.stats.norm.ppf``) as ISO/IEC 19795-1 and NIST do.

    >>> det_curve(roc_curve([0, 1, 0], [0, 0.5, 1], drop_intermediate=False))[:2]
    (array([0.5, 0.5, 0. ]), array([0., 1., 1.]))
    """
    fpr, tpr, thresholds = roc.fpr, roc.tpr, roc.thresholds
    first = int(np.searchsorted(fpr, fpr[0], side="right")) - 1
    last = int(np.searchsorted(tpr, tpr[-1], side="left")) + 1
    keep = slice(first, last)
    return fpr[keep][::-1], (1.0 - tpr[keep])[::-1], thresholds[keep][::-1]


def rocch(roc: RocCurve) -> tuple[np.ndarray, np.ndarray]:
    """The ROC convex hull: the upper-left convex hull of the ROC points (with (0, 0) and (1, 1)), as
    ``(fpr, tpr)`` with FPR ascending. Every hull vertex is a ROC point; any point on a hull edge is
    reachable by randomising between its two ends. bob.measure's ``rocch`` returns the same vertices as
    ``(pmiss, pfa) = (1 - tpr, fpr)``."""
    points = np.unique(np.column_stack([np.r_[0.0, roc.fpr, 1.0], np.r_[0.0, roc.tpr, 1.0]]), axis=0)
    hull: list[tuple[float, float]] = []
    for x, y in points:  # ascending FPR, then TPR; keep the upper hull (clockwise turns only)
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # the middle point lies on or below the chord (collinear up to rounding of the rates: dropped)
            if (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1) >= -1e-12:
                hull.pop()
            else:
                break
        hull.append((float(x), float(y)))
    xs, ys = np.array(hull).T
    return xs, ys


def rocch_eer(pfa: ArrayLike, pmiss: ArrayLike) -> float:
    """The EER of a ROC convex hull given as vertices ``(pfa, pmiss)`` (pfa ascending, pmiss descending):
    the false-alarm rate where the hull meets the line pfa = pmiss, by linear interpolation on the edge
    that crosses it (bob.measure ``rocch2eer``)."""
    x, y = np.asarray(pfa, dtype=float), np.asarray(pmiss, dtype=float)
    d = x - y
    k = int(np.argmax(d >= 0))
    if d[k] == 0 or k == 0:
        return float(x[k])
    a = k - 1
    weight = -d[a] / (d[k] - d[a])
    return float(x[a] + weight * (x[k] - x[a]))


def eer_rocch(roc: RocCurve) -> float:
    """ROC-convex-hull EER (bob.measure ``eer_rocch``): :func:`rocch_eer` of :func:`rocch`. Never above
    :func:`eer` (the hull lies on or above the curve), equal to it when the crossing edge is on the hull."""
    fpr, tpr = rocch(roc)
    return rocch_eer(fpr, 1.0 - tpr)


def rates_at_threshold(labels: ArrayLike, scores: ArrayLike, threshold: float, comparison: str = ">=") -> tuple[float, float]:
    """(FMR, FNMR) at a fixed ``threshold``: the share of impostor scores accepted and of genuine scores
    rejected, a pair accepted when ``score >= threshold`` (or ``>``). bob.measure's ``farfrr`` for ``>=``.

    >>> rates_at_threshold([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9], 0.5)
    (0.5, 0.0)
    """
    issame = as_labels(labels, "labels")
    values = as_scores(scores, "scores")
    check_same_length(labels=issame, scores=values)
    n_genuine, n_impostor = check_both_classes(issame, "rates_at_threshold")
    operating.check_comparison(comparison)
    accepted = values >= threshold if comparison == ">=" else values > threshold
    fmr = np.count_nonzero(accepted & ~issame) / n_impostor
    fnmr = np.count_nonzero(~accepted & issame) / n_genuine
    return float(fmr), float(fnmr)


def threshold_at_far(impostor_scores: ArrayLike, far: float, comparison: str = ">=") -> float:
    """The threshold of :func:`facebench.metrics.operating.rate_threshold`: the lowest t whose impostor
    share accepted, ``#(impostor CMP t) / n``, is ``<= far``.

    ``comparison=">="`` (default; bob.measure's ``far_threshold``, accept ``score >= t``): t is the c-th
    largest impostor score, ``c = max{c : c / n <= far}``, moved up to the next larger distinct value when
    it ties with the (c+1)-th; the next float above the maximum when ``c = 0`` (e.g. ``far < 1/n``, where
    FAR 0 is all a threshold can give). It is the lowest *impostor value* with that FAR, not the lowest
    threshold: any t in ``(s_(c+1), s_c]`` gives the same FAR and accepts the genuine scores in that gap
    too. ``comparison=">"``: t = ``s_(c+1)`` (accept ``score > t``), which accepts the same impostors and
    every genuine score above ``s_(c+1)``: the highest TAR with FAR ``<= far`` (the ``le`` read-off);
    ``-inf`` when ``far = 1``. bob returns a value just below the minimum for ``far = 1``; ``">="`` here
    the minimum itself (same FAR, 1).

    For squared-Euclidean distances between unit vectors pass ``-d`` or convert with
    :func:`sqeuclidean_to_cos` first, and map the threshold back with :func:`cos_to_sqeuclidean`
    (accept ``cos >= t`` is ``d <= 2 - 2t``).

    >>> threshold_at_far([0.1, 0.2, 0.3, 0.4], 0.5)
    0.3
    >>> threshold_at_far([0.1, 0.2, 0.3, 0.4], 0.5, ">")
    0.2
    >>> threshold_at_far([0.1, 0.2, 0.3, 0.3], 0.25) > 0.3
    True
    """
    values = as_scores(impostor_scores, "impostor_scores")
    if values.size == 0:
        raise ValueError("threshold_at_far needs at least one impostor score; got none")
    rate = check_rate(far, "far")
    operating.check_comparison(comparison)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    return operating.rate_threshold(np.sort(values), rate, comparison)


def cos_to_sqeuclidean(cos: ArrayLike) -> np.ndarray | float:
    """Squared Euclidean distance between unit vectors with cosine ``cos``: ``2 - 2 cos``."""
    result = 2.0 - 2.0 * np.asarray(cos, dtype=float)
    return float(result) if result.ndim == 0 else result


def sqeuclidean_to_cos(distance: ArrayLike) -> np.ndarray | float:
    """Cosine between unit vectors at squared Euclidean ``distance``: ``1 - d / 2``."""
    result = 1.0 - np.asarray(distance, dtype=float) / 2.0
    return float(result) if result.ndim == 0 else result
