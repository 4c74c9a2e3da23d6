"""A comparison of runs (and published results): the table, its statistics, plots and failure gallery,
written as Markdown, LaTeX, CSV and one self-contained HTML page.

Rows: the runs in the order given, then the published rows. Columns: the runs' columns (results.json
``columns``); published rows fill the columns of benchmarks the runs have (all their columns when no run
is given). Marks: † a cell under another rule than its column's; ≈ a run not significantly different
from the best run of its column (see :mod:`facebench.report.statistics` for the tests).
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from facebench import kinds
from facebench.benchmarks import Benchmark, load_benchmarks
from facebench.errors import FacebenchError
from facebench.keys import parse_rate, rate_label, split_path
from facebench.kinds.base import Kind
from facebench.registry import did_you_mean
from facebench.report import plots
from facebench.report.analysis_plots import analysis_figures
from facebench.report.gallery import Gallery, failure_gallery
from facebench.report.published import PublishedRow, PublishedSource, as_document, load_sources, select
from facebench.report.reuse import reused_or_drawn
from facebench.report.runs import Run, load_runs
from facebench.results import BenchmarkEntry, RunResults
from facebench.report.statistics import (
    Designs,
    Interval,
    PairedTest,
    StatsSettings,
    Unavailable,
    intervals_for,
    paired_tests,
)
from facebench.report.tables import (
    NS_MARK,
    RULE_MARK,
    Column,
    Table,
    best_rows,
    build_table,
    columns_of,
    fmt_percent,
    higher_is_better,
    rule_of,
    to_latex,
    to_markdown,
)


@dataclass(frozen=True)
class Figure:
    """One plot: file name, title and the PNG bytes."""

    name: str
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Comparison:
    """Everything a comparison report shows."""

    runs: list[Run]
    published: list[tuple[PublishedSource, PublishedRow]]
    table: Table
    settings: StatsSettings
    intervals: dict[tuple[str, int], Interval | Unavailable] = field(default_factory=dict)
    tests: list[PairedTest] = field(default_factory=list)
    untested: list[tuple[str, str, str, str]] = field(default_factory=list)  # (column, run a, run b, reason)
    figures: list[Figure] = field(default_factory=list)
    galleries: list[Gallery] = field(default_factory=list)
    created: str = ""

    @property
    def sources(self) -> list[PublishedSource]:
        """The published sources used, in first-use order."""
        return list({s.name: s for s, _ in self.published}.values())


# ------------------------------------------------------------------------------------------- building


def _columns(runs: Sequence[Run], published_docs: Sequence[RunResults], order: Sequence[str] = ()) -> list[Column]:
    """The runs' columns, then published columns of the runs' benchmarks; with no run, the published columns
    in benchmark order (``order``: benchmark names in table order)."""
    run_columns = columns_of([r.document for r in runs])
    if not runs:
        rank = {name: i for i, name in enumerate(order)}
        columns = columns_of(published_docs)
        return sorted(columns, key=lambda c: (rank.get(c.benchmark, len(rank)), columns.index(c)))
    have = {c.benchmark for c in run_columns}
    keys = {(c.benchmark, c.metric) for c in run_columns}
    extra = [c for c in columns_of(published_docs) if c.benchmark in have and (c.benchmark, c.metric) not in keys]
    return run_columns + extra


def build_comparison(
    run_dirs: Sequence[str | Path],
    *,
    labels: Sequence[str] = (),
    published: Sequence[str] = (),
    settings: StatsSettings | None = None,
    statistics: bool = True,
    gallery: int = 6,
    columns: Sequence[str] = (),
    benchmarks: dict[str, Benchmark] | None = None,
    sources: dict[str, PublishedSource] | None = None,
) -> Comparison:
    """Load the run directories and the published rows (``SOURCE`` or ``SOURCE/ID`` names) and compare."""
    benchmarks = benchmarks if benchmarks is not None else load_benchmarks()
    runs = load_runs(run_dirs, labels)
    chosen = (
        select(published, sources if sources is not None else load_sources(benchmarks=benchmarks)) if published else []
    )
    return compare(
        runs, chosen, settings=settings, statistics=statistics, gallery=gallery, columns=columns, benchmarks=benchmarks
    )


def compare(
    runs: Sequence[Run],
    published: Sequence[tuple[PublishedSource, PublishedRow]] = (),
    *,
    settings: StatsSettings | None = None,
    statistics: bool = True,
    gallery: int = 6,
    columns: Sequence[str] = (),
    benchmarks: dict[str, Benchmark] | None = None,
) -> Comparison:
    """The table, statistics, plots and failure gallery of loaded runs and published rows.

    ``columns``: extra columns ``BENCHMARK:METRIC[=LABEL]`` (e.g. ``lfw:tar_at_far.1e-03``) after the
    benchmarks' own. ``statistics=False`` skips intervals and tests; ``gallery=0`` skips the gallery.
    """
    settings = settings or StatsSettings()
    runs = list(runs)
    if published:
        benchmarks = benchmarks if benchmarks is not None else load_benchmarks()
    published_docs = [as_document(s, r, benchmarks or {}) for s, r in published]
    documents = [r.document for r in runs] + published_docs
    table_columns = _columns(runs, published_docs, list(benchmarks or {}))
    for text in columns:
        column = parse_column(text, documents)
        if all((c.benchmark, c.metric) != (column.benchmark, column.metric) for c in table_columns):
            table_columns.append(column)
    columns = table_columns
    table = build_table(documents, columns)
    for row, run in zip(table.rows, runs):
        row.label = run.label
    for row, (source, _) in zip(table.rows[len(runs):], published):
        row.kind, row.source = "published", source.name
    comparison = Comparison(runs, list(published), table, settings, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    if statistics and runs:
        _statistics(comparison)
    comparison.figures = reused_or_drawn(runs, columns, _figures, Figure)
    if gallery > 0:
        for run in runs:
            for name in run.document.benchmarks:
                g = failure_gallery(run, name, gallery)
                if g is not None:
                    comparison.galleries.append(g)
    return comparison


def parse_column(text: str, documents: Sequence[RunResults]) -> Column:
    """A ``BENCHMARK:METRIC[=LABEL]`` column; its rule is that of the first row that has the value."""
    spec, _, label = text.partition("=")
    bench, sep, metric = spec.partition(":")
    if not sep or not bench or not metric:
        raise FacebenchError(f"--column {text!r}: expected BENCHMARK:METRIC[=LABEL], e.g. lfw:tar_at_far.1e-03")
    for doc in documents:
        entry = doc.benchmarks.get(bench)
        if entry and entry.value(metric) is not None:
            title = entry.title
            head, *tail = split_path(metric)
            default = f"{title} {metric}"
            rate = parse_rate(tail[0]) if head == "tar_at_far" and tail else None
            if rate is not None:
                default = f"{title} TAR@{rate_label(rate)}"
            return Column(
                bench,
                metric,
                label or default,
                rule_of(entry, metric),
                entry.kind,
                higher_is_better(entry, metric),
            )
    raise FacebenchError(f"--column {text!r}: no run or published row has {bench} {metric} (a number in its metrics)")


def _statistics(comparison: Comparison) -> None:
    table, runs, settings = comparison.table, comparison.runs, comparison.settings
    designs = Designs()
    by_benchmark: dict[str, list[int]] = {}
    for j, col in enumerate(table.columns):
        by_benchmark.setdefault(col.benchmark, []).append(j)
    for i, run in enumerate(runs):
        for bench, cols in by_benchmark.items():
            wanted = [j for j in cols if table.rows[i].cells[j].value is not None]
            if not wanted:
                continue
            found = intervals_for(run, bench, [table.columns[j].metric for j in wanted], settings, designs)
            for j in wanted:
                comparison.intervals[(run.label, j)] = found[table.columns[j].metric]
    tests: dict[tuple[int, int, int], PairedTest] = {}
    for a, b in itertools.combinations(range(len(runs)), 2):
        for bench, cols in by_benchmark.items():
            both = [
                j for j in cols if table.rows[a].cells[j].value is not None and table.rows[b].cells[j].value is not None
            ]
            wanted = [j for j in both if table.rows[a].cells[j].rule == table.rows[b].cells[j].rule]
            for j in both:
                if j not in wanted:
                    rules = f"{table.rows[a].cells[j].rule} vs {table.rows[b].cells[j].rule}"
                    comparison.untested.append(
                        (table.columns[j].header, runs[a].label, runs[b].label, f"different rules ({rules})")
                    )
            if not wanted:
                continue
            found = paired_tests(runs[a], runs[b], bench, [table.columns[j].metric for j in wanted], settings, designs)
            for j in wanted:
                result = found[table.columns[j].metric]
                if isinstance(result, PairedTest):
                    tests[(a, b, j)] = result
                    comparison.tests.append(result)
                else:
                    comparison.untested.append((table.columns[j].header, runs[a].label, runs[b].label, result.reason))
    best = best_rows(table)
    marked = False
    for j, column in enumerate(table.columns):
        leaders = sorted(i for i in best[j] if i < len(runs))
        if not leaders:
            candidates = [
                (table.rows[i].cells[j].value, i)
                for i in range(len(runs))
                if table.rows[i].cells[j].value is not None and RULE_MARK not in table.rows[i].cells[j].marks
            ]
            if not candidates:
                continue
            top = max(v for v, _ in candidates) if column.higher_is_better else min(v for v, _ in candidates)
            leaders = [i for v, i in candidates if v == top]
        leader = leaders[0]
        for i in range(len(runs)):
            if i in leaders or table.rows[i].cells[j].value is None:
                continue
            test = tests.get((min(leader, i), max(leader, i), j))
            if test is not None and not test.significant:
                table.mark(i, j, NS_MARK)
                marked = True
    if marked:
        table.legend[NS_MARK] = (
            f"not significantly different from the best run of its column (alpha = {settings.alpha:g} per test, "
            "two-sided, no multiplicity correction): exact McNemar test on the 10-fold held-out decisions for "
            f"accuracy and on the rank-1 hits for IJB 1:N rank-1; paired bootstrap (B = {settings.n_boot}, "
            f"seed {settings.seed}) resampling pairs (templates for IJB) for TAR@FAR"
        )


def roc_drawable(fpr: np.ndarray) -> bool:
    """A ROC curve shows as a line on the log-FAR axis only with at least two points of FAR > 0 (MegaFace
    stores its curve down to 1e-5 only, which can leave a single point): others get no legend entry."""
    return int(np.count_nonzero(np.asarray(fpr) > 0)) >= 2


#: Figures that draw CMC curves (they share one scale on a page).
CMC_FIGURES = frozenset({"cmc_galleries", "cmc_distractors"})


def _kind(entry: BenchmarkEntry) -> Kind:
    return kinds.for_entry(entry.kind)


def _cmc_scale(runs: Sequence[Run], names: Sequence[str]) -> tuple[int, float]:
    """One scale for every CMC plot of a page: the longest rank axis and the lowest identification rate."""
    longest, floor = 10, 1.0
    for run in runs:
        for name in names:
            if run.entry(name) and CMC_FIGURES & set(_kind(run.entry(name)).figures):
                for key, values in run.arrays(name).items():
                    if key == "cmc" or key.endswith("_cmc"):
                        values = np.asarray(values, dtype=float)
                        longest = max(longest, values.shape[-1])
                        floor = min(floor, float(np.nanmin(values)) if values.size else floor)
    return longest, floor


@dataclass
class _Page:
    """What a figure of one benchmark draws from: its runs' entries, the table's columns, the page's CMC
    scale, and the 10-fold panels collected over the benchmarks (drawn as one figure at the end)."""

    name: str
    title: str
    kind: Kind
    entries: list[tuple[Run, BenchmarkEntry]]
    columns: Sequence[Column]
    cmc_scale: tuple[int, float]
    fold_panels: list[tuple[str, list[tuple[str, np.ndarray]]]]


def _roc(page: _Page) -> list[Figure]:
    curves = []
    for run, _entry in page.entries:
        arrays = run.arrays(page.name)
        if "roc_fpr" in arrays and "roc_tpr" in arrays and roc_drawable(arrays["roc_fpr"]):
            curves.append((run.label, arrays["roc_fpr"], arrays["roc_tpr"]))
    if not curves:
        return []
    marks = sorted(
        {
            float(split_path(c.metric)[1])
            for c in page.columns
            if c.benchmark == page.name and split_path(c.metric)[0] == "tar_at_far" and len(split_path(c.metric)) > 1
            and any(e.value(c.metric) is not None for _, e in page.entries)
        }
    )  # an unmeasurable target (null in every run) is left off the plot
    rule = ", ".join(sorted({str(e.rules.get("tar_at_far", "")) for _, e in page.entries} - {""}))
    png = plots.figure_png(plots.roc_figure(curves, f"{page.title} ROC" + (f" ({rule})" if rule else ""), marks=marks))
    return [Figure(f"roc_{page.name}.png", f"{page.title}: ROC", png, page.kind.roc_caption)]


def _det(page: _Page) -> list[Figure]:
    return _det_figure(page, per_gallery=False)


def _det_galleries(page: _Page) -> list[Figure]:
    return _det_figure(page, per_gallery=True)


def _det_figure(page: _Page, per_gallery: bool) -> list[Figure]:
    """The DET plot of a benchmark: FNMR against FMR from each run's ROC (1:1, folder, MegaFace), or
    FNIR (1 - DIR at rank 1) against FPIR from each gallery's DIR-FPIR curve (1:N; ``per_gallery``: one
    curve per gallery of the entry's ``details["per_gallery"]``, on identification axes); nothing without curves."""
    curves = []
    for run, entry in page.entries:
        arrays = run.arrays(page.name)
        if "roc_fpr" in arrays and "roc_tpr" in arrays:
            curves.append((run.label, np.asarray(arrays["roc_fpr"]), 1.0 - np.asarray(arrays["roc_tpr"]), 0))
        galleries = list(entry.details.get("per_gallery", {})) if per_gallery else [""]
        for gi, gallery in enumerate(galleries):
            prefix = f"{gallery}_" if gallery else ""
            if f"{prefix}dir_fpir_fpir" in arrays and f"{prefix}dir_fpir_dir" in arrays:
                label = f"{run.label} {gallery} 1:N".replace("  ", " ")
                curves.append((label, np.asarray(arrays[f"{prefix}dir_fpir_fpir"]),
                               1.0 - np.asarray(arrays[f"{prefix}dir_fpir_dir"]), gi))
    if not curves:
        return []
    png = plots.figure_png(
        plots.det_figure(
            curves,
            f"{page.title} DET",
            *(("False positive identification rate (FPIR)", "False negative identification rate (FNIR)")
              if per_gallery else ()),
        )
    )
    caption = (
        "FNIR = 1 - DIR (rank 1) against FPIR, per gallery (solid G1/S1, dashed G2/S2); normal-deviate axes"
        if per_gallery
        else "detection error trade-off on normal-deviate axes (ISO/IEC 19795-1); 1:N lines: FNIR against FPIR"
    )
    return [Figure(f"det_{page.name}.png", f"{page.title}: DET", png, caption)]


def _cmc_galleries(page: _Page) -> list[Figure]:
    cmc = []
    for ri, (run, entry) in enumerate(page.entries):
        galleries = list(entry.details.get("per_gallery", {}))
        arrays = run.arrays(page.name)
        for gi, gallery_name in enumerate(galleries):
            if f"{gallery_name}_cmc" in arrays:
                cmc.append((f"{run.label} {gallery_name}", arrays[f"{gallery_name}_cmc"], ri, gi))
    if not cmc:
        return []
    return [
        Figure(
            f"cmc_{page.name}.png",
            f"{page.title}: CMC",
            plots.figure_png(plots.cmc_figure(cmc, f"{page.title} CMC (open set, mated searches)", page.cmc_scale)),
            "rank of the mate among the gallery subjects, per gallery (solid G1/S1, dashed G2/S2)",
        )
    ]


def _cmc_distractors(page: _Page) -> list[Figure]:
    figures = []
    cmc, sizes = [], []
    for ri, (run, _entry) in enumerate(page.entries):
        arrays = run.arrays(page.name)
        if "sizes" in arrays and "cmc" in arrays and np.asarray(arrays["sizes"]).size:
            s = np.asarray(arrays["sizes"])
            k = int(np.argmax(s))
            cmc.append((f"{run.label} ({int(s[k]):,} distractors)", arrays["cmc"][k], ri, 0))
            sizes.append((run.label, s, np.asarray(arrays["cmc"])[:, 0]))
    if cmc:
        figures.append(
            Figure(
                f"cmc_{page.name}.png",
                f"{page.title}: CMC",
                plots.figure_png(
                    plots.cmc_figure(cmc, f"{page.title} CMC at the largest distractor list", page.cmc_scale)
                ),
                "identification rate by rank, FaceScrub probes",
            )
        )
    if sizes and any(s.size > 1 for _, s, _ in sizes):
        figures.append(
            Figure(
                f"sizes_{page.name}.png",
                f"{page.title}: rank-1 by distractors",
                plots.figure_png(plots.size_figure(sizes, f"{page.title} rank-1 by number of distractors")),
                "",
            )
        )
    return figures


def _folds(page: _Page) -> list[Figure]:
    """Adds the benchmark's panel to the page's one 10-fold figure (drawn after every benchmark)."""
    runs_folds = [
        (run.label, np.asarray(e.details["fold_accuracies"], dtype=float))
        for run, e in page.entries
        if e.details.get("fold_accuracies")
    ]
    if runs_folds:
        rule = ", ".join(sorted({str(e.rules.get("kfold", "")) for _, e in page.entries} - {""}))
        page.fold_panels.append((f"{page.title} ({rule})" if rule else page.title, runs_folds))
    return []


#: The figures a kind may name (`facebench.kinds.base.Kind.figures`), drawn in the kind's order; the
#: analyses' figures (fairness, quality) follow them for every kind.
FIGURES: dict[str, Callable[[_Page], list[Figure]]] = {
    "roc": _roc,
    "det": _det,
    "det_galleries": _det_galleries,
    "cmc_galleries": _cmc_galleries,
    "cmc_distractors": _cmc_distractors,
    "folds": _folds,
}


def _figures(runs: Sequence[Run], columns: Sequence[Column]) -> list[Figure]:
    figures: list[Figure] = []
    if not runs:
        return figures
    names = list(dict.fromkeys(n for r in runs for n in r.document.benchmarks))
    cmc_scale = _cmc_scale(runs, names)
    fold_panels: list[tuple[str, list[tuple[str, np.ndarray]]]] = []
    for name in names:
        entries = [(r, r.entry(name)) for r in runs if r.entry(name)]
        title = entries[0][1].title
        kind = _kind(entries[0][1])
        page = _Page(name, title, kind, entries, columns, cmc_scale, fold_panels)  # type: ignore[arg-type]
        for figure in kind.figures:
            if figure not in FIGURES:
                raise FacebenchError(
                    f"kind {kind.name}: unknown figure {figure!r}{did_you_mean(figure, list(FIGURES))} "
                    f"(known: {', '.join(FIGURES)})"
                )
            figures.extend(FIGURES[figure](page))
        analysed = [(run.label, e, (lambda run=run: run.arrays(name))) for run, e in entries]
        for file_name, figure_title, png, caption in analysis_figures(name, title, analysed):
            figures.append(Figure(file_name, figure_title, png, caption))
    if fold_panels:
        figures.append(
            Figure(
                "folds.png",
                "10-fold accuracies",
                plots.figure_png(plots.folds_figure(fold_panels)),
                "each point one held-out fold; bar: the mean (the reported accuracy)",
            )
        )
    return figures


# ------------------------------------------------------------------------------------------- writing


def _pct(x: float) -> str:
    return fmt_percent(x) if np.isfinite(x) else "-"


def intervals_csv(comparison: Comparison) -> str:
    """One line per run and column: estimate, interval and method (or why there is none); fractions."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["model", "benchmark", "metric", "column", "estimate", "low", "high", "level", "method", "n_boot", "seed"]
    )
    for (label, j), item in comparison.intervals.items():
        col = comparison.table.columns[j]
        if isinstance(item, Interval):
            writer.writerow(
                [
                    label,
                    col.benchmark,
                    col.metric,
                    col.header,
                    repr(item.estimate),
                    repr(item.low),
                    repr(item.high),
                    repr(item.level),
                    item.method,
                    item.n_boot or "",
                    "" if item.seed is None else item.seed,
                ]
            )
        else:
            writer.writerow(
                [label, col.benchmark, col.metric, col.header, "", "", "", "", f"none: {item.reason}", "", ""]
            )
    return buffer.getvalue()


def tests_csv(comparison: Comparison) -> str:
    """One line per paired test: the two runs, values, difference, test, p-value, interval, verdict."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "benchmark",
            "metric",
            "run_a",
            "run_b",
            "value_a",
            "value_b",
            "difference",
            "test",
            "statistic",
            "p_value",
            "difference_low",
            "difference_high",
            "alpha",
            "significant",
        ]
    )
    for t in comparison.tests:
        writer.writerow(
            [
                t.benchmark,
                t.metric,
                t.run_a,
                t.run_b,
                repr(t.value_a),
                repr(t.value_b),
                repr(t.difference),
                t.test,
                t.statistic,
                repr(t.p_value),
                "" if not np.isfinite(t.low) else repr(t.low),
                "" if not np.isfinite(t.high) else repr(t.high),
                repr(t.alpha),
                "yes" if t.significant else "no",
            ]
        )
    return buffer.getvalue()


def source_lines(comparison: Comparison) -> list[str]:
    """One citation line per published source used."""
    lines = []
    for s in comparison.sources:
        where = f" {s.url}" if s.url else ""
        lines.append(f"[{s.name}] {s.citation} {s.title}.{where}")
    return lines


def markdown_report(comparison: Comparison) -> str:
    """The table (paper style, footnotes), then sources, intervals and paired tests as Markdown."""
    table = comparison.table
    parts = [to_markdown(table)]
    if comparison.sources:
        parts.append("Published rows:\n\n" + "\n".join(f"- {_md(line)}" for line in source_lines(comparison)) + "\n")
    intervals = [(label, j, item) for (label, j), item in comparison.intervals.items() if isinstance(item, Interval)]
    if intervals:
        lines = [
            "### Confidence intervals",
            "",
            "| model | column | value | interval | method |",
            "|---|---|---:|---|---|",
        ]
        for label, j, item in intervals:
            lines.append(
                f"| {_md(label)} | {_md(table.columns[j].header)} | {_pct(item.estimate)} | "
                f"[{_pct(item.low)}, {_pct(item.high)}] ({item.level:.0%}) | {_md(item.method)} |"
            )
        parts.append("\n".join(lines) + "\n")
    if comparison.tests:
        lines = [
            "### Paired tests",
            "",
            f"alpha = {comparison.settings.alpha:g} per test, two-sided.",
            "",
            "| column | run A | run B | A - B (points) | test | p | significant |",
            "|---|---|---|---:|---|---:|---|",
        ]
        for t in comparison.tests:
            col = next(
                (c.header for c in table.columns if c.benchmark == t.benchmark and c.metric == t.metric), t.metric
            )
            lines.append(
                f"| {_md(col)} | {_md(t.run_a)} | {_md(t.run_b)} | {100 * t.difference:+.2f} | {_md(t.test)} | "
                f"{t.p_value:.3g} | {'yes' if t.significant else 'no'} |"
            )
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def latex_report(comparison: Comparison) -> str:
    """The booktabs table with its footnotes and the published sources as notes."""
    notes = [f"Published: {line}" for line in source_lines(comparison)]
    return to_latex(
        comparison.table,
        caption="Verification and identification results (%)",
        label="tab:facebench",
        extra_notes=notes,
    )
