"""The report of one run, written beside its results.json.

``facebench run`` writes the tables (``table.md``, ``table.csv``, ``table.tex``), ``roc.png`` (every
benchmark's ROC in one plot) and the comparison plots of the run (per-benchmark ROC, CMC, fold spread).
``facebench report RUN_DIR`` regenerates them from results.json and the saved arrays and adds the
statistics (``intervals.csv``) and the self-contained ``report.html`` with the failure gallery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, overload

import numpy as np

from facebench.atomic import write_bytes
from facebench.report.comparison import Figure, compare, roc_drawable
from facebench.report.output import write_comparison
from facebench.report.plots import MATPLOTLIB, figure_png, roc_figure
from facebench.report.reuse import reused_or_drawn
from facebench.report.runs import Run
from facebench.report.statistics import StatsSettings
from facebench.report.tables import Table, run_label
from facebench.results import RunResults

#: Imported with this module by `facebench run` in the background (`facebench.pipeline.preload`): a run's
#: report draws its figures.
PRELOAD = MATPLOTLIB


@overload
def write_run_report(
    run_dir: str | Path,
    document: RunResults,
    *,
    html: bool = ...,
    statistics: bool = ...,
    settings: StatsSettings | None = ...,
    gallery: int = ...,
    out_dir: str | Path | None = ...,
    columns: Sequence[str] = ...,
    arrays: Mapping[str, dict[str, np.ndarray]] | None = ...,
    with_table: Literal[False] = ...,
    shown_as: str | Path | None = ...,
) -> list[Path]: ...
@overload
def write_run_report(
    run_dir: str | Path,
    document: RunResults,
    *,
    html: bool = ...,
    statistics: bool = ...,
    settings: StatsSettings | None = ...,
    gallery: int = ...,
    out_dir: str | Path | None = ...,
    columns: Sequence[str] = ...,
    arrays: Mapping[str, dict[str, np.ndarray]] | None = ...,
    with_table: Literal[True],
    shown_as: str | Path | None = ...,
) -> tuple[list[Path], Table]: ...


def write_run_report(
    run_dir: str | Path,
    document: RunResults,
    *,
    html: bool = False,
    statistics: bool = False,
    settings: StatsSettings | None = None,
    gallery: int = 0,
    out_dir: str | Path | None = None,
    columns: Sequence[str] = (),
    arrays: Mapping[str, dict[str, np.ndarray]] | None = None,
    with_table: bool = False,
    shown_as: str | Path | None = None,
):
    """Write the run's tables and plots (and, when asked, statistics and ``report.html``) to ``out_dir``
    (default: the run directory, where its arrays are read from); return the paths written (and the
    table, with ``with_table``). ``columns`` adds ``BENCHMARK:METRIC[=LABEL]`` columns. ``arrays`` (per
    benchmark, what the run just saved) spares reading the ``.npz`` files back. ``shown_as``: the directory
    the page names (a run being written names its destination as the user gave it, not the staging
    directory it is read from). ``roc.png`` holds every
    benchmark's ROC; with one benchmark it is that benchmark's ROC plot (drawn once)."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    run = Run(run_label(document), run_dir, document, dict(arrays) if arrays is not None else {},
              shown_as=Path(shown_as) if shown_as is not None else None)
    comparison = compare([run], settings=settings, statistics=statistics, gallery=gallery, columns=columns)
    written = write_comparison(comparison, out, html=html)
    curves = []
    for name, entry in document.benchmarks.items():
        saved = run.arrays(name)
        if "roc_fpr" in saved and "roc_tpr" in saved and roc_drawable(saved["roc_fpr"]):
            curves.append((name, entry.title, saved["roc_fpr"], saved["roc_tpr"]))
    drawn = {figure.name: figure.png for figure in comparison.figures}
    if len(curves) == 1 and f"roc_{curves[0][0]}.png" in drawn:
        write_bytes(out / "roc.png", drawn[f"roc_{curves[0][0]}.png"])
        written.append(out / "roc.png")
    elif curves:
        def overlay(runs: Sequence[Run], columns: Sequence[Any]) -> list[Figure]:
            png = figure_png(roc_figure([c[1:] for c in curves], f"ROC: {run.label}"))
            return [Figure("roc.png", f"ROC: {run.label}", png)]

        (figure,) = reused_or_drawn([run], comparison.table.columns, overlay, Figure, part="roc.png")
        write_bytes(out / "roc.png", figure.png)
        written.append(out / "roc.png")
    return (written, comparison.table) if with_table else written
