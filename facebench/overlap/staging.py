"""All-or-nothing output folders: build every file in a staging folder, then move them into place.

The staging folder is a hidden sibling of the output folder (same file system, so each move is an atomic
``os.replace``). Files are moved only after the whole build succeeded, the completion record (``last``)
is removed first and moved in last, and outputs of an earlier run that this run does not produce (``owned`` names) are removed
so the folder never mixes two runs. On any error the staging folder is deleted and the output folder is
untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from facebench.errors import FacebenchError


@contextlib.contextmanager
def staged_folder(out_dir: str | Path, owned: Sequence[str], last: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success move its files into ``out_dir`` (``last`` at the end)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FacebenchError(f"{out_dir}: exists and is not a folder")
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".staging", dir=parent))
    try:
        yield stage
        names = sorted(p.name for p in stage.iterdir())
        out_dir.mkdir(parents=True, exist_ok=True)
        # the completion record goes first and comes back last: a crash in between leaves none
        for name in [last] + sorted(set(owned) - set(names)):
            with contextlib.suppress(FileNotFoundError):
                (out_dir / name).unlink()
        for name in [n for n in names if n != last] + [n for n in names if n == last]:
            os.replace(stage / name, out_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def finish_file(handle) -> None:  # type: ignore[no-untyped-def]
    """Flush a file written into the staging folder down to the disk."""
    handle.flush()
    os.fsync(handle.fileno())
