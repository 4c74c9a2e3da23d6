"""Per-image side files: group attributes (``--groups``), quality scores (``--quality FILE``) and MFR2's mask
labels, and the one rule that matches their keys to a benchmark's images.

- Groups file (CSV, comma separated, a header row): ``key,<attribute>[,<attribute>...]``, then one row per
  image or identity, e.g. ``key,race,gender`` / ``Aaron_Peirsol,white,male``. Values are strings.
- Quality file: lines ``path score`` (whitespace separated; a higher score = better quality).
- MFR2 ``mfr2_labels.txt``: lines ``Name, i, mask_type`` (comma and space separated); the image is
  ``<Name>/<Name>_<i:04d>.png``.

Matching (`match_images`): a key names an image when it equals the image's path relative to the image
root, i.e. one of the path's trailing 1-3 components joined by ``/`` (``Name/Name_0001.jpg``); otherwise it
names every image of that identity. Image keys win over identity keys.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Mapping, Sequence, TypeVar

from facebench.errors import FacebenchError, where
from facebench.io.textlines import expect_columns, iter_fields, parse_float, parse_int

T = TypeVar("T")

UNMASKED_VALUES = frozenset({"nomask", "none", "unmasked", "withoutmask"})
"""MFR2 mask types that mean no mask, compared in lower case with spaces, ``_`` and ``-`` removed (MFR2's own
label is ``no-mask``); every other value (``surgical_white``, ``cloth``, ...) is ``masked``."""


def read_groups(path: str | Path) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``(attribute names, key -> values)`` of a groups CSV (module format)."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise FacebenchError(f"{path}: file not found (expected a groups CSV 'key,attribute,...')") from None
    with handle:
        rows = list(csv.reader(handle))
    rows = [(n, [c.strip() for c in r]) for n, r in enumerate(rows, start=1) if any(c.strip() for c in r)]
    if not rows:
        raise FacebenchError(f"{path}: empty groups file (expected a header 'key,attribute,...')")
    line, header = rows[0]
    if len(header) < 2 or header[0].lower() != "key" or not all(header[1:]):
        raise FacebenchError(f"{where(path, line)}: expected a header 'key,<attribute>[,...]', got {','.join(header)!r}")
    names = tuple(header[1:])
    table: dict[str, tuple[str, ...]] = {}
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise FacebenchError(f"{where(path, line)}: expected {len(header)} columns ({','.join(header)}), got {len(row)}")
        if not row[0] or not all(row[1:]):
            raise FacebenchError(f"{where(path, line)}: empty key or attribute value in {','.join(row)!r}")
        if row[0] in table:
            raise FacebenchError(f"{where(path, line)}: key {row[0]!r} repeats an earlier row")
        table[row[0]] = tuple(row[1:])
    return names, table


def read_quality(path: str | Path) -> dict[str, float]:
    """``path -> score`` of a quality file (module format)."""
    path = Path(path)
    out: dict[str, float] = {}
    for line, fields in iter_fields(path):
        expect_columns(path, line, fields, 2, "path score")
        if fields[0] in out:
            raise FacebenchError(f"{where(path, line)}: {fields[0]!r} repeats an earlier line")
        out[fields[0]] = parse_float(path, line, fields[1], "quality score")
    if not out:
        raise FacebenchError(f"{path}: no quality scores")
    return out


def read_mfr2_labels(path: str | Path) -> dict[str, str]:
    """``<Name>/<Name>_<i:04d>.png -> mask_type`` of MFR2's ``mfr2_labels.txt`` (module format)."""
    path = Path(path)
    out: dict[str, str] = {}
    for line, fields in iter_fields(path, sep=","):
        expect_columns(path, line, fields, 3, "Name, i, mask_type")
        number = parse_int(path, line, fields[1], "image number", minimum=1)
        if not fields[0] or not fields[2]:
            raise FacebenchError(f"{where(path, line)}: empty name or mask type")
        out[f"{fields[0]}/{fields[0]}_{number:04d}.png"] = fields[2]
    if not out:
        raise FacebenchError(f"{path}: no labels")
    return out


def masked(mask_type: str) -> str:
    """``unmasked`` for a mask type in `UNMASKED_VALUES` (case, spaces, ``_`` and ``-`` ignored), else ``masked``."""
    return "unmasked" if re.sub(r"[\s_-]", "", mask_type.lower()) in UNMASKED_VALUES else "masked"


def match_images(
    table: Mapping[str, T], paths: Sequence[str], identities: Sequence[str] | None, what: str
) -> tuple[list[T | None], int]:
    """The value of each image under the module's matching rule (None where no key matches) and how many
    images matched by identity. ``what`` names the file in errors."""
    out: list[T | None] = []
    by_identity = 0
    for k, p in enumerate(paths):
        parts = os.path.normpath(p).replace("\\", "/").split("/")
        value = None
        for depth in (1, 2, 3):
            key = "/".join(parts[-depth:])
            if key in table:
                value = table[key]
                break
        if value is None and identities is not None and identities[k] in table:
            value = table[identities[k]]
            by_identity += 1
        out.append(value)
    if all(v is None for v in out):
        raise FacebenchError(
            f"{what}: no key matches an image of the benchmark (keys are paths relative to the image folder, "
            f"e.g. {'/'.join(os.path.normpath(paths[0]).split(os.sep)[-2:])!r}, or identity names)"
        )
    return out, by_identity
