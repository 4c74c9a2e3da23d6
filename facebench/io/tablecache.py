"""Parsed protocol tables kept by content: a list file is parsed once, later runs read its columns back.

A large protocol list costs more to parse than to score (IJB-C's 15.6M-line pair list: about 1.2 CPU-s in
pyarrow's CSV reader, 3 CPU-s while the features are pooled beside it), and a researcher evaluates many
checkpoints against the same files. The columns a reader parsed are stored under a key of

- the sha256 of the file's bytes (the content: a renamed or moved file hits, an edited one misses),
- the column names and kinds asked for, and
- ``TABLE_CACHE_VERSION`` (raised whenever a reader's parsing rule changes what it returns).

An entry is a directory ``<root>/<key[:2]>/<key>/`` holding one raw little-endian file per numeric column
(``c<i>.bin``, the column's dtype in the manifest), one UTF-8 file per text column (``c<i>.txt``, values
joined by ``\\n``: a value of a line-based list never holds one) and ``manifest.json``; the directory is
written under a temporary name and renamed into place whole, so an entry that exists is complete. Reading
checks the manifest against the key's columns and every file's size against the row count, and reads
plain arrays only (no pickles): a damaged or foreign entry is a miss, parsed again and replaced.

Default root: ``tables/`` inside the feature cache root (``$FACEBENCH_CACHE`` or
``~/.cache/facebench/features``); ``--no-cache`` turns it off with the feature cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TABLE_CACHE_VERSION = 1
"""Raised whenever a table reader's rule changes what it returns for the same bytes."""

MANIFEST = "manifest.json"

Converters = Mapping[int, Callable[[np.ndarray], np.ndarray]]
"""Column index -> a function applied to that column's values, piece by piece in file order, whose results
are kept instead (a reader's mapping of ids to rows)."""


def table_key(digest: str, columns: Sequence[tuple[str, str]]) -> str:
    """sha256 of the canonical JSON of (version, the file's sha256, the columns asked for)."""
    fields = {"version": TABLE_CACHE_VERSION, "sha256": digest, "columns": [list(c) for c in columns]}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TableCache:
    """Parsed tables under ``root`` (see the module docstring)."""

    root: Path

    def entry(self, digest: str, columns: Sequence[tuple[str, str]]) -> Path:
        key = table_key(digest, columns)
        return self.root / key[:2] / key

    def load(
        self, digest: str, columns: Sequence[tuple[str, str]], convert: Converters | None = None
    ) -> list[np.ndarray] | None:
        """The stored columns of the file with sha256 ``digest`` (text as object arrays of ``str``), or None
        when there is no complete entry that matches. ``convert`` maps numeric columns as they are read
        (one raw column held at a time)."""
        directory = self.entry(digest, columns)
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
            rows = manifest["rows"]
            kinds = manifest["columns"]
            if manifest.get("sha256") != digest or [k[:2] for k in kinds] != [list(c) for c in columns]:
                return None
            if not isinstance(rows, int) or rows < 0:
                return None
            out: list[np.ndarray] = []
            for i, (_, kind, dtype) in enumerate(kinds):
                if kind == "str":
                    text = (directory / f"c{i}.txt").read_bytes().decode("utf-8", errors="surrogateescape")
                    values = text.split("\n") if rows else []
                    if len(values) != rows:
                        return None
                    strings = np.empty(rows, dtype=object)
                    strings[:] = values
                    out.append(strings)
                    continue
                dt = np.dtype(dtype)
                if dt.kind not in "iuf" or dt.byteorder not in "<=|":
                    return None
                path = directory / f"c{i}.bin"
                if path.stat().st_size != rows * dt.itemsize:
                    return None
                values = np.fromfile(path, dtype=dt, count=rows)
                out.append(convert[i](values) if convert and i in convert else values)
            return out
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            return None

    def writer(self, digest: str, columns: Sequence[tuple[str, str]]) -> TableWriter:
        """A writer that stores the columns of the file with sha256 ``digest`` as they are parsed."""
        return TableWriter(self.entry(digest, columns), digest, columns)


class TableWriter:
    """Column values appended piece by piece in file order (numeric columns) or whole (text columns),
    committed as one entry by :meth:`commit`; :meth:`discard` (or an error before ``commit``) leaves no
    entry. Storage errors (a full or read-only disk) are not the run's: the entry is then just not kept."""

    def __init__(self, directory: Path, digest: str, columns: Sequence[tuple[str, str]]) -> None:
        self.directory, self.digest, self.columns = directory, digest, list(columns)
        self.dtypes: dict[int, str] = {}
        self.rows: dict[int, int] = {}
        self.failed = False
        try:
            directory.parent.mkdir(parents=True, exist_ok=True)
            self.tmp: Path | None = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        except OSError:
            self.tmp, self.failed = None, True

    def add(self, i: int, values: np.ndarray) -> None:
        """Append numeric values of column ``i``."""
        if self.failed:
            return
        values = np.ascontiguousarray(values)
        dtype = values.dtype.newbyteorder("<").str if values.dtype.byteorder == ">" else values.dtype.str
        if self.dtypes.setdefault(i, dtype) != dtype:
            raise ValueError(f"column {i}: pieces of {self.dtypes[i]} and {dtype}")
        self.rows[i] = self.rows.get(i, 0) + values.size
        try:
            with open(self.tmp / f"c{i}.bin", "ab") as handle:  # type: ignore[operator]
                values.astype(dtype, copy=False).tofile(handle)
        except OSError:
            self.discard()

    def add_text(self, i: int, values: Sequence[str]) -> None:
        """Store the whole text column ``i``."""
        if self.failed:
            return
        self.dtypes[i], self.rows[i] = "str", len(values)
        try:
            (self.tmp / f"c{i}.txt").write_bytes(  # type: ignore[operator]
                "\n".join(values).encode("utf-8", errors="surrogateescape")
            )
        except OSError:
            self.discard()

    def reset(self) -> None:
        """Forget every value added so far (a parser that starts over)."""
        if self.failed or self.tmp is None:
            return
        for path in self.tmp.iterdir():
            path.unlink()
        self.dtypes.clear()
        self.rows.clear()

    def commit(self) -> None:
        """Write the manifest and rename the entry into place (a concurrent writer's entry is kept)."""
        if self.failed or self.tmp is None:
            return
        counts = set(self.rows.values())
        if len(self.rows) != len(self.columns) or len(counts) != 1:
            self.discard()
            return
        manifest = {
            "version": TABLE_CACHE_VERSION,
            "sha256": self.digest,
            "rows": counts.pop(),
            "columns": [[name, kind, self.dtypes[i]] for i, (name, kind) in enumerate(self.columns)],
        }
        try:
            (self.tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
            if self.directory.exists():  # a damaged entry, or one another run wrote meanwhile: moved aside
                aside = Path(tempfile.mkdtemp(prefix=f".{self.directory.name}.old.", dir=self.directory.parent))
                os.replace(self.directory, aside / "entry")  # (a reader holding its files reads on)
                shutil.rmtree(aside, ignore_errors=True)
            os.replace(self.tmp, self.directory)
        except OSError:
            self.discard()

    def discard(self) -> None:
        """Remove what was written; nothing is kept."""
        self.failed = True
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def table_entries(root: Path) -> list[dict[str, object]]:
    """Every complete entry under ``root``: key, source sha256, rows, bytes."""
    found = []
    for manifest in sorted(Path(root).glob(f"*/*/{MANIFEST}")):
        try:
            info = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        size = sum(p.stat().st_size for p in manifest.parent.iterdir())
        found.append({"key": manifest.parent.name, "path": manifest.parent, "sha256": info.get("sha256"),
                      "rows": info.get("rows"), "bytes": size})
    return found


def clear_tables(root: Path, key_prefix: str | None = None) -> int:
    """Delete entries (all, or those whose key starts with ``key_prefix``); return how many."""
    removed = 0
    for entry in table_entries(root):
        if key_prefix is None or str(entry["key"]).startswith(key_prefix):
            shutil.rmtree(entry["path"], ignore_errors=True)  # type: ignore[arg-type]
            removed += 1
    return removed

