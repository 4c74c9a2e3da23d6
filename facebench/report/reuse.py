"""Figures reused when what they show has not changed.

A report's figures are a function of its runs' files (``results.json`` and the ``<benchmark>.npz``
arrays), the runs' labels, the table's columns, the code that draws them and matplotlib's version.
:func:`figures_key` digests all of these (the files byte for byte, without parsing them). Every PNG a
report writes carries, in a ``tEXt`` chunk named ``facebench:figure``, that key, its place in the set
(``index`` of ``count``), its file name, title and caption. :func:`reused_or_drawn` looks in the runs'
directories for a complete set with the same key and takes its PNGs as they are; otherwise it draws. So
``facebench report RUN`` and ``facebench compare RUN`` after ``facebench run`` read the figures the run
drew instead of importing matplotlib and drawing them again, and any change to an input (a new
``--label``, another column, edited arrays, new plotting code) draws them anew.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from facebench.report.runs import Run

KEYWORD = b"facebench:figure"
#: The modules whose source is part of the key: the plotting code, and the protocol kinds that choose
#: the figures (``facebench/kinds`` where it exists).
CODE_DIRECTORIES = ("report", "kinds")

F = TypeVar("F")


def figures_key(runs: Sequence[Run], columns: Sequence[Any], part: str = "") -> str | None:
    """The digest of everything the figures of ``runs`` with table ``columns`` depend on (``part`` names a
    set apart from the report's main one); None when a run has no ``results.json`` on disk (nothing that a
    later report could compare against)."""
    digest = hashlib.sha256(part.encode())
    package = Path(__file__).resolve().parents[1]
    for folder in CODE_DIRECTORIES:
        for source in sorted((package / folder).glob("*.py")):
            digest.update(f"{folder}/{source.name}\0".encode() + source.read_bytes())
    try:
        digest.update(metadata.version("matplotlib").encode())
    except metadata.PackageNotFoundError:
        pass
    digest.update(repr(list(columns)).encode())
    for run in runs:
        results = Path(run.directory) / "results.json"
        if not results.is_file():
            return None
        digest.update(f"\0run {run.label}\0".encode() + hashlib.sha256(results.read_bytes()).digest())
        for name in run.document.benchmarks:
            arrays = Path(run.directory) / f"{name}.npz"
            if arrays.is_file():
                digest.update(f"\0{name}.npz\0".encode() + hashlib.sha256(arrays.read_bytes()).digest())
    return digest.hexdigest()


def reused_or_drawn(
    runs: Sequence[Run],
    columns: Sequence[Any],
    draw: Callable[[Sequence[Run], Sequence[Any]], list[F]],
    make: Callable[[str, str, bytes, str], F],
    part: str = "",
) -> list[F]:
    """The figures ``draw(runs, columns)`` returns (objects with ``name``, ``title``, ``png``, ``caption``,
    built by ``make(name, title, png, caption)``): a complete set with the same :func:`figures_key` found in
    the runs' directories, or drawn and stamped with that key."""
    key = figures_key(runs, columns, part)
    if key is not None:
        found = find_set(key, [Path(run.directory) for run in runs])
        if found is not None:
            return [make(s["name"], str(s.get("title", "")), png, str(s.get("caption", ""))) for s, png in found]
    figures = draw(runs, columns)
    if key is None:
        return figures
    return [
        make(f.name, f.title, stamped(f.png, {"key": key, "index": i, "count": len(figures), "name": f.name,
                                              "title": f.title, "caption": f.caption}), f.caption)
        for i, f in enumerate(figures)
    ]


def find_set(key: str, directories: Sequence[Path]) -> list[tuple[dict[str, Any], bytes]] | None:
    """The PNGs stamped with ``key`` in ``directories`` (each under the name it was stamped with), in set
    order; None unless the whole set is there."""
    found: dict[int, tuple[dict[str, Any], bytes]] = {}
    count = None
    for directory in directories:
        for path in sorted(directory.glob("*.png")) if directory.is_dir() else ():
            png = path.read_bytes()
            stamp = stamp_of(png)
            if stamp is None or stamp.get("key") != key or stamp.get("name") != path.name:
                continue
            found.setdefault(int(stamp["index"]), (stamp, png))
            count = int(stamp["count"])
    if count is None or sorted(found) != list(range(count)):
        return None
    return [found[i] for i in range(count)]


def stamped(png: bytes, stamp: dict[str, Any]) -> bytes:
    """``png`` with a ``tEXt`` chunk ``facebench:figure`` holding ``stamp`` (ASCII JSON) after its header."""
    data = KEYWORD + b"\0" + json.dumps(stamp, ensure_ascii=True, sort_keys=True).encode("ascii")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    end_of_header = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4  # signature, IHDR (length, type, data, CRC)
    return png[:end_of_header] + chunk + png[end_of_header:]


def stamp_of(png: bytes) -> dict[str, Any] | None:
    """The ``facebench:figure`` stamp of a PNG (the text chunks before its image data), or None."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    at = 8
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I", png[at : at + 4])[0], png[at + 4 : at + 8]
        if kind == b"IDAT":
            return None
        data = png[at + 8 : at + 8 + length]
        if kind == b"tEXt" and data.startswith(KEYWORD + b"\0"):
            try:
                stamp = json.loads(data[len(KEYWORD) + 1 :].decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                return None
            return stamp if isinstance(stamp, dict) and {"key", "index", "count", "name"} <= set(stamp) else None
        at += 12 + length
    return None
