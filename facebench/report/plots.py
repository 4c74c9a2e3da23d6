"""Plots (matplotlib, Agg backend): ROC overlays on a log FPR axis, CMC curves, MegaFace rank-1 against
the number of distractors, and the spread of the 10-fold accuracies. Each ``*_figure`` returns a figure;
:func:`figure_png` renders it to PNG bytes (and closes it)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from facebench.fileio import write_bytes  # noqa: E402

#: Line styles per curve family (e.g. gallery G1 solid, G2 dashed).
STYLES = ("-", "--", ":", "-.")
DPI = 110


def figure_png(fig: "plt.Figure") -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _colours(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def roc_figure(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    title: str,
    min_fpr: float = 1e-6,
    marks: Sequence[float] = (),
) -> "plt.Figure":
    """TPR against FPR (log axis from ``min_fpr`` to 1) for each ``(label, fpr, tpr)``; vertical dotted
    lines at the FARs of ``marks`` (the table's columns). Points with FPR = 0 cannot be drawn on a log
    axis and are left out; the lowest drawable FPR of a set of N impostors is 1/N."""
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for (label, fpr, tpr), colour in zip(curves, _colours(len(curves))):
        fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
        keep = fpr > 0
        ax.step(fpr[keep], tpr[keep], where="post", label=label, linewidth=1.4, color=colour)
    for far in marks:
        ax.axvline(far, color="0.6", linestyle=":", linewidth=0.9)
    ax.set_xscale("log")
    ax.set_xlim(min_fpr, 1.0)
    low = min((float(np.min(t[f > 0])) for _, f, t in curves if np.any(np.asarray(f) > 0)), default=0.0)
    ax.set_ylim(max(0.0, math.floor(low * 10) / 10 - 0.05), 1.005)
    ax.set_xlabel("False accept rate (FPR)")
    ax.set_ylabel("True accept rate (TPR)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def save_roc(path: str | Path, curves: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str) -> Path:
    """Write a ROC overlay PNG atomically."""
    write_bytes(path, figure_png(roc_figure(curves, title)))
    return Path(path)


def cmc_figure(
    curves: Sequence[tuple[str, np.ndarray, int, int]], title: str, scale: tuple[int, float] | None = None
) -> "plt.Figure":
    """Identification rate against rank (1..len) for each ``(label, cmc, run, family)``: the colour is
    the run, the line style the family (gallery G1 solid, G2 dashed; or distractor list). ``scale``
    ``(longest rank, lowest rate)``: the axes every CMC plot of a page shares (log rank axis)."""
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
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
        ax.set_xscale("log")
        ax.set_xlim(0.9, scale[0] * 1.1)
        ax.set_ylim(max(0.0, scale[1] - 0.02), 1.005)
    elif longest > 12:
        ax.set_xscale("log")
    ax.set_xlabel("Rank")
    ax.set_ylabel("Identification rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def size_figure(series: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str) -> "plt.Figure":
    """MegaFace rank-1 against the number of distractors (log axis) for each ``(label, sizes, rank1)``."""
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for (label, sizes, rank1), colour in zip(series, _colours(len(series))):
        ax.plot(np.asarray(sizes), np.asarray(rank1), "-o", markersize=4, label=label, color=colour)
    ax.set_xscale("log")
    ax.set_xlabel("Distractors")
    ax.set_ylabel("Rank-1 identification rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def folds_figure(panels: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]]) -> "plt.Figure":
    """Per benchmark (one panel each), every run's k fold accuracies as points with their mean (bar):
    ``panels = [(title, [(run label, fold accuracies), ...]), ...]``."""
    n = len(panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
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
