"""Extraction through `facebench run` with a real ONNX checkpoint: --save-features, batch-size invariance,
resume after SIGKILL, and torchrun sharding over 2 CPU processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from facebench.cli import main
from facebench.io.binpack import write_bin
from facebench.models.registry import create_backbone
from tests.fakes import jpeg_bytes, random_images
from facebench.results import read_results

N_PAIRS = 200


class TinyNet(torch.nn.Module):
    """A small conv net: fast enough that several full runs fit in a test."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)
        self.fc = torch.nn.Linear(8 * 27 * 27, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(TinyNet().eval()), root / "tiny.pt")
    assert main(["-q", "export", str(root / "tiny.pt"), "--onnx", str(root / "tiny.onnx"), "--trust-checkpoint-code"]) == 0
    model = create_backbone("mobilefacenet_small").eval()
    torch.save(model.state_dict(), root / "m.pt")
    assert main(["-q", "export", str(root / "m.pt"), "--arch", "mobilefacenet_small", "--onnx", str(root / "m.onnx")]) == 0
    issame = np.tile(np.r_[np.ones(10, bool), np.zeros(10, bool)], N_PAIRS // 20)
    write_bin(root / "lfw.bin", [jpeg_bytes(im) for im in random_images(2 * N_PAIRS, seed=3)], issame)
    return {"root": root, "onnx": root / "tiny.onnx", "slow": root / "m.onnx"}


def _run(setup: dict[str, Path], out: Path, *extra: str, model: str = "onnx") -> np.ndarray:
    feats = out / "feats.npy"
    args = ["-q", "run", str(setup[model]), "-b", "lfw", "--data-root", str(setup["root"]), "--out", str(out),
            "--save-features", str(feats), "--no-speed", *extra]
    assert main(args) == 0
    return np.load(feats)


def test_save_features_and_batch_size_invariance(setup, tmp_path) -> None:
    a = _run(setup, tmp_path / "a", "--no-cache", "--batch-size", "64", "--workers", "0")
    b = _run(setup, tmp_path / "b", "--no-cache", "--batch-size", "7", "--workers", "2")
    assert a.shape == (2 * N_PAIRS, 32)
    np.testing.assert_array_equal(a, b)  # onnxruntime on CPU computes each image independently of its batch
    # the saved features are what was evaluated: re-running from them gives the same numbers
    out = tmp_path / "c"
    assert main(["-q", "run", "--features", str(tmp_path / "a" / "feats.npy"), "-b", "lfw",
                 "--data-root", str(setup["root"]), "--out", str(out)]) == 0
    r1 = read_results(tmp_path / "a").benchmarks["lfw"].metrics
    r2 = read_results(out).benchmarks["lfw"].metrics
    fars = [p for p in r1 if p.startswith("tar_at_far.")]
    assert fars and r1["accuracy"] == r2["accuracy"] and [r1[p] for p in fars] == [r2[p] for p in fars]


@pytest.mark.slow
def test_killed_run_resumes_with_only_the_missing_chunks(setup, tmp_path) -> None:
    reference = _run(setup, tmp_path / "ref", "--no-cache", "--workers", "0", model="slow")
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "facebench", "-q", "run", str(setup["slow"]), "-b", "lfw",
           "--data-root", str(setup["root"]), "--out", str(tmp_path / "o"), "--cache-dir", str(cache),
           "--chunk-size", "16", "--batch-size", "8", "--workers", "0", "--no-speed"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    chunks: list[Path] = []
    while time.time() < deadline and len(chunks) < 3:
        time.sleep(0.02)
        chunks = sorted(cache.rglob("chunk_*.npy"))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in sorted(cache.rglob("chunk_*.npy"))}
    total = -(-2 * N_PAIRS // 16)
    assert 3 <= len(done) < total, f"kill came too late: {len(done)} of {total} chunks were done"
    assert not (tmp_path / "o" / "results.json").exists()
    resumed = _run(setup, tmp_path / "o", "--cache-dir", str(cache), "--chunk-size", "16", "--batch-size", "8",
                   "--workers", "0", model="slow")
    np.testing.assert_array_equal(resumed, reference)
    for path, mtime in done.items():
        assert path.stat().st_mtime_ns == mtime, f"{path.name} was recomputed"
    assert len(list(cache.rglob("chunk_*.npy"))) == total


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not installed")
@pytest.mark.parametrize("cache", [False, True])
def test_torchrun_two_processes_equal_one(setup, tmp_path, cache: bool) -> None:
    reference = _run(setup, tmp_path / "one", "--no-cache", "--workers", "0")
    feats = tmp_path / "two" / "feats.npy"
    cmd = ["torchrun", "--nproc-per-node", "2", "--master-port", str(29500 + os.getpid() % 1000 + int(cache)),
           "-m", "facebench", "-q", "run", str(setup["onnx"]), "-b", "lfw", "--data-root", str(setup["root"]),
           "--out", str(tmp_path / "two"), "--save-features", str(feats), "--chunk-size", "64", "--workers", "0",
           "--no-speed"] + (["--cache-dir", str(tmp_path / "cache")] if cache else ["--no-cache"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(feats), reference)
    if cache:
        assert len(list((tmp_path / "cache").rglob("chunk_*.npy"))) == -(-2 * N_PAIRS // 64)
