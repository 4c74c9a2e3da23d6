"""Demographic differentials of a verification system: per-group error rates at one global threshold and
the summaries the field uses (pure functions, arrays in, numbers out).

Rules (every result names them):

- Scores are similarities; a pair is accepted ("same") when ``score >= threshold``.
- **Global threshold** (standards practice, ISO/IEC 19795-10 style): one threshold for everyone, set on ALL
  impostor pairs at the target overall FMR with :func:`facebench.metrics.roc.threshold_at_far` (the smallest
  impostor score value whose accepted share is ``<= fmr``; bob.measure's ``far_threshold`` rule).
- **Group of a pair**: the group of its two images when they agree; otherwise the cross-group label
  ``"a|b"`` (names sorted). Cross-group pairs are counted apart: they get their own row and never enter the
  summaries, which compare the pure groups only.
- Per group: FMR = false matches / impostor pairs, FNMR = false non-matches / genuine pairs, accuracy =
  correct decisions / pairs, all at the global threshold. A rate with no pair to count is NaN.

Summaries over the pure groups (NaN rates left out; NaN when fewer than two groups have the rate):

- ``SER`` (skewed error ratio, RFW practice): ``max(e) / min(e)`` of the group error rates ``e``
  (1 - accuracy; inf when the smallest is 0 and the largest is not; 1 when all are 0).
- ``STD``: standard deviation of the group accuracies with the ``ddof`` given (TFace: ddof=1).
- ``FDR`` (fairness discrepancy rate, de Freitas Pereira & Marcel, arXiv:2011.02395):
  ``1 - (alpha A + (1 - alpha) B)``, A = max pairwise |FMR_i - FMR_j|, B = max pairwise |FNMR_i - FNMR_j|.
- ``IR`` (inequity rate, NIST's proposal as written in Howard et al., arXiv:2203.05051):
  ``(max FMR / min FMR)^alpha * (max FNMR / min FNMR)^(1 - alpha)``; inf when a minimum is 0 and its
  maximum is not (a 0/0 ratio counts as 1).
- ``GARBE`` (Gini aggregation rate for biometric equitability, Howard et al., arXiv:2203.05051):
  ``alpha G(FMR) + (1 - alpha) G(FNMR)``, ``G(x) = n / (n - 1) * sum_ij |x_i - x_j| / (2 n^2 mean(x))``
  (0 when all x are 0).
``alpha`` defaults to 0.5 in all three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from facebench.metrics import roc as mroc
from facebench.metrics._validation import as_labels, as_scores, check_rate, check_same_length
from facebench.metrics.stats import _ClusterResampler

CROSS_SEPARATOR = "|"


@dataclass(frozen=True)
class GroupRates:
    """Counts and rates of one group at a threshold (accept ``score >= threshold``)."""

    group: str
    cross: bool
    n_genuine: int
    n_impostor: int
    false_non_matches: int
    false_matches: int

    @property
    def fnmr(self) -> float:
        return self.false_non_matches / self.n_genuine if self.n_genuine else float("nan")

    @property
    def fmr(self) -> float:
        return self.false_matches / self.n_impostor if self.n_impostor else float("nan")

    @property
    def accuracy(self) -> float:
        n = self.n_genuine + self.n_impostor
        return (n - self.false_non_matches - self.false_matches) / n if n else float("nan")


def pair_groups(group_a: ArrayLike, group_b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(label, cross)`` per pair: the common group, or ``"a|b"`` (sorted names) for a cross-group pair.

    >>> pair_groups(["x", "x", "y"], ["x", "y", "x"])[0].tolist()
    ['x', 'x|y', 'x|y']
    """
    a = np.asarray(group_a, dtype=str)
    b = np.asarray(group_b, dtype=str)
    if a.shape != b.shape:
        raise ValueError(f"group_a {a.shape} and group_b {b.shape} differ")
    cross = a != b
    labels = np.array(
        [CROSS_SEPARATOR.join(sorted((x, y))) if x != y else x for x, y in zip(a.tolist(), b.tolist())], dtype=object
    )
    return labels, cross


def global_threshold(scores: ArrayLike, issame: ArrayLike, fmr: float) -> float:
    """The one threshold at overall FMR ``fmr`` over all impostor pairs (module rule)."""
    s = as_scores(scores)
    y = as_labels(issame, "issame")
    check_same_length(scores=s, issame=y)
    return mroc.threshold_at_far(s[~y], check_rate(fmr, "fmr"))


def group_rates(scores: ArrayLike, issame: ArrayLike, groups: ArrayLike, cross: ArrayLike, threshold: float) -> list[GroupRates]:
    """Per-group counts at ``threshold``, groups in sorted order, pure groups first."""
    s = as_scores(scores)
    y = as_labels(issame, "issame")
    g = np.asarray(groups, dtype=object)
    c = np.asarray(cross, dtype=bool)
    check_same_length(scores=s, issame=y, groups=g, cross=c)
    accept = s >= threshold
    out = []
    names = sorted(set(g.tolist()), key=lambda name: (bool(c[g == name][0]), name))
    for name in names:
        m = g == name
        gen, imp = m & y, m & ~y
        out.append(GroupRates(
            str(name), bool(c[m][0]), int(gen.sum()), int(imp.sum()),
            int((gen & ~accept).sum()), int((imp & accept).sum()),
        ))
    return out


def skewed_error_ratio(errors: ArrayLike) -> float:
    """``max(e) / min(e)`` over the finite error rates (module rule).

    >>> skewed_error_ratio([0.02, 0.05, 0.04])
    2.5
    """
    e = _finite(errors)
    if e.size < 2:
        return float("nan")
    lo, hi = float(e.min()), float(e.max())
    if lo == 0:
        return 1.0 if hi == 0 else float("inf")
    return hi / lo


def group_std(values: ArrayLike, ddof: int = 1) -> float:
    """Standard deviation of the finite values with ``ddof`` (NaN with too few)."""
    v = _finite(values)
    return float(np.std(v, ddof=ddof)) if v.size > ddof else float("nan")


def fairness_discrepancy_rate(fmrs: ArrayLike, fnmrs: ArrayLike, alpha: float = 0.5) -> float:
    """FDR = ``1 - (alpha A + (1 - alpha) B)`` (module rule).

    >>> round(fairness_discrepancy_rate([0.001, 0.003], [0.02, 0.06]), 6)
    0.979
    """
    a, b = _spread(fmrs), _spread(fnmrs)
    return float(1.0 - (alpha * a + (1.0 - alpha) * b))


def inequity_rate(fmrs: ArrayLike, fnmrs: ArrayLike, alpha: float = 0.5) -> float:
    """IR = ``(max FMR / min FMR)^alpha (max FNMR / min FNMR)^(1 - alpha)`` (module rule).

    >>> round(inequity_rate([0.001, 0.004], [0.02, 0.08]), 6)
    4.0
    """
    return float(_ratio(fmrs) ** alpha * _ratio(fnmrs) ** (1.0 - alpha))


def gini(values: ArrayLike) -> float:
    """``n / (n - 1) * sum_ij |x_i - x_j| / (2 n^2 mean(x))`` over the finite values (0 when all are 0).

    >>> gini([0.0, 0.0, 0.0, 1.0])
    1.0
    """
    x = _finite(values)
    n = x.size
    if n < 2:
        return float("nan")
    mean = x.mean()
    if mean == 0:
        return 0.0
    total = np.abs(x[:, None] - x[None, :]).sum()
    return float(n / (n - 1) * total / (2 * n * n * mean))


def garbe(fmrs: ArrayLike, fnmrs: ArrayLike, alpha: float = 0.5) -> float:
    """GARBE = ``alpha G(FMR) + (1 - alpha) G(FNMR)`` (module rule)."""
    return float(alpha * gini(fmrs) + (1.0 - alpha) * gini(fnmrs))


def summaries(rows: list[GroupRates], alpha: float = 0.5, ddof: int = 1) -> dict[str, float]:
    """SER, STD (of accuracies, ``ddof``), FDR, IR and GARBE over the pure groups of ``rows``."""
    pure = [r for r in rows if not r.cross]
    fmr = np.array([r.fmr for r in pure], dtype=float)
    fnmr = np.array([r.fnmr for r in pure], dtype=float)
    acc = np.array([r.accuracy for r in pure], dtype=float)
    return {
        "ser": skewed_error_ratio(1.0 - acc),
        "std": group_std(acc, ddof),
        "fdr": fairness_discrepancy_rate(fmr, fnmr, alpha),
        "ir": inequity_rate(fmr, fnmr, alpha),
        "garbe": garbe(fmr, fnmr, alpha),
    }


def within_group_tar(
    scores: ArrayLike, issame: ArrayLike, groups: ArrayLike, far: float, rule: str = "nearest"
) -> dict[str, float]:
    """TAR at FAR ``far`` of each group on its own ROC (its genuine and its impostor pairs;
    :func:`facebench.metrics.roc.tar_at_far` with ``rule``); NaN where a group lacks a class."""
    s = as_scores(scores)
    y = as_labels(issame, "issame")
    g = np.asarray(groups, dtype=object)
    out = {}
    for name in sorted(set(g.tolist())):
        m = g == name
        if not y[m].any() or y[m].all():
            out[str(name)] = float("nan")
            continue
        curve = mroc.roc_curve(y[m], s[m])
        out[str(name)] = float(mroc.tar_at_far(curve, [far], rule=rule)[far].tar)
    return out


@dataclass(frozen=True)
class FairnessBootstrap:
    """Percentile intervals (``alpha`` two-sided) of per-group FMR/FNMR and of the summaries, over
    ``n_boot`` resamples of identities (clusters) with replacement, the global threshold re-set in each
    resample; ``undefined`` counts, per quantity, the resamples where it was NaN (left out)."""

    intervals: dict[str, tuple[float, float]]
    undefined: dict[str, int]
    n_boot: int
    n_clusters: int
    seed: int


def fairness_bootstrap(
    scores: ArrayLike,
    issame: ArrayLike,
    groups: ArrayLike,
    cross: ArrayLike,
    clusters: ArrayLike,
    fmr: float,
    *,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    weight: float = 0.5,
    ddof: int = 1,
) -> FairnessBootstrap:
    """Cluster bootstrap by identity (``clusters``: the identity of each pair, e.g. of its first image) of
    ``group.fmr``/``group.fnmr`` per group and of every summary (weight = the summaries' ``alpha``)."""
    s = as_scores(scores)
    y = as_labels(issame, "issame")
    g = np.asarray(groups, dtype=object)
    c = np.asarray(cross, dtype=bool)
    resampler = _ClusterResampler(np.unique(np.asarray(clusters), return_inverse=True)[1], seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        idx = resampler.draw()
        yy = y[idx]
        if yy.all():
            continue
        t = mroc.threshold_at_far(s[idx][~yy], fmr)
        rows = group_rates(s[idx], yy, g[idx], c[idx], t)
        for r in rows:
            samples.setdefault(f"{r.group}.fmr", []).append(r.fmr)
            samples.setdefault(f"{r.group}.fnmr", []).append(r.fnmr)
        for key, value in summaries(rows, weight, ddof).items():
            samples.setdefault(key, []).append(value)
    intervals, undefined = {}, {}
    for key, values in samples.items():
        v = np.asarray(values, dtype=float)
        ok = np.isfinite(v)
        undefined[key] = int(n_boot - ok.sum())
        if ok.any():
            lo, hi = np.quantile(v[ok], [alpha / 2, 1 - alpha / 2])
            intervals[key] = (float(lo), float(hi))
    return FairnessBootstrap(intervals, undefined, n_boot, resampler.n_clusters, seed)


@dataclass(frozen=True)
class SearchGroupRates:
    """Open-set identification counts of one group at a threshold: mated searches (their rank-1 hits and
    misses, a miss being a mate not at rank 1 or scoring below the threshold) and non-mated searches (false
    alarms: best score ``>= threshold``)."""

    group: str
    n_mated: int
    n_nonmated: int
    rank1_hits: int
    misses: int
    false_alarms: int

    @property
    def rank1(self) -> float:
        return self.rank1_hits / self.n_mated if self.n_mated else float("nan")

    @property
    def fnir(self) -> float:
        return self.misses / self.n_mated if self.n_mated else float("nan")

    @property
    def fpir(self) -> float:
        return self.false_alarms / self.n_nonmated if self.n_nonmated else float("nan")


def search_group_rates(
    mate_ranks: ArrayLike,
    mate_scores: ArrayLike,
    mated_groups: ArrayLike,
    nonmated_scores: ArrayLike,
    nonmated_groups: ArrayLike,
    threshold: float,
) -> list[SearchGroupRates]:
    """Per probe group (sorted): rank-1 rate, FNIR (mate not at rank 1 or below ``threshold``) and FPIR
    (non-mated best score ``>= threshold``) at one threshold for all groups (the 1:N analogue of
    :func:`group_rates`; NIST FRVT 1:N demographics)."""
    ranks = np.asarray(mate_ranks)
    ms = as_scores(mate_scores, "mate_scores")
    ns = as_scores(nonmated_scores, "nonmated_scores")
    mg = np.asarray(mated_groups, dtype=object)
    ng = np.asarray(nonmated_groups, dtype=object)
    check_same_length(mate_ranks=ranks, mate_scores=ms, mated_groups=mg)
    check_same_length(nonmated_scores=ns, nonmated_groups=ng)
    hit = (ranks == 1) & (ms >= threshold)
    out = []
    for name in sorted(set(mg.tolist()) | set(ng.tolist())):
        m, n = mg == name, ng == name
        out.append(SearchGroupRates(
            str(name), int(m.sum()), int(n.sum()), int(((ranks == 1) & m).sum()), int((~hit & m).sum()),
            int(((ns >= threshold) & n).sum()),
        ))
    return out


def search_summaries(rows: list[SearchGroupRates], alpha: float = 0.5) -> dict[str, float]:
    """FDR, IR and GARBE of FPIR (in FMR's place) and FNIR (in FNMR's), and SER of the rank-1 miss rates."""
    fpir = np.array([r.fpir for r in rows], dtype=float)
    fnir = np.array([r.fnir for r in rows], dtype=float)
    return {
        "ser": skewed_error_ratio(1.0 - np.array([r.rank1 for r in rows], dtype=float)),
        "fdr": fairness_discrepancy_rate(fpir, fnir, alpha),
        "ir": inequity_rate(fpir, fnir, alpha),
        "garbe": garbe(fpir, fnir, alpha),
    }


def _finite(values: ArrayLike) -> np.ndarray:
    v = np.asarray(values, dtype=float).reshape(-1)
    return v[np.isfinite(v)]


def _spread(values: ArrayLike) -> float:
    v = _finite(values)
    return float(v.max() - v.min()) if v.size >= 2 else float("nan")


def _ratio(values: ArrayLike) -> float:
    v = _finite(values)
    if v.size < 2:
        return float("nan")
    lo, hi = float(v.min()), float(v.max())
    if lo == 0:
        return 1.0 if hi == 0 else float("inf")
    return hi / lo
