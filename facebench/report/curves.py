"""Curves reduced to what a figure can show.

A ROC of IJB-C has tens of thousands of vertices (a full ROC of 15.6M pairs up to millions), a plot is a
few hundred pixels wide: drawing every vertex costs time and shows nothing more. Every line facebench
plots goes through :func:`drawable` (or :func:`thin_lines`, which applies it to lines already on a set
of axes): the vertices are cut into runs by the columns of the pixel grid of the figure as saved, and of
each run only the first, last, lowest and highest vertex are drawn (:func:`keep_extremes`). The arrays a
run saves are never touched: only the drawn copy is reduced.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

#: Width of a column of the pixel grid, in pixels: the drawn curve stays within this of the full one.
COLUMN_PX = 0.25
#: Curves of at most this many vertices are drawn whole (Agg snaps such rectilinear paths to pixels).
MIN_VERTICES = 1024


def keep_extremes(y: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Bool mask of the vertices to draw when the runs of a polyline begin at ``starts`` (increasing,
    ``starts[0] == 0``): the first and the last vertex of each run and the first of its lowest and of its
    highest vertices. Within a run the kept path joins the first to the last vertex through both extremes,
    so it covers the run's whole vertical span; when every run lies in one pixel column of width ``w``,
    every point of the full polyline is less than ``w`` (horizontally) from the reduced one and vice
    versa, and segments between runs are segments of the full polyline.

    >>> keep_extremes(np.array([0.0, 3.0, 1.0, 2.0, 2.0]), np.array([0, 4])).nonzero()[0].tolist()
    [0, 1, 3, 4]
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    chosen = np.zeros(n, dtype=bool)
    if n == 0:
        return chosen
    lengths = np.diff(np.r_[starts, n])
    chosen[starts] = True
    chosen[starts + lengths - 1] = True
    for reduce in (np.minimum.reduceat, np.maximum.reduceat):
        at = np.flatnonzero(y == np.repeat(reduce(y, starts), lengths))
        run = np.searchsorted(starts, at, side="right")
        chosen[at[np.r_[True, run[1:] != run[:-1]]]] = True  # the first vertex of each run at its extreme
    return chosen


def drawn_vertices(
    x: np.ndarray,
    y: np.ndarray,
    column: float = COLUMN_PX,
    span: tuple[float, float] | None = None,
) -> np.ndarray:
    """Bool mask of the vertices of the polyline ``(x, y)``, given in display coordinates (pixels), to
    draw: runs of consecutive vertices in the same column ``floor(x / column)`` reduced by
    :func:`keep_extremes`; a vertex with a non-finite coordinate (where a line breaks) is a run of its
    own. With ``span = (left, right)`` (the visible x range), everything left of ``left - 1`` counts as one
    column and everything right of ``right + 1`` as another (what is drawn there is not seen). At most four
    vertices per column are left (two for a monotone curve), whatever the number of vertices.

    >>> drawn_vertices(np.array([0.0, 0.1, 0.2, 0.3, 1.0]), np.array([0.0, 3.0, 1.0, 2.0, 2.0]), 0.5).nonzero()[0].tolist()
    [0, 1, 3, 4]
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length; got {x.shape} and {y.shape}")
    n = x.size
    if n <= 2:
        return np.ones(n, dtype=bool)
    finite = np.isfinite(x) & np.isfinite(y)
    col = np.floor(np.where(finite, x, 0.0) / column)
    if span is not None:
        col = np.clip(col, math.floor((span[0] - 1) / column) - 1, math.floor((span[1] + 1) / column) + 1)
    start = np.ones(n, dtype=bool)
    start[1:] = (col[1:] != col[:-1]) | ~finite[1:] | ~finite[:-1]
    return keep_extremes(np.where(finite, y, 0.0), np.flatnonzero(start)) | ~finite


def _sorted_runs(ax: Any, x: np.ndarray, column: float) -> np.ndarray | None:
    """Run starts of a curve whose x never decreases, from the data x of the pixel-column edges (found by
    the inverse transform of a few thousand edges instead of transforming every vertex); None when x is
    not sorted or not finite."""
    if not (np.isfinite(x[0]) and np.isfinite(x[-1]) and np.all(x[1:] >= x[:-1])):
        return None
    left, right = ax.bbox.x0, ax.bbox.x1
    edges_px = np.arange(math.floor((left - 1) / column), math.floor((right + 1) / column) + 2) * column
    with np.errstate(all="ignore"):
        edges = ax.transData.inverted().transform(np.column_stack([edges_px, np.zeros_like(edges_px)]))[:, 0]
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):  # not an increasing x axis
        return None
    starts = np.searchsorted(x, edges, side="left")
    return np.unique(np.r_[0, starts[starts < x.size]])


def _reduce(ax: Any, x: np.ndarray, y: np.ndarray, column: float, keep_x: Sequence[float]) -> np.ndarray:
    """Bool mask of the vertices of the polyline ``(x, y)`` (data coordinates) to draw on ``ax``."""
    starts = _sorted_runs(ax, x, column)
    if starts is not None:
        chosen = keep_extremes(y, starts)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            display = ax.transData.transform(np.column_stack([x, y]))
        chosen = drawn_vertices(display[:, 0], display[:, 1], column, span=(ax.bbox.x0, ax.bbox.x1))
    for mark in keep_x:
        chosen |= crossings(x, mark)
    return chosen


def drawable(
    ax: Any, x: np.ndarray, y: np.ndarray, step: str | None = None, keep_x: Sequence[float] = (), column: float = COLUMN_PX
) -> tuple[np.ndarray, np.ndarray]:
    """The vertices to plot on ``ax`` (a matplotlib Axes whose scales, limits and figure DPI are final) for
    the curve ``(x, y)`` as ``ax.plot`` draws it, or with ``step="post"`` its steps as
    ``ax.step(where="post")`` draws them: the polyline reduced by pixel columns of ``column`` pixels of the
    figure as saved (:func:`keep_extremes`) plus the vertices around each x of ``keep_x`` (the operating
    points, exact). A step curve is first reduced as points (each column keeps the points that carry its
    first, last, lowest and highest step vertex), then expanded and reduced as a polyline, so a dense
    staircase is drawn as the chords of its columns, not as coarser steps. Polylines of at most
    ``MIN_VERTICES`` vertices are returned whole. The inputs are not modified."""
    from matplotlib import cbook

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length; got {x.shape} and {y.shape}")
    if step not in (None, "post"):
        raise ValueError(f"step must be None or 'post'; got {step!r}")
    if step is not None:
        if 2 * x.size - 1 > MIN_VERTICES:
            chosen = _reduce(ax, x, y, column, keep_x)
            x, y = x[chosen], y[chosen]
        x, y = cbook.pts_to_poststep(x, y)
    if x.size > MIN_VERTICES:
        chosen = _reduce(ax, x, y, column, keep_x)
        x, y = x[chosen], y[chosen]
    return x, y


def crossings(x: np.ndarray, mark: float) -> np.ndarray:
    """Bool mask of the points at either end of a segment that reaches ``mark``: ``i`` and ``i + 1`` when
    ``min(x[i], x[i+1]) <= mark <= max(x[i], x[i+1])``."""
    x = np.asarray(x, dtype=float)
    mask = np.zeros(x.size, dtype=bool)
    if x.size == 1:
        mask[0] = x[0] == mark
    elif x.size > 1:
        hit = (np.minimum(x[:-1], x[1:]) <= mark) & (mark <= np.maximum(x[:-1], x[1:]))
        mask[:-1] |= hit
        mask[1:] |= hit
    return mask


def thin_lines(ax: Any, column: float = COLUMN_PX) -> None:
    """Replace the data of every line plotted in data coordinates on ``ax`` (limits and DPI final; the
    autoscaled limits are settled first) by its :func:`drawable` vertices. Lines with markers or drawn
    as other steps than ``steps-post`` are left whole."""
    ax.get_xlim(), ax.get_ylim()
    for line in ax.get_lines():
        if line.get_marker() not in (None, "None", "", " ") or line.get_transform() != ax.transData:
            continue
        step = "post" if line.get_drawstyle() == "steps-post" else None
        if line.get_drawstyle() not in ("default", "steps-post"):
            continue
        x, y = drawable(ax, line.get_xdata(orig=True), line.get_ydata(orig=True), step, (), column)
        line.set_drawstyle("default")
        line.set_data(x, y)
