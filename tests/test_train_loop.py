"""`facebench train` end to end: exact resume, export + validation through `facebench run`, torchrun."""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facebench.cli import main
from facebench.extraction.preprocess import get_profile, read_sidecar
from facebench.train.checkpoint import list_checkpoints, load_checkpoint
from facebench.results import read_results

REPO = Path(__file__).resolve().parents[1]


def _faces(root: Path, identities: int = 6, per: int = 5) -> Path:
    """Identity folders of 112x112 PNGs: a per-identity pattern plus per-image noise."""
    rng = np.random.default_rng(0)
    for c in range(identities):
        (root / f"id{c:02d}").mkdir(parents=True)
        base = rng.integers(0, 256, (112, 112, 3))
        for k in range(per):
            img = np.clip(base + rng.integers(-40, 40, (112, 112, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / f"id{c:02d}" / f"{k}.png"), img)
    return root


def _config(tmp: Path, name: str, extra: str = "") -> Path:
    text = f"""
[run]
output = "{tmp / name}"
seed = 3
deterministic = true
threads = 1
[data]
source = "folder"
path = "{tmp / 'faces'}"
batch_size = 6
workers = 0
[model]
backbone = "mobilefacenet"
embedding_dim = 64
channels_last = true
[head]
type = "mv-arc"
[loss]
type = "focal"
[optim]
lr = 0.05
clip_grad_norm = 5.0
[schedule]
steps = 4
milestones = [3]
warmup = 1
[checkpoint]
every = 100
[log]
every = 1
[export]
onnx = false
{extra}"""
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def _log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_resume_gives_identical_weights(tmp_path: Path):
    _faces(tmp_path / "faces")
    whole = _config(tmp_path, "whole")
    parts = _config(tmp_path, "parts")
    assert main(["train", "--config", str(whole)]) == 0
    assert main(["train", "--config", str(parts), "--stop-at", "2"]) == 0
    assert [s for s, _ in list_checkpoints(tmp_path / "parts" / "checkpoints")] == [2]
    assert not (tmp_path / "parts" / "model.pt").exists()
    assert main(["train", "--config", str(parts)]) == 0

    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "step_00000004.pt")
    b = load_checkpoint(tmp_path / "parts" / "checkpoints" / "step_00000004.pt")
    assert a["backbone"].keys() == b["backbone"].keys()
    for key in a["backbone"]:
        assert torch.equal(a["backbone"][key], b["backbone"][key]), key
    assert torch.equal(a["head"]["weight"], b["head"]["weight"])
    assert torch.equal(a["head"]["momentum"], b["head"]["momentum"])
    for k, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])
    # the weights moved, and the logs of the two runs agree step by step
    mid = load_checkpoint(tmp_path / "parts" / "checkpoints" / "step_00000002.pt")
    assert not torch.equal(a["head"]["weight"], mid["head"]["weight"])
    la, lb = _log(tmp_path / "whole" / "train_log.csv"), _log(tmp_path / "parts" / "train_log.csv")
    assert [r["step"] for r in la] == [r["step"] for r in lb] == ["1", "2", "3", "4"]
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]
    assert [r["grad_norm"] for r in la] == [r["grad_norm"] for r in lb]
    assert float(la[0]["lr"]) == 0.05 and float(la[3]["lr"]) == pytest.approx(0.005)
    pt = torch.load(tmp_path / "parts" / "model.pt", weights_only=True)
    assert all(torch.equal(pt[k], a["backbone"][k]) for k in pt)


def test_resume_refuses_a_changed_config(tmp_path: Path, capsys):
    _faces(tmp_path / "faces")
    cfg = _config(tmp_path, "run")
    assert main(["train", "--config", str(cfg), "--stop-at", "1"]) == 0
    capsys.readouterr()
    assert main(["train", "--config", str(cfg), "--set", "head.m=0.4", "--set", "optim.lr=0.1"]) == 2
    err = capsys.readouterr().err
    assert "step_00000001.pt: the config differs" in err and "head.m: None -> 0.4" in err and "optim.lr: 0.05 -> 0.1" in err


def _lfw_pack(root: Path, pairs: int = 20) -> None:
    """A small lfw.bin (insightface pack layout: (list of encoded images, list of issame))."""
    rng = np.random.default_rng(1)
    blobs, issame = [], []
    for i in range(pairs):
        same = i % 2 == 0
        a = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8) if same else \
            rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
        for img in (a, b):
            ok, buf = cv2.imencode(".jpg", img)
            assert ok
            blobs.append(buf.tobytes())
        issame.append(same)
    root.mkdir(parents=True, exist_ok=True)
    (root / "lfw.bin").write_bytes(pickle.dumps((blobs, issame), protocol=2))


@pytest.mark.slow
def test_export_and_validation_match_facebench_run(tmp_path: Path):
    _faces(tmp_path / "faces")
    _lfw_pack(tmp_path / "bench")
    cfg = _config(tmp_path, "exp", extra=f"""
[validation]
benchmarks = ["lfw"]
data_root = "{tmp_path / 'bench'}"
every = 1
workers = 0
""").read_text().replace("onnx = false", "onnx = true").replace("embedding_dim = 64", "embedding_dim = 512")
    path = tmp_path / "exp.toml"
    path.write_text(cfg)
    assert main(["train", "--config", str(path), "--set", "schedule.steps=2", "--set", "schedule.milestones=[]"]) == 0
    out = tmp_path / "exp"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["head"]["kind"] == "mv-arc" and summary["global_batch"] == 6
    assert summary["files"]["model.onnx"]["sha256"]
    for name in ("model.pt", "model.onnx"):
        assert read_sidecar(out / name) == get_profile("insightface")
    rows = _log(out / "validation.csv")
    steps = sorted({int(r["step"]) for r in rows if r["metric"] == "accuracy"})
    assert steps == [1, 2]
    final = {r["metric"]: float(r["value"]) for r in rows if r["step"] == "2"}
    # facebench run on the exported files gives the numbers validation logged at the end
    for name in ("model.pt", "model.onnx"):
        report = tmp_path / f"report_{name}"
        assert main(["run", str(out / name), "-b", "lfw", "--data-root", str(tmp_path / "bench"), "--out",
                     str(report), "--no-cache", "--workers", "0", "--device", "cpu"]) == 0
        entry = read_results(report).benchmarks["lfw"]
        assert entry.value("accuracy") == pytest.approx(final["accuracy"], abs=1e-12)
        assert entry.value("auc") == pytest.approx(final["auc"], abs=1e-6)
    # the same validation scalars in the TensorBoard event file, as TensorBoard's own reader sees them
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("val/lfw/accuracy")] == [
        (int(r["step"]), pytest.approx(float(r["value"]), rel=1e-6)) for r in rows if r["metric"] == "accuracy"]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_torchrun_two_ranks_and_resume_in_one(tmp_path: Path):
    _faces(tmp_path / "faces")
    cfg = _config(tmp_path, "ddp", extra="").read_text().replace("deterministic = true", "deterministic = false")
    cfg = cfg.replace("channels_last = true", "channels_last = false")
    path = tmp_path / "ddp.toml"
    path.write_text(cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
           "facebench", "train", "--config", str(path), "--stop-at", "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "step_00000002.pt")
    assert ckpt["world_size"] == 2 and ckpt["head"]["weight"].shape == (6, 64)  # both shards gathered
    assert ckpt["head"]["momentum"].shape == (6, 64) and ckpt["head"]["momentum"].abs().sum() > 0
    assert len(ckpt["rng"]) == 2
    log = _log(tmp_path / "ddp" / "train_log.csv")
    assert [r["step"] for r in log] == ["1", "2"] and all(np.isfinite(float(r["loss"])) for r in log)
    # the gathered checkpoint continues in a single process (same global batch)
    assert main(["train", "--config", str(path)]) == 0
    assert [s for s, _ in list_checkpoints(tmp_path / "ddp" / "checkpoints")][-1] == 4


def test_sigterm_saves_a_checkpoint_and_resumes(tmp_path: Path):
    import signal
    import time

    _faces(tmp_path / "faces")
    path = _config(tmp_path, "sig", extra="")
    path.write_text(path.read_text().replace("steps = 4", "steps = 400").replace("milestones = [3]", "milestones = []"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "facebench", "train", "--config", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "sig" / "train_log.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.is_file() or len(_log(log)) < 1):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped at step" in out
    saved = list_checkpoints(tmp_path / "sig" / "checkpoints")
    assert len(saved) == 1 and 1 <= saved[0][0] < 400
    assert load_checkpoint(saved[0][1])["step"] == saved[0][0]
    assert not (tmp_path / "sig" / "model.pt").exists()
