"""ROC, TAR@FAR rules, AUC, EER and FAR thresholds against brute-force references written here."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import sklearn.metrics
from scipy.optimize import brentq

from facebench.metrics import roc as roc_mod
from facebench.metrics.roc import (
    auc,
    cos_to_sqeuclidean,
    eer,
    roc_curve,
    sqeuclidean_to_cos,
    tar_at_far,
    threshold_at_far,
)

TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 0.25, 0.5, 1.0)


def _continuous(seed: int, n_gen: int = 400, n_imp: int = 4000):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_gen, bool), np.zeros(n_imp, bool)]
    scores = np.r_[rng.normal(0.6, 0.15, n_gen), rng.normal(0.1, 0.12, n_imp)]
    perm = rng.permutation(labels.size)
    return labels[perm], scores[perm]


def _quantised(seed: int, n_gen: int = 300, n_imp: int = 3000):
    labels, scores = _continuous(seed, n_gen, n_imp)
    return labels, np.round(scores, 2)  # many ties, also between genuine and impostor scores


def _full_curve(labels, scores):
    """Every distinct score as a threshold (accept score >= t), plus +inf: (fpr, tpr, threshold) rows."""
    n_gen = labels.sum()
    n_imp = labels.size - n_gen
    rows = [(0.0, 0.0, np.inf)]
    for t in sorted(set(scores.tolist()), reverse=True):
        accepted = scores >= t
        rows.append(((accepted & ~labels).sum() / n_imp, (accepted & labels).sum() / n_gen, t))
    return rows


# --- roc_curve -------------------------------------------------------------------------------------


@pytest.mark.parametrize("drop", [True, False])
@pytest.mark.parametrize("make", [_continuous, _quantised])
def test_roc_curve_equals_sklearn_bit_for_bit(make, drop):
    labels, scores = make(3)
    ours = roc_curve(labels.astype(int), scores, drop_intermediate=drop)
    fpr, tpr, thr = sklearn.metrics.roc_curve(labels.astype(int), scores, drop_intermediate=drop)
    assert np.array_equal(ours.fpr, fpr) and np.array_equal(ours.tpr, tpr) and np.array_equal(ours.thresholds, thr)
    assert (ours.n_genuine, ours.n_impostor) == (labels.sum(), (~labels).sum())
    assert ours.drop_intermediate is drop


def test_roc_curve_equals_sklearn_on_many_small_tied_inputs():
    # ties within and across the classes, integer and float32 scores, one or two distinct values
    rng = np.random.default_rng(8)
    for case in range(600):
        n = int(rng.integers(2, 30))
        labels = rng.random(n) < rng.uniform(0.1, 0.9)
        if labels.all() or not labels.any():
            continue
        levels = int(rng.integers(1, 8))
        scores = rng.integers(0, levels, n) / levels if case % 3 else rng.normal(size=n)
        scores = scores.astype(np.float32) if case % 5 == 0 else scores
        scores = rng.integers(-3, 3, n) if case % 7 == 0 else scores
        for drop in (True, False):
            ours = roc_curve(labels, scores, drop_intermediate=drop)
            fpr, tpr, thr = sklearn.metrics.roc_curve(labels, scores, drop_intermediate=drop)
            assert np.array_equal(ours.fpr, fpr) and np.array_equal(ours.tpr, tpr)
            assert np.array_equal(ours.thresholds, thr) and ours.thresholds.dtype == thr.dtype
            assert auc(ours) == sklearn.metrics.auc(fpr, tpr)


def test_roc_curve_overwrite_scores_sorts_in_place_with_the_same_curve():
    labels, scores = _quantised(6)
    kept = scores.copy()
    plain = roc_curve(labels, scores)
    assert np.array_equal(scores, kept)  # untouched by default
    overwritten = roc_curve(labels, scores, overwrite_scores=True)
    assert np.array_equal(scores, np.sort(kept))
    for name in ("fpr", "tpr", "thresholds"):
        assert np.array_equal(getattr(plain, name), getattr(overwritten, name))


def test_roc_curve_full_curve_matches_direct_counting():
    labels, scores = _quantised(4, 60, 200)
    ours = roc_curve(labels, scores, drop_intermediate=False)
    expected = np.array(_full_curve(labels, scores))
    assert np.array_equal(ours.fpr, expected[:, 0])
    assert np.array_equal(ours.tpr, expected[:, 1])
    assert np.array_equal(ours.thresholds, expected[:, 2])


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "got 3 genuine and 0 impostor"),
        ([0, 0], [0.1, 0.2], "got 0 genuine and 2 impostor"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "only 0/1"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "1 NaN or infinite values (first at index 1"),
        ([0, 1], [0.1, 0.2, 0.3], "labels has 2, scores has 3"),
        ([[0, 1]], [[0.1, 0.2]], "must be 1-D"),
    ],
)
def test_roc_curve_rejects_bad_input_with_clear_message(labels, scores, message):
    with pytest.raises(ValueError, match=None) as info:
        roc_curve(labels, scores)
    assert message in str(info.value)


# --- tar_at_far: nearest ---------------------------------------------------------------------------


def _insightface_nearest(fpr, tpr, target):
    """As ijb_11.py reads the table: reverse, then min over (|fpr - x|, index) tuples."""
    fpr_r, tpr_r = fpr[::-1], tpr[::-1]
    _, index = min(zip(abs(fpr_r - target), range(len(fpr_r))))
    return tpr_r[index], fpr_r[index]


@pytest.mark.parametrize("make", [_continuous, _quantised])
def test_nearest_equals_insightface_table_code(make):
    labels, scores = make(5)
    curve = roc_curve(labels, scores)
    points = tar_at_far(curve, TARGETS)
    for target in TARGETS:
        tar, far = _insightface_nearest(curve.fpr, curve.tpr, target)
        assert (points[target].tar, points[target].far) == (tar, far)
        i = np.flatnonzero((curve.fpr == far) & (curve.tpr == tar))[-1]
        assert points[target].threshold == curve.thresholds[i]


def test_nearest_ties_go_to_higher_tpr_then_higher_fpr():
    # curve points (fpr, tpr): (0,0) (0,.5) (.25,.5) (.25,1) (.75,1)? build from scores by hand:
    # impostors 0.6, 0.3, 0.2, 0.1 ; genuine 0.9, 0.5 -> full curve
    # t=inf (0,0); 0.9 (0,.5); 0.6 (.25,.5); 0.5 (.25,1); 0.3 (.5,1); 0.2 (.75,1); 0.1 (1,1)
    labels = np.array([0, 0, 0, 0, 1, 1], bool)
    scores = np.array([0.6, 0.3, 0.2, 0.1, 0.9, 0.5])
    curve = roc_curve(labels, scores, drop_intermediate=False)
    points = tar_at_far(curve, [0.0, 0.25, 0.375], "nearest")
    assert points[0.0] == roc_mod.OperatingPoint(0.5, 0.0, 0.9)  # (0,0) and (0,.5) tie: higher TPR
    assert points[0.25] == roc_mod.OperatingPoint(1.0, 0.25, 0.5)  # (.25,.5) and (.25,1) tie: higher TPR
    # 0.375 is exactly between 0.25 and 0.5 (both differences are 0.125 exactly): the higher FPR wins
    assert points[0.375] == roc_mod.OperatingPoint(1.0, 0.5, 0.3)


# --- tar_at_far: le ---------------------------------------------------------------------------------


def _le_brute(labels, scores, target):
    best = (0.0, 0.0, np.inf)
    for fpr, tpr, thr in _full_curve(labels, scores):
        if fpr <= target and tpr > best[1]:
            best = (fpr, tpr, thr)
    return best


@pytest.mark.parametrize("drop", [True, False])
def test_le_equals_brute_force_on_continuous_scores(drop):
    labels, scores = _continuous(6, 150, 1500)
    points = tar_at_far(roc_curve(labels, scores, drop_intermediate=drop), TARGETS, "le")
    for target in TARGETS:
        fpr, tpr, thr = _le_brute(labels, scores, target)
        assert (points[target].tar, points[target].far, points[target].threshold) == (tpr, fpr, thr)
        assert points[target].far <= target


def test_le_equals_brute_force_on_tied_scores_with_full_curve():
    labels, scores = _quantised(7, 150, 1500)
    points = tar_at_far(roc_curve(labels, scores, drop_intermediate=False), TARGETS, "le")
    for target in TARGETS:
        fpr, tpr, thr = _le_brute(labels, scores, target)
        assert (points[target].tar, points[target].far, points[target].threshold) == (tpr, fpr, thr)


def test_le_can_exceed_bob_impostor_only_thresholds():
    # impostors 0.1 and 0.5, one genuine at 0.3; FAR 0.5. bob's far_threshold picks t = 0.5 (the lowest
    # impostor value with share(>= t) <= 0.5), accepting no genuine; the ROC point t = 0.3 has FPR 0.5
    # too and accepts the genuine pair.
    labels = np.array([0, 0, 1], bool)
    scores = np.array([0.1, 0.5, 0.3])
    assert threshold_at_far(scores[~labels], 0.5) == 0.5
    assert tar_at_far(roc_curve(labels, scores), [0.5], "le")[0.5] == roc_mod.OperatingPoint(1.0, 0.5, 0.3)


# --- tar_at_far: interp -------------------------------------------------------------------------------


def _interp_brute(fpr, tpr, target):
    for a in range(len(fpr) - 1, -1, -1):  # last point at or below the target
        if fpr[a] <= target:
            break
    if fpr[a] == target or a == len(fpr) - 1:
        return tpr[a]
    b = a + 1
    return tpr[a] + (tpr[b] - tpr[a]) * (target - fpr[a]) / (fpr[b] - fpr[a])


@pytest.mark.parametrize("make", [_continuous, _quantised])
def test_interp_equals_brute_force(make):
    labels, scores = make(8)
    curve = roc_curve(labels, scores)
    points = tar_at_far(curve, TARGETS, "interp")
    for target in TARGETS:
        assert points[target].tar == pytest.approx(_interp_brute(curve.fpr, curve.tpr, target), abs=1e-12)
    # thinning removes only collinear points, so interpolation does not see it
    full = tar_at_far(roc_curve(labels, scores, drop_intermediate=False), TARGETS, "interp")
    for target in TARGETS:
        assert full[target].tar == pytest.approx(points[target].tar, abs=1e-12)


def test_interp_hand_case():
    # points (0,0) (0,.5) (.5,.5) (.5,1) (1,1) ; target .25 lies on the flat (0,.5)-(.5,.5); target .5
    # is hit exactly -> top of the vertical step (.5, 1) with its threshold
    labels = np.array([0, 0, 1, 1], bool)
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    curve = roc_curve(labels, scores)
    points = tar_at_far(curve, [0.25, 0.5, 0.75], "interp")
    assert points[0.25].tar == 0.5 and np.isnan(points[0.25].threshold) and points[0.25].far == 0.25
    assert points[0.5] == roc_mod.OperatingPoint(1.0, 0.5, 0.4)
    assert points[0.75].tar == 1.0


def test_unknown_rule_lists_the_rules():
    curve = roc_curve([0, 1], [0.1, 0.9])
    with pytest.raises(ValueError, match="unknown TAR@FAR rule 'closest'; the rules are nearest, le, interp"):
        tar_at_far(curve, [0.1], "closest")
    with pytest.raises(ValueError, match=r"FAR target must lie in \[0, 1\]; got 1.5"):
        tar_at_far(curve, [1.5])


# --- auc, eer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [_continuous, _quantised])
def test_auc_equals_sklearn_and_mann_whitney(make):
    labels, scores = make(9, 200, 800)
    curve = roc_curve(labels, scores)
    assert auc(curve) == sklearn.metrics.roc_auc_score(labels, scores)
    gen, imp = scores[labels], scores[~labels]
    wins = (gen[:, None] > imp[None, :]).sum() + 0.5 * (gen[:, None] == imp[None, :]).sum()
    assert auc(curve) == pytest.approx(wins / (gen.size * imp.size), abs=1e-12)


def _eer_brute(fpr, tpr):
    """First ROC segment meeting the line tpr = 1 - fpr, intersected exactly."""
    for a in range(len(fpr) - 1):
        x0, y0, x1, y1 = fpr[a], tpr[a], fpr[a + 1], tpr[a + 1]
        g0, g1 = x0 + y0 - 1, x1 + y1 - 1
        if g0 <= 0 <= g1:
            if g1 == g0:
                return x0
            s = -g0 / (g1 - g0)
            return x0 + s * (x1 - x0)
    raise AssertionError("no crossing")


@pytest.mark.parametrize("make", [_continuous, _quantised])
def test_eer_equals_segment_intersection(make):
    labels, scores = make(10)
    thin, full = roc_curve(labels, scores), roc_curve(labels, scores, drop_intermediate=False)
    assert eer(thin) == pytest.approx(_eer_brute(full.fpr, full.tpr), abs=1e-12)
    assert eer(full) == pytest.approx(eer(thin), abs=1e-12)


def test_eer_equals_root_found_numerically_along_the_curve():
    labels, scores = _continuous(11)
    curve = roc_curve(labels, scores)

    def point(s):  # the ROC polyline, parametrised by s in [0, n - 1]
        a = min(int(np.floor(s)), curve.fpr.size - 2)
        w = s - a
        return (1 - w) * curve.fpr[a] + w * curve.fpr[a + 1], (1 - w) * curve.tpr[a] + w * curve.tpr[a + 1]

    root = brentq(lambda s: sum(point(s)) - 1.0, 0.0, curve.fpr.size - 1.0, xtol=1e-13)
    assert eer(curve) == pytest.approx(point(root)[0], abs=1e-9)


def test_eer_hand_cases():
    # crossing exactly at a point: (0.5, 0.5)
    assert eer(roc_curve([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])) == 0.5
    # perfect separation: the curve goes (0,0) -> (0,1) -> (1,1), crossing at FPR 0
    assert eer(roc_curve([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])) == 0.0
    # one impostor above both genuines out of 2: points (0,0) (.5,0) (.5,1) (1,1): crossing on the
    # vertical step at FPR 0.5
    assert eer(roc_curve([0, 0, 1, 1], [0.1, 0.9, 0.5, 0.6])) == 0.5
    # one impostor above all three genuines: a vertical step at FPR 1/3 crosses the line
    assert eer(roc_curve([0, 0, 0, 1, 1, 1], [0.95, 0.2, 0.1, 0.9, 0.85, 0.3])) == pytest.approx(1 / 3, abs=1e-15)


def test_curve_metrics_invariant_to_pair_order():
    labels, scores = _quantised(12)
    perm = np.random.default_rng(0).permutation(labels.size)
    a, b = roc_curve(labels, scores), roc_curve(labels[perm], scores[perm])
    assert np.array_equal(a.fpr, b.fpr) and np.array_equal(a.tpr, b.tpr) and np.array_equal(a.thresholds, b.thresholds)
    assert auc(a) == auc(b) and eer(a) == eer(b)
    for rule in ("nearest", "le", "interp"):
        pa, pb = tar_at_far(a, TARGETS, rule), tar_at_far(b, TARGETS, rule)
        assert [p.tar for p in pa.values()] == [p.tar for p in pb.values()]


# --- threshold_at_far ----------------------------------------------------------------------------------


def _threshold_brute(impostors, far):
    n = len(impostors)
    for v in sorted(set(impostors.tolist())):
        if sum(1 for s in impostors if s >= v) / n <= far:
            return v
    return float(np.nextafter(max(impostors), np.inf))


@pytest.mark.parametrize("far", [0.0, 1e-4, 1e-3, 0.01, 0.013, 0.1, 0.5, 0.999, 1.0])
def test_threshold_at_far_equals_brute_force(far):
    rng = np.random.default_rng(13)
    impostors = np.r_[rng.normal(0, 1, 700), np.round(rng.normal(0, 1, 300), 1)]  # with ties
    t = threshold_at_far(impostors, far)
    assert t == _threshold_brute(impostors, far)
    assert np.mean(impostors >= t) <= far
    below = impostors[impostors < t]
    if below.size:  # the next lower candidate would break the target
        assert np.mean(impostors >= below.max()) > far


def test_threshold_at_far_hand_cases():
    assert threshold_at_far([0.1, 0.2, 0.3, 0.4], 0.5) == 0.3
    assert threshold_at_far([0.1, 0.2, 0.3, 0.4], 0.49) == 0.4
    assert threshold_at_far([0.1, 0.2, 0.3, 0.4], 0.2) == np.nextafter(0.4, 1.0)
    assert threshold_at_far([0.1, 0.2, 0.3, 0.3], 0.5) == 0.3  # the tie at 0.3 is 2/4 = 0.5
    assert threshold_at_far([0.1, 0.2, 0.3, 0.3], 0.25) == np.nextafter(0.3, 1.0)
    assert threshold_at_far([0.1, 0.2], 1.0) == 0.1


def test_threshold_at_far_keeps_float32_so_comparisons_stay_exact():
    impostors = np.array([0.1, 0.7, 0.7], dtype=np.float32)
    t = threshold_at_far(impostors, 0.1)
    assert t == float(np.nextafter(np.float32(0.7), np.float32(1)))
    assert np.count_nonzero(impostors >= t) == 0  # float32 comparison: strictly above the maximum


def test_threshold_at_far_rejects_bad_input():
    with pytest.raises(ValueError, match=r"far must lie in \[0, 1\]; got -0.1"):
        threshold_at_far([0.1, 0.2], -0.1)
    with pytest.raises(ValueError, match="needs at least one impostor score"):
        threshold_at_far([], 0.1)


def test_cosine_distance_conversions_match_unit_vectors():
    rng = np.random.default_rng(14)
    u = rng.normal(size=(50, 8))
    v = rng.normal(size=(50, 8))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cos = np.sum(u * v, axis=1)
    distance = np.sum((u - v) ** 2, axis=1)
    assert np.allclose(cos_to_sqeuclidean(cos), distance, rtol=0, atol=1e-12)
    assert np.allclose(sqeuclidean_to_cos(distance), cos, rtol=0, atol=1e-12)
    assert cos_to_sqeuclidean(0.25) == 1.5 and sqeuclidean_to_cos(1.5) == 0.25


def test_docstring_examples_hold():
    failures, tried = doctest.testmod(roc_mod, raise_on_error=False, verbose=False)
    assert tried > 0 and failures == 0


def _loop_weighted_roc(scores, genuine, weights, drop):
    """Written-out reference of sklearn's weighted ROC: one point per distinct score (descending) whose
    pairs carry positive weight, the weights of the pairs scoring >= it; thinning keeps the first, the last
    and every point where the increment into it differs from the increment out of it."""
    points = []
    for t in sorted(set(scores.tolist()), reverse=True):
        if sum(w for s, w in zip(scores, weights) if s == t) == 0:
            continue
        tp = sum(w for s, g, w in zip(scores, genuine, weights) if s >= t and g)
        fp = sum(w for s, g, w in zip(scores, genuine, weights) if s >= t and not g)
        points.append((t, tp, fp))
    if drop:
        kept = [points[0]] if points else []
        for k in range(1, len(points) - 1):
            (_, t0, f0), (_, t1, f1), (_, t2, f2) = points[k - 1 : k + 2]
            if (t2 - t1, f2 - f1) != (t1 - t0, f1 - f0):
                kept.append(points[k])
        points = kept + (points[-1:] if len(points) > 1 else [])
    return points


@pytest.mark.parametrize("drop", [True, False])
def test_weighted_kernel_equals_a_written_out_loop_on_ties_and_weights(drop):
    from facebench.metrics._counting import weighted_roc_counts

    rng = np.random.default_rng(11)
    for trial in range(60):
        n = int(rng.integers(1, 40))
        scores = rng.integers(0, 8, n).astype(np.float64) / 4  # many ties
        genuine = rng.random(n) < 0.4
        weights = rng.integers(0, 4, n)  # zeros too: a bootstrap resample that left pairs out
        runs = np.unique(scores)[::-1]
        run_of = np.searchsorted(-runs, -scores)
        gen_w = np.bincount(run_of, weights=weights * genuine, minlength=runs.size).astype(np.int64)
        imp_w = np.bincount(run_of, weights=weights * ~genuine, minlength=runs.size).astype(np.int64)
        kept, tps, fps = weighted_roc_counts(gen_w, imp_w, drop_intermediate=drop)
        expected = _loop_weighted_roc(scores, genuine, weights, drop)
        assert list(zip(runs[kept].tolist(), tps.tolist(), fps.tolist())) == expected, trial
        # a prefix of the runs with look-ahead gives the full curve's points above its last run of weight
        cut = int(rng.integers(1, runs.size + 1))
        kept_p, tps_p, fps_p = weighted_roc_counts(gen_w[:cut], imp_w[:cut], drop_intermediate=drop, lookahead=True)
        weighed = np.flatnonzero(gen_w[:cut] + imp_w[:cut])
        last = runs[weighed[-1]] if weighed.size else np.inf
        assert list(zip(runs[kept_p].tolist(), tps_p.tolist(), fps_p.tolist())) == [
            p for p in expected if p[0] > last], trial


def test_weighted_curve_equals_sklearn_with_sample_weight():
    rng = np.random.default_rng(3)
    scores = np.round(rng.standard_normal(500), 1)
    labels = rng.random(500) < 0.3
    weights = rng.integers(1, 5, 500)
    runs = np.unique(scores)[::-1]
    run_of = np.searchsorted(-runs, -scores)
    gen_w = np.bincount(run_of, weights=weights * labels, minlength=runs.size).astype(np.int64)
    imp_w = np.bincount(run_of, weights=weights * ~labels, minlength=runs.size).astype(np.int64)
    ours = roc_mod.weighted_roc_curve(runs, gen_w, imp_w, gen_w.sum(), imp_w.sum())
    fpr, tpr, thresholds = sklearn.metrics.roc_curve(labels, scores, sample_weight=weights)
    np.testing.assert_array_equal(ours.thresholds[1:], thresholds[1:])
    np.testing.assert_allclose(ours.fpr, fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours.tpr, tpr, rtol=0, atol=1e-15)
