"""What a `run --features` does besides the protocol: no model runtime imported, every output written
once, the results document serialised once, the report built from memory (nothing read back)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import facebench.atomic
import facebench.results
from facebench.cli import main
from facebench.io.binpack import write_bin
from tests.fakes import jpeg_bytes, random_images
from tests._pairs import pair_features

RUNTIMES = ("torch", "onnxruntime", "onnx", "cv2", "sklearn", "pandas", "tensorflow")


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("overhead")
    feats, issame = pair_features(600, 1.0, 0)
    write_bin(root / "lfw.bin", [jpeg_bytes(im) for im in random_images(1200, size=32, seed=3)], issame)
    np.save(root / "lfw.npy", feats.astype(np.float32))
    return root


def test_a_features_run_imports_no_model_runtime(pack: Path) -> None:
    out = pack / "imports"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1])] + sys.path)}
    script = (
        "import sys, json; from facebench.cli import main; "
        f"status = main(['-q', 'run', '--features', {str(pack / 'lfw.npy')!r}, '-b', 'lfw', '--data-root', "
        f"{str(pack)!r}, '--out', {str(out)!r}, '--no-progress']); "
        "print(json.dumps({'status': status, 'modules': sorted(sys.modules)}))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == 0
    imported = set(report["modules"])
    assert {"facebench.evaluate.pairs", "matplotlib"} <= imported  # the run and its report did happen here
    top = {name.split(".")[0] for name in imported}
    assert not top & set(RUNTIMES), sorted(top & set(RUNTIMES))
    assert (out / "results.json").is_file() and (out / "roc.png").is_file()


def test_every_output_is_written_once_and_the_report_reads_nothing_back(pack: Path, monkeypatch) -> None:
    writes: list[str] = []
    real_atomic_path = facebench.atomic.atomic_path

    def counting_atomic_path(path):
        writes.append(Path(path).name)
        return real_atomic_path(path)

    documents: list[int] = []
    real_dumps = json.dumps

    def counting_dumps(obj, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("schema") == facebench.results.SCHEMA:
            documents.append(1)
        return real_dumps(obj, *args, **kwargs)

    def no_reading(*args, **kwargs):
        raise AssertionError("the run's report read its own output back")

    monkeypatch.setattr(facebench.atomic, "atomic_path", counting_atomic_path)
    monkeypatch.setattr(facebench.atomic.json, "dumps", counting_dumps)
    monkeypatch.setattr(facebench.results, "load_arrays", no_reading)
    monkeypatch.setattr(facebench.results, "read_results", no_reading)
    out = pack / "once"
    status = main(["-q", "run", "--features", str(pack / "lfw.npy"), "-b", "lfw", "--data-root", str(pack),
                   "--out", str(out), "--no-progress"])
    assert status == 0
    assert len(documents) == 1
    assert sorted(writes) == sorted(set(writes)), writes
    assert {"results.json", "lfw.npz", "table.md", "roc.png", "roc_lfw.png", "folds.png", "thresholds.md"} <= set(writes)
    assert sorted(p.name for p in out.iterdir()) == sorted(writes)
    # a one-benchmark run's roc.png is its ROC plot, drawn once
    assert (out / "roc.png").read_bytes() == (out / "roc_lfw.png").read_bytes()


def degenerate_loop(rows: np.ndarray) -> tuple[list[int], list[int]]:
    """The rule written out: rows with a NaN or infinite value; finite rows with every value exactly 0."""
    nonfinite = [i for i, row in enumerate(rows.tolist()) if any(not np.isfinite(v) for v in row)]
    zero = [i for i, row in enumerate(rows.tolist()) if i not in nonfinite and all(v == 0 for v in row)]
    return nonfinite, zero


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("block_bytes", [1000, 8 << 20])
def test_degenerate_rows_found_in_one_pass_match_the_rule_even_where_the_norm_overflows(
    dtype, block_bytes, monkeypatch
) -> None:
    from facebench.evaluate import checks

    monkeypatch.setattr(checks, "BLOCK_BYTES", block_bytes)  # many blocks, or one

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(3000, 16)).astype(dtype)
    big, tiny = np.finfo(dtype).max / 4, np.finfo(dtype).tiny * 4
    rows[5] = big  # finite, its squared norm overflows
    rows[6] = tiny  # finite and not zero, its squared norm underflows to 0
    rows[7] = 0.0
    rows[8, 3] = -0.0
    rows[8] = 0.0
    rows[9, 2] = np.nan
    rows[10, 0], rows[10, 1] = np.inf, -np.inf
    rows[2999, 15] = -np.inf
    rows[1500] = -tiny
    found = checks.find_degenerate(rows)
    expected = degenerate_loop(rows)
    assert (found.nonfinite.tolist(), found.zero_norm.tolist()) == expected
    assert expected == ([9, 10, 2999], [7, 8])
    assert not found.constant


def test_find_degenerate_does_not_depend_on_blocks_or_threads(monkeypatch) -> None:
    from facebench.evaluate import checks

    rng = np.random.default_rng(5)
    rows = rng.standard_normal((3000, 16)).astype(np.float32)
    rows[7] = 0.0
    rows[2500, 3] = np.nan
    monkeypatch.setattr(checks, "BLOCK_BYTES", 16 * 4 * 37)  # 37 rows a block: 82 blocks
    for workers in (1, 2, 5):
        found = checks.find_degenerate(rows, row_offset=10, workers=workers)
        assert (found.nonfinite.tolist(), found.zero_norm.tolist(), found.constant) == ([2510], [17], False)
    same = np.tile(rows[:1], (3000, 1))
    assert all(checks.find_degenerate(same, workers=w).constant for w in (1, 2, 5))
    same[2999, 0] += 1.0  # only the last block differs
    assert not any(checks.find_degenerate(same, workers=w).constant for w in (1, 2, 5))
    same[2999, 0] -= 1.0
    same[1200] *= -1.0  # the same squared norm, other values: compared, found different
    assert not any(checks.find_degenerate(same, workers=w).constant for w in (1, 2, 5))


@pytest.mark.slow
def test_report_and_compare_reuse_the_runs_figures_until_an_input_changes(pack: Path) -> None:
    from PIL import Image

    from facebench.report.reuse import stamp_of

    run = pack / "reuse_run"
    assert main(["-q", "run", "--features", str(pack / "lfw.npy"), "-b", "lfw", "--data-root", str(pack),
                 "--out", str(run), "--no-progress"]) == 0
    drawn = {p.name: p.read_bytes() for p in run.glob("*.png")}
    assert {"roc.png", "roc_lfw.png", "folds.png"} <= set(drawn)
    stamps = {name: stamp_of(png) for name, png in drawn.items()}
    assert len({s["key"] for s in stamps.values()}) == 1 and all(Image.open(io.BytesIO(png)).load() is not None
                                                                  for png in drawn.values())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1])] + sys.path)}

    def cli(args: list[str]) -> set[str]:  # the command in a fresh interpreter; the modules it imported
        script = ("import sys, json; from facebench.cli import main; "
                  f"status = main({args!r}); print(json.dumps([status, sorted(sys.modules)]))")
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
        status, modules = json.loads(proc.stdout.strip().splitlines()[-1])
        assert status == 0, proc.stderr[-2000:]
        return set(modules)

    modules = cli(["-q", "report", str(run), "--no-stats", "--out", str(pack / "reuse_report")])
    assert "matplotlib" not in modules  # nothing drawn: every figure taken from the run as it is
    assert {p.name: p.read_bytes() for p in (pack / "reuse_report").glob("*.png")} == drawn
    modules = cli(["-q", "compare", str(run), "--no-stats", "--out", str(pack / "reuse_compare")])
    assert "matplotlib" not in modules
    assert {p.name: p.read_bytes() for p in (pack / "reuse_compare").glob("*.png")} == {
        k: v for k, v in drawn.items() if k != "roc.png"}
    # another label is another figure: drawn again
    modules = cli(["-q", "report", str(run), "--no-stats", "--label", "other", "--out", str(pack / "relabelled")])
    assert "matplotlib" in modules
    assert (pack / "relabelled" / "roc_lfw.png").read_bytes() != drawn["roc_lfw.png"]
    # a set with a figure missing is drawn again, and so are edited arrays
    (run / "folds.png").unlink()
    assert "matplotlib" in cli(["-q", "report", str(run), "--no-stats", "--out", str(pack / "partial")])
    assert (pack / "partial" / "roc_lfw.png").read_bytes() == drawn["roc_lfw.png"]
    with np.load(run / "lfw.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["roc_tpr"] = arrays["roc_tpr"] * 0.5
    np.savez_compressed(run / "lfw.npz", **arrays)
    cli(["-q", "report", str(run), "--no-stats", "--out", str(pack / "edited")])
    assert (pack / "edited" / "roc_lfw.png").read_bytes() != drawn["roc_lfw.png"]


def test_a_figure_stamp_is_a_valid_png_text_chunk_read_back_as_written() -> None:
    from PIL import Image

    from facebench.report.reuse import stamp_of, stamped

    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (10, 20, 30)).save(buffer, format="PNG")
    stamp = {"key": "k", "index": 0, "count": 1, "name": "a.png", "title": "≈ title", "caption": "c"}
    png = stamped(buffer.getvalue(), stamp)
    assert stamp_of(png) == stamp and stamp_of(buffer.getvalue()) is None
    image = Image.open(io.BytesIO(png))
    image.load()  # every chunk's CRC checked
    assert image.text["facebench:figure"].startswith("{") and image.getpixel((2, 1)) == (10, 20, 30)
