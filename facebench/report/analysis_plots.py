"""Figures of the fairness and quality analyses (`facebench.evaluate.analyses`): per-group DET curves, a
group x metric heat map, and error-versus-discard curves compared across runs.

`analysis_figures` turns one benchmark's entries of several runs into ``(file name, title, png, caption)``
tuples; the comparison report adds them to its figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from facebench.report import plots
from facebench.results import BenchmarkEntry

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HEAT_METRICS = (("fmr", "FMR"), ("fnmr", "FNMR"), ("accuracy", "accuracy"), ("tar_at_far", "TAR@FMR (own ROC)"))


def group_det_figure(
    scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, threshold: float, title: str
) -> Figure:
    """DET curves (:func:`facebench.report.plots.det_figure`) of each pure group, every distinct score a
    threshold (accept ``score >= t``); a dot marks each group at the one global ``threshold``."""
    names = sorted({g for g in groups.tolist() if g and "|" not in g})
    curves, dots = [], []
    for name in names:
        m = groups == name
        gen, imp = np.sort(scores[m & labels]), np.sort(scores[m & ~labels])
        if not gen.size or not imp.size:
            continue
        t = np.unique(np.concatenate([gen, imp]))
        fmr = (imp.size - np.searchsorted(imp, t, side="left")) / imp.size
        fnmr = np.searchsorted(gen, t, side="left") / gen.size
        curves.append((name, fmr, fnmr, 0))
        dots.append((np.count_nonzero(imp >= threshold) / imp.size, np.count_nonzero(gen < threshold) / gen.size))
    fig = plots.det_figure(curves, title)
    ax = fig.axes[0]
    ax.title.set_fontsize(9)
    for colour, (fm, fn) in zip(plots._colours(len(curves)), dots):
        x, y = plots.det_points(np.array([fm]), np.array([fn]))
        if x.size:
            ax.plot(x, y, "o", color=colour)
    return fig


def group_heatmap_figure(report: dict[str, Any], title: str) -> Figure:
    """Groups (rows, cross-group rows last) x metrics (columns) at the global threshold, each cell annotated;
    colour = the value scaled within its column."""
    groups = list(report["groups"])
    values = np.array([_values([report["groups"][g][k] for k, _ in HEAT_METRICS]) for g in groups])
    scaled = np.full_like(values, np.nan)
    for j in range(values.shape[1]):
        col = values[:, j]
        ok = np.isfinite(col)
        if ok.any():
            lo, hi = col[ok].min(), col[ok].max()
            scaled[ok, j] = (col[ok] - lo) / (hi - lo) if hi > lo else 0.5
    fig = plots.new_figure((1.4 * len(HEAT_METRICS) + 1.5, 0.45 * len(groups) + 1.2))
    ax = fig.subplots()
    ax.imshow(np.nan_to_num(scaled, nan=0.0), cmap="viridis", aspect="auto", vmin=0, vmax=1)
    for i in range(len(groups)):
        for j in range(len(HEAT_METRICS)):
            text = "n/a" if not np.isfinite(values[i, j]) else f"{100 * values[i, j]:.2f}%"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if scaled[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(HEAT_METRICS)), [label for _, label in HEAT_METRICS], fontsize=8)
    ax.set_yticks(range(len(groups)), groups, fontsize=8)
    ax.set_title(title, fontsize=9)
    return fig


def erc_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], title: str) -> Figure:
    """FNMR against the discarded fraction, per run: solid = ``fixed`` threshold (EDC), dashed = ``refit``."""
    fig = plots.new_figure((5.2, 3.8))
    ax = fig.subplots()
    for colour, (label, fractions, fixed, refit) in zip(plots._colours(len(curves)), curves):
        ax.plot(fractions, fixed, "-", color=colour, label=f"{label} fixed")
        ax.plot(fractions, refit, "--", color=colour, label=f"{label} refit")
    ax.set_xlabel("fraction of pairs discarded (lowest quality first)")
    ax.set_ylabel("FNMR")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _values(items: Sequence[float | None]) -> np.ndarray:
    """Floats with NaN for a missing point (``null`` once read back from results.json)."""
    return np.array([np.nan if v is None else v for v in items], dtype=float)


def analysis_figures(
    name: str, title: str, entries: Sequence[tuple[str, BenchmarkEntry, Callable[[], dict[str, np.ndarray]]]]
) -> list[tuple[str, str, bytes, str]]:
    """The figures of one benchmark's analyses over ``entries`` = ``(run label, entry, arrays loader)``:
    per attribute, the DET and heat map of the first run that has it; one ERC figure per FMR with every run."""
    out: list[tuple[str, str, bytes, str]] = []
    done: set[str] = set()
    for label, entry, arrays_of in entries:
        for attr, report in (entry.extra.get("fairness") or {}).items():
            if attr in done:
                continue
            done.add(attr)
            arrays = arrays_of()
            fmr = report["fmr_target"]
            if f"groups_{attr}" in arrays and "scores" in arrays and "labels" in arrays:
                fig = group_det_figure(
                    np.asarray(arrays["scores"], dtype=float), np.asarray(arrays["labels"], dtype=bool),
                    np.asarray(arrays[f"groups_{attr}"]), float(report["threshold"]),
                    f"{title}: DET by {attr} ({label})",
                )
                out.append((f"det_{name}_{attr}.png", f"{title}: DET by {attr}", plots.figure_png(fig),
                            f"per-group DET; dots: the global threshold at overall FMR {fmr:g}"))
            fig = group_heatmap_figure(report, f"{title}: {attr} at the global threshold ({label})")
            out.append((f"groups_{name}_{attr}.png", f"{title}: {attr} x metric", plots.figure_png(fig),
                        f"one global threshold at overall FMR {fmr:g}; cross-group rows ('a|b') are counted apart"))
    for key in ("1e-03", "1e-04"):
        curves = []
        for label, entry, _ in entries:
            q = entry.extra.get("quality")
            if not q:
                continue
            fixed, refit = q["curves"].get(f"fixed_{key}"), q["curves"].get(f"refit_{key}")
            if fixed is None or refit is None:
                continue
            fixed_fnmr, refit_fnmr = _values(fixed["fnmr"]), _values(refit["fnmr"])
            if np.isfinite(fixed_fnmr).any() or np.isfinite(refit_fnmr).any():
                curves.append((label, np.asarray(q["fractions"], dtype=float), fixed_fnmr, refit_fnmr))
        if curves:
            out.append((f"erc_{name}_{key}.png", f"{title}: error versus discard at FMR {key}",
                        plots.figure_png(erc_figure(curves, f"{title}: FNMR at FMR {key} vs discarded fraction")),
                        "solid: threshold fixed once on all pairs (EDC); dashed: re-fit at each fraction"))
    return out
