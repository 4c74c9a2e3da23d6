"""`facebench report` and `facebench compare` end to end on runs made by `facebench run --features`."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from facebench.cli import main
from facebench.io.binpack import write_bin
from tests.fakes import jpeg_bytes, random_images
from tests._pairs import pair_features
from facebench.results import read_results


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two runs on one small LFW-format pack of real JPEG images (600 pairs, 10 folds)."""
    root = tmp_path_factory.mktemp("cli")
    _, issame = pair_features(600, 1.0, 0)
    write_bin(root / "lfw.bin", [jpeg_bytes(im) for im in random_images(1200, size=64, seed=3)], issame)
    out = {"root": root}
    for name, noise in (("a", 1.0), ("b", 1.25)):
        feats, _ = pair_features(600, noise, 0)
        np.save(root / f"{name}.npy", feats.astype(np.float32))
        run = root / f"run_{name}"
        assert (
            main(
                [
                    "-q",
                    "run",
                    "--features",
                    str(root / f"{name}.npy"),
                    "-b",
                    "lfw",
                    "--data-root",
                    str(root),
                    "--out",
                    str(run),
                    "--no-progress",
                ]
            )
            == 0
        )
        out[name] = run
    return out


def test_report_regenerates_a_run(runs, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    status = main(["report", str(runs["a"]), "--out", str(out), "--n-boot", "200", "--column", "lfw:tar_at_far.1e-01"])
    assert status == 0
    doc = read_results(runs["a"])
    for name in (
        "table.md",
        "table.csv",
        "table.tex",
        "roc.png",
        "roc_lfw.png",
        "folds.png",
        "intervals.csv",
        "report.html",
    ):
        assert (out / name).is_file(), name
    row = next(csv.DictReader(open(out / "table.csv", encoding="utf-8")))
    assert float(row["LFW [insightface]"]) == doc.benchmarks["lfw"].value("accuracy")
    assert float(row["LFW TAR@1e-1 [nearest]"]) == doc.benchmarks["lfw"].value("tar_at_far.1e-01")
    intervals = {r["metric"]: r for r in csv.DictReader(open(out / "intervals.csv", encoding="utf-8"))}
    for metric in ("accuracy", "tar_at_far.1e-01"):
        assert (
            float(intervals[metric]["low"]) <= float(intervals[metric]["estimate"]) <= float(intervals[metric]["high"])
        )
        assert intervals[metric]["n_boot"] == "200"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert all(src.startswith("data:image/") for src in re.findall(r"src='([^']*)'", page))
    # the failure gallery shows the pack's images of the wrongly decided pairs, re-encoded as JPEG
    arrays = np.load(runs["a"] / "lfw.npz")
    fa = int(np.count_nonzero(~arrays["labels"] & ~arrays["correct"]))
    fr = int(np.count_nonzero(arrays["labels"] & ~arrays["correct"]))
    assert fa + fr > 0 and page.count("src='data:image/jpeg;base64,") == 2 * (min(fa, 6) + min(fr, 6))
    assert f"{fa} false accepts, {fr} false rejects" in page
    assert "Failure gallery" in page and "images not shown" not in page
    # one run: titled as a run; the 10-fold accuracy as mean ± std; no model facts or extraction speed for
    # features (no model ran, no image was decoded)
    assert "<title>facebench run: features:a.npy</title>" in page
    lfw = doc.benchmarks["lfw"]
    assert f"{100 * lfw.value('accuracy'):.2f} &plusmn; {100 * lfw.value('accuracy_std'):.2f}" in page
    assert "Params (M)" not in page and "images/s" not in page and doc.extraction is None
    assert f"{100 * lfw.value('accuracy'):.2f}" in capsys.readouterr().out


def test_compare_two_runs_and_a_published_baseline(runs, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    status = main(
        [
            "compare",
            str(runs["a"]),
            str(runs["b"]),
            "--label",
            "A",
            "--label",
            "B",
            "--published",
            "facexzoo/mv-softmax",
            "--out",
            str(out),
            "--n-boot",
            "100",
            "--gallery",
            "2",
        ]
    )
    assert status == 0
    table = list(csv.DictReader(open(out / "table.csv", encoding="utf-8")))
    assert [r["model"] for r in table] == ["A", "B", "MV-Softmax"]
    for row, run in zip(table, (runs["a"], runs["b"])):
        assert (
            float(row["LFW [insightface]"])
            == read_results(run).benchmarks["lfw"].value("accuracy")
        )
    assert table[2]["LFW [insightface]"] == "0.9957"
    tests = list(csv.DictReader(open(out / "tests.csv", encoding="utf-8")))
    assert len(tests) == 1 and tests[0]["test"] == "exact McNemar (held-out decisions)"
    page = (out / "report.html").read_text(encoding="utf-8")
    shown = 0
    for run in (runs["a"], runs["b"]):
        arrays = np.load(run / "lfw.npz")
        shown += min(2, int(np.count_nonzero(~arrays["labels"] & ~arrays["correct"])))
        shown += min(2, int(np.count_nonzero(arrays["labels"] & ~arrays["correct"])))
    assert page.count("src='data:image/jpeg;base64,") == 2 * shown  # --gallery 2: two of each kind per run
    assert "MV-Softmax / LFW: rule facexzoo (column: insightface)" in page
    assert "<title>facebench comparison</title>" in page


def test_gallery_refuses_a_pack_that_changed_since_the_run(runs) -> None:
    from facebench.report.gallery import failure_gallery
    from facebench.report.runs import load_runs

    run = load_runs([runs["a"]])[0]
    fine = failure_gallery(run, "lfw", 3)
    assert fine is not None and not fine.note
    assert all(p.images is not None and p.images[0][:2] == b"\xff\xd8" for p in fine.false_accepts + fine.false_rejects)
    assert [p.score for p in fine.false_accepts] == sorted((p.score for p in fine.false_accepts), reverse=True)
    run.document.benchmarks["lfw"].inputs["lfw.bin"] = "0" * 64  # as if the run had read another file
    changed = failure_gallery(run, "lfw", 3)
    assert changed is not None and "changed since the run" in changed.note
    assert all(p.images is None for p in changed.false_accepts + changed.false_rejects)
    assert [p.index for p in changed.false_rejects] == [p.index for p in fine.false_rejects]


def test_clear_errors(runs, tmp_path: Path, capsys) -> None:
    assert main(["compare", str(runs["a"]), "--published", "facexzo", "--out", str(tmp_path / "x")]) == 2
    assert "unknown published source 'facexzo'; did you mean 'facexzoo'" in capsys.readouterr().err
    assert main(["compare", str(runs["a"])]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--out", str(tmp_path / "y")]) == 2
    assert "no results.json here" in capsys.readouterr().err
    assert main(["compare", str(runs["a"]), str(runs["b"]), "--label", "x", "--out", str(tmp_path / "z")]) == 2
    assert "--label given 1 times for 2 runs" in capsys.readouterr().err
    assert main(["report", str(runs["a"]), "--out", str(tmp_path / "w"), "--column", "lfw:nope"]) == 2
    assert "no run or published row has lfw nope" in capsys.readouterr().err
    assert main(["report", str(runs["a"]), "--out", str(tmp_path / "w"), "--alpha", "2"]) == 2
    assert "alpha must lie strictly between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()


def test_list_published(capsys) -> None:
    assert main(["compare", "--list-published"]) == 0
    text = capsys.readouterr().out
    assert "facexzoo/mv-softmax: MV-Softmax" in text and "rules: pairs: kfold=facexzoo" in text


def test_a_roc_is_drawn_only_with_two_points_on_the_log_far_axis() -> None:
    from facebench.report.comparison import roc_drawable

    assert roc_drawable(np.array([0.0, 1e-3, 1.0]))
    assert not roc_drawable(np.array([0.0, 8.3e-6]))  # MegaFace's curve stored down to 1e-5 only
    assert not roc_drawable(np.array([]))
