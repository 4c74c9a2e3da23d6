"""`facebench run` on pair sets end to end: metrics against an independent computation of the rules."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from facebench.cli import main
from facebench.io.binpack import write_bin
from tests.fakes import jpeg_bytes, random_images
from facebench.results import read_results

N_PAIRS = 600


def _features(n_pairs: int, seed: int = 0, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 2N features: same pairs share an identity vector plus noise; 10 balanced folds."""
    rng = np.random.default_rng(seed)
    per_fold = n_pairs // 10
    issame = np.tile(np.r_[np.ones(per_fold // 2, bool), np.zeros(per_fold - per_fold // 2, bool)], 10)
    feats = np.empty((2 * n_pairs, dim), np.float32)
    for i, same in enumerate(issame):
        a = rng.standard_normal(dim)
        b = a if same else rng.standard_normal(dim)
        feats[2 * i] = a + 0.9 * rng.standard_normal(dim)
        feats[2 * i + 1] = b + 0.9 * rng.standard_normal(dim)
    return feats, issame


def _insightface_reference(feats: np.ndarray, issame: np.ndarray) -> tuple[float, float, float]:
    """The insightface 10-fold rule written out plainly: accuracy mean, std, VAL@FAR=1e-3 mean."""
    emb = feats.astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    dist = ((emb[0::2] - emb[1::2]) ** 2).sum(1)
    n = len(issame)
    folds = np.array_split(np.arange(n), 10)
    thresholds = np.arange(0, 4, 0.01)
    accs, vals = [], []
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        best, best_acc = None, -1.0
        for t in thresholds:
            acc = np.mean((dist[train] < t) == issame[train])
            if acc > best_acc:
                best, best_acc = t, acc
        accs.append(np.mean((dist[test] < best) == issame[test]))
        grid = np.arange(0, 4, 0.001)
        far_train = np.array([np.sum((dist[train] < t) & ~issame[train]) / np.sum(~issame[train]) for t in grid])
        thr = _slinear_scipy18(far_train, grid, 1e-3) if far_train.max() >= 1e-3 else 0.0
        vals.append(np.sum((dist[test] < thr) & issame[test]) / np.sum(issame[test]))
    return float(np.mean(accs)), float(np.std(accs)), float(np.mean(vals))


def _slinear_scipy18(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """What insightface's ``interp1d(far, thr, kind='slinear')(at)`` returned with SciPy <= 1.8 (repeated x
    allowed): stable sort by x, the last segment start with x <= at, linear interpolation on that segment."""
    pts = sorted(zip(x.tolist(), range(len(x)), y.tolist()))
    start = 0
    for k in range(len(pts) - 1):
        if pts[k][0] <= at:
            start = k
    (x0, _, y0), (x1, _, y1) = pts[start], pts[start + 1]
    if x1 == x0:
        return 0.0
    return y0 + (y1 - y0) * (at - x0) / (x1 - x0)


def _nearest_tar(issame: np.ndarray, scores: np.ndarray, far: float) -> float:
    fpr, tpr, _ = roc_curve(issame, scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    return float(tpr[np.argmin(np.abs(fpr - far))])


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    feats, issame = _features(N_PAIRS)
    blobs = [jpeg_bytes(im) for im in random_images(2 * N_PAIRS, seed=5)]
    write_bin(root / "lfw.bin", blobs, issame)
    np.save(root / "feats.npy", feats)
    return root


def test_run_with_features_matches_the_insightface_rule(pack_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    status = main(["-q", "run", "--features", str(pack_root / "feats.npy"), "-b", "lfw",
                   "--data-root", str(pack_root), "--out", str(out)])
    assert status == 0
    doc = read_results(out)
    entry = doc.benchmarks["lfw"]
    feats, issame = _features(N_PAIRS)
    acc, std, val = _insightface_reference(feats, issame)
    assert abs(entry.value("accuracy") - acc) <= 1e-12
    assert abs(entry.value("accuracy_std") - std) <= 1e-12
    assert abs(entry.value("val_at_far_1e-03.val") - val) <= 1e-12
    emb = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    scores = (emb[0::2].astype(np.float64) * emb[1::2]).sum(1)
    for key, far in (("1e-03", 1e-3), ("1e-02", 1e-2), ("1e-01", 1e-1)):
        if far * np.count_nonzero(~issame) < 1:  # fewer impostor pairs than 1 / FAR: not measurable
            assert entry.value(f"tar_at_far.{key}") is None and entry.metrics[f"tar_at_far.{key}"].unmeasurable
            continue
        assert entry.value(f"tar_at_far.{key}") == pytest.approx(_nearest_tar(issame, scores, far), abs=1e-12)
    assert entry.rules["kfold"] == "insightface" and entry.rules["tar_at_far"] == "nearest"
    assert entry.counts["n_pairs"] == N_PAIRS
    assert len(entry.inputs["lfw.bin"]) == 64
    assert "count" not in "".join(entry.warnings) or "6000" in "".join(entry.warnings)
    for name in ("table.md", "table.csv", "table.tex", "roc.png", "lfw.npz"):
        assert (out / name).is_file()
    assert f"{100 * acc:.2f}" in (out / "table.md").read_text()


def test_run_without_benchmark_evaluates_what_the_data_root_holds(pack_root: Path, tmp_path: Path) -> None:
    feats_dir = tmp_path / "feats"
    feats_dir.mkdir()
    np.save(feats_dir / "lfw.npy", np.load(pack_root / "feats.npy"))
    out = tmp_path / "out"
    assert main(["-q", "run", "--features", str(feats_dir), "--data-root", str(pack_root), "--out", str(out)]) == 0
    doc = read_results(out)
    assert list(doc.benchmarks) == ["lfw"] and not doc.failed
    assert doc.settings["benchmarks"] == "found"


def test_features_with_wrong_row_count_is_an_error(pack_root: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 4), np.float32))
    status = main(["-q", "run", "--features", str(bad), "-b", "lfw", "--data-root", str(pack_root),
                   "--out", str(tmp_path / "o")])
    assert status == 1
    assert "has 10 rows but lfw has 1200 images" in capsys.readouterr().err


def test_missing_benchmark_files_fail_that_benchmark_only(pack_root: Path, tmp_path: Path) -> None:
    feats_dir = tmp_path / "feats"
    feats_dir.mkdir()
    np.save(feats_dir / "lfw.npy", np.load(pack_root / "feats.npy"))
    out = tmp_path / "o"
    status = main(["-q", "run", "--features", str(feats_dir), "-b", "lfw,cplfw", "--data-root", str(pack_root),
                   "--out", str(out)])
    assert status == 1
    doc = read_results(out)
    assert "lfw" in doc.benchmarks and "cplfw" in doc.failed
    assert "cplfw.bin" in doc.failed["cplfw"]


def test_malicious_pack_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "lfw.bin").write_bytes(pickle.dumps((Payload(), [True]), protocol=2))
    np.save(tmp_path / "f.npy", np.zeros((2, 4), np.float32))
    proc = subprocess.run(
        [sys.executable, "-m", "facebench", "run", "--features", str(tmp_path / "f.npy"), "-b", "lfw",
         "--data-root", str(tmp_path), "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0
    assert "system" in proc.stderr and "refused" in proc.stderr
    assert not marker.exists()


def test_pack_and_original_lfw_give_identical_metrics(tmp_path: Path) -> None:
    """The same synthetic set as an LFW tree + pairs.txt and as an insightface pack: same numbers."""
    from tests.fakes import tiny_onnx

    rng = np.random.default_rng(7)
    images = random_images(80, seed=11)
    names = [f"Person_{k:02d}" for k in range(20)]
    tree = tmp_path / "orig" / "lfw"
    files: dict[tuple[str, int], bytes] = {}
    for k, name in enumerate(names):
        for j in range(4):
            blob = jpeg_bytes(images[4 * k + j])
            files[(name, j + 1)] = blob
            (tree / name).mkdir(parents=True, exist_ok=True)
            (tree / name / f"{name}_{j + 1:04d}.jpg").write_bytes(blob)
    lines, blobs, issame = ["10\t3"], [], []
    for _ in range(10):
        for _ in range(3):
            name = names[rng.integers(20)]
            i, j = rng.choice(4, 2, replace=False) + 1
            lines.append(f"{name}\t{i}\t{j}")
            blobs += [files[(name, i)], files[(name, j)]]
            issame.append(True)
        for _ in range(3):
            a, b = rng.choice(20, 2, replace=False)
            i, j = rng.integers(1, 5, 2)
            lines.append(f"{names[a]}\t{i}\t{names[b]}\t{j}")
            blobs += [files[(names[a], i)], files[(names[b], j)]]
            issame.append(False)
    (tree / "pairs.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "pack").mkdir()
    write_bin(tmp_path / "pack" / "lfw.bin", blobs, np.array(issame))
    model = tiny_onnx(tmp_path / "m.onnx")
    metrics = {}
    for layout in ("orig", "pack"):
        out = tmp_path / f"out_{layout}"
        assert main(["-q", "run", str(model), "-b", "lfw", "--data-root", str(tmp_path / layout), "--out", str(out),
                     "--no-cache", "--no-speed", "--workers", "0"]) == 0
        entry = read_results(out).benchmarks["lfw"]
        metrics[layout] = (entry.metrics, entry.extra["reader"])
    assert metrics["orig"][1] == "lfw_pairs" and metrics["pack"][1] == "binpack"
    assert metrics["orig"][0] == metrics["pack"][0]
