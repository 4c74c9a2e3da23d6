"""Readers for the audit's inputs: identity -> name maps and benchmark identity files.

Name map (``--names``), one identity per line, any of:

- ``<id>\\t<name>[\\t...]``: a tab separates id and name (MS-Celeb-1M ``Top1M_MidList.Name.tsv``:
  ``m.0107_f\\t"Rachel Dratch"@en``);
- ``<id>, "<name>", ...``: CSV when the first field ends with a comma (VGGFace2 ``identity_meta.csv``);
- ``<id> <name>``: first whitespace-separated field, then the rest of the line (CASIA-WebFace
  ``names.txt``: ``0000045 Bruce_Lee``).

A name in double quotes is unquoted; a ``@lang`` tag after the closing quote is read and, with
``langs``, filters the names. An id may appear on several lines (aliases); all its names are used. A
first line whose id field is a header word (``Class_ID``, ``id``, ``mid``, ...) is skipped.

Benchmark identities (``--benchmark NAME=PATH``), by what PATH is:

- a folder: one sub-folder per identity (the LFW image tree); images are the files with an image suffix,
  sorted, in sorted folders;
- a ``.json`` file: the MegaFace devkit ``facescrub_features_list.json`` (``{"path": [...], "id": [...]}``),
  identities = ``id`` values (the first path component when ``id`` is absent), images = ``path`` in order;
- a text file whose lines are ``<name><TAB or space><count>``: the LFW names file (``lfw-names.txt``);
  images are ``<name>/<name>_<k:04d>.jpg`` for k = 1..count, in file order (the LFW image tree's names);
- any other text file: one identity name per line (whole line).

A benchmark's image order is the order a ``--benchmark-features NAME=FILE.npy`` file must follow.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import FacebenchError
from facebench.atomic import sha256_file
from facebench.io.textlines import open_text, read_text
from facebench.overlap.listing import IMAGE_SUFFIXES
from facebench.io.textdoc import parse_json

HEADER_IDS = frozenset({"class_id", "classid", "id", "mid", "identity", "class", "label"})
_LANG_NAME = re.compile(r'^"(.*)"@([A-Za-z][A-Za-z0-9-]*)$')


def _clean_name(text: str) -> tuple[str, str | None]:
    text = text.strip()
    m = _LANG_NAME.match(text)
    if m:
        return m.group(1).strip(), m.group(2).lower()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].strip(), None
    return text, None


def read_name_map(
    path: str | Path,
    wanted: set[str] | None = None,
    langs: set[str] | None = None,
) -> dict[str, list[str]]:
    """``{identity: [names...]}`` from a name map (formats in the module docstring).

    ``wanted`` keeps only those identities (a 3.5M-line MS-Celeb map read for 87K identities);
    ``langs`` keeps names tagged with one of those languages (untagged names are always kept).
    """
    path = Path(path)
    out: dict[str, list[str]] = {}
    try:
        handle = open_text(path, "name map", errors="replace", newline="")
    except OSError as exc:
        raise FacebenchError(f"{path}: cannot read the name map: {exc.strerror or exc}") from exc
    first = True
    with handle:
        for line_no, line in enumerate(handle, 1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            if "\t" in text:
                ident, _, rest = text.partition("\t")
                raw_name = rest.split("\t", 1)[0]
            else:
                head = text.split(None, 1)
                if head[0].endswith(",") or (len(head) > 1 and head[1].startswith(",")):
                    row = next(csv.reader([text], skipinitialspace=True))
                    if len(row) < 2:
                        raise FacebenchError(f"{path} line {line_no}: expected '<id>, <name>, ...'")
                    ident, raw_name = row[0], row[1]
                elif len(head) == 2:
                    ident, raw_name = head
                else:
                    raise FacebenchError(f"{path} line {line_no}: expected '<id> <name>', got one field")
            ident = ident.strip()
            if first:
                first = False
                if ident.lower() in HEADER_IDS:
                    continue
            if wanted is not None and ident not in wanted:
                continue
            name, lang = _clean_name(raw_name)
            if not name or (langs is not None and lang is not None and lang not in langs):
                continue
            names = out.setdefault(ident, [])
            if name not in names:
                names.append(name)
    return out


@dataclass
class BenchmarkIdentities:
    """One benchmark's identities and, when the file lists them, its images in feature-row order."""

    name: str
    source: Path
    format: str
    identities: list[str]
    image_paths: list[str] | None = None
    image_identity: np.ndarray | None = None
    sha256: str | None = None

    @property
    def has_images(self) -> bool:
        return self.image_paths is not None


def _tree(name: str, root: Path) -> BenchmarkIdentities:
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise FacebenchError(f"benchmark {name}: {root} has no identity folders")
    paths: list[str] = []
    owner: list[int] = []
    for j, folder in enumerate(folders):
        files = sorted(
            p.name for p in (root / folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        paths.extend(f"{folder}/{f}" for f in files)
        owner.extend([j] * len(files))
    return BenchmarkIdentities(name, root, "image-tree", folders, paths, np.asarray(owner, dtype=np.int64))


def _devkit_json(name: str, path: Path) -> BenchmarkIdentities:
    try:
        data = parse_json(read_text(path, "devkit JSON list", errors="strict"), str(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FacebenchError(f"benchmark {name}: {path} is not a readable JSON list ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("path"), list):
        raise FacebenchError(
            f"benchmark {name}: {path}: expected the MegaFace devkit form {{\"path\": [...], \"id\": [...]}}"
        )
    paths = [str(p) for p in data["path"]]
    ids = data.get("id")
    if ids is None:
        ids = [p.split("/", 1)[0] for p in paths]
    elif not isinstance(ids, list) or len(ids) != len(paths):
        raise FacebenchError(
            f"benchmark {name}: {path}: 'id' has {len(ids) if isinstance(ids, list) else 'no'} entries "
            f"for {len(paths)} paths"
        )
    index: dict[str, int] = {}
    owner = np.fromiter((index.setdefault(str(i), len(index)) for i in ids), dtype=np.int64, count=len(ids))
    return BenchmarkIdentities(name, path, "devkit-json", list(index), paths, owner, sha256_file(path))


def _text(name: str, path: Path) -> BenchmarkIdentities:
    try:
        lines = read_text(path, "identity list", errors="replace").splitlines()
    except OSError as exc:
        raise FacebenchError(f"benchmark {name}: cannot read {path}: {exc.strerror or exc}") from exc
    rows = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise FacebenchError(f"benchmark {name}: {path} lists no identities")
    split = [text.rsplit(None, 1) for _, text in rows]
    if all(len(s) == 2 and s[1].isdigit() for s in split):
        identities, paths, owner, seen = [], [], [], {}
        for (line_no, _), (ident, count) in zip(rows, split):
            if ident in seen:
                raise FacebenchError(f"{path} line {line_no}: {ident} is listed twice (first at line {seen[ident]})")
            seen[ident] = line_no
            j = len(identities)
            identities.append(ident)
            paths.extend(f"{ident}/{ident}_{k:04d}.jpg" for k in range(1, int(count) + 1))
            owner.extend([j] * int(count))
        return BenchmarkIdentities(
            name, path, "lfw-names", identities, paths, np.asarray(owner, dtype=np.int64), sha256_file(path)
        )
    identities = list(dict.fromkeys(text for _, text in rows))
    return BenchmarkIdentities(name, path, "names", identities, sha256=sha256_file(path))


def read_benchmark(name: str, path: str | Path) -> BenchmarkIdentities:
    """The identities (and images, when listed) of benchmark ``name`` from ``path`` (rules in the module doc)."""
    path = Path(path)
    if path.is_dir():
        return _tree(name, path)
    if not path.is_file():
        raise FacebenchError(f"benchmark {name}: {path} does not exist")
    if path.suffix.lower() == ".json":
        return _devkit_json(name, path)
    return _text(name, path)
