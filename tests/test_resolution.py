"""No results.json reports a rate at a target its counts cannot resolve: a 20-impostor folder and an IJB set
(the demo suite is scanned in tests/test_demo_suite.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facebench.cli import main
from tests._resolution import rates_by_resolution
from tests._folders import folder_features as _features
from tests._folders import make_folder
from tests._ijbworld import World, build_world, run_cli
from facebench.results import read_results
from tests._results import group


def test_a_20_impostor_folder_reports_no_unmeasurable_rate(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces", [3, 2, 2, 3, 3, 2], size=16)
    lines = ["id_00/img_0.png id_00/img_1.png 1", "id_01/img_0.png id_02/img_0.png 0",
             "id_00/img_0.png id_00/img_2.png 1", "id_03/img_0.png id_01/img_1.png 0"]
    (root / "pairs.txt").write_text("\n".join(lines * 10) + "\n")  # 20 genuine, 20 impostor pairs
    np.save(tmp_path / "feats.npy", _features(root))
    out = tmp_path / "out"
    assert main(["-q", "run", "-b", f"folder:{root}", "--out", str(out), "--no-speed",
                 "--features", str(tmp_path / "feats.npy")]) == 0
    doc = read_results(out)
    bad, explained, unexplained = rates_by_resolution(doc, out)
    assert bad == [] and unexplained == []
    entry = next(iter(doc.benchmarks.values()))
    # 20 impostors resolve FAR >= 0.05: 1e-6 ... 1e-2 are null with the reason, 1e-1 is measured
    nulls = [k for k, v in group(entry, "tar_at_far").items() if v is None]
    assert nulls == ["1e-06", "1e-05", "1e-04", "1e-03", "1e-02"]
    assert entry.value("tar_at_far.1e-01") is not None
    assert any("not measurable (20 impostor pairs resolve rates down to 5.0e-02" in w for w in entry.warnings)
    table = (out / "table.md").read_text()
    assert "| -‡ |" in table and "not measurable" in table
    assert (out / "table.csv").read_text().splitlines()[1].split(",")[3] == ""  # TAR@1e-3: empty, not a number
    assert (out / "det_folder_faces.png").is_file()
    assert main(["-q", "report", str(out), "--n-boot", "50"]) == 0
    html = (out / "report.html").read_text()
    assert "‡" in html and "20 impostor pairs resolve rates down to 5.0e-02 only" in html


def test_an_ijb_set_reports_no_unmeasurable_rate(tmp_path: Path) -> None:
    world: World = build_world(tmp_path / "ijb")
    fdir = tmp_path / "feats"
    fdir.mkdir()
    (fdir / "ijbc.npy").write_bytes(world.features.read_bytes())
    status, doc = run_cli(world, "ijbc,ijbc_1n", tmp_path / "out", features=fdir)
    assert status == 0, doc.failed
    bad, explained, unexplained = rates_by_resolution(doc, tmp_path / "out")
    assert bad == [] and unexplained == []
    assert "ijbc:tar_at_far.1e-06" in explained and "ijbc_1n:tpir_at_fpir.1e-02" in explained
    assert doc.benchmarks["ijbc_1n"].value("tpir_at_fpir.1e-01") is not None
