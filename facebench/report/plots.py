"""Plots (matplotlib figures on the Agg canvas, no pyplot state): ROC overlays on a log FPR axis, CMC
curves, MegaFace rank-1 against the number of distractors, and the spread of the 10-fold accuracies. Each
``*_figure`` returns a figure whose lines are reduced to what it can show (:mod:`facebench.report.curves`);
:func:`figure_png` renders it to PNG bytes."""

from __future__ import annotations

import functools
import io
import math
import re
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from facebench.report.curves import drawable, thin_lines

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: What drawing imports (matplotlib, about half a second): imported where a figure is drawn, not with this
#: module, so that a report whose figures are all reused (`facebench.report.reuse`) never imports it.
MATPLOTLIB = ("matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.image")

#: Line styles per curve family (e.g. gallery G1 solid, G2 dashed).
STYLES = ("-", "--", ":", "-.")
DPI = 110


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure at the DPI it is saved at (so display coordinates are the PNG's pixels), on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


#: Blank border (pixels) drawn around a figure so that what sticks out of it (a tall tick label, the axis
#: label below it) is rendered too, then cropped away with the rest of the tight box.
MARGIN_PX = 64
#: Space kept around the tight box of what is drawn (matplotlib's ``savefig.pad_inches``).
PAD_INCHES = 0.1


def figure_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes: what ``savefig(bbox_inches="tight")`` writes (everything drawn, cropped
    to its bounding box plus ``PAD_INCHES``, the PNG of the same size), in one drawing instead of two.

    matplotlib draws a tight figure twice, once to measure and once at the cropped size, each time laying
    out every text again (most of a plot's cost). Here the figure is drawn once on a canvas grown by
    ``MARGIN_PX`` on every side, its axes kept at the same place in pixels, and the tight box cut out of
    that image (at a whole pixel, so content may sit up to half a pixel from where matplotlib's second
    drawing puts it). Figures with figure-level artists, or whose box does not fit the grown canvas, are
    saved by matplotlib."""
    from matplotlib.image import imsave

    width, height = fig.get_size_inches()
    if fig.texts or fig.legends or fig.images or fig.dpi != DPI:
        return _savefig_tight(fig)
    margin = MARGIN_PX / DPI
    boxes = [ax.get_position(original=True).bounds for ax in fig.axes]
    fig.set_size_inches(width + 2 * margin, height + 2 * margin)
    for ax, (x, y, w, h) in zip(fig.axes, boxes):
        ax.set_position(((x * width + margin) / (width + 2 * margin), (y * height + margin) / (height + 2 * margin),
                         w * width / (width + 2 * margin), h * height / (height + 2 * margin)))
    canvas = fig.canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.get_tightbbox(renderer).padded(PAD_INCHES)
    rows, cols = int(renderer.height), int(renderer.width)
    size_x, size_y = int(box.width * DPI), int(box.height * DPI)  # as matplotlib sizes the cropped canvas
    left, top = round(box.x0 * DPI), round(rows - box.y0 * DPI) - size_y  # its rows count from the box's bottom
    if left < 0 or top < 0 or left + size_x > cols or top + size_y > rows:  # beyond the margin: matplotlib's way
        fig.set_size_inches(width, height)
        for ax, bounds in zip(fig.axes, boxes):
            ax.set_position(bounds)
        return _savefig_tight(fig)
    image = np.asarray(canvas.buffer_rgba())[top : top + size_y, left : left + size_x]
    buffer = io.BytesIO()
    imsave(buffer, image, format="png", dpi=DPI)
    return buffer.getvalue()


def _savefig_tight(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES)
    return buffer.getvalue()


#: Unicode superscripts of the characters of an exponent.
SUPERSCRIPTS = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def plain_math(label: str) -> str:
    r"""A log-axis tick label of matplotlib's (``$\mathdefault{2\times10^{-6}}$``) as plain text (``2×10⁻⁶``):
    the same characters on the figure without mathtext, whose parser costs about a tenth of a second for
    every figure.

    >>> plain_math(r"$\mathdefault{10^{-6}}$"), plain_math(r"$\mathdefault{2\times10^{1}}$"), plain_math("0.5")
    ('10⁻⁶', '2×10¹', '0.5')
    """
    match = re.fullmatch(r"\$\\mathdefault\{(.*)\}\$", label)
    if match is None:
        return label
    text = match.group(1).replace("\\times", "\u00d7")
    return re.sub(r"\^\{(-?\d+)\}", lambda m: m.group(1).translate(SUPERSCRIPTS), text)


@functools.cache
def _plain_log_formatter() -> type:
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        """matplotlib's log-axis labels (which ticks, which text), written by :func:`plain_math`."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return plain_math(super().__call__(x, pos))

    return PlainLogFormatter


def log_scale(ax: Any, which: str = "x") -> None:
    """Put the ``which`` axis of ``ax`` on a log scale with matplotlib's tick labels written by
    :func:`plain_math`."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    formatter = _plain_log_formatter()
    axis.set_major_formatter(formatter(10.0))
    axis.set_minor_formatter(formatter(10.0, labelOnlyBase=False))


def _colours(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def roc_figure(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    title: str,
    min_fpr: float = 1e-6,
    marks: Sequence[float] = (),
) -> Figure:
    """TPR against FPR (log axis from ``min_fpr`` to 1) for each ``(label, fpr, tpr)``; vertical dotted
    lines at the FARs of ``marks`` (the table's columns). Points with FPR = 0 cannot be drawn on a log
    axis and are left out; the lowest drawable FPR of a set of N impostors is 1/N. Each curve is drawn as
    its steps reduced by :func:`facebench.report.curves.drawable`: within half a pixel of the full
    curve, with its vertices at the ``marks`` kept exactly."""
    fig = new_figure((5.6, 4.2))
    ax = fig.subplots()
    log_scale(ax)
    ax.set_xlim(min_fpr, 1.0)
    low = min((float(np.min(t[f > 0])) for _, f, t in curves if np.any(np.asarray(f) > 0)), default=0.0)
    ax.set_ylim(max(0.0, math.floor(low * 10) / 10 - 0.05), 1.005)
    for (label, fpr, tpr), colour in zip(curves, _colours(len(curves))):
        fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
        keep = fpr > 0
        x, y = drawable(ax, fpr[keep], tpr[keep], step="post", keep_x=marks)
        ax.plot(x, y, label=label, linewidth=1.4, color=colour)
    for far in marks:
        ax.axvline(far, color="0.6", linestyle=":", linewidth=0.9)
    ax.set_xlabel("False accept rate (FPR)")
    ax.set_ylabel("True accept rate (TPR)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def cmc_figure(
    curves: Sequence[tuple[str, np.ndarray, int, int]], title: str, scale: tuple[int, float] | None = None
) -> Figure:
    """Identification rate against rank (1..len) for each ``(label, cmc, run, family)``: the colour is
    the run, the line style the family (gallery G1 solid, G2 dashed; or distractor list). ``scale``
    ``(longest rank, lowest rate)``: the axes every CMC plot of a page shares (log rank axis)."""
    fig = new_figure((5.6, 4.2))
    ax = fig.subplots()
    colours = _colours(max((run for _, _, run, _ in curves), default=0) + 1)
    longest = 1
    for label, cmc, run, family in curves:
        values = np.asarray(cmc, dtype=float)
        longest = max(longest, values.size)
        ax.plot(
            np.arange(1, values.size + 1),
            values,
            STYLES[family % len(STYLES)],
            marker="o" if values.size <= 12 else None,
            markersize=3,
            label=label,
            linewidth=1.4,
            color=colours[run],
        )
    if scale is not None:
        log_scale(ax)
        ax.set_xlim(0.9, scale[0] * 1.1)
        ax.set_ylim(max(0.0, scale[1] - 0.02), 1.005)
    elif longest > 12:
        log_scale(ax)
    ax.set_xlabel("Rank")
    ax.set_ylabel("Identification rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    thin_lines(ax)
    return fig


def size_figure(series: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str) -> Figure:
    """MegaFace rank-1 against the number of distractors (log axis) for each ``(label, sizes, rank1)``."""
    fig = new_figure((5.6, 4.2))
    ax = fig.subplots()
    for (label, sizes, rank1), colour in zip(series, _colours(len(series))):
        ax.plot(np.asarray(sizes), np.asarray(rank1), "-o", markersize=4, label=label, color=colour)
    log_scale(ax)
    ax.set_xlabel("Distractors")
    ax.set_ylabel("Rank-1 identification rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    thin_lines(ax)
    return fig


def folds_figure(panels: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]]) -> Figure:
    """Per benchmark (one panel each), every run's k fold accuracies as points with their mean (bar):
    ``panels = [(title, [(run label, fold accuracies), ...]), ...]``."""
    n = len(panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = new_figure((4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = list(dict.fromkeys(label for _, runs in panels for label, _ in runs))
    colours = dict(zip(labels, _colours(len(labels))))
    rng = np.random.default_rng(0)  # horizontal jitter only
    for ax, (title, runs) in zip(axes.flat, panels):
        for x, (label, folds) in enumerate(runs):
            values = 100.0 * np.asarray(folds, dtype=float)
            jitter = rng.uniform(-0.12, 0.12, values.size)
            ax.scatter(x + jitter, values, s=14, color=colours[label], alpha=0.8, zorder=3)
            ax.hlines(values.mean(), x - 0.3, x + 0.3, color=colours[label], linewidth=2, zorder=4)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([label for label, _ in runs], rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("fold accuracy (%)", fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


#: Tick positions of the DET axes (probabilities), as ISO/IEC 19795-1 and NIST FRVT plot them.
DET_TICKS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)


#: Wichura's AS241 (PPND16) rational approximations of the standard normal quantile, highest power first:
#: (numerator, denominator) for |p - 0.5| <= 0.425, for r = sqrt(-log(min(p, 1 - p))) <= 5, and beyond.
_AS241 = (
    ((2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4, 4.5921953931549871457e4,
      1.3731693765509461125e4, 1.9715909503065514427e3, 1.3314166789178437745e2, 3.3871328727963666080e0),
     (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4, 2.1213794301586595867e4,
      5.3941960214247511077e3, 6.8718700749205790830e2, 4.2313330701600911252e1, 1.0)),
    ((7.7454501427834140764e-4, 2.2723844989269184583e-2, 2.4178072517745061177e-1, 1.2704582524523683826e0,
      3.6478483247632046050e0, 5.7694972214606914055e0, 4.6303378461565452959e0, 1.4234371107496835773e0),
     (1.0507500716444168432e-9, 5.4759380849953449460e-4, 1.5198666563616457197e-2, 1.4810397642748007459e-1,
      6.8976733498510000455e-1, 1.6763848301838038494e0, 2.0531916266377588219e0, 1.0)),
    ((2.0103343992922881327e-7, 2.7115555687434875782e-5, 1.2426609473880784386e-3, 2.6532189526576123093e-2,
      2.9656057182850489123e-1, 1.7848265399172913358e0, 5.4637849111641143699e0, 6.6579046435011037772e0),
     (2.0442631033899397856e-15, 1.4215117583164458887e-7, 1.8463183175100546818e-5, 7.8686913114561325910e-4,
      1.4875361290850614853e-2, 1.3692988092273580531e-1, 5.9983220655588793769e-1, 1.0)),
)


def probit(p: np.ndarray) -> np.ndarray:
    """The standard normal deviate of each probability in ``p`` (0 < p < 1): the inverse of the standard
    normal CDF, by Wichura's algorithm AS241 (Applied Statistics 37(3), 1988; relative error about 1e-16),
    the rule of Python's ``statistics.NormalDist.inv_cdf``, vectorised (scipy's ``norm.ppf`` gives the same
    values to rounding, but importing :mod:`scipy.stats` costs a report more than all its plots).

    >>> probit(np.array([0.5, 0.975])).round(6).tolist()
    [0.0, 1.959964]
    """
    p = np.asarray(p, dtype=float)
    q = p - 0.5
    central = np.abs(q) <= 0.425
    out = np.empty_like(p)
    r = 0.180625 - q[central] ** 2
    num, den = _AS241[0]
    out[central] = q[central] * np.polyval(num, r) / np.polyval(den, r)
    tail_q = q[~central]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt(-np.log(np.where(tail_q <= 0, p[~central], 1.0 - p[~central])))
    near = r <= 5.0
    x = np.empty_like(r)
    for mask, shift, (num, den) in ((near, 1.6, _AS241[1]), (~near, 5.0, _AS241[2])):
        x[mask] = np.polyval(num, r[mask] - shift) / np.polyval(den, r[mask] - shift)
    out[~central] = np.where(tail_q < 0, -x, x)
    return out


def det_points(false_accept: np.ndarray, false_reject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The DET curve's coordinates: both error rates mapped through the standard normal deviate
    (:func:`probit`); points with a rate of 0 or 1 (infinite deviates) are left out."""
    x, y = np.asarray(false_accept, dtype=float), np.asarray(false_reject, dtype=float)
    keep = (x > 0) & (x < 1) & (y > 0) & (y < 1)
    return probit(x[keep]), probit(y[keep])


def det_figure(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, int]],
    title: str,
    xlabel: str = "False match rate (FMR)",
    ylabel: str = "False non-match rate (FNMR)",
) -> Figure:
    """Detection error trade-off: for each ``(label, false accept rates, false reject rates, family)`` the
    two error rates on normal-deviate axes (:func:`det_points`), colour by curve, line style by family
    (gallery G1 solid, G2 dashed). The axes span the drawn points, ticks labelled in %; each staircase is
    reduced to what the figure shows (:func:`facebench.report.curves.drawable`)."""
    fig = new_figure((5.6, 4.6))
    ax = fig.subplots()
    points = [det_points(fa, fr) for _, fa, fr, _ in curves]
    lows_x = [x.min() for x, _ in points if x.size]
    lows_y = [y.min() for x, y in points if x.size]
    ticks = probit(np.array(DET_TICKS))
    labels = [f"{100 * p:g}" for p in DET_TICKS]
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=7)
    top = float(probit(np.array([0.95]))[0])
    ax.set_xlim(min(lows_x, default=float(probit(np.array([1e-4]))[0])) - 0.1, top)
    ax.set_ylim(min(lows_y, default=float(probit(np.array([1e-4]))[0])) - 0.1, top)
    for (label, _, _, family), (x, y), colour in zip(curves, points, _colours(len(curves))):
        if x.size == 0:
            continue
        order = np.argsort(x, kind="stable")
        dx, dy = drawable(ax, x[order], y[order], step="post")
        ax.plot(dx, dy, linestyle=STYLES[family % len(STYLES)], label=label, linewidth=1.4, color=colour)
    ax.set_xlabel(xlabel + " (%)")
    ax.set_ylabel(ylabel + " (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if lows_x:
        ax.legend(loc="upper right", fontsize=8)
    return fig
