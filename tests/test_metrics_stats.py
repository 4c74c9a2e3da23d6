"""Bootstrap, paired bootstrap, McNemar and Clopper-Pearson: exact values, coverage, power and size."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.stats

from facebench.metrics import stats as stats_mod
from facebench.metrics.roc import roc_curve, tar_at_far
from facebench.metrics.stats import bootstrap_ci, clopper_pearson, mcnemar, paired_bootstrap

# --- Clopper-Pearson ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (16, 15_000_000), (7, 19)])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_clopper_pearson_solves_its_defining_equations(k, n, alpha):
    lo, hi = clopper_pearson(k, n, alpha)
    # lo: P(X >= k | lo) = alpha/2 ; hi: P(X <= k | hi) = alpha/2 (X ~ Bin(n, p))
    if k > 0:
        assert scipy.stats.binom.sf(k - 1, n, lo) == pytest.approx(alpha / 2, rel=1e-8)
    else:
        assert lo == 0.0
    if k < n:
        assert scipy.stats.binom.cdf(k, n, hi) == pytest.approx(alpha / 2, rel=1e-8)
    else:
        assert hi == 1.0
    # and agrees with SciPy's root-finding version (looser: brentq's tolerance, not ours)
    expected = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    assert (lo, hi) == (pytest.approx(expected.low, rel=1e-6), pytest.approx(expected.high, rel=1e-6))


def test_clopper_pearson_equals_scipy_stats_beta_ppf_bit_for_bit():
    # computed with scipy.special.betaincinv (no scipy.stats import): the very quantiles beta.ppf gives
    rng = np.random.default_rng(11)
    n = np.r_[1, 2, 10, 19_557, 15_638_932, rng.integers(1, 30_000_000, 60)]
    for total in n.tolist():
        for k in sorted({0, 1, 2, total // 3, total - 1, total} | set(rng.integers(0, total + 1, 4).tolist())):
            if not 0 <= k <= total:
                continue
            for alpha in (0.05, 0.01):
                lo, hi = clopper_pearson(k, total, alpha)
                assert lo == (0.0 if k == 0 else float(scipy.stats.beta.ppf(alpha / 2, k, total - k + 1)))
                assert hi == (1.0 if k == total else float(scipy.stats.beta.ppf(1 - alpha / 2, k + 1, total - k)))


def test_clopper_pearson_closed_forms():
    # k = 0: upper end solves (1 - p)^n = alpha/2; k = n: lower end solves p^n = alpha/2
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-15))
    assert clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10), abs=1e-15), 1.0)
    # k = 1, n = 1: lower end solves p = alpha/2
    assert clopper_pearson(1, 1)[0] == pytest.approx(0.025, abs=1e-15)


@pytest.mark.parametrize("p", [0.02, 0.1, 0.3, 0.5])
def test_clopper_pearson_coverage_at_least_nominal(p):
    n = 40
    intervals = [clopper_pearson(k, n) for k in range(n + 1)]
    covered = np.array([lo <= p <= hi for lo, hi in intervals])
    exact = float(np.sum(scipy.stats.binom.pmf(np.arange(n + 1), n, p) * covered))
    assert 0.95 <= exact < 0.995
    draws = np.random.default_rng(0).binomial(n, p, 4000)
    simulated = covered[draws].mean()
    assert simulated >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / 4000)


def test_clopper_pearson_rejects_bad_input():
    with pytest.raises(ValueError, match="need 0 <= k <= n and n >= 1; got k=5, n=4"):
        clopper_pearson(5, 4)
    with pytest.raises(ValueError, match="k must be an integer; got 0.5"):
        clopper_pearson(0.5, 4)
    with pytest.raises(ValueError, match="alpha must lie strictly between 0 and 1; got 1.0"):
        clopper_pearson(1, 4, alpha=1.0)


# --- McNemar ---------------------------------------------------------------------------------------------


def test_mcnemar_equals_exact_binomial_test():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.random(300) < 0.8
        b = np.where(rng.random(300) < 0.9, a, ~a)
        only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        statistic, p_value = mcnemar(a, b)
        assert statistic == min(only_a, only_b)
        assert p_value == pytest.approx(scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue, abs=1e-12)


def test_mcnemar_hand_cases():
    assert mcnemar([1] * 6, [0] * 6) == (0, 0.03125)  # 2 * (1/2)^6
    assert mcnemar([1, 0, 1, 1], [0, 1, 1, 1]) == (1, 1.0)  # one each way
    assert mcnemar([1, 0, 1], [1, 0, 1]) == (0, 1.0)  # no discordant pair
    # b = 1, c = 9: p = 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024
    assert mcnemar([1] + [0] * 9, [0] + [1] * 9).p_value == pytest.approx(22 / 1024, abs=1e-15)
    with pytest.raises(ValueError, match="correct_a has 3, correct_b has 2"):
        mcnemar([1, 0, 1], [1, 0])


def test_mcnemar_rejects_a_planted_difference_and_keeps_an_absent_one():
    rng = np.random.default_rng(2)
    truth_a = rng.random(1000) < 0.9
    worse_b = truth_a & (rng.random(1000) < 0.88)  # B loses about 11 points of A's correct items
    assert mcnemar(truth_a, worse_b).p_value < 1e-10
    rejections = 0
    for _ in range(400):  # two equally good, independent classifiers: the test must hold its size
        rejections += mcnemar(rng.random(200) < 0.85, rng.random(200) < 0.85).p_value < 0.05
    assert rejections / 400 <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400)


# --- cluster bootstrap -----------------------------------------------------------------------------------


def test_bootstrap_resamples_whole_clusters_reproducibly():
    clusters = np.array([3, 3, 3, 7, 9, 9, 1, 1, 1, 1])
    seen = []

    def record(indices):
        seen.append(indices.copy())
        return float(indices.size)

    result = bootstrap_ci(record, clusters, n_boot=50, seed=4)
    assert result.estimate == 10.0 and result.n_clusters == 4 and result.n_boot == 50
    sizes = {c: np.sum(clusters == c) for c in np.unique(clusters)}
    for indices in seen[1:]:  # seen[0] is the estimate on all items
        drawn = clusters[indices]
        counts = {c: np.sum(drawn == c) for c in np.unique(drawn)}
        assert all(counts[c] % sizes[c] == 0 for c in counts)  # whole clusters only
        assert sum(counts[c] // sizes[c] for c in counts) == 4  # as many draws as clusters
        start = 0  # items of one drawn cluster are consecutive and in their original order
        while start < indices.size:
            c = clusters[indices[start]]
            block = indices[start : start + sizes[c]]
            assert np.array_equal(block, np.flatnonzero(clusters == c))
            start += sizes[c]
    again = bootstrap_ci(lambda i: float(i.size), clusters, n_boot=50, seed=4)
    assert np.array_equal(again.samples, result.samples)
    other = bootstrap_ci(lambda i: float(i.size), clusters, n_boot=50, seed=5)
    assert not np.array_equal(other.samples, result.samples)
    low, high = np.quantile(result.samples, [0.025, 0.975])
    assert (result.low, result.high) == (low, high)


def test_bootstrap_coverage_on_clustered_data():
    rng = np.random.default_rng(6)
    n_clusters, per_cluster, reps = 40, 5, 200
    clusters = np.repeat(np.arange(n_clusters), per_cluster)
    items = np.arange(clusters.size)
    covered_cluster = covered_naive = 0
    for rep in range(reps):
        values = np.repeat(rng.normal(0, 1, n_clusters), per_cluster) + rng.normal(0, 0.5, clusters.size)
        statistic = values.__getitem__
        r = bootstrap_ci(lambda i: statistic(i).mean(), clusters, n_boot=200, seed=rep)
        covered_cluster += r.low <= 0.0 <= r.high  # the true mean is 0
        r = bootstrap_ci(lambda i: statistic(i).mean(), items, n_boot=200, seed=rep)
        covered_naive += r.low <= 0.0 <= r.high
    assert 0.89 <= covered_cluster / reps <= 0.99
    assert covered_naive / reps < 0.8  # ignoring the clusters understates the uncertainty


def test_bootstrap_reports_undefined_statistics():
    with pytest.raises(ValueError, match="non-finite value on"):
        bootstrap_ci(lambda i: np.nan if i[0] == 0 else 1.0, np.arange(5), n_boot=20)
    with pytest.raises(ValueError, match="n_boot must be a positive integer; got 0"):
        bootstrap_ci(lambda i: 1.0, np.arange(5), n_boot=0)
    with pytest.raises(ValueError, match="clusters must give one id per item"):
        bootstrap_ci(lambda i: 1.0, [])


# --- paired bootstrap ------------------------------------------------------------------------------------


def _two_runs(seed: int, shift: float):
    """Run A and run B scoring the same 300 genuine and 3,000 impostor pairs of 100 subjects."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(300, bool), np.zeros(3000, bool)]
    subjects = np.r_[np.repeat(np.arange(100), 3), rng.integers(0, 100, 3000)]
    common = np.where(labels, rng.normal(0.5, 0.2, labels.size), rng.normal(0.0, 0.15, labels.size))
    a = common + rng.normal(0, 0.05, labels.size)
    b = common + rng.normal(0, 0.05, labels.size) - shift * labels
    return labels, subjects, a, b


def _tar_at_1e2(labels, scores):
    return tar_at_far(roc_curve(labels, scores), [1e-2], "le")[1e-2].tar


def test_paired_bootstrap_detects_a_planted_tar_difference():
    labels, subjects, a, b = _two_runs(7, shift=0.15)
    r = paired_bootstrap(
        lambda i: _tar_at_1e2(labels[i], a[i]), lambda i: _tar_at_1e2(labels[i], b[i]), subjects, n_boot=200
    )
    assert r.difference == _tar_at_1e2(labels, a) - _tar_at_1e2(labels, b)
    assert r.difference > 0 and r.low > 0 and r.p_value < 0.05
    assert r.p_value == pytest.approx(2 / 201)  # no resample reversed the sign


def test_paired_bootstrap_keeps_an_absent_difference():
    labels, subjects, a, b = _two_runs(8, shift=0.0)
    r = paired_bootstrap(
        lambda i: _tar_at_1e2(labels[i], a[i]), lambda i: _tar_at_1e2(labels[i], b[i]), subjects, n_boot=200
    )
    assert r.low <= 0.0 <= r.high and r.p_value > 0.05
    run_a = lambda i: _tar_at_1e2(labels[i], a[i])  # noqa: E731
    same = paired_bootstrap(run_a, run_a, subjects, n_boot=50)
    assert (same.difference, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_bootstrap_size_under_the_null():
    rng = np.random.default_rng(9)
    rejections, sims = 0, 100
    for sim in range(sims):
        a = (rng.random(150) < 0.8).astype(float)
        b = (rng.random(150) < 0.8).astype(float)
        r = paired_bootstrap(lambda i: a[i].mean(), lambda i: b[i].mean(), np.arange(150), n_boot=200, seed=sim)
        rejections += r.p_value < 0.05
    assert rejections / sims <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / sims)


def test_docstring_examples_hold():
    failures, tried = doctest.testmod(stats_mod, raise_on_error=False, verbose=False)
    assert tried > 0 and failures == 0
