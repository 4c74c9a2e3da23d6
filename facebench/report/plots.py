"""Plots (matplotlib, Agg backend): ROC overlays on a log FPR axis."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from facebench.fileio import write_bytes  # noqa: E402


def figure_png(fig: "plt.Figure") -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def roc_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str, min_fpr: float = 1e-6) -> "plt.Figure":
    """TPR against FPR (log axis from ``min_fpr`` to 1) for each ``(label, fpr, tpr)``."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for label, fpr, tpr in curves:
        keep = fpr > 0
        ax.plot(fpr[keep], tpr[keep], label=label, linewidth=1.4)
    ax.set_xscale("log")
    ax.set_xlim(min_fpr, 1.0)
    ax.set_ylim(0.0, 1.01)
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
