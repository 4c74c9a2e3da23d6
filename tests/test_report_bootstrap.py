"""The fast TAR@FAR bootstrap: bit-equal to the materialised computation, and honest intervals and tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from facebench.metrics.roc import roc_curve, tar_at_far
from facebench.metrics.stats import bootstrap_ci, paired_bootstrap
from facebench.report import bootstrap as fb

TARGETS = (1e-3, 1e-2, 0.1)


def _quantised_set(n: int, seed: int, decimals: int | None = 2) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores rounded to ``decimals`` (many ties, the hard case for the thinning; None: no ties)."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    scores = rng.normal(labels * 1.5, 1.0)
    return labels, (scores if decimals is None else np.round(scores, decimals))


@pytest.mark.parametrize("rule", ["nearest", "le", "interp"])
@pytest.mark.parametrize(("clustered", "decimals"), [(False, 2), (True, 2), (True, None)])
def test_cluster_design_equals_bootstrap_ci_sample_by_sample(rule: str, clustered: bool, decimals: int | None) -> None:
    labels, scores = _quantised_set(1500, seed=1, decimals=decimals)
    clusters = np.random.default_rng(2).integers(0, 300, labels.size) if clustered else None
    design = fb.cluster_design(labels, clusters)
    fast = fb.tar_at_far_bootstrap(scores, design, TARGETS, rule, n_boot=60, seed=3)
    for far in TARGETS:

        def statistic(idx: np.ndarray, far: float = far) -> float:
            return tar_at_far(roc_curve(labels[idx], scores[idx]), [far], rule)[far].tar

        reference = bootstrap_ci(statistic, np.arange(labels.size) if clusters is None else clusters, n_boot=60, seed=3)
        got = fast[far]
        assert got.estimate == reference.estimate
        assert np.array_equal(got.samples, reference.samples)
        assert (got.low, got.high) == (reference.low, reference.high)
        assert got.n_clusters == reference.n_clusters


def test_paired_version_equals_paired_bootstrap() -> None:
    labels, scores_a = _quantised_set(1200, seed=4)
    scores_b = np.round(scores_a + np.random.default_rng(5).normal(0, 0.4, labels.size), 2)
    clusters = np.random.default_rng(6).integers(0, 200, labels.size)
    fast = fb.paired_tar_at_far_bootstrap(
        scores_a, scores_b, fb.cluster_design(labels, clusters), TARGETS, "nearest", n_boot=50, seed=7
    )
    for far in TARGETS:

        def stat(scores: np.ndarray, far: float = far):
            return lambda idx: tar_at_far(roc_curve(labels[idx], scores[idx]), [far], "nearest")[far].tar

        reference = paired_bootstrap(stat(scores_a), stat(scores_b), clusters, n_boot=50, seed=7)
        got = fast[far]
        assert got.difference == reference.difference and got.p_value == reference.p_value
        assert np.array_equal(got.samples, reference.samples)
        assert (got.low, got.high) == (reference.low, reference.high)


def _template_set(seed: int, n: int = 30_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t1 = rng.integers(0, 80, n)
    t2 = rng.integers(80, 260, n)
    subject = np.arange(260) % 31
    labels = subject[t1] == subject[t2]
    scores = np.round(rng.normal(labels * 2.0, 1.0), 2).astype(np.float32)
    return labels, scores, t1 + 1000, t2 + 1000  # ids need not be 0-based


def _materialised(labels, scores, design, n_boot, seed, targets, rule):
    out = []
    for m in design.multiplicities(n_boot, seed):
        idx = np.repeat(np.arange(labels.size), design_weights(design, m))
        points = tar_at_far(roc_curve(labels[idx], scores[idx]), targets, rule)
        out.append([points[t].tar for t in targets])
    return np.array(out)


def design_weights(design: fb.Design, m: np.ndarray) -> np.ndarray:
    """The pair weights of a template design, written out: m(t1) * m(t2)."""
    return m[design.keys[0]] * m[design.keys[1]]


@pytest.mark.parametrize("rule", ["nearest", "le", "interp"])
def test_template_design_with_prefix_equals_np_repeat(monkeypatch, rule: str) -> None:
    monkeypatch.setattr(fb, "PREFIX_MIN_PAIRS", 1000)
    labels, scores, t1, t2 = _template_set(seed=8)
    design = fb.template_design(labels, t1, t2)
    targets = (1e-4, 1e-3)
    assert not fb.SortedPairs.build(scores, design, max(targets)).prefix.complete  # the shortcut is exercised
    fast = fb.tar_at_far_bootstrap(scores, design, targets, rule, n_boot=25, seed=9)
    expected = _materialised(labels, scores, design, 25, 9, targets, rule)
    for k, far in enumerate(targets):
        assert np.array_equal(fast[far].samples, expected[:, k])
        assert fast[far].estimate == tar_at_far(roc_curve(labels, scores), [far], rule)[far].tar


def test_insufficient_prefix_falls_back_to_all_pairs(monkeypatch) -> None:
    monkeypatch.setattr(fb, "PREFIX_MIN_PAIRS", 1000)
    monkeypatch.setattr(fb, "_enough", lambda curve, t_max: False)  # every prefix declared too short
    full_reads = []
    original = fb._weighted_curve

    def spy(p, *args):
        full_reads.append(p.complete)
        return original(p, *args)

    monkeypatch.setattr(fb, "_weighted_curve", spy)
    labels, scores, t1, t2 = _template_set(seed=10, n=20_000)
    design = fb.template_design(labels, t1, t2)
    fast = fb.tar_at_far_bootstrap(scores, design, (1e-3,), "nearest", n_boot=10, seed=11)
    assert np.array_equal(fast[1e-3].samples, _materialised(labels, scores, design, 10, 11, (1e-3,), "nearest")[:, 0])
    assert full_reads.count(True) == 11 and full_reads.count(False) == 11  # estimate + 10 resamples, each retried


def test_a_resample_without_impostors_is_a_clear_error() -> None:
    labels = np.array([True, True, False])
    with pytest.raises(ValueError, match="TAR@FAR needs both"):
        fb.tar_at_far_bootstrap(np.array([0.9, 0.8, 0.1]), fb.cluster_design(labels), (0.1,), n_boot=40, seed=0)


def test_bad_arguments_are_rejected() -> None:
    labels, scores = _quantised_set(200, seed=0)
    design = fb.cluster_design(labels)
    with pytest.raises(ValueError, match="n_boot"):
        fb.tar_at_far_bootstrap(scores, design, (0.1,), n_boot=0)
    with pytest.raises(ValueError, match="targets"):
        fb.tar_at_far_bootstrap(scores, design, (2.0,))
    with pytest.raises(ValueError, match="one id per pair"):
        fb.template_design(labels, np.arange(3), np.arange(3))


# --- statistical behaviour on data with a known truth ---------------------------------------------------


def test_tar_interval_covers_the_true_tar_at_the_stated_rate() -> None:
    """Genuine ~ N(2, 1), impostor ~ N(0, 1): the true TAR at FAR 0.05 is 1 - Phi(z_0.95 - 2). 120 data sets,
    95% intervals from 150 pair resamples each: coverage within 3.5 standard errors of 0.95 (tolerating the
    percentile bootstrap's small-sample undercoverage)."""
    far, mu = 0.05, 2.0
    truth = float(norm.sf(norm.isf(far) - mu))  # 0.639
    rng = np.random.default_rng(20240501)
    hits, reps = 0, 120
    for rep in range(reps):
        labels = np.r_[np.ones(400, bool), np.zeros(1600, bool)]
        scores = np.where(labels, rng.normal(mu, 1, labels.size), rng.normal(0, 1, labels.size))
        r = fb.tar_at_far_bootstrap(scores, fb.cluster_design(labels), (far,), "nearest", n_boot=150, seed=rep)[far]
        hits += r.low <= truth <= r.high
    coverage = hits / reps
    assert 0.95 - 3.5 * np.sqrt(0.95 * 0.05 / reps) <= coverage <= 0.995, coverage


def test_paired_tar_test_rejects_a_planted_difference_and_keeps_an_absent_one() -> None:
    rng = np.random.default_rng(7)
    labels = np.r_[np.ones(500, bool), np.zeros(2000, bool)]
    base = np.where(labels, rng.normal(2.0, 1, labels.size), rng.normal(0, 1, labels.size))
    design = fb.cluster_design(labels)
    # planted: model B's genuine scores are 0.6 lower, a large loss of TAR at FAR 0.01
    worse = base - 0.6 * labels
    planted = fb.paired_tar_at_far_bootstrap(base, worse, design, (0.01,), n_boot=300, seed=1)[0.01]
    assert planted.difference > 0.1 and planted.p_value < 0.01 and planted.low > 0
    # absent: two models of the same quality (the same signal, independent noise): rarely rejected
    rejections = 0
    for seed in range(30):
        r = np.random.default_rng(100 + seed)
        signal = np.where(labels, r.normal(2.0, 1, labels.size), r.normal(0, 1, labels.size))
        a = signal + r.normal(0, 0.5, labels.size)
        b = signal + r.normal(0, 0.5, labels.size)
        rejections += fb.paired_tar_at_far_bootstrap(a, b, design, (0.01,), n_boot=150, seed=seed)[0.01].p_value < 0.05
    assert rejections <= 5, rejections  # P(>= 6 of 30 | size 0.05) < 0.01
