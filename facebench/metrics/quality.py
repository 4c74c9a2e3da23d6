"""Error-versus-discard curves of face image quality (ERC / EDC): FNMR at a fixed FMR as the lowest-quality
comparisons are discarded (pure functions).

Rules (every result names them):

- **Pair quality** = ``min(q_a, q_b)`` of the two image qualities (higher = better).
- **Discard**: at fraction f, the ``floor(f N + 1e-9)`` pairs of lowest pair quality are dropped (pairs
  sorted by quality ascending, ties in stored order: ``np.argsort(kind="stable")``); genuine and impostor
  pairs alike. Default grid 0, 0.05, ..., 0.95 (`DISCARD_GRID`); the retained genuine and impostor counts
  are reported at every point.
- **Threshold conventions** (accept ``score >= t``, t by :func:`facebench.metrics.roc.threshold_at_far`):
  ``fixed`` (EDC, Schlett et al. 2023): t is set once, on all impostor pairs, at the target FMR;
  ``refit`` (MagFace's and CR-FIQA's ERC scripts): t is re-set on the retained impostor pairs at each f.
- **Resolvable**: an FMR target is resolvable on n impostor pairs when ``n * fmr >= 1``; where it is not
  (for ``fixed``: on all pairs; for ``refit``: on the retained ones) the point is NaN.
- FNMR = share of retained genuine pairs with ``score < t`` (NaN when none is retained).
- **AUC** over the whole grid and **pAUC** up to a discard limit: the trapezoid area under FNMR(f)
  between f = 0 and the last grid point (or the limit, which must be a grid point); NaN when a point in
  that range is NaN. Not normalised (divide by the width to get the mean FNMR).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from facebench.metrics import roc as mroc
from facebench.metrics._validation import as_labels, as_scores, check_rate, check_same_length

DISCARD_GRID = np.round(np.arange(20) * 0.05, 2)
"""Discard fractions 0, 0.05, ..., 0.95."""

CONVENTIONS = ("fixed", "refit")


@dataclass(frozen=True, eq=False)
class DiscardCurve:
    """FNMR at a fixed FMR per discard fraction under one threshold convention."""

    convention: str
    fmr: float
    fractions: np.ndarray
    fnmr: np.ndarray
    thresholds: np.ndarray
    n_genuine: np.ndarray
    n_impostor: np.ndarray


def pair_quality(quality_a: ArrayLike, quality_b: ArrayLike) -> np.ndarray:
    """``min(q_a, q_b)`` per pair.

    >>> pair_quality([0.2, 0.9], [0.5, 0.4]).tolist()
    [0.2, 0.4]
    """
    a = as_scores(quality_a, "quality_a")
    b = as_scores(quality_b, "quality_b")
    check_same_length(quality_a=a, quality_b=b)
    return np.minimum(a, b)


def resolvable(n_impostor: int, fmr: float) -> bool:
    """Whether FMR ``fmr`` can be read on ``n_impostor`` impostor pairs (``n * fmr >= 1``)."""
    return n_impostor * fmr >= 1.0 - 1e-12


def discard_curve(
    scores: ArrayLike,
    issame: ArrayLike,
    quality: ArrayLike,
    fmr: float,
    convention: str = "fixed",
    fractions: ArrayLike = DISCARD_GRID,
) -> DiscardCurve:
    """The error-versus-discard curve (module rules) of pairs with similarity ``scores``, labels ``issame``
    and pair ``quality``."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown threshold convention {convention!r}; use {' or '.join(CONVENTIONS)}")
    s = as_scores(scores)
    y = as_labels(issame, "issame")
    q = as_scores(quality, "quality")
    check_same_length(scores=s, issame=y, quality=q)
    fmr = check_rate(fmr, "fmr")
    grid = np.asarray(fractions, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or (grid < 0).any() or (grid >= 1).any() or (np.diff(grid) <= 0).any():
        raise ValueError(f"fractions must increase within [0, 1); got {grid.tolist()}")
    order = np.argsort(q, kind="stable")
    n = s.size
    fixed_t = float("nan")
    if convention == "fixed" and resolvable(int((~y).sum()), fmr):
        fixed_t = mroc.threshold_at_far(s[~y], fmr)
    fnmr = np.full(grid.size, np.nan)
    thresholds = np.full(grid.size, np.nan)
    n_gen = np.zeros(grid.size, dtype=np.int64)
    n_imp = np.zeros(grid.size, dtype=np.int64)
    for k, f in enumerate(grid):
        kept = order[int(np.floor(f * n + 1e-9)):]
        ys, ss = y[kept], s[kept]
        n_gen[k], n_imp[k] = int(ys.sum()), int((~ys).sum())
        if convention == "fixed":
            t = fixed_t
        else:
            t = mroc.threshold_at_far(ss[~ys], fmr) if resolvable(int(n_imp[k]), fmr) else float("nan")
        thresholds[k] = t
        if np.isfinite(t) and n_gen[k]:
            fnmr[k] = np.count_nonzero(ss[ys] < t) / n_gen[k]
    return DiscardCurve(convention, fmr, grid, fnmr, thresholds, n_gen, n_imp)


def area_under(fractions: ArrayLike, values: ArrayLike, limit: float | None = None) -> float:
    """Trapezoid area under ``values`` over ``fractions`` from the first point to ``limit`` (a grid point;
    None = the last); NaN when a value in range is NaN (module rule).

    >>> area_under([0.0, 0.5, 1.0], [0.2, 0.1, 0.0])
    0.1
    """
    x = np.asarray(fractions, dtype=float)
    v = np.asarray(values, dtype=float)
    if limit is not None:
        hits = np.flatnonzero(np.isclose(x, limit))
        if hits.size == 0:
            raise ValueError(f"discard limit {limit} is not a point of the grid {x.tolist()}")
        x, v = x[: hits[0] + 1], v[: hits[0] + 1]
    if x.size < 2 or not np.isfinite(v).all():
        return float("nan")
    return float(np.sum((x[1:] - x[:-1]) * (v[1:] + v[:-1]) / 2.0))
