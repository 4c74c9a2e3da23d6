"""Fast cluster bootstrap of TAR@FAR: exact resampled ROC read-offs without re-sorting any resample.

A resample of a verification set is described by integer weights: pair i is present ``w_i`` times. Two
resampling designs are offered, both driven by ``numpy.random.default_rng(seed)``:

- **clusters** (one id per pair; ``np.arange(n)`` = the ordinary pair bootstrap): exactly the draws of
  :func:`facebench.metrics.stats.bootstrap_ci` -- per resample ``rng.integers(0, C, C)`` over the C
  distinct ids (in ``np.unique`` order) -- and ``w_i`` = how often the cluster of pair i was drawn.
- **templates** (two ids per pair, as in IJB template pairs): the T distinct templates of either side
  are drawn with replacement, ``rng.integers(0, T, T)``, and ``w_i = m(t1_i) * m(t2_i)``, the product
  of the multiplicities of the pair's two templates (the vertex bootstrap of a graph of pairs).

The statistic of a resample is what :func:`facebench.metrics.roc.tar_at_far` returns on
:func:`facebench.metrics.roc.roc_curve` of the materialised resample (every pair repeated ``w_i``
times), read off by the same rule. Nothing is materialised: the pairs are sorted once by descending
score and every resample only sums weights. The kernel rebuilds scikit-learn's curve exactly --
thresholds at the distinct scores of pairs with positive weight, cumulative weighted counts, the
``drop_intermediate`` thinning that keeps point k when the weighted increments change
(``diff(fps, 2)`` or ``diff(tps, 2)`` non-zero), the (0, 0) point, FPR = fps / total impostor weight --
so every resampled TAR is bit-equal to the materialised computation (the tests check it against
``bootstrap_ci`` and against ``np.repeat``).

Only the top of the score order matters for FAR <= t_max: each resample reads a prefix holding about
``2 t_max`` of the impostors plus a margin and needs totals over all pairs. A prefix suffices when its
thinned curve shows two distinct FPR values above t_max (then no later point can be nearer to, or at
or below, any target); otherwise that resample is recomputed on all pairs, so the result never depends
on the prefix. Totals: one-way, ``m . (pairs per cluster)``; two-way, ``m' A m`` with A the sparse
template-pair matrix, computed for a batch of resamples at once. At IJB-C scale (15.6M pairs, FAR
<= 1e-4) a resample costs a sparse product share and a few thousand sums instead of a 15.6M sort.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facebench.metrics import roc as mroc
from facebench.metrics.stats import BootstrapResult, PairedBootstrapResult
from facebench.progress import progress

if TYPE_CHECKING:
    import scipy.sparse

#: Above this many pairs the prefix shortcut is used; below, every resample reads all pairs.
PREFIX_MIN_PAIRS = 200_000
_BATCH = 64


# ------------------------------------------------------------------------------------------- designs


@dataclass(frozen=True, eq=False)
class Design:
    """How resamples weight the pairs of one set: ``keys`` are 1 (clusters) or 2 (templates) index
    columns into ``0..n_units-1``; ``labels`` the genuine flags, both in the pairs' original order."""

    kind: str  # "clusters" | "templates"
    keys: tuple[np.ndarray, ...]
    labels: np.ndarray
    n_units: int
    _genuine_per_unit: np.ndarray | None = None
    _impostor_per_unit: np.ndarray | None = None
    _impostor_matrix: scipy.sparse.csr_matrix | None = None

    @property
    def unit(self) -> str:
        """What is drawn: ``pairs``, ``clusters`` or ``templates``."""
        if self.kind == "templates":
            return "templates"
        return "pairs" if self.n_units == self.labels.size else "clusters"

    @property
    def description(self) -> str:
        """The design in words, for reports."""
        if self.kind == "templates":
            return (
                f"template bootstrap: {self.n_units:,} templates drawn with replacement, a pair counted "
                "m(t1) x m(t2) times"
            )
        if self.n_units == self.labels.size:
            return f"pair bootstrap: {self.n_units:,} pairs drawn with replacement"
        return f"cluster bootstrap: {self.n_units:,} clusters drawn with replacement, all pairs of a drawn cluster"

    def multiplicities(self, n_boot: int, seed: int) -> Iterator[np.ndarray]:
        """The unit multiplicities of each resample (int64, length ``n_units``), in draw order."""
        rng = np.random.default_rng(seed)
        for _ in range(n_boot):
            drawn = rng.integers(0, self.n_units, self.n_units)
            yield np.bincount(drawn, minlength=self.n_units).astype(np.int64)

    def totals(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Total genuine and impostor weight of each resample of ``batch`` (``(n_units, B)`` multiplicities)."""
        if self.kind == "clusters":
            return self._genuine_per_unit @ batch, self._impostor_per_unit @ batch
        genuine = self.labels
        a, b = self.keys[0][genuine], self.keys[1][genuine]
        w_gen = np.einsum("ij,ij->j", batch[a], batch[b]) if a.size else np.zeros(batch.shape[1], np.int64)
        product = self._impostor_matrix @ batch.astype(np.float64)
        w_imp = np.einsum("ij,ij->j", batch.astype(np.float64), product)
        return w_gen.astype(np.int64), np.rint(w_imp).astype(np.int64)


def cluster_design(labels: np.ndarray, clusters: np.ndarray | None = None) -> Design:
    """Resample clusters (one id per pair; None = each pair its own cluster), as ``bootstrap_ci`` does."""
    labels = np.asarray(labels, dtype=bool)
    if clusters is None:
        inverse = np.arange(labels.size)
        n_units = labels.size
    else:
        clusters = np.asarray(clusters)
        if clusters.shape != labels.shape:
            raise ValueError(f"clusters must give one id per pair: {clusters.shape} for {labels.shape[0]} pairs")
        _, inverse = np.unique(clusters, return_inverse=True)
        inverse = inverse.reshape(-1)
        n_units = int(inverse.max()) + 1 if inverse.size else 0
    genuine = np.bincount(inverse[labels], minlength=n_units).astype(np.int64)
    impostor = np.bincount(inverse[~labels], minlength=n_units).astype(np.int64)
    return Design("clusters", (inverse,), labels, n_units, genuine, impostor)


def template_design(labels: np.ndarray, template1: np.ndarray, template2: np.ndarray) -> Design:
    """Resample templates: each pair weighs ``m(t1) * m(t2)`` (ids of either side share one pool)."""
    labels = np.asarray(labels, dtype=bool)
    t1, t2 = np.asarray(template1), np.asarray(template2)
    if t1.shape != labels.shape or t2.shape != labels.shape:
        raise ValueError(
            f"template1/template2 must give one id per pair: {t1.shape}, {t2.shape} for {labels.shape[0]} pairs"
        )
    ids = np.unique(np.concatenate([t1, t2]))
    a = np.searchsorted(ids, t1).astype(np.int64)
    b = np.searchsorted(ids, t2).astype(np.int64)
    imp = ~labels
    import scipy.sparse  # here: a run writes its report through this package without bootstrapping

    matrix = scipy.sparse.csr_matrix((np.ones(int(imp.sum())), (a[imp], b[imp])), shape=(ids.size, ids.size))
    matrix.sum_duplicates()
    return Design("templates", (a, b), labels, int(ids.size), _impostor_matrix=matrix)


# ------------------------------------------------------------------------------------------- sorted pairs


@dataclass(frozen=True, eq=False)
class _Prefix:
    """The first ``k`` pairs in descending score order, grouped by equal score."""

    genuine: np.ndarray  # int64 0/1
    keys: tuple[np.ndarray, ...]
    starts: np.ndarray  # start of each run of equal scores within the prefix
    scores: np.ndarray  # the score of each run
    complete: bool  # the prefix is every pair


@dataclass(frozen=True, eq=False)
class SortedPairs:
    """One run's pairs sorted once by descending score, for weighted ROC read-offs under a design."""

    design: Design
    full: _Prefix
    prefix: _Prefix
    t_max: float

    @classmethod
    def build(cls, scores: np.ndarray, design: Design, t_max: float) -> "SortedPairs":
        """Sort ``scores`` (same order as the design's labels) and choose the prefix for FAR <= ``t_max``."""
        scores = np.asarray(scores)
        if scores.shape != design.labels.shape:
            raise ValueError(f"{scores.shape[0]} scores for {design.labels.shape[0]} labelled pairs")
        order = np.argsort(scores, kind="stable")[::-1]
        sorted_scores = scores[order]
        genuine = design.labels[order].astype(np.int64)
        keys = tuple(k[order] for k in design.keys)
        starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
        full = _Prefix(genuine, keys, starts, sorted_scores[starts], True)
        prefix = full
        n = scores.size
        if n >= PREFIX_MIN_PAIRS:
            n_imp = int(n - np.count_nonzero(genuine))
            needed = int(np.ceil(2.0 * t_max * n_imp)) + 256
            impostors_seen = np.cumsum(1 - genuine)
            k = int(np.searchsorted(impostors_seen, needed, side="left")) + 1
            # extend to the end of the run of equal scores, then one more run (the thinning of the
            # last usable point looks one run ahead)
            g = int(np.searchsorted(starts, k, side="right"))
            end_group = min(g + 1, starts.size)
            k_end = int(starts[end_group]) if end_group < starts.size else n
            if k_end < n // 2:
                prefix = _Prefix(
                    genuine[:k_end],
                    tuple(x[:k_end] for x in keys),
                    starts[:end_group],
                    sorted_scores[starts[:end_group]],
                    False,
                )
        return cls(design, full, prefix, float(t_max))


def _weighted_curve(p: _Prefix, design: Design, m: np.ndarray, w_gen: int, w_imp: int) -> mroc.RocCurve:
    """The (possibly truncated) thinned ROC of the resample with unit multiplicities ``m``: the weighted
    kernel (:func:`facebench.metrics.roc.weighted_roc_curve`) on the runs of the prefix."""
    w = _prefix_weights(p, design, m)
    if p.starts.size == w.size:  # no tied scores: every pair is its own run
        total, dt = w, w * p.genuine
    else:
        total = np.add.reduceat(w, p.starts)
        dt = np.add.reduceat(w * p.genuine, p.starts)
    return mroc.weighted_roc_curve(p.scores, dt, total - dt, w_gen, w_imp, lookahead=not p.complete)


def _prefix_weights(p: _Prefix, design: Design, m: np.ndarray) -> np.ndarray:
    if design.kind == "templates":
        return m[p.keys[0]] * m[p.keys[1]]
    return m[p.keys[0]]


def _enough(curve: mroc.RocCurve, t_max: float) -> bool:
    """A truncated curve decides every target <= t_max: two distinct FPR values above t_max."""
    j = int(np.searchsorted(curve.fpr, t_max, side="right"))
    return j < curve.fpr.size and curve.fpr[-1] > curve.fpr[j]


def resampled_tar(
    pairs: SortedPairs, m: np.ndarray, w_gen: int, w_imp: int, targets: Sequence[float], rule: str
) -> np.ndarray:
    """TAR at each target FAR (by ``rule``) of the resample with unit multiplicities ``m``."""
    if w_gen <= 0 or w_imp <= 0:
        raise ValueError(
            f"a resample drew {w_gen} genuine and {w_imp} impostor pairs; TAR@FAR needs both "
            "(too few clusters for a bootstrap)"
        )
    curve = _weighted_curve(pairs.prefix, pairs.design, m, w_gen, w_imp)
    if not pairs.prefix.complete and not _enough(curve, pairs.t_max):
        curve = _weighted_curve(pairs.full, pairs.design, m, w_gen, w_imp)
    points = mroc.tar_at_far(curve, targets, rule)
    return np.array([points[float(t)].tar for t in targets])


def _batches(design: Design, n_boot: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(multiplicities (n_units, B), genuine totals, impostor totals)`` for consecutive resamples."""
    draws = design.multiplicities(n_boot, seed)
    done = 0
    with progress(n_boot, "bootstrap", "resamples") as bar:
        while done < n_boot:
            size = min(_BATCH, n_boot - done)
            batch = np.stack([next(draws) for _ in range(size)], axis=1)
            w_gen, w_imp = design.totals(batch)
            yield batch, w_gen, w_imp
            done += size
            bar.update(size)


# ------------------------------------------------------------------------------------------- public


def _check(n_boot: int, alpha: float, targets: Sequence[float]) -> list[float]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha!r}")
    wanted = [float(t) for t in targets]
    if not wanted or any(not 0.0 <= t <= 1.0 for t in wanted):
        raise ValueError(f"targets must be FARs in [0, 1]; got {list(targets)!r}")
    return wanted


def percentile_interval(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    """``np.quantile(samples, [alpha/2, 1 - alpha/2])`` (linear), the interval of ``bootstrap_ci``."""
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def two_sided_p(differences: np.ndarray) -> float:
    """``min(1, 2 min((1 + #(d <= 0)) / (B + 1), (1 + #(d >= 0)) / (B + 1)))``, as ``paired_bootstrap``."""
    b = differences.size
    at_or_below = (1 + np.count_nonzero(differences <= 0)) / (b + 1)
    at_or_above = (1 + np.count_nonzero(differences >= 0)) / (b + 1)
    return float(min(1.0, 2 * min(at_or_below, at_or_above)))


def tar_at_far_bootstrap(
    scores: np.ndarray,
    design: Design,
    targets: Sequence[float],
    rule: str = "nearest",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[float, BootstrapResult]:
    """Percentile bootstrap interval of TAR at each target FAR (read-off ``rule``) under ``design``.

    ``estimate`` is the TAR of all pairs (weights 1), equal to ``tar_at_far(roc_curve(labels, scores))``;
    ``samples`` the resampled TARs in draw order. With a clusters design the samples equal those of
    ``bootstrap_ci(statistic, clusters, n_boot=n_boot, seed=seed)`` for the statistic "TAR@FAR of the
    drawn pairs", and so do the intervals.
    """
    wanted = _check(n_boot, alpha, targets)
    pairs = SortedPairs.build(scores, design, max(wanted))
    ones = np.ones(design.n_units, dtype=np.int64)
    w_gen0, w_imp0 = design.totals(ones[:, None])
    estimate = resampled_tar(pairs, ones, int(w_gen0[0]), int(w_imp0[0]), wanted, rule)
    samples = np.empty((n_boot, len(wanted)))
    row = 0
    for batch, w_gen, w_imp in _batches(design, n_boot, seed):
        for j in range(batch.shape[1]):
            samples[row] = resampled_tar(pairs, batch[:, j], int(w_gen[j]), int(w_imp[j]), wanted, rule)
            row += 1
    out = {}
    for i, t in enumerate(wanted):
        low, high = percentile_interval(samples[:, i], alpha)
        out[t] = BootstrapResult(
            float(estimate[i]), low, high, float(alpha), int(n_boot), design.n_units, samples[:, i].copy()
        )
    return out


def paired_tar_at_far_bootstrap(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    design: Design,
    targets: Sequence[float],
    rule: str = "nearest",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[float, PairedBootstrapResult]:
    """Bootstrap of TAR_a - TAR_b at each target FAR for two runs scoring the SAME pairs.

    Both runs see the same resample each time; interval and two-sided p-value as
    :func:`facebench.metrics.stats.paired_bootstrap` (equal to it with a clusters design).
    """
    wanted = _check(n_boot, alpha, targets)
    a = SortedPairs.build(scores_a, design, max(wanted))
    b = SortedPairs.build(scores_b, design, max(wanted))
    ones = np.ones(design.n_units, dtype=np.int64)
    w_gen0, w_imp0 = (int(x[0]) for x in design.totals(ones[:, None]))
    difference = resampled_tar(a, ones, w_gen0, w_imp0, wanted, rule) - resampled_tar(
        b, ones, w_gen0, w_imp0, wanted, rule
    )
    samples = np.empty((n_boot, len(wanted)))
    row = 0
    for batch, w_gen, w_imp in _batches(design, n_boot, seed):
        for j in range(batch.shape[1]):
            m, g, i = batch[:, j], int(w_gen[j]), int(w_imp[j])
            samples[row] = resampled_tar(a, m, g, i, wanted, rule) - resampled_tar(b, m, g, i, wanted, rule)
            row += 1
    out = {}
    for k, t in enumerate(wanted):
        d = samples[:, k].copy()
        low, high = percentile_interval(d, alpha)
        out[t] = PairedBootstrapResult(
            float(difference[k]), low, high, two_sided_p(d), float(alpha), int(n_boot), design.n_units, d
        )
    return out
