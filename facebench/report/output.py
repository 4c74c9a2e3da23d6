"""Writing a comparison: every table format, the plots and ``report.html``, all rendered before the first
file is written."""

from __future__ import annotations

from pathlib import Path

from facebench.atomic import write_bytes
from facebench.report.comparison import Comparison, intervals_csv, latex_report, markdown_report, tests_csv
from facebench.report.html import render_html
from facebench.report.tables import to_csv


def write_comparison(comparison: Comparison, out_dir: str | Path, html: bool = True) -> list[Path]:
    """Write ``table.md``, ``table.tex``, ``table.csv``, ``intervals.csv``, ``tests.csv``, every plot as PNG
    and (``html``) ``report.html``, atomically; return the paths."""
    out = Path(out_dir)
    files: dict[str, bytes] = {
        "table.md": markdown_report(comparison).encode("utf-8"),
        "table.tex": latex_report(comparison).encode("utf-8"),
        "table.csv": to_csv(comparison.table).encode("utf-8"),
    }
    if comparison.intervals:
        files["intervals.csv"] = intervals_csv(comparison).encode("utf-8")
    if comparison.tests:
        files["tests.csv"] = tests_csv(comparison).encode("utf-8")
    for figure in comparison.figures:
        files[figure.name] = figure.png
    if html:
        single = len(comparison.runs) == 1 and not comparison.published
        title = f"facebench run: {comparison.runs[0].label}" if single else "facebench comparison"
        files["report.html"] = render_html(comparison, title).encode("utf-8")
    # everything is rendered before the first file is written: an error leaves no partial report
    for name, data in files.items():
        write_bytes(out / name, data)
    return [out / name for name in files]
