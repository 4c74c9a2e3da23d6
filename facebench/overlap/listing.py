"""Training-set listings: which images belong to which identity, read in one streaming pass.

Four kinds (``--kind`` forces one; otherwise the rule below decides):

- ``lmk``: DeepGlint ``msra_lmk`` / insightface ``*_lmk`` lines ``<dir>/<file> <label> x1 y1 ... x5 y5``
  (12 whitespace-separated fields);
- ``pathlabel``: ``<dir>/<file> <label>`` (2 fields), e.g. FaceX-Zoo's and insightface's train lists;
- ``mids``: one identity per line (1 field, no ``/``), e.g. a list of MIDs;
- ``dir``: a folder holding one sub-folder per identity; the images are the files in it whose suffix is
  one of ``IMAGE_SUFFIXES``, sorted by name (folders sorted by name too; names starting with ``.`` and
  files lying directly in the folder are ignored).

Detection rule: a folder is ``dir``; for a file, the first non-blank line decides: 12 fields -> ``lmk``,
2 -> ``pathlabel``, 1 without ``/`` -> ``mids``; anything else is an error asking for ``--kind``.
Every later data line must have the same number of fields. Blank lines are ignored.

Identity of a row: the name of the folder holding the image (the last directory component of the path);
a path with no folder takes its label as identity (``identity="any"`` only). For ``lmk``/``pathlabel``
the label must be one non-negative integer per identity and one identity per label.

Rows: every data line is one row (duplicates included), in file order; a features file for the listing
has one row per data line. A line repeating an earlier line's path with the same fields is a duplicate:
reported as a warning and left out of every list written; the same path with other fields is an error.
Duplicates are found without keeping the paths in memory: a 64-bit hash per row is sorted, and only the
paths whose hash repeats are compared in a second read.
"""

from __future__ import annotations

import array
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from facebench.errors import FacebenchError
from facebench.io.textlines import skip_bom
from facebench.overlap.whitelists import is_mid
from facebench.registry import Registry

ListingKind = Literal["lmk", "pathlabel", "mids", "dir"]
IdentityRule = Literal["mid", "any"]

FIELDS: dict[str, int] = {"lmk": 12, "pathlabel": 2, "mids": 1}
LISTING_KINDS: Registry[str] = Registry("listing kind", [
    ("lmk", "<dir>/<file> <label> x1 y1 ... x5 y5"),
    ("pathlabel", "<dir>/<file> <label>"),
    ("mids", "<identity>"),
    ("dir", "one folder per identity"),
])
"""Listing kind -> the form of its rows."""
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
NO_LABEL = -1


@dataclass
class Listing:
    """The identities of a training listing, read and validated; rows are not kept, only counted.

    ``classes[i]`` is identity ``i`` in order of first appearance, ``labels[i]`` its label in the listing
    (``None`` for kinds without labels) and ``first_lines[i]`` the line it first appears on (``0`` for a
    folder). ``row_class`` (when asked for) gives each row's identity index. ``dropped_lines`` are the
    duplicate lines left out of every list written.
    """

    source: Path
    kind: str
    identity: str
    classes: list[str]
    labels: list[int] | None
    first_lines: list[int]
    n_rows: int
    dropped_lines: frozenset[int] = frozenset()
    warnings: list[str] = field(default_factory=list)
    row_class: np.ndarray | None = None
    dir_keys: dict[bytes, int] = field(default_factory=dict, repr=False)

    @property
    def has_paths(self) -> bool:
        """True when the listing names image files (every kind but ``mids``)."""
        return self.kind != "mids"

    @property
    def has_labels(self) -> bool:
        """True when the listing gives a label per identity (``lmk`` and ``pathlabel``)."""
        return self.labels is not None

    def where(self, line: int) -> str:
        """``source line N`` (or just the source for a folder)."""
        return f"{self.source} line {line}" if line else str(self.source)


def detect_kind(path: str | Path) -> str:
    """The listing kind by the rule in the module docstring; an error when the first line fits none."""
    path = Path(path)
    if path.is_dir():
        return "dir"
    try:
        with open(path, "rb") as handle:
            skip_bom(handle)
            for line_no, line in enumerate(handle, 1):
                parts = line.split()
                if not parts:
                    continue
                n = len(parts)
                if n == 12:
                    return "lmk"
                if n == 2:
                    return "pathlabel"
                if n == 1 and b"/" not in parts[0]:
                    return "mids"
                raise FacebenchError(
                    f"{path} line {line_no}: cannot tell the listing kind from {n} field(s); expected 12 "
                    f"(lmk: {LISTING_KINDS['lmk']}), 2 (pathlabel: {LISTING_KINDS['pathlabel']}) or 1 (mids: "
                    "one identity per line); force one with --kind"
                )
    except OSError as exc:
        raise FacebenchError(f"{path}: cannot read the listing: {exc.strerror or exc}") from exc
    raise FacebenchError(f"{path}: the listing is empty")


def read_listing(
    path: str | Path,
    kind: str | None = None,
    *,
    identity: IdentityRule = "mid",
    with_rows: bool = False,
) -> Listing:
    """Read and validate a listing in one streaming pass (two when duplicate paths must be resolved).

    ``identity="mid"`` requires every identity to be a Freebase MID (v1c-R); ``"any"`` accepts any
    folder name, or the label for paths without a folder. ``with_rows`` also records each row's identity
    index (4 bytes a row). Errors name the file and line; nothing is returned half-read.
    """
    path = Path(path)
    if not path.exists():
        raise FacebenchError(f"{path}: no such listing file or folder")
    kind = kind or detect_kind(path)
    LISTING_KINDS.check(kind)
    if kind == "dir":
        if not path.is_dir():
            raise FacebenchError(f"{path}: --kind dir needs a folder with one sub-folder per identity")
        return _read_dir(path, identity, with_rows)
    if path.is_dir():
        raise FacebenchError(f"{path}: is a folder; a {kind} listing is a file ({LISTING_KINDS[kind]})")
    try:
        if kind == "mids":
            return _read_ids(path, identity, with_rows)
        return _read_paths(path, kind, identity, with_rows)
    except OSError as exc:
        raise FacebenchError(f"{path}: cannot read the listing: {exc.strerror or exc}") from exc


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _check_identity(name: str, identity: str, where: str) -> None:
    if identity == "mid" and not is_mid(name):
        raise FacebenchError(f"{where}: identity {name[:60]!r} is not a Freebase MID (m.0...)")


def _parse_label(token: bytes, where: str) -> int:
    if token.isdigit():
        return int(token)
    raise FacebenchError(f"{where}: label {_decode(token)[:30]!r} is not a non-negative integer")


def _read_ids(path: Path, identity: str, with_rows: bool) -> Listing:
    index: dict[str, int] = {}
    classes: list[str] = []
    first_lines: list[int] = []
    dropped: list[int] = []
    rows = array.array("i")
    with open(path, "rb") as handle:
        skip_bom(handle)
        for line_no, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 1:
                raise FacebenchError(
                    f"{path} line {line_no}: expected 1 field (one identity per line), got {len(parts)}"
                )
            name = _decode(parts[0])
            ci = index.get(name)
            if ci is None:
                if "/" in name:
                    raise FacebenchError(f"{path} line {line_no}: {name[:60]!r} is a path, not an identity")
                _check_identity(name, identity, f"{path} line {line_no}")
                ci = index[name] = len(classes)
                classes.append(name)
                first_lines.append(line_no)
            else:
                dropped.append(line_no)
            rows.append(ci)
    if not classes:
        raise FacebenchError(f"{path}: the listing holds no identities")
    warnings = []
    if dropped:
        warnings.append(
            f"{path}: {len(dropped)} duplicate identity line(s) ignored (first: line {dropped[0]})"
        )
    return Listing(
        source=path,
        kind="mids",
        identity=identity,
        classes=classes,
        labels=None,
        first_lines=first_lines,
        n_rows=len(rows),
        dropped_lines=frozenset(dropped),
        warnings=warnings,
        row_class=np.frombuffer(rows, dtype=np.int32).copy() if with_rows else None,
    )


def _read_paths(path: Path, kind: str, identity: str, with_rows: bool) -> Listing:
    n_fields = FIELDS[kind]
    check_numbers = kind == "lmk"
    dir_keys: dict[bytes, int] = {}
    by_name: dict[str, int] = {}
    classes: list[str] = []
    labels: list[int] = []
    label_tokens: list[bytes] = []
    first_lines: list[int] = []
    hashes = array.array("q")
    rows = array.array("i")
    line_no = 0

    def new_class(key: bytes, parts: list[bytes], line_no: int) -> int:
        where = f"{path} line {line_no}"
        label = _parse_label(parts[1], where)
        if key[:1] == b"\0":
            if identity == "mid":
                raise FacebenchError(
                    f"{where}: path {_decode(parts[0])[:80]!r} has no identity folder (<MID>/<file>)"
                )
            name = str(label)
        else:
            folder = key.rstrip(b"/")
            name = _decode(folder[folder.rfind(b"/") + 1 :])
            if not name:
                raise FacebenchError(f"{where}: path {_decode(parts[0])[:80]!r} has an empty identity folder")
            _check_identity(name, identity, where)
        ci = by_name.get(name)
        if ci is None:
            ci = by_name[name] = len(classes)
            classes.append(name)
            labels.append(label)
            label_tokens.append(parts[1])
            first_lines.append(line_no)
        elif labels[ci] != label:
            raise _label_conflict(path, line_no, classes[ci], label, labels[ci], first_lines[ci])
        dir_keys[key] = ci
        return ci

    get_class = dir_keys.get
    add_hash = hashes.append
    add_row = rows.append if with_rows else None
    with open(path, "rb") as handle:
        skip_bom(handle)
        for line_no, line in enumerate(handle, 1):
            parts = line.split()
            if len(parts) != n_fields:
                if not parts:
                    continue
                raise FacebenchError(
                    f"{path} line {line_no}: expected {n_fields} fields ({LISTING_KINDS[kind]}), got "
                    f"{len(parts)}"
                )
            image = parts[0]
            cut = image.rfind(b"/")
            key = image[:cut] if cut > 0 else b"\0" + parts[1]
            ci = get_class(key)
            if ci is None:
                ci = new_class(key, parts, line_no)
            elif parts[1] != label_tokens[ci]:
                label = _parse_label(parts[1], f"{path} line {line_no}")
                if label != labels[ci]:
                    raise _label_conflict(path, line_no, classes[ci], label, labels[ci], first_lines[ci])
            if check_numbers:
                try:
                    for token in parts[2:]:
                        float(token)
                except ValueError:
                    raise _bad_number(path, line_no, parts) from None
            add_hash(hash(image))
            if add_row is not None:
                add_row(ci)
    if not classes:
        raise FacebenchError(f"{path}: the listing holds no images")
    owner: dict[int, int] = {}
    for ci, label in enumerate(labels):
        other = owner.setdefault(label, ci)
        if other != ci:
            raise FacebenchError(
                f"{path} line {first_lines[ci]}: label {label} of {classes[ci]} is already the label of "
                f"{classes[other]} (line {first_lines[other]}); each identity needs its own label"
            )
    dropped, warnings = _resolve_duplicates(path, hashes)
    return Listing(
        source=path,
        kind=kind,
        identity=identity,
        classes=classes,
        labels=labels,
        first_lines=first_lines,
        n_rows=len(hashes),
        dropped_lines=dropped,
        warnings=warnings,
        row_class=np.frombuffer(rows, dtype=np.int32).copy() if with_rows else None,
        dir_keys=dir_keys,
    )


def _bad_number(path: Path, line_no: int, parts: list[bytes]) -> FacebenchError:
    for k, token in enumerate(parts[2:], 3):
        try:
            float(token)
        except ValueError:
            return FacebenchError(
                f"{path} line {line_no} field {k}: landmark {_decode(token)[:30]!r} is not a number"
            )
    return FacebenchError(f"{path} line {line_no}: malformed landmarks")


def _label_conflict(path: Path, line_no: int, name: str, label: int, first: int, first_line: int) -> FacebenchError:
    return FacebenchError(
        f"{path} line {line_no}: {name} has label {label} here but label {first} at line {first_line}; "
        "each identity needs one label"
    )


def _resolve_duplicates(path: Path, hashes: array.array) -> tuple[frozenset[int], list[str]]:
    """Lines repeating an earlier line's path: dropped when identical, an error when the fields differ."""
    h = np.frombuffer(hashes, dtype=np.int64)
    if h.size < 2:
        return frozenset(), []
    s = np.sort(h)
    repeated = s[1:][s[1:] == s[:-1]]
    if repeated.size == 0:
        return frozenset(), []
    suspects = set(np.unique(repeated).tolist())
    seen: dict[bytes, tuple[int, list[bytes]]] = {}
    dropped: list[int] = []
    first_pair: tuple[int, int] | None = None
    with open(path, "rb") as handle:
        skip_bom(handle)
        for line_no, line in enumerate(handle, 1):
            parts = line.split()
            if not parts or hash(parts[0]) not in suspects:
                continue
            earlier = seen.get(parts[0])
            if earlier is None:
                seen[parts[0]] = (line_no, parts)
            elif earlier[1] == parts:
                dropped.append(line_no)
                first_pair = first_pair or (line_no, earlier[0])
            else:
                raise FacebenchError(
                    f"{path} line {line_no}: {_decode(parts[0])[:80]!r} was already listed at line "
                    f"{earlier[0]} with other fields; remove one of the two lines"
                )
    if first_pair is None:
        return frozenset(), []
    return frozenset(dropped), [
        f"{path}: {len(dropped)} duplicate line(s) left out (same path and fields as an earlier line; "
        f"first: line {first_pair[0]} repeats line {first_pair[1]})"
    ]


def _image_files(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(
            e.name
            for e in entries
            if not e.name.startswith(".") and e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file()
        )


def _identity_folders(root: Path) -> list[str]:
    with os.scandir(root) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def _read_dir(root: Path, identity: str, with_rows: bool) -> Listing:
    classes = _identity_folders(root)
    if not classes:
        raise FacebenchError(f"{root}: no identity folders in it")
    rows = array.array("i")
    n_rows = 0
    empty: list[str] = []
    for ci, name in enumerate(classes):
        _check_identity(name, identity, f"{root}/{name}")
        n = len(_image_files(root / name))
        if n == 0:
            empty.append(name)
        n_rows += n
        if with_rows:
            rows.extend([ci] * n)
    warnings = []
    if empty:
        warnings.append(
            f"{root}: {len(empty)} identity folder(s) hold no images ({', '.join(empty[:5])}"
            f"{', ...' if len(empty) > 5 else ''}); they count as identities"
        )
    return Listing(
        source=root,
        kind="dir",
        identity=identity,
        classes=classes,
        labels=None,
        first_lines=[0] * len(classes),
        n_rows=n_rows,
        warnings=warnings,
        row_class=np.frombuffer(rows, dtype=np.int32).copy() if with_rows else None,
    )


def iter_rows(listing: Listing, fields: bool = False) -> Iterator[tuple[int, bytes, list[bytes], int]]:
    """Second pass: ``(row, path, parts, identity index)`` for every row but the dropped duplicates.

    ``row`` counts every data line (duplicates included), matching a features file's rows. ``parts`` are
    the line's whitespace-separated fields when ``fields`` is true, else only path, label and the rest
    of the line (cheaper); for ``dir`` it is the relative path alone.
    """
    if listing.kind == "dir":
        row = 0
        for ci, name in enumerate(listing.classes):
            for file_name in _image_files(listing.source / name):
                rel = f"{name}/{file_name}".encode("utf-8", errors="surrogateescape")
                yield row, rel, [rel], ci
                row += 1
        return
    if listing.kind == "mids":
        raise ValueError("a mids listing has no image rows")
    keys = listing.dir_keys
    dropped = listing.dropped_lines
    maxsplit = -1 if fields else 2
    row = 0
    with open(listing.source, "rb") as handle:
        skip_bom(handle)
        for line_no, line in enumerate(handle, 1):
            parts = line.split(None, maxsplit)
            if not parts:
                continue
            if line_no not in dropped:
                image = parts[0]
                cut = image.rfind(b"/")
                yield row, image, parts, keys[image[:cut] if cut > 0 else b"\0" + parts[1]]
            row += 1
