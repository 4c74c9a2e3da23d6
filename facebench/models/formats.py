"""Checkpoint format sniffing by content, without importing any framework."""

from __future__ import annotations

import zipfile
from pathlib import Path


def is_torchscript_archive(path: str | Path) -> bool:
    """A TorchScript archive is a zip with a ``code/`` folder or ``constants.pkl``; a plain ``torch.save``
    zip has neither."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.endswith("constants.pkl") for name in archive.namelist())


def is_dlib_file(path: str | Path) -> bool:
    """True when the file starts like a dlib metric network (loss record in the first bytes)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return False
    return len(head) > 4 and head[0] == 0x01 and head[1] in (1, 2) and b"loss_" in head[:24]
