"""All-or-nothing output folders for the overlap tools: `facebench.rundir.OutputDir` updating a folder in place.

The staging directory starts as hard links to the output folder's files, minus every file this tool owns
(``owned``: outputs of an earlier run are never carried over), receives the new outputs and is swapped in
whole; files of the user's that the tool does not own stay. On any error the output folder is untouched;
a kill -9 leaves the old folder or the new one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

from facebench.rundir import OutputDir


@contextlib.contextmanager
def staged_folder(out_dir: str | Path, owned: Sequence[str]) -> Iterator[Path]:
    """Yield the staging folder (the output folder's files, less ``owned`` ones); swap it in on success."""
    with OutputDir(out_dir, seed=True) as stage:
        for name in owned:
            with contextlib.suppress(FileNotFoundError):
                (stage / name).unlink()
        yield stage


def finish_file(handle) -> None:  # type: ignore[no-untyped-def]
    """Flush a file written into the staging folder down to the disk."""
    handle.flush()
    os.fsync(handle.fileno())
