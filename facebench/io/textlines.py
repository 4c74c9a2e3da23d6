"""Line-numbered readers for the plain-text list formats (whitespace or comma separated).

Every list parser in `facebench.io` reads through here, so every malformed line is reported the same way:
``<file> line N: expected ..., got ...``. Text is decoded as UTF-8 with ``surrogateescape``, so names in another
encoding still round-trip to the same bytes on disk; ``\\r\\n`` endings and blank lines are accepted.

A UTF-8 byte-order mark (``EF BB BF``, what Windows editors prepend) is dropped before the first line by every
reader of text lists, so it never hides the first entry: readers of decoded text use :func:`open_text` or
:func:`read_text`, readers of raw bytes :func:`without_bom` or :func:`skip_bom`.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, BinaryIO, Iterator, TypeVar

from facebench.errors import FacebenchError, where


BOM = b"\xef\xbb\xbf"

_Bytes = TypeVar("_Bytes", bytes, memoryview)


def without_bom(data: _Bytes) -> _Bytes:
    """``data`` without a leading UTF-8 byte-order mark."""
    return data[len(BOM):] if bytes(data[: len(BOM)]) == BOM else data


def skip_bom(handle: BinaryIO) -> None:
    """Advance a binary file just opened past a leading UTF-8 byte-order mark (else leave it at 0)."""
    if handle.read(len(BOM)) != BOM:
        handle.seek(0)


def open_text(
    path: str | Path, what: str = "list file", errors: str = "surrogateescape", newline: str | None = None
) -> IO[str]:
    """Open a text list for reading: UTF-8 (``errors`` for other bytes), a leading byte-order mark dropped,
    universal newlines unless ``newline`` says otherwise (as :func:`open`). A missing file or a directory
    is an error naming ``what``."""
    try:
        return open(path, encoding="utf-8-sig", errors=errors, newline=newline)
    except FileNotFoundError:
        raise FacebenchError(f"{path}: file not found (expected a {what})") from None
    except IsADirectoryError:
        raise FacebenchError(f"{path}: is a directory, expected a {what}") from None


def read_text(
    path: str | Path, what: str = "list file", errors: str = "surrogateescape", newline: str | None = None
) -> str:
    """The whole text of a list (:func:`open_text`)."""
    with open_text(path, what, errors, newline) as handle:
        return handle.read()


def iter_lines(path: str | Path, what: str = "list file") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each non-blank line, stripped; line numbers are 1-based, counting
    blank lines. A missing file (``<path>: file not found``) or a directory is an error; ``what`` names
    the file expected."""
    handle = open_text(path, what)
    with handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if text:
                yield number, text


def iter_fields(path: str | Path, sep: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for each non-blank line (:func:`iter_lines`); fields split on
    whitespace (``sep=None``) or on ``sep`` with surrounding whitespace stripped."""
    for number, text in iter_lines(path):
        yield number, text.split() if sep is None else [field.strip() for field in text.split(sep)]


def expect_columns(path: str | Path, line: int, fields: list[str], count: int, what: str) -> None:
    """Raise unless the line has exactly ``count`` fields; ``what`` describes the expected columns."""
    if len(fields) != count:
        raise FacebenchError(
            f"{where(path, line)}: expected {count} columns ({what}), got {len(fields)}: {' '.join(fields)!r}"
        )


def parse_int(path: str | Path, line: int, text: str, what: str, minimum: int | None = None) -> int:
    """Parse a decimal integer field, naming file, line and field on failure."""
    try:
        value = int(text)
    except ValueError:
        raise FacebenchError(f"{where(path, line)}: expected an integer {what}, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise FacebenchError(f"{where(path, line)}: expected {what} >= {minimum}, got {value}")
    return value


def parse_float(path: str | Path, line: int, text: str, what: str) -> float:
    """Parse a finite float field, naming file, line and field on failure."""
    try:
        value = float(text)
    except ValueError:
        raise FacebenchError(f"{where(path, line)}: expected a number for {what}, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise FacebenchError(f"{where(path, line)}: expected a finite number for {what}, got {text!r}")
    return value


def read_path_labels(path: str | Path, root: str | Path) -> tuple[list[str], list[str]]:
    """``(absolute paths, labels)`` of a ``path label`` list (whitespace separated, paths relative to
    ``root``); an empty list or a line without exactly two fields is an error naming the file and line."""
    base = Path(root)
    paths, labels = [], []
    for line, fields in iter_fields(path):
        expect_columns(path, line, fields, 2, "path label")
        paths.append(str((base / fields[0]).resolve()))
        labels.append(fields[1])
    if not paths:
        raise FacebenchError(f"{path}: no images listed (expected lines 'path label')")
    return paths, labels
