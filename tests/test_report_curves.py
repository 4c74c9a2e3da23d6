"""Curves reduced for drawing: the kept vertices against written-out loops, the drawn curve against the
full one (geometry in the figure's pixels and the rendered pixels), the operating points, and the arrays
left as they were."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from facebench.report import curves, plots


def loop_keep(y: list[float], column_of: list[float]) -> set[int]:
    """The rule written out: runs of equal column; first, last, first lowest, first highest of each."""
    kept: set[int] = set()
    i = 0
    while i < len(y):
        j = i
        while j + 1 < len(y) and column_of[j + 1] == column_of[i]:
            j += 1
        run = list(range(i, j + 1))
        low = min(y[k] for k in run)
        high = max(y[k] for k in run)
        kept |= {i, j, next(k for k in run if y[k] == low), next(k for k in run if y[k] == high)}
        i = j + 1
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_drawn_vertices_match_the_written_out_rule(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 400))
    x = np.cumsum(rng.normal(0.3, 1.0, n))  # wanders back and forth across columns
    y = np.round(rng.normal(0, 3, n), 1)  # ties
    column = float(rng.choice([0.25, 0.5, 1.0]))
    got = set(np.flatnonzero(curves.drawn_vertices(x, y, column)).tolist())
    assert got == loop_keep(y.tolist(), [float(np.floor(v / column)) for v in x])


def test_drawn_vertices_break_at_non_finite_points_and_merge_what_is_off_screen():
    x = np.array([-50.0, -40.0, -30.0, 0.1, 0.2, np.nan, 0.3, 0.35, 9.0, 50.0, 60.0])
    y = np.array([1.0, 5.0, 2.0, 1.0, 3.0, 0.0, 2.0, 2.5, 1.0, 7.0, 6.0])
    kept = np.flatnonzero(curves.drawn_vertices(x, y, 1.0, span=(0.0, 10.0))).tolist()
    # left of -1: one column (first, highest, last); 0.1/0.2; the NaN alone; 0.3/0.35; 9.0; right of 11: one
    assert kept == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    kept = np.flatnonzero(curves.drawn_vertices(x, y, 1.0)).tolist()
    assert kept == list(range(11))  # without a span every far-off point is its own column
    dense = np.linspace(-100, -2, 1000)
    assert np.count_nonzero(curves.drawn_vertices(dense, np.sin(dense), 1.0, span=(0.0, 10.0))) <= 4


def roc_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A ROC with n points: FPR from 0 to 1 spread over 8 decades, TPR rising with plateaus and jumps."""
    rng = np.random.default_rng(seed)
    fpr = np.r_[0.0, np.sort(10 ** rng.uniform(-8, 0, n - 2)), 1.0]
    tpr = np.r_[0.0, np.sort(np.minimum(1, 0.5 + 0.5 * rng.beta(3, 1, n - 2))), 1.0]
    tpr[n // 3 : n // 3 + n // 50] = tpr[n // 3]  # a plateau
    return fpr, tpr


def distances(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Euclidean distance of each point to a polyline (brute force over its segments)."""
    a, b = polyline[:-1], polyline[1:]
    d = b - a
    length2 = np.maximum((d**2).sum(1), 1e-300)
    out = np.empty(len(points))
    for i in range(0, len(points), 256):
        q = points[i : i + 256, None, :]
        t = np.clip(((q - a) * d).sum(2) / length2, 0, 1)
        out[i : i + 256] = np.sqrt(((q - (a + t[..., None] * d)) ** 2).sum(2)).min(1)
    return out


def test_roc_figure_draws_within_a_fraction_of_a_pixel_of_the_full_curve():
    fpr, tpr = roc_like(2500, 0)
    saved = fpr.copy(), tpr.copy()
    marks = [1e-5, 1e-4, 1e-3]
    fig = plots.roc_figure([("run", fpr, tpr)], "ROC", marks=marks)
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    drawn = ax.transData.transform(line.get_xydata())
    full_x, full_y = cbook.pts_to_poststep(fpr[fpr > 0], tpr[fpr > 0])
    full = ax.transData.transform(np.column_stack([full_x, full_y]))
    assert fig.dpi == plots.DPI  # display coordinates are the saved PNG's pixels
    assert len(drawn) < len(full) / 2
    seen = (full[:, 0] >= ax.bbox.x0) & (full[:, 0] <= ax.bbox.x1)
    assert distances(full[seen], drawn).max() < curves.COLUMN_PX
    between = np.r_[drawn, (drawn[1:] + drawn[:-1]) / 2]  # drawn vertices and segment midpoints
    between = between[(between[:, 0] >= ax.bbox.x0) & (between[:, 0] <= ax.bbox.x1)]
    assert distances(between, full).max() < curves.COLUMN_PX
    # at each mark, the full curve's step vertices on either side are drawn exactly
    xy = {tuple(p) for p in line.get_xydata()}
    for mark in marks:
        i = int(np.searchsorted(full_x, mark))
        assert (full_x[i - 1], full_y[i - 1]) in xy and (full_x[i], full_y[i]) in xy
    np.testing.assert_array_equal(fpr, saved[0])
    np.testing.assert_array_equal(tpr, saved[1])


def png_gray(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def test_roc_png_looks_like_the_full_curve_drawn_by_matplotlib():
    fpr, tpr = roc_like(40000, 1)
    reduced = png_gray(plots.figure_png(plots.roc_figure([("run", fpr, tpr)], "ROC")))
    fig = plots.roc_figure([("run", fpr, tpr)], "ROC")
    ax = fig.axes[0]
    ax.get_lines()[0].remove()  # the same figure with every vertex, as ax.step draws it
    keep = fpr > 0
    ax.step(fpr[keep], tpr[keep], where="post", linewidth=1.4, color=plots._colours(1)[0])
    full = png_gray(plots.figure_png(fig))
    assert reduced.shape == full.shape
    ink_reduced, ink_full = reduced < 160, full < 160
    assert ink_full.sum() > 1000

    def grow(mask: np.ndarray) -> np.ndarray:  # one pixel in every direction
        out = mask.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                out |= np.roll(np.roll(mask, dy, 0), dx, 1)
        return out

    assert not (ink_reduced & ~grow(ink_full)).any()
    assert not (ink_full & ~grow(ink_reduced)).any()
    assert np.mean(np.abs(reduced - full) > 64) < 1e-3


def test_short_curves_are_drawn_whole_and_cmc_lines_thinned_within_the_rule():
    fpr, tpr = roc_like(300, 2)
    line = plots.roc_figure([("run", fpr, tpr)], "ROC").axes[0].get_lines()[0]
    full_x, full_y = cbook.pts_to_poststep(fpr[fpr > 0], tpr[fpr > 0])
    np.testing.assert_array_equal(line.get_xydata(), np.column_stack([full_x, full_y]))
    cmc = np.sort(np.random.default_rng(3).random(5000))  # a long CMC: log rank axis
    fig = plots.cmc_figure([("run", cmc, 0, 0)], "CMC")
    ax = fig.axes[0]
    drawn = ax.get_lines()[0].get_xydata()
    assert 2 < len(drawn) < 2500
    full = ax.transData.transform(np.column_stack([np.arange(1, 5001), cmc]))
    assert distances(full, ax.transData.transform(drawn)).max() < curves.COLUMN_PX


def test_a_fifteen_million_point_roc_is_reduced_to_a_few_thousand_vertices():
    n = 15_000_000
    fpr = np.linspace(0.0, 1.0, n) ** 6
    tpr = np.sqrt(np.linspace(0.0, 1.0, n))
    line = plots.roc_figure([("run", fpr, tpr)], "ROC").axes[0].get_lines()[0]
    assert len(line.get_xdata()) < 5000
    assert line.get_xdata()[-1] == 1.0 and line.get_ydata()[-1] == 1.0


def test_probit_is_the_standard_normal_quantile_of_the_standard_library():
    import statistics

    rng = np.random.default_rng(4)
    p = np.r_[rng.random(2000), 10.0 ** -rng.uniform(0, 300, 500), 1 - 10.0 ** -rng.uniform(1, 16, 200),
              0.5, 0.075, 0.925, 0.0749999, 1e-300]
    p = p[(p > 0) & (p < 1)]
    expected = np.array([statistics.NormalDist().inv_cdf(float(v)) for v in p])  # AS241, one value at a time
    np.testing.assert_allclose(plots.probit(p), expected, rtol=1e-15, atol=0)
    x, y = plots.det_points(np.array([0.0, 1e-3, 0.5, 1.0, 0.2]), np.array([0.1, 0.2, 0.3, 0.4, 1.0]))
    np.testing.assert_allclose(x, [statistics.NormalDist().inv_cdf(v) for v in (1e-3, 0.5)], rtol=1e-15)
    np.testing.assert_allclose(y, [statistics.NormalDist().inv_cdf(v) for v in (0.2, 0.3)], rtol=1e-15)


@pytest.mark.parametrize("figure", ["roc", "det", "sizes"])
def test_figure_png_drawn_once_is_what_savefig_tight_writes(figure):
    fpr, tpr = roc_like(3000, 5)
    make = {
        "roc": lambda: plots.roc_figure([("run a", fpr, tpr), ("run b", fpr ** 1.1, tpr)], "ROC", marks=[1e-4]),
        "det": lambda: plots.det_figure([("run a", fpr, 1 - tpr, 0), ("run a G2", fpr, 1 - tpr ** 2, 1)], "DET"),
        "sizes": lambda: plots.size_figure([("run", np.array([10, 100, 1000]), np.array([0.9, 0.8, 0.7]))], "sizes"),
    }[figure]
    once = png_gray(plots.figure_png(make()))
    buffer = io.BytesIO()
    make().savefig(buffer, format="png", dpi=plots.DPI, bbox_inches="tight", pad_inches=plots.PAD_INCHES)
    tight = png_gray(buffer.getvalue())
    assert once.shape == tight.shape  # the same box, the same size
    # the same drawing, at most half a pixel apart (anti-aliased edges differ): every dark pixel of one has
    # ink in the other within one pixel
    assert (tight < 64).sum() > 1000

    def grown(mask: np.ndarray) -> np.ndarray:  # one pixel in every direction
        return np.any([np.roll(np.roll(mask, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)

    assert not ((once < 64) & ~grown(tight < 192)).any() and not ((tight < 64) & ~grown(once < 192)).any()
    # and grey level by grey level: each pixel matches one of the other's within one pixel, whatever the
    # sub-pixel phase of the crop (a half-pixel shift alone changes every anti-aliased edge)
    nearest = np.min([np.abs(once - np.roll(tight, (dy, dx), (0, 1))) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 0)
    assert np.mean(nearest > 64) < 0.002
