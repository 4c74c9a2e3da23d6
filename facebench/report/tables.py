"""Paper-style tables: one row per run (or published result), one column per benchmark metric.

Columns come from each benchmark entry's ``columns`` mapping (metric path -> label) in results.json, so a
table needs nothing but the documents. Every column header names the rule that produced it (the rule of
the first row that has the column); a cell produced under another rule keeps its value and is marked
(†) with a footnote naming its rule, so a row never mixes rules silently. The best value of a column is
bold, chosen among the cells produced under the column's rule (all ties bold). Markdown, HTML and LaTeX
show percentages with two decimals; the CSV keeps each value exactly as stored (the fraction in [0, 1],
``repr`` of the float, which parses back to the same float).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from facebench import kinds
from facebench.keys import split_path
from facebench.results import BenchmarkEntry, MetricValue, RunResults

#: Cell marks: a rule other than the column's, and "not significantly different from the best run".
RULE_MARK = "†"
NS_MARK = "≈"
#: Marks of a rate the counts cannot measure (the cell is a dash) and of one resting on few events.
UNMEASURED_MARK = "‡"
FEW_EVENTS_MARK = "§"
LATEX_MARKS = {RULE_MARK: r"$^{\dagger}$", NS_MARK: r"$^{\approx}$", UNMEASURED_MARK: r"$^{\ddagger}$",
               FEW_EVENTS_MARK: r"$^{\S}$"}
#: Marks whose cells get a footnote line of their own.
_NOTED_MARKS = (RULE_MARK, UNMEASURED_MARK, FEW_EVENTS_MARK)


@dataclass(frozen=True)
class Column:
    """A table column: ``metric`` is a dotted path into a benchmark's metrics (``tar_at_far.1e-04``)."""

    benchmark: str
    metric: str
    label: str
    rule: str = ""
    kind: str = ""
    higher_is_better: bool = True

    @property
    def header(self) -> str:
        """``label [rule]`` (the label alone when the rule is unknown)."""
        return f"{self.label} [{self.rule}]" if self.rule else self.label


@dataclass
class Cell:
    """One value (a fraction, or None when missing), the rule that produced it and its marks."""

    value: float | None
    rule: str = ""
    marks: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Row:
    """One table row: a label, its kind (``run`` or ``published``) and a cell per column."""

    label: str
    cells: list[Cell]
    kind: str = "run"
    source: str = ""

    @property
    def values(self) -> list[float | None]:
        return [c.value for c in self.cells]


@dataclass
class Table:
    """Columns, rows, and the legend of the marks used (mark -> sentence)."""

    columns: list[Column]
    rows: list[Row]
    legend: dict[str, str] = field(default_factory=dict)

    def mark(self, row: int, column: int, mark: str, note: str = "") -> None:
        """Add ``mark`` to a cell (once)."""
        cell = self.rows[row].cells[column]
        if mark not in cell.marks:
            cell.marks.append(mark)
        if note:
            cell.note = f"{cell.note}; {note}" if cell.note else note


# ------------------------------------------------------------------------------------------- values


def rule_of(entry: BenchmarkEntry, metric: str) -> str:
    """The rule that produced a metric: the entry's ``column_rules`` (metric -> rules key) when it names the
    metric, else the rule text of the entry's kind (`facebench.kinds.base.Kind.rule`: the ``rules`` values
    of the metric's rule keys)."""
    if metric in entry.column_rules:
        return str(entry.rules.get(entry.column_rules[metric], ""))
    return kinds.for_entry(entry.kind).rule(entry.rules, metric)


def higher_is_better(entry: BenchmarkEntry, metric: str) -> bool:
    """Whether a larger value of ``metric`` is better, as the entry's kind declares it."""
    return kinds.for_entry(entry.kind).metric(split_path(metric)[0]).higher_is_better


def run_label(doc: RunResults) -> str:
    """A row label for a run: its ``label``, else the checkpoint's file name, else the features path."""
    if doc.label:
        return doc.label
    if doc.checkpoint:
        return str(doc.checkpoint.get("path", "checkpoint")).replace("\\", "/").rsplit("/", 1)[-1]
    if doc.features:
        return "features:" + str(doc.features.get("path", "")).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return "run"


def columns_of(documents: Iterable[RunResults]) -> list[Column]:
    """The union of the documents' columns in first-seen order; each column's rule is its first row's."""
    seen: dict[tuple[str, str], Column] = {}
    for doc in documents:
        for name, entry in doc.benchmarks.items():
            for metric, label in entry.columns.items():
                if (name, metric) not in seen:
                    seen[(name, metric)] = Column(
                        name, metric, str(label), rule_of(entry, metric), entry.kind, higher_is_better(entry, metric)
                    )
    return list(seen.values())


def build_table(documents: Sequence[RunResults], columns: list[Column] | None = None) -> Table:
    """One row per document, values looked up per column; a cell whose rule differs from its column's is
    marked †. Rows are of kind ``run``; the caller marks the published ones (:class:`Row` ``kind``)."""
    columns = columns if columns is not None else columns_of(documents)
    rows = []
    for doc in documents:
        cells = []
        for col in columns:
            entry = doc.benchmarks.get(col.benchmark)
            if not entry:
                cells.append(Cell(None))
                continue
            metric = entry.metrics.get(col.metric)
            value = metric.value if metric is not None else None
            rule = rule_of(entry, col.metric)
            cell = Cell(value, rule)
            if value is not None and col.rule and rule != col.rule:
                cell.marks.append(RULE_MARK)
                cell.note = f"rule {rule or 'not stated'} (column: {col.rule})"
            if metric is not None:
                _mark_resolution(cell, metric)
            cells.append(cell)
        rows.append(Row(run_label(doc), cells))
    table = Table(columns, rows)
    if any(RULE_MARK in c.marks for r in rows for c in r.cells):
        table.legend[RULE_MARK] = "produced under another rule than the column's (named below); not comparable as is"
    if any(UNMEASURED_MARK in c.marks for r in rows for c in r.cells):
        table.legend[UNMEASURED_MARK] = "not measurable: the target rate is below one in the number of negatives"
    if any(FEW_EVENTS_MARK in c.marks for r in rows for c in r.cells):
        table.legend[FEW_EVENTS_MARK] = (
            "fewer than 10 negatives accepted at the threshold: the value rests on very few events (95% "
            "Clopper-Pearson intervals below)"
        )
    return table


def _mark_resolution(cell: Cell, metric: MetricValue) -> None:
    """Mark a cell whose rate the counts cannot measure (``unmeasurable``; its value is None) or that rests
    on few negatives (``few_events``), with the reason or the intervals as its note."""
    reason = metric.unmeasurable
    few = metric.few_events
    if cell.value is None and reason:
        cell.marks.append(UNMEASURED_MARK)
        cell.note = f"{cell.note}; {reason}" if cell.note else str(reason)
    elif cell.value is not None and few:
        lo, hi = few.positive_rate_ci95
        nlo, nhi = few.negative_rate_ci95
        text = (
            f"{few.negatives_accepted} of {few.n_negatives:,} negatives accepted: rate 95% CI "
            f"[{fmt_percent(lo)}, {fmt_percent(hi)}], false-accept rate 95% CI [{nlo:.1e}, {nhi:.1e}]"
        )
        cell.marks.append(FEW_EVENTS_MARK)
        cell.note = f"{cell.note}; {text}" if cell.note else text


def best_rows(table: Table) -> list[set[int]]:
    """Per column, the rows holding its best value (highest, or lowest when lower is better) among the
    cells produced under the column's rule; empty when the column has no such value or there is only one row
    to compare (a lone run has nothing to be best against)."""
    best: list[set[int]] = []
    if len(table.rows) < 2:
        return [set() for _ in table.columns]
    for j, col in enumerate(table.columns):
        candidates = [
            (row.cells[j].value, i)
            for i, row in enumerate(table.rows)
            if row.cells[j].value is not None and RULE_MARK not in row.cells[j].marks
        ]
        if not candidates:
            best.append(set())
            continue
        values = [v for v, _ in candidates]
        target = max(values) if col.higher_is_better else min(values)
        best.append({i for v, i in candidates if v == target})
    return best


def fmt_percent(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage string with ``digits`` decimals ('-' when missing)."""
    return "-" if value is None else f"{100.0 * value:.{digits}f}"


def footnotes(table: Table) -> list[str]:
    """The legend lines, then one line per marked cell with its own note (in row order, deduplicated)."""
    lines = [f"{mark} {text}" for mark, text in table.legend.items()]
    for row in table.rows:
        for col, cell in zip(table.columns, row.cells):
            marks = "".join(m for m in cell.marks if m in _NOTED_MARKS)
            if cell.note and marks:
                lines.append(f"{marks} {row.label} / {col.label}: {cell.note}")
    return list(dict.fromkeys(lines))


# ------------------------------------------------------------------------------------------- Markdown


def _md_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown: bold best values, marks after the value, then the footnotes."""
    best = best_rows(table)
    header = ["model"] + [_md_text(c.header) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(table.columns)) + "|"]
    for i, row in enumerate(table.rows):
        cells = [_md_text(row.label)]
        for j, cell in enumerate(row.cells):
            text = fmt_percent(cell.value)
            if i in best[j]:
                text = f"**{text}**"
            cells.append(text + "".join(cell.marks))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    notes = footnotes(table)
    if notes:
        text += "\n" + "\n".join(_md_text(n) + "  " for n in notes) + "\n"
    return text


# ------------------------------------------------------------------------------------------- CSV


def to_csv(table: Table) -> str:
    """CSV with one header row (``model``, ``kind``, then each column's ``label [rule]``); values are the
    stored fractions written with ``repr`` (exact round trip), empty when missing. No marks: see the
    Markdown/HTML footnotes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "kind"] + [c.header for c in table.columns])
    for row in table.rows:
        writer.writerow([row.label, row.kind] + ["" if v is None else repr(float(v)) for v in row.values])
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- LaTeX

_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "†": r"\textdagger{}",
    "≈": r"$\approx$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
    "–": "--",
    "—": "---",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text (and spell the few non-ASCII marks we use)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: Table, caption: str = "", label: str = "", extra_notes: Sequence[str] = ()) -> str:
    """A booktabs ``table``: a header row of labels, a row of rules (small), the best value of each
    column in bold, marks as superscripts, then the footnotes (and ``extra_notes``) below the tabular.
    Values are percentages; needs ``\\usepackage{booktabs}``."""
    best = best_rows(table)
    n = len(table.columns)
    spec = "l" + "r" * n
    out = ["% facebench table; needs \\usepackage{booktabs}", "\\begin{table}[t]", "\\centering"]
    if caption:
        out.append(f"\\caption{{{latex_escape(caption)}}}")
    if label:
        out.append(f"\\label{{{latex_escape(label)}}}")
    out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    out.append(" & ".join(["Model"] + [latex_escape(c.label) for c in table.columns]) + " \\\\")
    if any(c.rule for c in table.columns):
        rules = ["{\\scriptsize " + latex_escape(c.rule) + "}" if c.rule else "" for c in table.columns]
        out.append(" & ".join([""] + rules) + " \\\\")
    out.append("\\midrule")
    previous_kind = table.rows[0].kind if table.rows else ""
    for i, row in enumerate(table.rows):
        if row.kind != previous_kind:
            out.append("\\midrule")
            previous_kind = row.kind
        cells = [latex_escape(row.label)]
        for j, cell in enumerate(row.cells):
            text = "--" if cell.value is None else fmt_percent(cell.value)
            if i in best[j]:
                text = f"\\textbf{{{text}}}"
            text += "".join(LATEX_MARKS.get(m, "") for m in cell.marks)
            cells.append(text)
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}"]
    notes = [*footnotes(table), *extra_notes]
    if notes:
        out.append("\\par\\smallskip\\footnotesize")
        out += [latex_escape(n) + "\\par" for n in notes]
    out.append("\\end{table}")
    return "\n".join(out) + "\n"
