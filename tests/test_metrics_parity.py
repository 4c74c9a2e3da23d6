"""facebench pinned to its peers' own expected values, definitions mapped (docs/metrics.md).

- scikit-learn ``sklearn/metrics/tests/test_ranking.py``: ``test_roc_curve_toydata``,
  ``test_roc_curve_drop_intermediate``, ``test_auc``, ``test_det_curve_toydata``,
  ``test_det_curve_tie_handling`` (inputs and expected arrays copied as data).
- bob.measure ``bob/measure/tests/test_error.py``: ``test_for_uncomputable_thresholds``,
  ``test_obvious_thresholds`` (``far_threshold`` = :func:`threshold_at_far`), ``test_cmc`` (``cmc``,
  ``recognition_rate``), ``notest_rocch`` (the Bosaris 1.06 hull and EER of the non-separable set), and
  ``farfrr``. Sets that bob keeps only in HDF5 files (linsep/nonsep scores, the open-set files) are not
  reproduced.
- insightface ``evaluation_1N`` (``recognition/arcface_torch/eval_ijb.py``): its TPIR formula and argsort ranks,
  written out as the reference does them, on ties and on ``N * FPIR < 1``. (``calculate_roc`` and
  ``calculate_val`` are pinned in tests/test_metrics_kfold.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from facebench.metrics import operating
from facebench.metrics.identification import open_set_identification, tpir_at_fpir
from facebench.metrics.roc import (
    RocCurve,
    auc,
    det_curve,
    eer,
    eer_rocch,
    rates_at_threshold,
    rocch,
    rocch_eer,
    roc_curve,
    threshold_at_far,
)

# ------------------------------------------------------------------------------------- scikit-learn

# test_roc_curve_toydata: (y_true, y_score, expected tpr, expected fpr, expected roc_auc); sklearn's test
# names the first returned array ``tpr``, so its "tpr" list is our fpr and vice versa
SKLEARN_ROC_TOYDATA = [
    ([0, 1], [0, 1], [0, 0, 1], [0, 1, 1], 1.0),
    ([0, 1], [1, 0], [0, 1, 1], [0, 0, 1], 0.0),
    ([1, 0], [1, 1], [0, 1], [0, 1], 0.5),
    ([1, 0], [1, 0], [0, 0, 1], [0, 1, 1], 1.0),
    ([1, 0], [0.5, 0.5], [0, 1], [0, 1], 0.5),
]


@pytest.mark.parametrize("y_true,y_score,first,second,expected_auc", SKLEARN_ROC_TOYDATA)
def test_sklearn_roc_curve_toydata(y_true, y_score, first, second, expected_auc) -> None:
    curve = roc_curve(y_true, y_score)
    assert curve.fpr.tolist() == pytest.approx(first) and curve.tpr.tolist() == pytest.approx(second)
    assert auc(curve) == pytest.approx(expected_auc)


def test_sklearn_roc_curve_drop_intermediate() -> None:
    curve = roc_curve([0, 0, 0, 0, 1, 1], [0.0, 0.2, 0.5, 0.6, 0.7, 1.0], drop_intermediate=True)
    assert curve.thresholds.tolist() == [np.inf, 1.0, 0.7, 0.0]
    y_true = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    y_score = [0.0, 0.1, 0.6, 0.6, 0.7, 0.8, 0.9, 0.6, 0.7, 0.8, 0.9, 0.9, 1.0]
    assert roc_curve(y_true, y_score).thresholds.tolist() == [np.inf, 1.0, 0.9, 0.7, 0.6, 0.0]


@pytest.mark.parametrize("x,y,area", [([0, 1], [0, 1], 0.5), ([0, 1], [1, 1], 1.0), ([0, 0.5, 1], [0, 0.5, 1], 0.5)])
def test_sklearn_auc(x, y, area) -> None:
    # sklearn's cases with increasing x (our curves always have them); its reversed-x cases have no ROC form
    curve = RocCurve(np.array(x, float), np.array(y, float), np.r_[np.inf, np.zeros(len(x) - 1)], 1, 1, False)
    assert auc(curve) == area


SKLEARN_DET_TOYDATA = [
    ([0, 0, 1], [0, 0.5, 1], [0], [0]),
    ([0, 0, 1], [0, 0.25, 0.5], [0], [0]),
    ([0, 0, 1], [0.5, 0.75, 1], [0], [0]),
    ([0, 0, 1], [0.25, 0.5, 0.75], [0], [0]),
    ([0, 1, 0], [0, 0.5, 1], [0.5, 0.5, 0], [0, 1, 1]),
    ([0, 1, 0], [0, 0.25, 0.5], [0.5, 0.5, 0], [0, 1, 1]),
    ([0, 1, 0], [0.5, 0.75, 1], [0.5, 0.5, 0], [0, 1, 1]),
    ([0, 1, 0], [0.25, 0.5, 0.75], [0.5, 0.5, 0], [0, 1, 1]),
    ([0, 1, 1], [0, 0.5, 1], [0.0], [0]),
    ([0, 1, 1], [0, 0.25, 0.5], [0], [0]),
    ([0, 1, 1], [0.5, 0.75, 1], [0], [0]),
    ([0, 1, 1], [0.25, 0.5, 0.75], [0], [0]),
    ([1, 0, 0], [0, 0.5, 1], [1, 1, 0.5, 0], [0, 1, 1, 1]),
    ([1, 0, 0], [0, 0.25, 0.5], [1, 1, 0.5, 0], [0, 1, 1, 1]),
    ([1, 0, 0], [0.5, 0.75, 1], [1, 1, 0.5, 0], [0, 1, 1, 1]),
    ([1, 0, 0], [0.25, 0.5, 0.75], [1, 1, 0.5, 0], [0, 1, 1, 1]),
    ([1, 0, 1], [0, 0.5, 1], [1, 1, 0], [0, 0.5, 0.5]),
    ([1, 0, 1], [0, 0.25, 0.5], [1, 1, 0], [0, 0.5, 0.5]),
    ([1, 0, 1], [0.5, 0.75, 1], [1, 1, 0], [0, 0.5, 0.5]),
    ([1, 0, 1], [0.25, 0.5, 0.75], [1, 1, 0], [0, 0.5, 0.5]),
    # test_det_curve_tie_handling
    ([1, 0], [0.5, 0.5], [1, 0], [0, 1]),
    ([0, 1], [0.5, 0.5], [1, 0], [0, 1]),
    ([0, 0, 1], [0.25, 0.5, 0.5], [0.5, 0], [0, 1]),
    ([0, 1, 0], [0.25, 0.5, 0.5], [0.5, 0], [0, 1]),
    ([0, 1, 1], [0.25, 0.5, 0.5], [0], [0]),
    ([1, 0, 0], [0.25, 0.5, 0.5], [1, 1, 0], [0, 1, 1]),
    ([1, 0, 1], [0.25, 0.5, 0.5], [1, 1, 0], [0, 0.5, 1]),
    ([1, 1, 0], [0.25, 0.5, 0.5], [1, 1, 0], [0, 0.5, 1]),
]


@pytest.mark.parametrize("y_true,y_score,expected_fpr,expected_fnr", SKLEARN_DET_TOYDATA)
def test_sklearn_det_curve_toydata_and_ties(y_true, y_score, expected_fpr, expected_fnr) -> None:
    fpr, fnr, thresholds = det_curve(roc_curve(y_true, y_score, drop_intermediate=False))
    np.testing.assert_allclose(fpr, expected_fpr)
    np.testing.assert_allclose(fnr, expected_fnr)
    assert np.all(np.diff(thresholds) >= 0)


# ------------------------------------------------------------------------------------- bob.measure


def test_bob_far_threshold_uncomputable_cases() -> None:
    # case 1: several identical scores (bob's negatives; positives play no part in far_threshold)
    neg = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0]
    assert threshold_at_far(neg, 0.5) == 1.0
    assert threshold_at_far(neg, 0.4) > neg[-1]
    neg = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert threshold_at_far(neg, 0.5) == 1.0
    assert threshold_at_far(neg, 0.49) > neg[-1]
    # case 2: too few scores for the desired threshold
    neg = np.arange(10, dtype=float)
    assert threshold_at_far(neg, 0.09) > neg[-1]
    assert threshold_at_far(neg, 0.11) == 9.0
    assert threshold_at_far(neg, 0.91) == 1.0
    assert threshold_at_far(neg, 1) <= 0.0  # bob: just below the minimum; here the minimum itself


def test_bob_obvious_thresholds() -> None:
    m = 10
    neg = np.arange(m, dtype=float)
    pos = np.arange(m, 2 * m, dtype=float)
    labels = np.r_[np.zeros(m), np.ones(m)]
    for far in np.arange(0, 2 * m + 1, dtype=float) / m / 2:
        far, expected_far = round(far, 2), math.floor(far * 10) / 10
        t = threshold_at_far(neg, far)
        pred_far, _ = rates_at_threshold(labels, np.r_[neg, pos], t)  # bob's farfrr
        assert pred_far <= far and pred_far == expected_far


def test_bob_farfrr_at_a_threshold() -> None:
    # bob.measure farfrr: FAR = share of negatives >= t, FRR = share of positives < t
    neg, pos = [-3, -2, -1, -0.5, 4], [0.5, 3]
    labels, scores = [0] * 5 + [1] * 2, neg + pos
    assert rates_at_threshold(labels, scores, 0.5) == (0.2, 0.0)
    assert rates_at_threshold(labels, scores, 3.0) == (0.2, 0.5)
    assert rates_at_threshold(labels, scores, 4.0) == (0.2, 1.0)
    assert rates_at_threshold(labels, scores, 4.0, ">") == (0.0, 1.0)


def test_bob_cmc_and_recognition_rate() -> None:
    # bob's test data: (negatives, positives) per probe; CMC [1/2, 3/4, 1, 1, 1], recognition rate 1/2
    data = [
        ((0.3, 1.1, 0.5), (0.7,)),
        ((1.4, -1.3, 0.6), (0.2,)),
        ((0.8, 0.0, 1.5), (-0.8, 1.8)),
        ((2.0, 1.3, 1.6, 0.9), (2.4,)),
    ]
    # as a score matrix: every score its own gallery column, the mate subject "m" (its positives), others
    # one subject each; missing cells -inf-like (below everything)
    width = max(len(n) + len(p) for n, p in data)
    scores = np.full((len(data), width), -10.0)
    gallery = np.array([f"g{j}" for j in range(width)], dtype=object)
    gallery[-2:] = "m"
    probes = np.array(["m"] * len(data), dtype=object)
    for i, (neg, pos) in enumerate(data):
        scores[i, : len(neg)] = neg
        scores[i, width - len(pos):] = pos
    r = open_set_identification(scores, probes.astype(str), gallery.astype(str), ranks=(1, 2, 3, 4, 5), fpirs=())
    assert r["rank_rates"] == {1: 0.5, 2: 0.75, 3: 1.0, 4: 1.0, 5: 1.0}


def test_bob_rocch_of_the_nonseparable_set_bosaris_reference() -> None:
    # notest_rocch: the hull Bosaris 1.06 gives for bob's non-separable set, (pmiss, pfa) rows, and its EER
    pmiss = [1.0, 0.68, 0.28, 0.1, 0.06, 0.0, 0.0]
    pfa = [0, 0, 0.08, 0.12, 0.22, 0.48, 1.0]
    assert abs(rocch_eer(pfa, pmiss) - 0.116363636363636) < 1e-12
    # the same hull from a ROC whose corners are those vertices plus points strictly inside it
    fpr = np.array([0, 0, 0.04, 0.08, 0.10, 0.12, 0.22, 0.30, 0.48, 0.7, 1.0])
    tpr = np.array([0, 0.32, 0.50, 0.72, 0.80, 0.90, 0.94, 0.95, 1.0, 1.0, 1.0])
    curve = RocCurve(fpr, tpr, np.r_[np.inf, np.linspace(1, 0, fpr.size - 1)], 50, 50, False)
    hull_fpr, hull_tpr = rocch(curve)
    np.testing.assert_allclose(hull_fpr, pfa)
    np.testing.assert_allclose(1 - hull_tpr, pmiss, atol=1e-15)
    assert eer_rocch(curve) == pytest.approx(0.116363636363636, abs=1e-12)
    assert eer_rocch(curve) <= eer(curve)


@pytest.mark.parametrize("seed", range(4))
def test_rocch_is_the_upper_convex_hull_brute_force(seed) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(80) < 0.4
    curve = roc_curve(labels, np.round(rng.normal(size=80) + labels, 1))
    xs, ys = rocch(curve)
    assert xs[0] == 0 and xs[-1] == 1 and ys[-1] == 1 and np.all(np.diff(xs) >= 0)
    slopes = np.diff(ys) / np.where(np.diff(xs) == 0, np.nan, np.diff(xs))
    finite = slopes[np.isfinite(slopes)]
    assert np.all(np.diff(finite) < 0)  # strictly concave
    points = set(zip(curve.fpr.tolist(), curve.tpr.tolist())) | {(0.0, 0.0), (1.0, 1.0)}
    assert all((x, y) in points for x, y in zip(xs.tolist(), ys.tolist()))  # vertices are ROC points
    for x, y in points:  # every ROC point on or below the hull
        assert y <= np.interp(x, xs, ys) + 1e-12 or x == 0


# ------------------------------------------------------------------------------------- insightface


def _insightface_evaluation_1n(similarity, query_ids, reg_ids, fars):
    """evaluation_1N of insightface's eval_ijb.py, the arithmetic as the reference writes it."""
    top_1 = 0
    pos_sims, neg_sims, non_gallery_sims, ranks = [], [], [], []
    for index, query_id in enumerate(query_ids):
        if query_id in reg_ids:
            gallery_label = np.argwhere(reg_ids == query_id)[0, 0]
            index_sorted = np.argsort(similarity[index])[::-1]
            top_1 += gallery_label in index_sorted[:1]
            ranks.append(int(np.where(index_sorted == gallery_label)[0][0]) + 1)
            pos_sims.append(similarity[index][reg_ids == query_id][0])
            neg_sims.append(similarity[index][reg_ids != query_id])
        else:
            non_gallery_sims.append(similarity[index])
    pos_sims, neg_sims, non_gallery_sims = np.array(pos_sims), np.array(neg_sims), np.array(non_gallery_sims)
    correct_pos_cond = pos_sims > neg_sims.max(1)
    non_gallery_sims_sorted = np.sort(non_gallery_sims.max(1))[::-1]
    recalls = []
    for far in fars:
        thresh = non_gallery_sims_sorted[max(int((non_gallery_sims_sorted.shape[0]) * far) - 1, 0)]
        recalls.append(np.logical_and(correct_pos_cond, pos_sims > thresh).sum() / pos_sims.shape[0])
    return top_1 / len(pos_sims), recalls, ranks


@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_insightface_evaluation_1n_on_ties_and_small_n(decimals) -> None:
    rng = np.random.default_rng(11)
    reg_ids = np.arange(60)
    query_ids = np.r_[rng.choice(60, 150), 100 + np.arange(70)]
    sim = rng.normal(0.1, 0.2, (query_ids.size, reg_ids.size))
    sim += 0.5 * (query_ids[:, None] == reg_ids[None, :]) * rng.random((query_ids.size, 1))
    if decimals is not None:
        sim = np.round(sim, decimals)  # many ties, mates tied with non-mates and with the threshold
    fars = [0.001, 0.01, 0.014, 0.1, 0.3]  # 70 * 0.001 and 70 * 0.01 < 1: the reference's k = 1
    top1, recalls, ranks = _insightface_evaluation_1n(sim, query_ids, reg_ids, fars)
    r = open_set_identification(sim, query_ids, reg_ids, ranks=(1,), fpirs=fars, cmc_ties="argsort")
    assert r["rank_rates"][1] == top1
    assert r["mate_ranks"].tolist() == ranks
    assert [r["tpir"][f] for f in fars] == recalls
    default = open_set_identification(sim, query_ids, reg_ids, ranks=(1,), fpirs=fars)
    assert default["tpir_rule"] == "insightface" and [default["tpir"][f] for f in fars] == recalls


# ------------------------------------------------------------------------------------- the kernel


@pytest.mark.parametrize("seed", range(6))
def test_rate_threshold_is_the_lowest_threshold_and_gt_gives_the_supremum(seed) -> None:
    rng = np.random.default_rng(seed)
    neg = np.sort(np.round(rng.normal(size=int(rng.integers(1, 60))), 1))
    pos = np.sort(np.round(rng.normal(1, 1, 40), 1))
    candidates = np.unique(np.r_[neg, pos, np.nextafter(neg.max(), np.inf), -np.inf])
    for rate in (0.0, 0.01, 1 / neg.size, 0.1, 0.25, 0.5, 0.999, 1.0):
        c = operating.allowed_count(neg.size, rate)
        assert c / neg.size <= rate and (c == neg.size or (c + 1) / neg.size > rate)
        for comparison, accept in ((">=", np.greater_equal), (">", np.greater)):
            t = operating.rate_threshold(neg, rate, comparison)
            assert np.mean(accept(neg, t)) <= rate
            ok = [v for v in candidates if np.mean(accept(neg, v)) <= rate]
            if comparison == ">":
                assert t == min(ok)
            else:  # the lowest score value (or just above the maximum when none)
                values = [v for v in ok if v in set(neg.tolist())]
                assert t == (min(values) if values else np.nextafter(neg.max(), np.inf))
        # ">" reaches the best positive rate of any threshold (either comparison) with rate <= target
        best = max(np.mean(pos >= v) for v in np.r_[candidates, np.inf] if np.mean(neg >= v) <= rate)
        point = operating.operating_point(pos, neg, rate, ">")
        assert point.positive_rate == best
        assert point.negatives_accepted == operating.operating_point(pos, neg, rate, ">=").negatives_accepted


def test_resolvable_is_one_negative_in_n() -> None:
    assert operating.resolvable(20, 0.05) and not operating.resolvable(20, 0.049)
    assert not operating.resolvable(3_530_000, 1e-7) and operating.resolvable(1_000_000, 1e-6)
    assert not operating.resolvable(0, 0.5) and not operating.resolvable(10, 0.0)


def test_tpir_rules_order_and_fnir() -> None:
    rng = np.random.default_rng(5)
    mates = np.round(rng.normal(0.6, 0.2, 300), 2)
    ranks = np.where(rng.random(300) < 0.9, 1, 3)
    nonmated = np.round(rng.normal(0.3, 0.15, 400), 2)
    for f in (0.0025, 0.01, 0.1, 0.5):
        p = {rule: tpir_at_fpir(mates, ranks, nonmated, f, rule) for rule in ("insightface", "ge", "best")}
        assert p["insightface"].positive_rate <= p["ge"].positive_rate <= p["best"].positive_rate
        assert all(point.negative_rate <= f for point in p.values())


@pytest.mark.parametrize("seed", range(5))
def test_every_tar_at_far_path_agrees_on_the_supremum_rule(seed) -> None:
    """The ROC ``le`` read-off (unthinned curve), MegaFace's conventional TAR and the kernel's ``>`` point
    are one rule: the same TAR on tied, coarse scores at every target."""
    from facebench.metrics import megaface as mmf
    from facebench.metrics.roc import tar_at_far

    rng = np.random.default_rng(seed)
    genuine = np.round(rng.normal(1.0, 0.7, 300), 1).astype(np.float32)
    impostor = np.round(rng.normal(0.0, 0.7, 2000), 1).astype(np.float32)
    labels = np.r_[np.ones(300, bool), np.zeros(2000, bool)]
    curve = roc_curve(labels, np.r_[genuine, impostor], drop_intermediate=False)
    for far in (1 / 2000, 0.001, 0.0042, 0.01, 0.1, 0.5):
        le = tar_at_far(curve, [far], "le")[far].tar
        mega = mmf.tar_at_far(genuine, np.sort(impostor)[::-1][: mmf.impostors_needed(2000, far)], 2000, far).tar
        kernel = operating.operating_point(np.sort(genuine), np.sort(impostor), far, ">").positive_rate
        assert le == mega == kernel, far
