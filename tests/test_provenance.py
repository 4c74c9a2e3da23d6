"""Portable provenance: results.json writes paths under the home directory as ``~/...``; relative paths and
other absolute paths stay as given."""

from __future__ import annotations

import json
from pathlib import Path

from facebench.results import BenchmarkEntry, new_run, portable, write_results


def test_portable_rewrites_only_the_home_prefix():
    home = "/home/ann"
    assert portable("/home/ann/.cache/facebench/demo-suite/demo_verify.bin", home) == "~/.cache/facebench/demo-suite/demo_verify.bin"
    assert portable("/home/ann", home) == "~"
    assert portable("demo_ijb: /home/ann/x.txt has sha256 ab", home) == "demo_ijb: ~/x.txt has sha256 ab"
    for same in ("data/lfw.bin", "/data/home/ann/x", "/home/anna/x", "/srv/x", "~/x"):
        assert portable(same, home) == same


def test_results_json_carries_no_home_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    suite = Path.home() / ".cache" / "suite"
    doc = new_run({"data_root": suite, "out": Path("reports/x")}, {"path": "models/m.onnx"}, None)
    doc.benchmarks["b"] = BenchmarkEntry("B", "pairs", inputs={"pack": str(suite / "b.bin")},
                                         warnings=[f"{suite}/b.bin: odd"])
    text = (write_results(tmp_path / "out", doc, {})).read_text()
    assert str(tmp_path / "me") not in text
    written = json.loads(text)
    assert written["settings"] == {"data_root": "~/.cache/suite", "out": "reports/x"}
    assert written["checkpoint"]["path"] == "models/m.onnx"
    entry = written["benchmarks"]["b"]
    assert entry["inputs"] == {"pack": "~/.cache/suite/b.bin"} and entry["warnings"] == ["~/.cache/suite/b.bin: odd"]
