"""Training logs: the CSV files and the TensorBoard event files (tensorboardX's writer), read back with
TensorBoard's own reader."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from facebench.errors import FacebenchError
from facebench.train.logs import TrainLogger

pytest.importorskip("tensorboardX")


def _read_with_tensorboard(directory: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = accumulator_mod.EventAccumulator(str(directory), size_guidance={accumulator_mod.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_reads_the_train_and_validation_scalars(tmp_path: Path) -> None:
    logger = TrainLogger(tmp_path, 0)
    logger.train({"step": 10, "epoch": 0, "lr": 0.5, "loss": 3.5, "accuracy": None})
    logger.train({"step": 20, "epoch": 1, "lr": 0.25, "loss": 2.25})
    logger.validation(20, "lfw", {"accuracy": 0.9875, "auc": 0.5})
    logger.close()
    (event_file,) = (tmp_path / "tensorboard").iterdir()
    assert "tfevents" in event_file.name
    scalars = _read_with_tensorboard(tmp_path / "tensorboard")
    assert scalars == {
        "train/epoch": [(10, 0.0), (20, 1.0)],
        "train/lr": [(10, 0.5), (20, 0.25)],
        "train/loss": [(10, 3.5), (20, 2.25)],
        "val/lfw/accuracy": [(20, pytest.approx(0.9875, rel=1e-7))],  # stored as float32
        "val/lfw/auc": [(20, 0.5)],
    }
    rows = (tmp_path / "validation.csv").read_text().splitlines()
    assert rows == ["step,benchmark,metric,value", "20,lfw,accuracy,0.9875", "20,lfw,auc,0.5"]


def test_resumed_logger_purges_the_stale_tail(tmp_path: Path) -> None:
    first = TrainLogger(tmp_path, 0)
    for step in (10, 20, 30):
        first.train({"step": step, "loss": float(step)})
    first.close()
    # interrupted after step 30 but resumed from the checkpoint at step 20
    second = TrainLogger(tmp_path, 20)
    second.train({"step": 30, "loss": 99.0})
    second.train({"step": 40, "loss": 100.0})
    second.close()
    assert len(list((tmp_path / "tensorboard").iterdir())) == 2
    scalars = _read_with_tensorboard(tmp_path / "tensorboard")
    assert scalars["train/loss"] == [(10, 10.0), (20, 20.0), (30, 99.0), (40, 100.0)]
    rows = (tmp_path / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["10", "20", "30", "40"]


def test_logger_without_tensorboard_writes_no_event_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # not needed when TensorBoard logging is off
    logger = TrainLogger(tmp_path, 0, tensorboard=False)
    logger.train({"step": 1, "loss": 1.0})
    logger.close()
    assert not (tmp_path / "tensorboard").exists()
    assert (tmp_path / "train_log.csv").read_text().splitlines()[1] == "1,,,1,,,,"


def test_missing_writer_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(FacebenchError, match=r"tensorboardX.*\[log\] tensorboard = false"):
        TrainLogger(tmp_path, 0)
