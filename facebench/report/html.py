"""The comparison as one self-contained HTML page: inline CSS, plots and thumbnails embedded as base64
data URIs, no scripts and no external resources (links to sources are plain anchors)."""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

from facebench import __version__
from facebench.report.comparison import Comparison
from facebench.report.gallery import FailurePair
from facebench.report.statistics import Interval, Unavailable
from facebench.report.tables import best_rows, fmt_percent, footnotes

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1280px;color:#1d2330;
line-height:1.4;padding:0 16px}
h1{font-size:1.6em;margin-bottom:0.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #d8dce4;
padding-bottom:4px}h3{font-size:1.05em;margin-bottom:0.3em}
.meta{color:#5a6273;font-size:0.9em}
table{border-collapse:collapse;margin:8px 0 4px 0;font-size:0.9em}
th,td{padding:4px 8px;border-bottom:1px solid #e3e6ec;vertical-align:top}
th{background:#f3f5f8;text-align:center;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th .rule{display:block;font-weight:normal;font-size:0.8em;color:#5a6273}
tr.published td{background:#fafbfc;color:#3d4555}tr.published td.label{font-style:italic}
td.label{white-space:nowrap}
.ci{display:block;font-size:0.78em;color:#6b7385}
.mark{color:#b0301c;font-weight:600}
.notes{font-size:0.85em;color:#3d4555}.notes p{margin:2px 0}
figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top}
figure img{max-width:620px;border:1px solid #e3e6ec}
figcaption{font-size:0.82em;color:#5a6273;max-width:620px}
.gallery{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 14px 0}
.pair{border:1px solid #e3e6ec;padding:6px;font-size:0.8em;text-align:center;background:#fff}
.pair img{width:96px;height:96px;object-fit:contain;margin:0 2px;background:#eee}
.fa{border-top:3px solid #c0392b}.fr{border-top:3px solid #2d6fb5}
details{margin:6px 0}summary{cursor:pointer;color:#3d4555}
code{background:#f3f5f8;padding:0 3px}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _row(*cells: str, cls: str = "") -> str:
    """A table row of already-escaped cells (``num:`` prefix: right-aligned number)."""
    tds = "".join(f"<td class='num'>{c[4:]}</td>" if c.startswith("num:") else f"<td>{c}</td>" for c in cells)
    return f"<tr class='{cls}'>{tds}</tr>" if cls else f"<tr>{tds}</tr>"


def _header(*names: str) -> str:
    return "<tr>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"


def _runs_section(c: Comparison) -> str:
    rows = []
    for run in c.runs:
        doc = run.document
        ckpt = doc.checkpoint or {}
        feats = doc.features or {}
        settings = doc.settings
        profile = settings.get("profile", {}) or {}
        sha = str(ckpt.get("sha256", ""))
        what = _e(ckpt.get("path") or feats.get("path") or "-")
        if sha:
            what += f"<br><code title='{_e(sha)}'>{_e(sha[:16])}</code>"
        extraction = doc.extraction or {}  # present only where images were decoded (not --features)
        seconds = sum(e.get("seconds") or 0 for e in extraction.values())
        if seconds > 0:
            images = sum(e.get("images") or 0 for e in extraction.values())
            what += f"<br>extraction {images / seconds:,.0f} images/s ({images:,} images decoded)"
        rules = f"kfold {settings.get('kfold_rule', '?')}, TAR {settings.get('tar_rule', '?')}"
        tpir_rule = (settings.get("options", {}) or {}).get("tpir_rule")
        if tpir_rule:
            rules += f", TPIR {tpir_rule}"
        prof = ", ".join(f"{k} {profile[k]}" for k in ("name", "colour", "flip") if profile.get(k) is not None)
        failed = doc.failed
        warnings = [w for e in doc.benchmarks.values() for w in e.warnings]
        problems = ""
        if failed or warnings:
            items = [f"<li>{_e(n)}: FAILED: {_e(m)}</li>" for n, m in failed.items()]
            items += [f"<li>{_e(w)}</li>" for w in warnings]
            summary = f"{len(failed)} failed, {len(warnings)} warnings"
            problems = f"<details><summary>{summary}</summary><ul>{''.join(items)}</ul></details>"
        created = f"{_e(doc.created)}<br>facebench {_e(doc.facebench_version)}"
        rows.append(_row(_e(run.label), what, _e(run.shown_directory), created, f"{_e(prof)}<br>{_e(rules)}", problems))
    if not rows:
        return ""
    head = _header("run", "checkpoint / features (sha256)", "directory", "created", "profile and rules", "problems")
    return "<h2>Runs</h2><table>" + head + "".join(rows) + "</table>"


def _model_columns(c: Comparison) -> dict[str, list[str]]:
    """Row label -> [parameters in millions, GFLOPs per image] of the runs that measured their model (the
    columns papers show beside the accuracies); empty when no run did."""
    facts = {r.label: r.document.model or {} for r in c.runs}
    if not any(f.get("parameters") or f.get("gflops") for f in facts.values()):
        return {}
    return {
        label: [f"{f['parameters'] / 1e6:.2f}" if f.get("parameters") else "-",
                f"{f['gflops']:.3f}" if f.get("gflops") else "-"]
        for label, f in facts.items()
    }


def _accuracy_std(c: Comparison, row_label: str, benchmark: str) -> float | None:
    """The std over folds of a run's 10-fold accuracy (None for published rows and other metrics)."""
    run = next((r for r in c.runs if r.label == row_label), None)
    entry = run.entry(benchmark) if run is not None else None
    return entry.value("accuracy_std") if entry is not None else None


def _table_section(c: Comparison) -> str:
    table = c.table
    best = best_rows(table)
    model = _model_columns(c)
    head = (
        "<tr><th>model</th>"
        + ("<th>Params (M)</th><th>GFLOPs</th>" if model else "")
        + "".join(
            f"<th>{_e(col.label)}<span class='rule'>{_e(col.rule or 'rule not stated')}</span></th>"
            for col in table.columns
        )
        + "</tr>"
    )
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for j, cell in enumerate(row.cells):
            text = _e(fmt_percent(cell.value))
            if i in best[j]:
                text = f"<b>{text}</b>"
            std = _accuracy_std(c, row.label, table.columns[j].benchmark) if row.kind == "run" else None
            if table.columns[j].metric == "accuracy" and cell.value is not None and std is not None:
                text += f" &plusmn; {_e(fmt_percent(std))}"
            if cell.marks:
                title = _e(cell.note) if cell.note else ""
                text += f"<span class='mark' title='{title}'>{''.join(_e(m) for m in cell.marks)}</span>"
            item = c.intervals.get((row.label, j)) if row.kind == "run" else None
            if isinstance(item, Interval):
                bounds = f"[{fmt_percent(item.low)}, {fmt_percent(item.high)}]"
                text += f"<span class='ci' title='{_e(item.method)}'>{bounds}</span>"
            cells.append(f"<td class='num'>{text}</td>")
        label = _e(row.label) + (f" <span class='meta'>[{_e(row.source)}]</span>" if row.source else "")
        facts = "".join(f"<td class='num'>{_e(v)}</td>" for v in model.get(row.label, ["-", "-"])) if model else ""
        body.append(f"<tr class='{_e(row.kind)}'><td class='label'>{label}</td>{facts}{''.join(cells)}</tr>")
    notes = footnotes(table)
    level = f"{1 - c.settings.alpha:.0%}"
    notes.insert(
        0,
        f"Values in %; 10-fold accuracies as mean ± std over the folds. Bold: best value of the column among "
        f"cells under the column's rule. "
        f"Small brackets: {level} confidence interval (methods below).",
    )
    return (
        "<h2>Results</h2><table>" + head + "".join(body) + "</table>"
        "<div class='notes'>" + "".join(f"<p>{_e(n)}</p>" for n in notes) + "</div>"
    )


def _sources_section(c: Comparison) -> str:
    if not c.sources:
        return ""
    items = []
    for s in c.sources:
        link = f" <a href='{_e(s.url)}'>{_e(s.url)}</a>" if s.url else ""
        commit = f"<br>file: <code>{_e(s.repo)}/{_e(s.path)}</code> at <code>{_e(s.commit)}</code>" if s.commit else ""
        rules = "; ".join(f"{scope}: " + ", ".join(f"{k} {v}" for k, v in r.items()) for scope, r in s.rules.items())
        items.append(
            f"<li><b>[{_e(s.name)}]</b> {_e(s.citation)} <i>{_e(s.title)}</i>.{link}{commit}"
            f"<br>rules: {_e(rules or 'not stated')}<br>verified: {_e(s.verified)}"
            + (f"<br>notes: {_e(s.notes)}" if s.notes else "")
            + "</li>"
        )
    return "<h2>Published results</h2><ul class='notes'>" + "".join(items) + "</ul>"


def _column_header(c: Comparison, benchmark: str, metric: str) -> str:
    return next((col.header for col in c.table.columns if (col.benchmark, col.metric) == (benchmark, metric)), metric)


def _stats_section(c: Comparison) -> str:
    parts = []
    good = [(label, j, it) for (label, j), it in c.intervals.items() if isinstance(it, Interval)]
    missing = [(label, j, it) for (label, j), it in c.intervals.items() if isinstance(it, Unavailable)]
    if good or missing:
        rows = []
        for label, j, it in good:
            method = _e(it.method) + (f" (B = {it.n_boot}, seed {it.seed})" if it.n_boot else "")
            interval = f"num:[{fmt_percent(it.low)}, {fmt_percent(it.high)}]"
            header = _e(c.table.columns[j].header)
            rows.append(_row(_e(label), header, f"num:{fmt_percent(it.estimate)}", interval, f"{it.level:.0%}", method))
        head = _header("model", "column", "value", "interval", "level", "method")
        parts.append("<h2>Confidence intervals</h2><table>" + head + "".join(rows) + "</table>")
        if missing:
            items = "".join(
                f"<li>{_e(label)} / {_e(c.table.columns[j].header)}: {_e(it.reason)}</li>" for label, j, it in missing
            )
            parts.append(
                f"<details><summary>values without an interval</summary><ul class='notes'>{items}</ul></details>"
            )
    if c.tests or c.untested:
        rows = []
        for t in c.tests:
            interval = "" if not np.isfinite(t.low) else f"[{100 * t.low:+.2f}, {100 * t.high:+.2f}]"
            test = _e(t.test) + (f"<br>{_e(t.statistic)}" if t.statistic else "")
            verdict = "yes" if t.significant else "<b>no</b>"
            rows.append(
                _row(
                    _e(_column_header(c, t.benchmark, t.metric)),
                    _e(t.run_a),
                    _e(t.run_b),
                    f"num:{100 * t.difference:+.2f}",
                    f"num:{interval}",
                    test,
                    f"num:{t.p_value:.3g}",
                    verdict,
                )
            )
        intro = (
            f"<p class='notes'>alpha = {c.settings.alpha:g} per test, two-sided, no multiplicity correction; "
            "differences in percentage points (A - B).</p>"
        )
        head = _header("column", "run A", "run B", "A - B", "interval of A - B", "test", "p", "significant")
        parts.append("<h2>Paired tests</h2>" + intro + "<table>" + head + "".join(rows) + "</table>")
        if c.untested:
            items = "".join(f"<li>{_e(col)}: {_e(a)} vs {_e(b)}: {_e(reason)}</li>" for col, a, b, reason in c.untested)
            parts.append(f"<details><summary>pairs without a test</summary><ul class='notes'>{items}</ul></details>")
    return "".join(parts)


def _figures_section(c: Comparison) -> str:
    if not c.figures:
        return ""
    items = "".join(
        f"<figure><img src='{_data_uri(f.png, 'image/png')}' alt='{_e(f.title)}'>"
        f"<figcaption>{_e(f.title)}{(': ' + _e(f.caption)) if f.caption else ''}</figcaption></figure>"
        for f in c.figures
    )
    return "<h2>Plots</h2>" + items


def _pair_card(p: FailurePair, css: str) -> str:
    if p.images:
        imgs = "".join(
            f"<img src='{_data_uri(b, 'image/jpeg')}' alt='pair {p.index} image {k}'>" for k, b in enumerate(p.images)
        )
    else:
        imgs = "<div class='meta'>(no images)</div>"
    return f"<div class='pair {css}'>{imgs}<br>cos {p.score:.4f}<br>pair {p.index} &middot; fold {p.fold}</div>"


def _gallery_section(c: Comparison) -> str:
    if not c.galleries:
        return ""
    parts = [
        "<h2>Failure gallery</h2><p class='notes'>The hardest errors of the 10-fold held-out decisions: false "
        "accepts (different people accepted; red) by highest cosine, false rejects (same person rejected; blue) "
        "by lowest cosine. Pairs are numbered from 0 in the benchmark's order, folds from 1.</p>"
    ]
    for g in c.galleries:
        parts.append(
            f"<h3>{_e(g.run)} &mdash; {_e(g.title)}: {g.n_false_accepts} false accepts, "
            f"{g.n_false_rejects} false rejects</h3>"
        )
        if g.note:
            parts.append(f"<p class='notes'>{_e(g.note)}</p>")
        for label, pairs, css in (("false accepts", g.false_accepts, "fa"), ("false rejects", g.false_rejects, "fr")):
            if pairs:
                parts.append(
                    f"<div class='meta'>{label}</div><div class='gallery'>"
                    + "".join(_pair_card(p, css) for p in pairs)
                    + "</div>"
                )
            else:
                parts.append(f"<div class='meta'>no {label}</div>")
    return "".join(parts)


def render_html(c: Comparison, title: str = "facebench comparison") -> str:
    """The whole page as a string (UTF-8, no external resources)."""
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class='meta'>{_e(c.created)} &middot; facebench {_e(__version__)} &middot; "
        f"{len(c.runs)} run(s), {len(c.published)} published row(s)</p>",
        _table_section(c),
        _runs_section(c),
        _sources_section(c),
        _stats_section(c),
        _figures_section(c),
        _gallery_section(c),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>\n"
    )
