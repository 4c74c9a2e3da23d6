"""Training logs: CSV files and TensorBoard event files of the same scalars.

- ``train_log.csv``: one row per logged step: ``step, epoch, lr, loss, accuracy, grad_norm,
  images_per_s, elapsed_s`` (loss and accuracy are means over the steps since the previous row).
- ``validation.csv``: ``step, benchmark, metric, value`` (one row per scalar metric).
- ``tensorboard/``: the same scalars as ``train/<column>`` and ``val/<benchmark>/<metric>``, in event files
  written by tensorboardX's ``SummaryWriter`` (the ``[torch]`` extra; no TensorFlow or ``tensorboard``
  package needed to write them; ``tensorboard --logdir <output>/tensorboard`` reads them). A resumed run
  passes its first step as ``purge_step``, so TensorBoard drops the interrupted run's events from there on.
  ``[log] tensorboard = false`` skips them (and needs no tensorboardX).

Rows are appended and flushed as they come; on resume from step ``k`` the CSV files are first rewritten
(atomically) without their rows after ``k``, so a resumed run's logs read as one uninterrupted run.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from facebench.errors import FacebenchError
from facebench.atomic import atomic_open

TRAIN_COLUMNS = ("step", "epoch", "lr", "loss", "accuracy", "grad_norm", "images_per_s", "elapsed_s")
VALIDATION_COLUMNS = ("step", "benchmark", "metric", "value")


def _truncate(path: Path, columns: tuple[str, ...], after_step: int) -> None:
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or tuple(rows[0]) != columns:
        raise FacebenchError(f"{path}: not a facebench log (header {rows[0] if rows else 'missing'}); move it away")
    kept = [r for r in rows[1:] if r and int(r[0]) <= after_step]
    with atomic_open(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(kept)


class TrainLogger:
    """Appends training and validation scalars to the CSV and TensorBoard event files under ``directory``."""

    def __init__(self, directory: Path, resume_step: int, tensorboard: bool = True) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.train_path = directory / "train_log.csv"
        self.val_path = directory / "validation.csv"
        for path, cols in ((self.train_path, TRAIN_COLUMNS), (self.val_path, VALIDATION_COLUMNS)):
            if resume_step > 0:
                _truncate(path, cols, resume_step)
            else:
                with atomic_open(path, "w") as handle:
                    csv.writer(handle).writerow(cols)
        self.tb = (_summary_writer(directory / "tensorboard", purge_step=resume_step + 1 if resume_step else None)
                   if tensorboard else None)

    def _append(self, path: Path, row: list[Any]) -> None:
        with open(path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(row)

    def train(self, values: dict[str, Any]) -> None:
        """One training row (keys of ``TRAIN_COLUMNS``; missing values are left empty)."""
        self._append(self.train_path, [_fmt(values.get(c)) for c in TRAIN_COLUMNS])
        if self.tb is not None:
            for key in TRAIN_COLUMNS[1:]:
                if values.get(key) is not None:
                    self.tb.add_scalar(f"train/{key}", float(values[key]), values["step"])
            self.tb.flush()

    def validation(self, step: int, benchmark: str, metrics: dict[str, float]) -> None:
        """The scalar metrics of one benchmark at ``step``."""
        for metric, value in metrics.items():
            self._append(self.val_path, [step, benchmark, metric, _fmt(value)])
        if self.tb is not None:
            for metric, value in metrics.items():
                self.tb.add_scalar(f"val/{benchmark}/{metric}", float(value), step)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _summary_writer(directory: Path, purge_step: int | None) -> Any:
    """tensorboardX's ``SummaryWriter`` on ``directory`` (an error naming the fix when it is missing)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise FacebenchError(
            "[log] tensorboard = true needs tensorboardX: pip install \"facebench[torch]\" (or tensorboardX), "
            "or set [log] tensorboard = false"
        ) from None
    # the suffix keeps a resumed run's file apart from the interrupted one's, even within the same second
    return SummaryWriter(str(directory), purge_step=purge_step, filename_suffix=f".{os.getpid()}.{purge_step or 0}")


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.8g}"
    return value
