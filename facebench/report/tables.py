"""Paper-style tables: one row per run (or published result), one column per benchmark metric.

Columns come from each benchmark entry's ``columns`` mapping (metric path -> label) in results.json, so a
table needs nothing but the documents. Values are shown as percentages with two decimals; CSV keeps
them as percentages with full precision. Each column's header carries the rule that produced it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

METRIC_RULE_KEYS = {"accuracy": "kfold", "accuracy_std": "kfold", "tar_at_far": "tar_at_far"}


@dataclass(frozen=True)
class Column:
    """A table column: ``metric`` is a dotted path into a benchmark's metrics (``tar_at_far.1e-04``)."""

    benchmark: str
    metric: str
    label: str
    rule: str = ""
    higher_is_better: bool = True

    @property
    def header(self) -> str:
        return f"{self.label} [{self.rule}]" if self.rule else self.label


@dataclass
class Row:
    """One table row: a label, a value per column (fraction or None), and per-cell notes."""

    label: str
    values: list[float | None]
    notes: list[str] = field(default_factory=list)
    kind: str = "run"


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]


def metric_value(metrics: dict[str, Any], path: str) -> float | None:
    """Follow a dotted path (``tar_at_far.1e-04``; ``rank1.1000000``) into a metrics dict."""
    node: Any = metrics
    for part in _split_path(path):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _split_path(path: str) -> list[str]:
    # FAR keys contain dots only after the first segment's name, e.g. "tar_at_far.1e-04"; "val_at_far_1e-03.val"
    head, _, tail = path.partition(".")
    return [head] + ([tail] if tail else [])


def rule_of(entry: dict[str, Any], metric: str) -> str:
    """The rule that produced a metric (``insightface``, ``nearest``...) from the entry's ``rules``."""
    rules = entry.get("rules", {})
    key = _split_path(metric)[0]
    rule_key = METRIC_RULE_KEYS.get(key, entry.get("column_rules", {}).get(metric, ""))
    return str(rules.get(rule_key, "")) if rule_key else ""


def columns_of(documents: Iterable[dict[str, Any]]) -> list[Column]:
    """The union of the documents' columns, in first-seen order."""
    seen: dict[tuple[str, str], Column] = {}
    for doc in documents:
        for name, entry in doc.get("benchmarks", {}).items():
            for metric, label in entry.get("columns", {}).items():
                key = (name, metric)
                if key not in seen:
                    seen[key] = Column(name, metric, label, rule_of(entry, metric))
    return list(seen.values())


def run_label(doc: dict[str, Any]) -> str:
    """A row label for a run: the checkpoint's file name, or the features path."""
    if doc.get("label"):
        return str(doc["label"])
    if doc.get("checkpoint"):
        return str(doc["checkpoint"].get("path", "checkpoint")).rsplit("/", 1)[-1]
    if doc.get("features"):
        return "features:" + str(doc["features"].get("path", "")).rsplit("/", 1)[-1]
    return "run"


def build_table(documents: Sequence[dict[str, Any]], columns: list[Column] | None = None) -> Table:
    """One row per document, values looked up per column; a rule mismatch is noted in the cell."""
    columns = columns or columns_of(documents)
    rows = []
    for doc in documents:
        values, notes = [], []
        for col in columns:
            entry = doc.get("benchmarks", {}).get(col.benchmark)
            value = metric_value(entry["metrics"], col.metric) if entry else None
            rule = rule_of(entry, col.metric) if entry else ""
            values.append(value)
            notes.append(f"rule {rule}" if entry and col.rule and rule and rule != col.rule else "")
        rows.append(Row(run_label(doc), values, notes, doc.get("row_kind", "run")))
    return Table(columns, rows)


def fmt_percent(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage string with ``digits`` decimals ('-' when missing)."""
    return "-" if value is None else f"{100.0 * value:.{digits}f}"


def to_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown; cells with a note get a dagger and a footnote line."""
    header = ["model"] + [c.header for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(table.columns)) + "|"]
    footnotes = []
    for row in table.rows:
        cells = [row.label]
        for j, value in enumerate(row.values):
            cell = fmt_percent(value)
            if row.notes and row.notes[j]:
                cell += "†"
                footnotes.append(f"† {row.label} / {table.columns[j].label}: {row.notes[j]}")
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if footnotes:
        text += "\n" + "\n".join(dict.fromkeys(footnotes)) + "\n"
    return text


def to_csv(table: Table) -> str:
    """CSV with one header row; values are percentages with full precision (empty when missing)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model"] + [c.header for c in table.columns])
    for row in table.rows:
        writer.writerow([row.label] + ["" if v is None else repr(100.0 * v) for v in row.values])
    return buffer.getvalue()


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def best_rows(table: Table) -> list[int | None]:
    """Per column, the index of the best row (highest, or lowest when lower is better); None if empty."""
    best: list[int | None] = []
    for j, col in enumerate(table.columns):
        candidates = [(row.values[j], i) for i, row in enumerate(table.rows) if row.values[j] is not None]
        if not candidates:
            best.append(None)
            continue
        value = max(c[0] for c in candidates) if col.higher_is_better else min(c[0] for c in candidates)
        best.append(next(i for v, i in candidates if v == value))
    return best


def to_latex(table: Table, caption: str = "", label: str = "") -> str:
    """A booktabs ``table`` environment; the best value of each column in bold."""
    best = best_rows(table)
    spec = "l" + "r" * len(table.columns)
    out = ["\\begin{table}[t]", "\\centering"]
    if caption:
        out.append(f"\\caption{{{latex_escape(caption)}}}")
    if label:
        out.append(f"\\label{{{latex_escape(label)}}}")
    out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    out.append(" & ".join(["Model"] + [latex_escape(c.header) for c in table.columns]) + " \\\\")
    out.append("\\midrule")
    for i, row in enumerate(table.rows):
        cells = [latex_escape(row.label)]
        for j, value in enumerate(row.values):
            cell = fmt_percent(value)
            if best[j] == i and value is not None:
                cell = f"\\textbf{{{cell}}}"
            if row.notes and row.notes[j]:
                cell += "$^\\dagger$"
            cells.append(cell)
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"
