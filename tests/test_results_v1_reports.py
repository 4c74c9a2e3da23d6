"""`report` and `compare` on a facebench.results/1 run directory give the same tables as on the
facebench.results/2 run of the same data: the v1 document is rebuilt from a real run's v2 output by a
written-out nesting (the inverse of the mapping), then both are read and reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facebench.cli import main
from facebench.results import read_results
from tests._folders import folder_features, make_folder


def as_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-2 document as version 1 wrote it: metric paths nested back into a tree with the details,
    each metric's unmeasurable / few_events back in those tables, the counts beside the entry's members."""
    out = {k: v for k, v in doc.items() if k not in ("benchmarks", "label")}
    out["schema"] = "facebench.results/1"
    out["benchmarks"] = {}
    for name, entry in doc["benchmarks"].items():
        tree: dict[str, Any] = json.loads(json.dumps(entry["details"]))
        for path, metric in entry["metrics"].items():
            head, _, key = path.partition(".")
            if key:
                tree.setdefault(head, {})[key] = metric["value"]
            else:
                tree[head] = metric["value"]
            for table in ("unmeasurable", "few_events"):
                if table in metric:
                    tree.setdefault(table, {})[path] = metric[table]
        v1 = {k: v for k, v in entry.items() if k not in ("metrics", "details", "counts", "column_rules")}
        if entry["column_rules"]:
            v1["column_rules"] = entry["column_rules"]
        out["benchmarks"][name] = {**v1, "metrics": tree, **entry["counts"]}
    return out


def _v1_copy(run: Path, where: Path) -> Path:
    shutil.copytree(run, where)
    doc = json.loads((run / "results.json").read_text())
    assert doc["schema"] == "facebench.results/2"
    (where / "results.json").write_text(json.dumps(as_v1(doc)))
    return where


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("v1")
    root = make_folder(tmp / "faces", [4, 3, 5, 4] * 5)
    np.save(tmp / "f.npy", folder_features(root))
    assert main(["-q", "run", "-b", f"folder:{root}", "--features", str(tmp / "f.npy"), "--out", str(tmp / "folder"),
                 "--no-speed"]) == 0
    rng = np.random.default_rng(3)
    lines = [f"s{i % 20} s{i % 20} p{i} {rng.normal(1.0, 0.5):.6f}" for i in range(60)]
    lines += [f"s{i % 20} x{i % 30} q{i} {rng.normal(0.0, 0.5):.6f}" for i in range(300)]
    (tmp / "scores.txt").write_text("\n".join(lines) + "\n")
    assert main(["score", str(tmp / "scores.txt"), "--out", str(tmp / "scores")]) == 0
    made = {"folder": tmp / "folder", "scores": tmp / "scores"}
    return {**made, **{f"{k}_v1": _v1_copy(v, tmp / f"{k}_v1") for k, v in made.items()}}


def test_a_v1_document_reads_as_the_v2_document_it_came_from(runs) -> None:
    for name in ("folder", "scores"):
        v2, v1 = read_results(runs[name]), read_results(runs[f"{name}_v1"])
        assert json.loads((runs[f"{name}_v1"] / "results.json").read_text())["schema"] == "facebench.results/1"
        v2.label = v1.label = ""  # scores labels its run; version 1 kept the label too, as a member
        assert v1 == v2, name


def test_report_and_compare_give_the_same_tables_on_v1_and_v2(runs, tmp_path: Path) -> None:
    for name in ("folder", "scores"):
        for version in (name, f"{name}_v1"):
            assert main(["-q", "report", str(runs[version]), "--out", str(tmp_path / f"report_{version}"),
                         "--no-html", "--n-boot", "20", "--label", name]) == 0
        for table in ("table.md", "table.csv", "table.tex", "intervals.csv"):
            v2, v1 = ((tmp_path / f"report_{v}" / table).read_text() for v in (name, f"{name}_v1"))
            assert v1 == v2 and "%" in (tmp_path / f"report_{name}" / "table.md").read_text(), (name, table)
    for version in ("", "_v1"):
        assert main(["-q", "compare", str(runs[f"folder{version}"]), str(runs[f"scores{version}"]), "--label", "a",
                     "--label", "b", "--out", str(tmp_path / f"cmp{version}"), "--no-html", "--n-boot", "20",
                     "--column", "folder_faces:tar_at_far.1e-01"]) == 0
    for table in ("table.md", "table.csv", "table.tex"):
        assert (tmp_path / "cmp" / table).read_text() == (tmp_path / "cmp_v1" / table).read_text(), table
