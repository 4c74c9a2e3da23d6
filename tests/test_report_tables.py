"""A comparison of two runs and published baselines: the exact input numbers in every format, well-formed
LaTeX (booktabs, escaping, one & per column), marks for other rules, the best value in bold."""

from __future__ import annotations

import csv
import html as htmlmod
import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from facebench.evaluate.pairs import verification_metrics
from facebench.report.comparison import build_comparison
from facebench.report.output import write_comparison
from facebench.report.published import load_sources
from facebench.report.statistics import StatsSettings
from facebench.report.tables import fmt_percent, latex_escape
from facebench.results import RunResults, entry_from_nested, new_run, read_results, write_results
from tests._pairs import pair_features
from tests._results import document

PUBLISHED = ["facexzoo/mv-softmax", "arcface_paper", "arcface_torch/ms1mv3-r100"]


def write_run(directory: Path, label: str, noise: float, seed: int, megaface_rank1: float) -> RunResults:
    """A run directory as `facebench run` leaves it: lfw and cfp_fp from the real pair evaluator, an IJB-C
    1:1 entry and a MegaFace entry with the arrays their evaluators save."""
    doc = new_run({"kfold_rule": "insightface", "tar_rule": "nearest"}, None, {"path": f"/feats/{label}"})
    doc.label = label
    arrays = {}
    for k, (name, title) in enumerate((("lfw", "LFW"), ("cfp_fp", "CFP-FP"))):
        feats, issame = pair_features(600, noise * (1 + 0.4 * k), seed + k)
        metrics, arr = verification_metrics(feats, issame, "insightface", "nearest")
        doc.benchmarks[name] = entry_from_nested({
            "title": title,
            "kind": "pairs",
            "protocol_version": 1,
            "metrics": metrics,
            "rules": {"kfold": "insightface", "tar_at_far": "nearest", "flip": "add", "n_folds": 10},
            "inputs": {f"{name}.bin": "ab" * 32},
            "n_pairs": 600,
            "columns": {"accuracy": title},
            "warnings": [],
        }, name)
        arrays[name] = arr
    rng = np.random.default_rng(seed)
    fpr = np.r_[0.0, np.sort(rng.uniform(1e-7, 1, 50)), 1.0]
    tpr = np.r_[0.0, np.sort(rng.uniform(0.8, 1, 50)), 1.0]
    doc.benchmarks["ijbc"] = entry_from_nested({
        "title": "IJB-C 1:1",
        "kind": "ijb_1to1",
        "rules": {"tar_at_far": "nearest"},
        "inputs": {"pairs": "cd" * 32},
        "metrics": {
            "tar_at_far": {"1e-05": 0.9 + seed / 1000, "1e-04": 0.95 + seed / 1000},
            "operating_points": {"1e-04": {"tar": 0.95 + seed / 1000, "tar_ci95": [0.94, 0.96]}},
        },
        "columns": {"tar_at_far.1e-05": "IJB-C TAR@1e-5", "tar_at_far.1e-04": "IJB-C TAR@1e-4"},
    }, "ijbc")
    arrays["ijbc"] = {"roc_fpr": fpr, "roc_tpr": tpr, "roc_thresholds": np.linspace(1, 0, fpr.size)}
    # MegaFace trials: 40 identities x 90 trials, rank-1 hits at 1M and (more) at 1K distractors
    identity = np.repeat(np.arange(40, dtype=np.int32), 90)
    hits_1m = rng.random(identity.size) < megaface_rank1
    hits = np.stack([hits_1m | (rng.random(identity.size) < 0.5), hits_1m])
    cmc = np.sort(rng.uniform(0, 1, (2, 10)), axis=1)
    cmc[:, 0] = hits.mean(axis=1)
    cmc[:, 1:] = cmc[:, :1] + (1 - cmc[:, :1]) * np.sort(rng.uniform(0, 1, (2, 9)), axis=1)
    pair_identity = np.repeat(np.arange(40, dtype=np.int32), 45)
    accepted = rng.random(pair_identity.size) < 0.97
    doc.benchmarks["megaface"] = entry_from_nested({
        "title": "MegaFace",
        "kind": "megaface",
        "inputs": {"facescrub.json": "ef" * 32},
        "rules": {"noise": "insightface", "tie_rule": ">=", "tar_at_far": "conventional"},
        "metrics": {
            "rank1": {"1000": float(cmc[0, 0]), "1000000": float(cmc[1, 0])},
            "cmc": {"1000": cmc[0].tolist(), "1000000": cmc[1].tolist()},
            "tar_at_far": {"1e-06": float(accepted.mean())},
        },
        "columns": {"rank1.1000000": "MegaFace Id", "tar_at_far.1e-06": "MegaFace Ver"},
    }, "megaface")
    arrays["megaface"] = {
        "sizes": np.array([1000, 1000000]),
        "cmc": cmc,
        "rank1_hits": hits,
        "trial_identity": identity,
        "genuine_accepted": accepted,
        "genuine_identity": pair_identity,
        "roc_fpr": fpr,
        "roc_tpr": tpr,
        "roc_thresholds": np.linspace(1, 0, fpr.size),
    }
    write_results(directory, doc, arrays)
    return read_results(directory)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    docs = [write_run(root / "a", "run_a & 50% #1", 1.0, 0, 0.91), write_run(root / "b", "model {b}~^\\", 1.3, 1, 0.93)]
    comparison = build_comparison(
        [root / "a", root / "b"],
        published=PUBLISHED,
        settings=StatsSettings(n_boot=100),
        gallery=0,
        columns=["lfw:tar_at_far.1e-02"],
    )
    out = root / "out"
    write_comparison(comparison, out)
    return comparison, docs, out


def expected_rows(docs: list[RunResults]) -> dict[str, dict[str, float | None]]:
    """Column header -> value, per row label, straight from results.json and the published TOML text."""
    sources = load_sources()
    rows: dict[str, dict[str, float | None]] = {}
    for doc in docs:
        b = doc.benchmarks
        rows[doc.label] = {
            "LFW [insightface]": b["lfw"].value("accuracy"),
            "CFP-FP [insightface]": b["cfp_fp"].value("accuracy"),
            "IJB-C TAR@1e-5 [nearest]": b["ijbc"].value("tar_at_far.1e-05"),
            "IJB-C TAR@1e-4 [nearest]": b["ijbc"].value("tar_at_far.1e-04"),
            "MegaFace Id [noise insightface]": b["megaface"].value("rank1.1000000"),
            "MegaFace Ver [conventional, noise insightface]": b["megaface"].value("tar_at_far.1e-06"),
            "LFW TAR@1e-2 [nearest]": b["lfw"].value("tar_at_far.1e-02"),
        }
    for name in PUBLISHED:
        source, _, row_id = name.partition("/")
        for row in sources[source].rows:
            if row_id and row.id != row_id:
                continue
            p = row.printed
            fraction = {f"{b}.{m}": float(Decimal(v) / 100) for b, ms in p.items() for m, v in ms.items()}
            rows[row.label] = {
                "LFW [insightface]": fraction.get("lfw.accuracy"),
                "CFP-FP [insightface]": fraction.get("cfp_fp.accuracy"),
                "IJB-C TAR@1e-5 [nearest]": fraction.get("ijbc.tar_at_far.1e-05"),
                "IJB-C TAR@1e-4 [nearest]": fraction.get("ijbc.tar_at_far.1e-04"),
                "MegaFace Id [noise insightface]": fraction.get("megaface.rank1.1000000"),
                "MegaFace Ver [conventional, noise insightface]": fraction.get("megaface.tar_at_far.1e-06"),
                "LFW TAR@1e-2 [nearest]": None,
            }
    return rows


def test_csv_holds_the_exact_numbers_of_the_inputs(compared) -> None:
    _, docs, out = compared
    with open(out / "table.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    expected = expected_rows(docs)
    assert [r["model"] for r in table] == list(expected)
    assert [r["kind"] for r in table] == ["run", "run"] + ["published"] * 3
    for row in table:
        for header, value in expected[row["model"]].items():
            assert (float(row[header]) if row[header] else None) == value, (row["model"], header)
    assert set(table[0]) == {"model", "kind", *expected[docs[0].label]}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_markdown_shows_every_number_rounded_and_marks_other_rules(compared) -> None:
    comparison, docs, out = compared
    text = (out / "table.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    headers = _cells(lines[0])[1:]
    expected = expected_rows(docs)
    rows = {c[0].replace("\\|", "|"): c[1:] for c in map(_cells, lines[2:7])}
    for label, values in expected.items():
        for header, value in values.items():
            cell = rows[label][headers.index(header)].replace("**", "")
            assert cell.rstrip("†≈‡§") == fmt_percent(value), (label, header, cell)
    # the published cells computed under another rule are marked and explained
    assert rows["MV-Softmax"][headers.index("LFW [insightface]")].endswith("†")
    assert rows["ArcFace R100 (MS1MV2), paper"][
        headers.index("MegaFace Ver [conventional, noise insightface]")
    ].endswith("†")
    assert not rows["ArcFace R100 (MS1MV2), paper"][headers.index("LFW [insightface]")].endswith("†")
    assert "MV-Softmax / LFW: rule facexzoo (column: insightface)" in text
    assert "MegaFace Ver: rule devkit, noise insightface (column: conventional, noise insightface)" in text
    # bold: the best value of the column among cells under its rule (the ArcFace paper's 99.83 on LFW)
    assert rows["ArcFace R100 (MS1MV2), paper"][headers.index("LFW [insightface]")] == "**99.83**"
    assert rows["r100 (MS1MV3)"][headers.index("IJB-C TAR@1e-4 [nearest]")] == "**96.85**"
    assert "### Confidence intervals" in text and "### Paired tests" in text


def test_html_shows_the_same_numbers(compared) -> None:
    comparison, docs, out = compared
    page = (out / "report.html").read_text(encoding="utf-8")
    table = page[page.index("<h2>Results</h2>") : page.index("</table>", page.index("<h2>Results</h2>"))]
    for label, values in expected_rows(docs).items():
        start = table.index(htmlmod.escape(label, quote=True))
        row = table[start : table.index("</tr>", start)]
        numbers = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td class='num'>(.*?)</td>", row)]
        shown = [re.match(r"-|\d+\.\d\d", n).group(0) for n in numbers]
        assert shown == [fmt_percent(v) for v in values.values()], label
    assert all(src.startswith("data:") for src in re.findall(r"src='([^']*)'", page))
    assert "<script" not in page and "<link" not in page


# --- LaTeX ------------------------------------------------------------------------------------------------


def check_latex(text: str, n_columns: int) -> None:
    """Syntax checks a compiler would otherwise do: balanced braces and environments, booktabs rules,
    escaped specials, one & per column on every row of the tabular."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
    unescaped = re.sub(r"\\[{}]", "", body.replace("\\\\", ""))
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "unbalanced braces"
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", body):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env, f"\\end{{{env}}} does not close the open environment"
    assert not stack
    assert "\\hline" not in body
    rows = body[body.index("\\toprule") : body.index("\\bottomrule")]
    for rule in ("\\toprule", "\\midrule"):
        assert rule in rows
    for line in rows.splitlines():
        if line.startswith(("\\toprule", "\\midrule")):
            continue
        assert line.endswith(" \\\\"), line
        assert len(re.findall(r"(?<!\\)&", line)) == n_columns, line
    plain = re.sub(r"\$[^$]*\$", "", body)  # math spans hold the marks
    plain = re.sub(r"\\[&%$#_{}]", "", plain)
    plain = plain.replace("\\\\", "").replace("\\textasciitilde{}", "").replace("\\textasciicircum{}", "")
    plain = plain.replace("\\textbackslash{}", "")
    for special in ("%", "#", "_", "$", "~", "^"):
        assert special not in plain, f"unescaped {special!r}"
    assert len(re.findall(r"(?<!\\)&", plain)) == len(re.findall(r"(?<!\\)&", rows))  # & only as separators


def test_latex_is_well_formed(compared) -> None:
    comparison, docs, out = compared
    text = (out / "table.tex").read_text(encoding="utf-8")
    check_latex(text, len(comparison.table.columns))
    assert "\\begin{tabular}{l" + "r" * len(comparison.table.columns) + "}" in text
    assert (
        "run\\_a \\& 50\\% \\#1" in text
        and "model \\{b\\}\\textasciitilde{}\\textasciicircum{}\\textbackslash{}" in text
    )
    assert "\\textbf{99.83}" in text and "99.57$^{\\dagger}$" in text
    assert "{\\scriptsize conventional, noise insightface}" in text


def test_latex_escape_covers_every_special() -> None:
    assert latex_escape("a&b%c$d#e_f{g}h~i^j\\k") == (
        "a\\&b\\%c\\$d\\#e\\_f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j\\textbackslash{}k"
    )


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles_with_pdflatex(compared, tmp_path: Path) -> None:  # pragma: no cover - needs TeX
    _, _, out = compared
    doc = (
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}\\usepackage{textcomp}\n"
        "\\begin{document}\n" + (out / "table.tex").read_text(encoding="utf-8") + "\\end{document}\n"
    )
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_significance_is_stated_and_plots_are_written(compared) -> None:
    comparison, _, out = compared
    names = {f.name for f in comparison.figures}
    assert {
        "roc_lfw.png",
        "roc_cfp_fp.png",
        "roc_ijbc.png",
        "cmc_megaface.png",
        "sizes_megaface.png",
        "folds.png",
    } <= names
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tests = list(csv.DictReader(open(out / "tests.csv", encoding="utf-8")))
    # IJB-C: no per-pair arrays; MegaFace: identities resampled
    assert {t["metric"] for t in tests} == {"accuracy", "tar_at_far.1e-02", "rank1.1000000", "tar_at_far.1e-06"}
    assert all(t["test"] for t in tests)
    intervals = list(csv.DictReader(open(out / "intervals.csv", encoding="utf-8")))
    ijb = [i for i in intervals if i["benchmark"] == "ijbc" and i["metric"] == "tar_at_far.1e-04"]
    assert ijb and ijb[0]["method"].startswith("Clopper-Pearson") and ijb[0]["low"] == "0.94"
    mega = [i for i in intervals if i["benchmark"] == "megaface"]
    methods = {i["metric"]: i["method"] for i in mega}
    assert methods["rank1.1000000"].startswith("identity bootstrap: 40 FaceScrub identities (3,600 trials)")
    assert methods["tar_at_far.1e-06"].startswith("identity bootstrap: 40 FaceScrub identities (1,800 genuine pairs)")


def test_the_latex_checks_catch_broken_tables(compared) -> None:
    comparison, _, out = compared
    good = (out / "table.tex").read_text(encoding="utf-8")
    n = len(comparison.table.columns)
    row = next(line for line in good.splitlines() if line.startswith("run\\_a"))
    broken = {
        "unescaped '_'": good.replace("run\\_a", "run_a"),
        "&": good.replace(row, row.replace(" & ", " ", 1)),
        "unbalanced braces": good.replace("\\textbf{99.83}", "\\textbf{99.83"),
        "does not close": good.replace("\\end{tabular}\n", ""),
    }
    for message, text in broken.items():
        with pytest.raises(AssertionError, match=re.escape(message) if message != "&" else None):
            check_latex(text, n)
    check_latex(good, n)


def test_published_rows_alone_in_benchmark_order() -> None:
    comparison = build_comparison([], published=["facexzoo/mv-softmax", "insightface_model_zoo/r100-ms1mv2-arcface"])
    headers = [c.header for c in comparison.table.columns]
    assert headers[:2] == ["LFW [facexzoo]", "CFP-FP [insightface]"]  # the first row's rule names each column
    zoo = comparison.table.rows[1]
    assert [c.marks for c in zoo.cells][:2] == [["†"], []]
    assert not comparison.intervals and not comparison.tests and not comparison.figures


def test_unmeasurable_and_few_event_cells_in_every_format() -> None:
    """A null rate with its reason is a dash with a ‡ footnote (empty in the CSV); a rate on few negatives
    keeps its value with a § footnote carrying the intervals."""
    from facebench.report.tables import build_table, footnotes, to_csv, to_latex, to_markdown

    entry = {
        "title": "LFW", "kind": "pairs", "rules": {"tar_at_far": "nearest"},
        "columns": {"tar_at_far.1e-06": "TAR@1e-6", "tar_at_far.1e-02": "TAR@1e-2"},
        "metrics": {
            "tar_at_far": {"1e-06": None, "1e-02": 0.5},
            "unmeasurable": {"tar_at_far.1e-06": "3,000 impostor pairs resolve rates down to 3.3e-04 only (one in 3,000)"},
            "few_events": {"tar_at_far.1e-02": {"negatives_accepted": 4, "n_negatives": 3000,
                                                "negative_rate_ci95": [0.0003, 0.0034],
                                                "positive_rate_ci95": [0.48, 0.52]}},
        },
    }
    table = build_table([document({"lfw": entry}, label="m")])
    md = to_markdown(table)
    assert "| m | -‡ | 50.00§ |" in md
    assert "‡ m / TAR@1e-6: 3,000 impostor pairs resolve rates down to 3.3e-04 only (one in 3,000)" in md
    assert "§ m / TAR@1e-2: 4 of 3,000 negatives accepted: rate 95% CI [48.00, 52.00]" in md
    assert to_csv(table).splitlines()[1] == "m,run,,0.5"
    tex = to_latex(table)
    assert r"--$^{\ddagger}$ & 50.00$^{\S}$" in tex
    assert any(line.startswith("‡ not measurable") for line in footnotes(table))
