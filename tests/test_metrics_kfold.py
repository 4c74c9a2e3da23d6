"""k-fold verification rules (insightface, FaceX-Zoo) against loop references and hand-worked cases."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.interpolate import BSpline, interp1d
from sklearn.model_selection import KFold

from facebench.metrics import kfold as kfold_mod
from facebench.metrics.kfold import (
    facexzoo_kfold,
    fold_balance,
    insightface_kfold,
    insightface_val_far,
    is_balanced,
    kfold_indices,
)


def _lfw_like(seed: int, on_grid: bool = False):
    """6,000 pairs laid out as the packs are: 10 folds of 300 same then 300 different pairs."""
    rng = np.random.default_rng(seed)
    issame = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    cos = np.where(issame, rng.normal(0.55, 0.17, issame.size), rng.normal(0.08, 0.13, issame.size))
    dist = 2.0 - 2.0 * np.clip(cos, -1, 1)
    if on_grid:  # distances equal to grid thresholds exercise the strict `<`
        grid = np.arange(0, 4, 0.01)
        dist = grid[np.clip(np.round(dist / 0.01).astype(int), 0, grid.size - 1)]
    return dist, cos, issame


# --- folds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k"), [(6000, 10), (7000, 10), (13, 10), (10, 10), (101, 7), (5, 2)])
def test_kfold_indices_equal_sklearn_kfold(n, k):
    expected = [test for _, test in KFold(n_splits=k, shuffle=False).split(np.arange(n))]
    got = kfold_indices(n, k)
    assert len(got) == k and all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_kfold_indices_reject_bad_sizes():
    with pytest.raises(ValueError, match="n_folds=10 exceeds the number of pairs \\(5\\)"):
        kfold_indices(5, 10)
    with pytest.raises(ValueError, match="n_folds must be at least 2; got 1"):
        kfold_indices(5, 1)


def test_fold_balance_and_reordered_pack():
    _, _, issame = _lfw_like(0)
    counts = fold_balance(issame)
    assert counts.shape == (10, 2) and np.all(counts == [300, 300])
    assert is_balanced(issame)
    assert not is_balanced(np.sort(issame))  # sorted by label: folds all-different then all-same
    shuffled = np.random.default_rng(1).permutation(issame)
    assert not is_balanced(shuffled)  # a random order misses 300 per fold by more than one pair
    assert fold_balance([1, 1, 0, 1, 0, 0, 0], 3).tolist() == [[2, 1], [1, 1], [0, 2]]
    assert is_balanced([1, 0, 1, 0, 1], 2)  # fold sizes 3 and 2, share 0.6: 2 vs 1.8, 1 vs 1.2


# --- insightface accuracy --------------------------------------------------------------------------------


def _insightface_reference(dist, issame, n_folds, thresholds):
    """Loops over folds and thresholds, counting with element-wise comparisons."""
    accuracies, chosen = [], []
    for test in kfold_indices(dist.size, n_folds):
        train = np.setdiff1d(np.arange(dist.size), test)
        train_acc = []
        for t in thresholds:
            pred = dist[train] < t
            train_acc.append(float(np.sum(pred & issame[train]) + np.sum(~pred & ~issame[train])) / train.size)
        best = thresholds[int(np.argmax(train_acc))]
        pred = dist[test] < best
        accuracies.append(float(np.sum(pred & issame[test]) + np.sum(~pred & ~issame[test])) / test.size)
        chosen.append(best)
    return np.array(accuracies), np.array(chosen)


@pytest.mark.parametrize("on_grid", [False, True])
def test_insightface_kfold_equals_loop_reference(on_grid):
    dist, _, issame = _lfw_like(2, on_grid)
    result = insightface_kfold(dist, issame)
    accuracies, chosen = _insightface_reference(dist, issame, 10, np.arange(0, 4, 0.01))
    assert np.array_equal(result.accuracies, accuracies) and np.array_equal(result.thresholds, chosen)
    assert result.mean == np.mean(accuracies) and result.std == np.std(accuracies)
    assert result.rule == "insightface" and result.std_rule == "std(ddof=0)" and result.n_folds == 10
    assert np.array_equal(result.correct, result.predictions == issame)
    per_fold = [result.correct[f].mean() for f in kfold_indices(dist.size, 10)]
    assert np.array_equal(per_fold, result.accuracies)


def test_insightface_kfold_hand_case_and_strict_comparison():
    thresholds = [0.5, 1.0, 1.5]
    # fold 0 trains on (0.7 same, 1.6 diff): 0.5 -> 1/2, 1.0 -> 2/2 first best; held out 0.2 same, 1.2 diff
    # fold 1 trains on (0.2 same, 1.2 diff): 0.5 already 2/2; held out 0.7 same (missed), 1.6 diff
    r = insightface_kfold([0.2, 1.2, 0.7, 1.6], [1, 0, 1, 0], n_folds=2, thresholds=thresholds)
    assert r.accuracies.tolist() == [1.0, 0.5] and r.thresholds.tolist() == [1.0, 0.5]
    assert (r.mean, r.std) == (0.75, 0.25)
    assert r.predictions.tolist() == [True, False, False, False]
    # a same pair exactly at the threshold is not accepted (dist < t is strict)
    r = insightface_kfold([1.0, 1.2, 0.7, 1.6], [1, 0, 1, 0], n_folds=2, thresholds=thresholds)
    assert r.accuracies[0] == 0.5


def test_insightface_kfold_invariant_to_order_within_folds():
    dist, _, issame = _lfw_like(3)
    rng = np.random.default_rng(0)
    perm = np.concatenate([rng.permutation(f) for f in kfold_indices(dist.size, 10)])
    a, b = insightface_kfold(dist, issame), insightface_kfold(dist[perm], issame[perm])
    assert np.array_equal(a.accuracies, b.accuracies) and np.array_equal(a.thresholds, b.thresholds)
    assert np.array_equal(a.predictions[perm], b.predictions)


# --- insightface VAL@FAR ---------------------------------------------------------------------------------


def _old_scipy_slinear(x, y, at):
    """interp1d(kind='slinear') as SciPy <= 1.8 built it: a degree-1 BSpline with knots [x0, x, x_end]."""
    order = np.argsort(x, kind="mergesort")
    xs, ys = x[order], y[order]
    return float(BSpline.construct_fast(np.r_[xs[0], xs, xs[-1]], ys.astype(float), 1)(at))


def _val_far_reference(dist, issame, far_target, n_folds, thresholds, interpolate=_old_scipy_slinear):
    vals, fars, chosen = [], [], []
    for test in kfold_indices(dist.size, n_folds):
        train = np.setdiff1d(np.arange(dist.size), test)
        n_diff = np.sum(~issame[train])
        far_train = np.array([float(np.sum((dist[train] < t) & ~issame[train])) / n_diff for t in thresholds])
        t = interpolate(far_train, thresholds, far_target) if far_train.max() >= far_target else 0.0
        pred = dist[test] < t
        vals.append(float(np.sum(pred & issame[test])) / np.sum(issame[test]))
        fars.append(float(np.sum(pred & ~issame[test])) / np.sum(~issame[test]))
        chosen.append(t)
    return np.array(vals), np.array(fars), np.array(chosen)


def test_val_far_equals_reference_on_the_default_grid():
    dist, _, issame = _lfw_like(4)
    grid = np.arange(0, 4, 0.001)
    result = insightface_val_far(dist, issame)
    vals, fars, chosen = _val_far_reference(dist, issame, 1e-3, 10, grid)
    assert np.array_equal(result.thresholds, chosen)
    assert np.array_equal(result.vals, vals) and np.array_equal(result.fars, fars)
    assert (result.val_mean, result.val_std, result.far_mean) == (np.mean(vals), np.std(vals), np.mean(fars))
    # the reason for reproducing old SciPy: today's interp1d refuses the repeated FARs of this grid
    with pytest.raises(ValueError, match="duplicates"):
        interp1d(np.r_[0.0, 0.0, 0.5, 1.0], np.arange(4.0), kind="slinear")


def test_val_far_interpolation_equals_current_interp1d_without_repeats():
    # where today's SciPy still accepts the input (no repeated FAR), it must agree bit for bit
    rng = np.random.default_rng(5)
    for _ in range(20):
        far = np.unique(rng.random(50))
        far = rng.permutation(far)  # interp1d sorts; so must the reproduction
        thresholds = rng.random(far.size) * 4
        for at in np.r_[far.min(), far.max(), rng.uniform(far.min(), far.max(), 10)]:
            expected = float(interp1d(far, thresholds, kind="slinear")(at))
            assert kfold_mod._scipy18_slinear(far, thresholds, at, fold=0) == expected


def test_val_far_interpolation_hand_cases():
    x = np.array([0.0, 0.0, 0.5, 0.5, 1.0])
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    # a run of equal FARs contributes its highest threshold: between (0, 1) and (0.5, 2)
    assert kfold_mod._scipy18_slinear(x, y, 0.25, fold=0) == 1.5
    assert kfold_mod._scipy18_slinear(x, y, 0.5, fold=0) == 3.0  # exactly at a run: its last threshold
    assert kfold_mod._scipy18_slinear(x, y, 1.0, fold=0) == 4.0
    assert kfold_mod._scipy18_slinear(x, y, 0.0, fold=0) == 1.0
    # SciPy's quirk: the target equal to a repeated maximum FAR gives 0.0
    assert kfold_mod._scipy18_slinear(np.array([0.0, 0.5, 1.0, 1.0]), np.arange(4.0), 1.0, fold=0) == 0.0
    for at in (0.0, 0.1, 0.25, 0.5, 0.7, 1.0):  # and each agrees with old SciPy's spline object
        assert kfold_mod._scipy18_slinear(x, y, at, fold=0) == _old_scipy_slinear(x, y, at)
    with pytest.raises(ValueError, match="fold 3: FAR target 0.05 lies outside the training FARs"):
        kfold_mod._scipy18_slinear(np.array([0.1, 0.5]), np.array([1.0, 2.0]), 0.05, fold=3)


def test_val_far_hand_case():
    # fold 0 trains on impostors 1.5, 3.5: FAR at thresholds 0..4 = 0, 0, .5, .5, 1 -> t = 1.5 for 0.25;
    # held out: same 0.5, 1.4 (both < 1.5), different 1.6 (no), 1.49 (yes)
    # fold 1 trains on impostors 1.6, 1.49: FAR = 0, 0, 1, 1, 1 -> t = 1*0.75 + 2*0.25 = 1.25
    dist = [0.5, 1.4, 1.6, 1.49, 0.1, 0.2, 1.5, 3.5]
    issame = [1, 1, 0, 0, 1, 1, 0, 0]
    r = insightface_val_far(dist, issame, 0.25, n_folds=2, thresholds=[0, 1, 2, 3, 4])
    assert r.thresholds.tolist() == [1.5, 1.25]
    assert r.vals.tolist() == [1.0, 1.0] and r.fars.tolist() == [0.5, 0.0]
    assert (r.val_mean, r.val_std, r.far_mean, r.far_target) == (1.0, 0.0, 0.25, 0.25)
    # a target above every training FAR gives threshold 0.0 (accept nothing)
    r = insightface_val_far(dist, issame, 0.25, n_folds=2, thresholds=[0, 1])
    assert r.thresholds.tolist() == [0.0, 0.0] and r.val_mean == 0.0


# --- FaceX-Zoo -------------------------------------------------------------------------------------------


def _facexzoo_reference(cos, issame, n_folds):
    """FaceX-Zoo's loops with NumPy 1.x arithmetic spelled out: float32 scores and comparisons."""
    scores = cos.astype(np.float32)
    accuracies, chosen = [], []
    for test in kfold_indices(scores.size, n_folds):
        train = np.setdiff1d(np.arange(scores.size), test)
        s, lab = scores[train], issame[train]
        span = np.float32(s.max() - s.min())
        step = float(span) / 1000
        best, best_value = None, -np.inf
        for i in range(1, 1001):
            t = np.float32(float(s.min()) + step * i)
            value = np.sum(s[lab] > t) / lab.sum() - np.sum(s[~lab] > t) / (~lab).sum()
            if value > best_value:
                best, best_value = t, value
        hits = np.sum(scores[test][issame[test]] > best) + np.sum(scores[test][~issame[test]] < best)
        accuracies.append(hits / test.size)
        chosen.append(float(best))
    return np.array(accuracies), np.array(chosen)


@pytest.mark.parametrize("coarse", [False, True])
def test_facexzoo_equals_loop_reference(coarse):
    _, cos, issame = _lfw_like(6)
    if coarse:
        cos = np.round(cos, 2)  # ties, some on thresholds
    result = facexzoo_kfold(cos, issame)
    accuracies, chosen = _facexzoo_reference(cos, issame, 10)
    assert np.array_equal(result.accuracies, accuracies) and np.array_equal(result.thresholds, chosen)
    assert result.mean == np.mean(accuracies)
    assert result.std == np.std(accuracies, ddof=1) / np.sqrt(10)
    assert result.rule == "facexzoo" and result.std_rule == "stderr(ddof=1)/sqrt(k)"


def test_facexzoo_hand_case_score_on_threshold_counts_as_neither():
    cos = np.array([0.9, 0.3, 0.1, 0.3, 1.0, 0.8, 0.0, 0.3])
    issame = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    r = facexzoo_kfold(cos, issame, n_folds=2)
    # fold 0 trains on min 0, max 1: step 0.001, the first best threshold is i = 300 -> float32(0.3),
    # where the impostor 0.3 stops counting. Held out: 0.9 accepted, 0.3 (same) not > t, 0.1 rejected,
    # 0.3 (different) not < t: 2 of 4.
    assert r.thresholds[0] == float(np.float32(0.3))
    assert r.accuracies[0] == 0.5
    assert r.predictions[:4].tolist() == [True, False, False, False]
    assert r.correct[:4].tolist() == [True, False, True, False]
    # fold 1 trains on 0.9, 0.3 (same) and 0.1, 0.3 (different): TPR - FPR = 0.5 from the first threshold
    # just above 0.1; held out 1.0, 0.8 accepted, 0.0 rejected, 0.3 accepted wrongly: 3 of 4
    assert 0.1 < r.thresholds[1] < 0.101 and r.accuracies[1] == 0.75
    assert r.mean == 0.625 and r.std == pytest.approx(0.125, abs=1e-15)


def test_facexzoo_invariant_to_order_within_folds():
    _, cos, issame = _lfw_like(7)
    rng = np.random.default_rng(1)
    perm = np.concatenate([rng.permutation(f) for f in kfold_indices(cos.size, 10)])
    a, b = facexzoo_kfold(cos, issame), facexzoo_kfold(cos[perm], issame[perm])
    assert np.array_equal(a.accuracies, b.accuracies) and np.array_equal(a.thresholds, b.thresholds)


# --- explicit folds and bad input -------------------------------------------------------------------------


def test_explicit_folds_equal_reordered_contiguous_pack():
    # CALFW-style order: all positives then all negatives; fold k = positives block k + negatives block k
    dist, cos, issame = _lfw_like(8)
    order = np.r_[np.flatnonzero(issame), np.flatnonzero(~issame)]
    dist2, cos2, same2 = dist[order], cos[order], issame[order]
    folds = [np.r_[300 * k : 300 * k + 300, 3000 + 300 * k : 3000 + 300 * k + 300] for k in range(10)]
    assert np.all(fold_balance(same2, folds=folds) == [300, 300]) and not is_balanced(same2)
    a, b = insightface_kfold(dist, issame), insightface_kfold(dist2, same2, folds=folds)
    assert np.array_equal(a.accuracies, b.accuracies)
    a, b = facexzoo_kfold(cos, issame), facexzoo_kfold(cos2, same2, folds=folds)
    assert np.array_equal(a.accuracies, b.accuracies)
    a, b = insightface_val_far(dist, issame), insightface_val_far(dist2, same2, folds=folds)
    assert np.array_equal(a.vals, b.vals)


@pytest.mark.parametrize("rule", [insightface_kfold, insightface_val_far, facexzoo_kfold])
def test_degenerate_inputs_raise_clear_errors(rule):
    with pytest.raises(ValueError, match="got 20 genuine and 0 impostor"):
        rule(np.linspace(0, 1, 20), np.ones(20, bool))
    with pytest.raises(ValueError, match="dist has 20, issame has 19|cos has 20, issame has 19"):
        rule(np.linspace(0, 1, 20), np.ones(19, bool))
    with pytest.raises(ValueError, match="folds must partition the 20 pair indices"):
        rule(np.linspace(0, 1, 20), np.arange(20) % 2 == 0, n_folds=2, folds=[np.arange(10), np.arange(9)])
    with pytest.raises(ValueError, match="n_folds=10 but folds has 2 entries"):
        rule(np.linspace(0, 1, 20), np.arange(20) % 2 == 0, folds=[np.arange(10), np.arange(10, 20)])


def test_val_far_needs_both_classes_in_each_held_out_fold():
    dist = np.linspace(0, 2, 20)
    issame = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    with pytest.raises(ValueError, match="fold 0 holds 10 same and 0 different pairs"):
        insightface_val_far(dist, issame, n_folds=2)


def test_docstring_examples_hold():
    failures, tried = doctest.testmod(kfold_mod, raise_on_error=False, verbose=False)
    assert tried > 0 and failures == 0
