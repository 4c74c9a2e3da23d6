"""Uncertainty and significance: cluster bootstrap, paired bootstrap, McNemar, Clopper-Pearson.

Face benchmarks reuse subjects and templates across many pairs, so pairs are not independent; the
bootstrap here resamples whole clusters (subjects, templates, folds: whatever ``clusters`` names) with
replacement, keeping every pair of a drawn cluster, as many times as it is drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from facebench.metrics._validation import as_labels, check_same_length

Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """A statistic on all items and its percentile bootstrap interval ``[low, high]`` at level 1 - alpha.

    ``samples`` holds the statistic of each of the ``n_boot`` resamples, in draw order.
    """

    estimate: float
    low: float
    high: float
    alpha: float
    n_boot: int
    n_clusters: int
    samples: np.ndarray


@dataclass(frozen=True, eq=False)
class PairedBootstrapResult:
    """The difference a - b on all items, its percentile interval and a two-sided bootstrap p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    alpha: float
    n_boot: int
    n_clusters: int
    samples: np.ndarray


class McNemarResult(NamedTuple):
    """Exact McNemar test: ``statistic`` = the smaller discordant count, ``p_value`` two-sided."""

    statistic: int
    p_value: float


def bootstrap_ci(
    statistic: Statistic,
    clusters: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> BootstrapResult:
    """Percentile cluster-bootstrap confidence interval of ``statistic``.

    ``clusters`` gives a cluster id per item (e.g. the subject of each pair; ``np.arange(n)`` for the
    ordinary item bootstrap). ``statistic`` receives an array of item indices and returns a number;
    the estimate is ``statistic(np.arange(n))``. Each resample draws as many clusters as there are, with
    replacement (``numpy.random.default_rng(seed).integers``), and passes the indices of all their items
    (grouped by drawn cluster, items of a cluster in their original order). The interval is
    ``np.quantile(samples, [alpha/2, 1 - alpha/2])`` (linear interpolation). An error raised by
    ``statistic`` on a resample (e.g. no impostor pair drawn) propagates; a NaN result is a ValueError.

    >>> values = np.array([1.0, 2.0, 3.0, 4.0])
    >>> r = bootstrap_ci(lambda idx: values[idx].mean(), [0, 0, 1, 1], n_boot=200)
    >>> r.estimate, bool(1.5 <= r.low <= r.high <= 3.5)
    (2.5, True)
    """
    n_boot, alpha = _check_bootstrap_args(n_boot, alpha)
    cluster_ids = _as_clusters(clusters)
    everything = np.arange(cluster_ids.size)
    estimate = float(statistic(everything))
    samples = np.empty(n_boot)
    resampler = _ClusterResampler(cluster_ids, seed)
    for b in range(n_boot):
        samples[b] = statistic(resampler.draw())
    _check_finite(samples, "statistic")
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(estimate, float(low), float(high), alpha, n_boot, resampler.n_clusters, samples)


def paired_bootstrap(
    statistic_a: Statistic,
    statistic_b: Statistic,
    clusters: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedBootstrapResult:
    """Cluster bootstrap of the difference ``statistic_a - statistic_b`` between two runs on the SAME items.

    Both statistics see the same resampled indices each time (e.g. TAR@FAR of run A and of run B on the
    same pairs), so what the two runs share cancels. Resampling as in :func:`bootstrap_ci`. The interval
    is the percentile interval of the resampled differences; the two-sided p-value for "no difference"
    is ``min(1, 2 min((1 + #(d <= 0)) / (B + 1), (1 + #(d >= 0)) / (B + 1)))`` over the B resampled
    differences d, so it is below alpha about when 0 lies outside the interval, and never exactly 0.

    >>> a, b = np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 1.0])
    >>> r = paired_bootstrap(lambda i: a[i].mean(), lambda i: b[i].mean(), np.arange(4), n_boot=100)
    >>> r.difference
    0.25
    """
    n_boot, alpha = _check_bootstrap_args(n_boot, alpha)
    cluster_ids = _as_clusters(clusters)
    everything = np.arange(cluster_ids.size)
    difference = float(statistic_a(everything)) - float(statistic_b(everything))
    samples = np.empty(n_boot)
    resampler = _ClusterResampler(cluster_ids, seed)
    for b in range(n_boot):
        indices = resampler.draw()
        samples[b] = float(statistic_a(indices)) - float(statistic_b(indices))
    _check_finite(samples, "statistic_a - statistic_b")
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    at_or_below = (1 + np.count_nonzero(samples <= 0)) / (n_boot + 1)
    at_or_above = (1 + np.count_nonzero(samples >= 0)) / (n_boot + 1)
    p_value = min(1.0, 2 * min(at_or_below, at_or_above))
    return PairedBootstrapResult(
        difference, float(low), float(high), float(p_value), alpha, n_boot, resampler.n_clusters, samples
    )


def mcnemar(correct_a: ArrayLike, correct_b: ArrayLike) -> McNemarResult:
    """Exact McNemar test of two classifiers' per-item correctness on the same items.

    Always exact (no chi-square approximation): with b = #(A right, B wrong) and c = #(A wrong, B right),
    under "equal accuracy" b ~ Binomial(b + c, 1/2), and the two-sided p-value is
    ``min(1, 2 * binom.cdf(min(b, c), b + c, 1/2))`` (1 when b + c = 0). ``statistic`` is ``min(b, c)``
    (statsmodels' ``mcnemar(exact=True)`` convention).

    >>> mcnemar([1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0])
    McNemarResult(statistic=0, p_value=0.03125)
    """
    a = as_labels(correct_a, "correct_a")
    b = as_labels(correct_b, "correct_b")
    check_same_length(correct_a=a, correct_b=b)
    only_a = int(np.count_nonzero(a & ~b))
    only_b = int(np.count_nonzero(~a & b))
    discordant = only_a + only_b
    smaller = min(only_a, only_b)
    if discordant == 0:
        return McNemarResult(0, 1.0)
    import scipy.stats  # imported on use: most runs never test (bench/README.md)

    p_value = min(1.0, 2.0 * float(scipy.stats.binom.cdf(smaller, discordant, 0.5)))
    return McNemarResult(smaller, p_value)


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval at level 1 - alpha for a binomial proportion k / n.

    ``lo = Beta(alpha/2; k, n - k + 1)`` (0 when k = 0), ``hi = Beta(1 - alpha/2; k + 1, n - k)``
    (1 when k = n). The Beta quantile is ``scipy.special.betaincinv``, the inverse regularised incomplete
    beta function that ``scipy.stats.beta.ppf`` evaluates (the same Boost routine; equal bit for bit),
    without importing :mod:`scipy.stats` (0.3 s). Coverage is at least 1 - alpha.

    >>> lo, hi = clopper_pearson(0, 10)
    >>> lo, round(hi, 6)
    (0.0, 0.308497)
    """
    for name, value in (("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer; got {value!r}")
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1; got k={k}, n={n}")
    _, alpha = _check_bootstrap_args(1, alpha)
    from scipy.special import betaincinv

    lo = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha / 2))
    hi = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - alpha / 2))
    return lo, hi


class _ClusterResampler:
    """Draws item-index arrays of cluster-bootstrap resamples from one seeded generator."""

    def __init__(self, cluster_ids: np.ndarray, seed: int) -> None:
        _, inverse = np.unique(cluster_ids, return_inverse=True)
        self._order = np.argsort(inverse, kind="stable")
        self._sizes = np.bincount(inverse)
        self._starts = np.cumsum(self._sizes) - self._sizes
        self.n_clusters = int(self._sizes.size)
        self._rng = np.random.default_rng(seed)

    def draw(self) -> np.ndarray:
        drawn = self._rng.integers(0, self.n_clusters, self.n_clusters)
        lengths = self._sizes[drawn]
        ends = np.cumsum(lengths)
        offsets = np.repeat(self._starts[drawn] - (ends - lengths), lengths) + np.arange(ends[-1])
        return self._order[offsets]


def _as_clusters(clusters: ArrayLike) -> np.ndarray:
    ids = np.asarray(clusters)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"clusters must give one id per item (non-empty 1-D); got shape {ids.shape}")
    return ids


def _check_bootstrap_args(n_boot: int, alpha: float) -> tuple[int, float]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    level = float(alpha)
    if not 0.0 < level < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha!r}")
    return int(n_boot), level


def _check_finite(samples: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(samples)
    if bad.any():
        raise ValueError(
            f"{what} returned a non-finite value on {int(bad.sum())} of {samples.size} resamples "
            f"(first: resample {int(np.argmax(bad))}); make it defined on every resample"
        )
