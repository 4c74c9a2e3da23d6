"""The report of one run: tables (md, csv, tex) and plots written beside its results.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facebench.fileio import write_text
from facebench.report.plots import save_roc
from facebench.report.tables import build_table, to_csv, to_latex, to_markdown
from facebench.results import load_arrays


def write_run_report(run_dir: str | Path, document: dict[str, Any]) -> list[Path]:
    """Write ``table.md``, ``table.csv``, ``table.tex`` and ``roc.png`` for one run; return the paths."""
    run_dir = Path(run_dir)
    table = build_table([document])
    written = []
    for name, text in (
        ("table.md", to_markdown(table)),
        ("table.csv", to_csv(table)),
        ("table.tex", to_latex(table, caption="facebench results", label="tab:facebench")),
    ):
        write_text(run_dir / name, text)
        written.append(run_dir / name)
    curves = []
    for name, entry in document.get("benchmarks", {}).items():
        arrays = load_arrays(run_dir, name)
        if "roc_fpr" in arrays:
            curves.append((entry.get("title", name), arrays["roc_fpr"], arrays["roc_tpr"]))
    if curves:
        written.append(save_roc(run_dir / "roc.png", curves, "ROC"))
    return written
