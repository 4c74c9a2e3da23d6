"""IJB-B / IJB-C meta files in the insightface testsuite layout: read and write.

Layout under a root (``P`` = ``IJBB``/``IJBC``, ``p`` = ``ijbb``/``ijbc``)::

    P/loose_crop/<image>                 the crops the landmarks refer to
    P/meta/p_face_tid_mid.txt            "image template_id media_id"            (one line per image)
    P/meta/p_name_5pts_score.txt         "image x1 y1 ... x5 y5 detector_score"  (same rows, same order)
    P/meta/p_template_pair_label.txt     "template_id template_id label"         (label 1 genuine, 0 impostor)
    P/meta/p_1N_gallery_G1.csv, _G2.csv  (IJB-B: _S1.csv, _S2.csv)  1:N galleries
    P/meta/p_1N_probe_mixed.csv          1:N probes

The three ``.txt`` files are space separated without a header; the landmark points are the left eye, right
eye, nose, left and right mouth corners as seen in the image. The 1:N files are comma separated with a
header naming at least ``TEMPLATE_ID`` and ``SUBJECT_ID``; one row per image, template ids repeat.

Reading: the large ``.txt`` files are memory-mapped and parsed by pyarrow's multi-threaded CSV reader with
explicit column types, fields separated by single spaces (a 15.6M-line pair list in about 0.35 s on 2
cores), in pieces so that its working memory stays small, while a thread computes the sha256 of the same
bytes. A file the fast reader refuses (other whitespace, out-of-range or malformed fields) is parsed by
pandas' C reader (any whitespace), with the same result for any file both accept; when that fails too,
the file is scanned line by line to report the first bad line (``<file> line N: ...``). The 1:N files
are read with the :mod:`csv` module, every row checked. Every reader returns the sha256 of the bytes it
parsed. Writing: :func:`write_ijb` produces the whole layout byte for byte (``\\n`` line ends, single
spaces, fixed decimals) through pyarrow's CSV writer (``bench/bench_ijb_writer.py``: the same bytes as the
former numpy formatter for less CPU), so that an IJB-C-sized set (15.6M pair lines) is written in seconds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import mmap
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facebench.errors import FacebenchError, where
from facebench.atomic import atomic_open
from facebench.extraction.images import ImageList
from facebench.io.tablecache import Converters as _Converters
from facebench.io.tablecache import TableCache, TableWriter
from facebench.io.textlines import expect_columns, parse_float, parse_int, without_bom
from facebench.registry import Registry

if TYPE_CHECKING:
    import pyarrow as pa

PREFIXES: Registry[str] = Registry("IJB prefix", [
    ("ijbb", "IJBB"),
    ("ijbc", "IJBC"),
])
"""File prefix -> top directory of the testsuite layout."""

GALLERIES: dict[str, tuple[str, str]] = {"ijbb": ("S1", "S2"), "ijbc": ("G1", "G2")}
"""The two 1:N gallery names of each set."""

SEARCH_HEADER = (
    "TEMPLATE_ID", "SUBJECT_ID", "FILENAME", "SIGHTING_ID", "FACE_X", "FACE_Y", "FACE_WIDTH", "FACE_HEIGHT"
)
"""Columns :func:`write_search_set` writes (the Janus protocol CSV columns); readers need only the first two."""

_LANDMARK_COLUMNS = ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4", "x5", "y5")


def layout(root: str | Path, prefix: str) -> dict[str, Path]:
    """Role -> path of every file of the layout for ``prefix`` (``ijbb`` or ``ijbc``) under ``root``.

    Roles: ``images`` (the loose_crop directory), ``tid_mid``, ``landmarks``, ``pairs``, ``gallery1``,
    ``gallery2``, ``probes`` (the roles of ``protocols/ijb*.toml``).
    """
    prefix = PREFIXES.check(prefix)
    top = Path(root) / PREFIXES[prefix]
    meta = top / "meta"
    g1, g2 = GALLERIES[prefix]
    return {
        "images": top / "loose_crop",
        "tid_mid": meta / f"{prefix}_face_tid_mid.txt",
        "landmarks": meta / f"{prefix}_name_5pts_score.txt",
        "pairs": meta / f"{prefix}_template_pair_label.txt",
        "gallery1": meta / f"{prefix}_1N_gallery_{g1}.csv",
        "gallery2": meta / f"{prefix}_1N_gallery_{g2}.csv",
        "probes": meta / f"{prefix}_1N_probe_mixed.csv",
    }


# --------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class MetaImages:
    """The image list of a set: row i of ``face_tid_mid`` and of ``name_5pts_score`` (the same image).

    ``names`` are paths relative to ``loose_crop``; ``landmarks`` is ``(N, 5, 2)`` pixels of the crop;
    ``scores`` the detector scores. ``inputs`` maps each file read to its sha256.
    """

    names: np.ndarray
    templates: np.ndarray
    medias: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray
    inputs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.names)
        shapes = {
            "templates": np.shape(self.templates),
            "medias": np.shape(self.medias),
            "scores": np.shape(self.scores),
        }
        for name, shape in shapes.items():
            if shape != (n,):
                raise ValueError(f"MetaImages.{name} must have shape ({n},), got {shape}")
        if np.shape(self.landmarks) != (n, 5, 2):
            raise ValueError(f"MetaImages.landmarks must have shape ({n}, 5, 2), got {np.shape(self.landmarks)}")

    def __len__(self) -> int:
        return len(self.names)

    def image_list(self, image_dir: str | Path, origin: str) -> ImageList:
        """The images as an :class:`ImageList` (files under ``image_dir``, landmarks and detector scores)."""
        return ImageList(
            origin,
            paths=JoinedPaths(str(image_dir), self.names),
            landmarks=np.asarray(self.landmarks, dtype=np.float64),
            scores=np.asarray(self.scores, dtype=np.float64),
            crops=False,
        )


class JoinedPaths(Sequence):
    """``image_dir/name`` for each name, made on access (an IJB-C list is 469,375 paths)."""

    def __init__(self, image_dir: str, names: np.ndarray) -> None:
        self.base = image_dir.rstrip("/") + "/"
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self.base + name for name in self.names[i].tolist()]
        return self.base + self.names[i]


@dataclass(frozen=True)
class TemplatePairs:
    """The 1:1 pair list: template ids ``t1``, ``t2`` and ``label`` (True = genuine), in file order; with
    ``rows`` True, ``t1`` and ``t2`` hold the templates' rows instead (see :func:`read_template_pairs`)."""

    t1: np.ndarray
    t2: np.ndarray
    label: np.ndarray
    sha256: str = ""
    path: str = ""
    rows: bool = False

    def __len__(self) -> int:
        return len(self.label)


@dataclass(frozen=True)
class SearchSet:
    """A 1:N gallery or probe file: one row per image (``templates``, ``subjects``; ``filenames`` when the
    file has a FILENAME column), with ``lines`` the 1-based line number of each row."""

    templates: np.ndarray
    subjects: np.ndarray
    filenames: np.ndarray | None = None
    lines: np.ndarray | None = None
    sha256: str = ""
    path: str = ""

    def template_subjects(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted unique template ids, the subject of each). A template listed under two subjects is an
        error naming both lines."""
        order = np.argsort(self.templates, kind="stable")
        t, s = self.templates[order], self.subjects[order]
        first = np.r_[True, t[1:] != t[:-1]]
        group = np.cumsum(first) - 1
        starts = np.flatnonzero(first)
        conflict = np.flatnonzero(s != s[starts][group])
        if conflict.size:
            k = order[conflict[0]]
            j = order[starts[group[conflict[0]]]]
            raise FacebenchError(
                f"{where(self.path, self.line(k))}: template {self.templates[k]} has subject {self.subjects[k]}, "
                f"but line {self.line(j)} gives it subject {self.subjects[j]}"
            )
        return t[starts], s[starts]

    def line(self, row: int) -> int:
        """1-based line number of row ``row`` (0-based) in the file."""
        return int(self.lines[row]) if self.lines is not None else row + 2


# ------------------------------------------------------------------------------------------ reading


def read_face_tid_mid(
    path: str | Path, cache: TableCache | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(names, template ids, media ids, sha256)`` of a ``*_face_tid_mid.txt`` file (ids int64); ``cache``
    keeps the parsed columns by content (:mod:`facebench.io.tablecache`), as in every reader here."""
    (names, templates, medias), digest = _read_table(
        path, [("image", "str"), ("template_id", "int"), ("media_id", "int")], cache=cache
    )
    return names, templates, medias, digest


def read_name_5pts_score(
    path: str | Path, cache: TableCache | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(names, landmarks (N, 5, 2), detector scores, sha256)`` of a ``*_name_5pts_score.txt`` file.

    Every number must be finite and every detector score >= 0 (it multiplies the image's feature: a
    negative one would flip it).
    """
    columns = [("image", "str")] + [(c, "float") for c in _LANDMARK_COLUMNS] + [("detector_score", "float")]
    parsed, digest = _read_table(path, columns, cache=cache)
    points = np.stack(parsed[1:11], axis=1)
    scores = np.ascontiguousarray(parsed[11])
    for values, first in ((points, 1), (scores[:, None], 11)):
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise FacebenchError(
                f"{where(path, line_of_row(path, row))}: expected a finite number for {columns[first + col][0]}, "
                f"got {values[row, col]!r}"
            )
    negative = np.flatnonzero(scores < 0)
    if negative.size:
        row = int(negative[0])
        raise FacebenchError(
            f"{where(path, line_of_row(path, row))}: detector_score {float(scores[row])!r} is negative (image "
            f"{parsed[0][row]}); scores weight image features and must be >= 0"
        )
    return parsed[0], points.reshape(-1, 5, 2), scores, digest


def read_meta_images(tid_mid: str | Path, landmarks: str | Path, cache: TableCache | None = None) -> MetaImages:
    """Both image files of a set, checked to list the same images in the same order."""
    return meta_images(tid_mid, read_face_tid_mid(tid_mid, cache), landmarks, cache)


def meta_images(
    tid_mid: str | Path,
    face_tid_mid: tuple[np.ndarray, np.ndarray, np.ndarray, str],
    landmarks: str | Path,
    cache: TableCache | None = None,
) -> MetaImages:
    """:func:`read_meta_images` from the :func:`read_face_tid_mid` result of ``tid_mid`` already in hand (the
    template ids, which map a pair list to template rows, are known before the landmark file is read)."""
    names, templates, medias, digest_t = face_tid_mid
    names2, points, scores, digest_l = read_name_5pts_score(landmarks, cache)
    if len(names) != len(names2):
        raise FacebenchError(
            f"{landmarks}: has {len(names2)} images but {tid_mid} has {len(names)}; row i of both files must be "
            "the same image"
        )
    differ = np.flatnonzero(names != names2)
    if differ.size:
        row = int(differ[0])
        raise FacebenchError(
            f"{where(landmarks, line_of_row(landmarks, row))}: image {names2[row]!r}, but "
            f"{where(tid_mid, line_of_row(tid_mid, row))} has {names[row]!r}; row i of both "
            "files must be the same image"
        )
    return MetaImages(
        names=names,
        templates=templates,
        medias=medias,
        landmarks=points,
        scores=scores,
        inputs={Path(tid_mid).name: digest_t, Path(landmarks).name: digest_l},
    )


def read_template_pairs(
    path: str | Path,
    to_rows: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    image_list: str | Path = "",
    cache: TableCache | None = None,
) -> TemplatePairs:
    """A ``*_template_pair_label.txt`` file; labels must be 0 or 1. Template ids are int32 when they all
    fit (an IJB-C list is 15.6M lines), else int64.

    With ``to_rows`` (ids -> (row of each id, mask of the known ids), e.g. the templates of the image list
    ``image_list``), ``t1`` and ``t2`` are those rows instead (``rows`` True), mapped piece by piece while
    the file is parsed, so that the id columns of the whole list are never held; an unknown id is an
    error naming its line.
    """
    columns = [("template_id_1", "int32"), ("template_id_2", "int32"), ("label", "int8")]

    def rows_or_minus_one(ids: np.ndarray) -> np.ndarray:  # -1 marks an unknown id, found after the parse
        rows, known = to_rows(ids)  # type: ignore[misc]
        return rows if known.all() else np.where(known, rows, -1).astype(rows.dtype)

    convert = {0: rows_or_minus_one, 1: rows_or_minus_one} if to_rows is not None else None
    (t1, t2, label), digest = _read_table(path, columns, convert, cache)
    bad = np.flatnonzero((label != 0) & (label != 1))
    if bad.size:
        row = int(bad[0])
        raise FacebenchError(f"{where(path, line_of_row(path, row))}: label must be 0 or 1, got {label[row]}")
    for column, rows in enumerate((t1, t2) if to_rows is not None else ()):
        if rows.size and rows.min() < 0:
            row = int(np.flatnonzero(rows < 0)[0])
            number, text = next(line for k, line in enumerate(_iter_lines(_read_bytes(path)[0])) if k == row)
            raise FacebenchError(
                f"{where(path, number)}: template {text.split()[column]} is not in {image_list} (no image belongs "
                "to it); the pair list and the image list are from different sets"
            )
    label = label.view(bool) if label.dtype == np.int8 else label == 1  # (0/1 bytes: valid booleans)
    return TemplatePairs(t1, t2, label, digest, str(path), rows=to_rows is not None)


def read_search_set(path: str | Path) -> SearchSet:
    """A 1:N gallery or probe CSV (header with ``TEMPLATE_ID`` and ``SUBJECT_ID``; other columns are kept
    out). Every row must have the header's number of fields and integer ids."""
    data, digest = _read_bytes(path)
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    templates: list[int] = []
    subjects: list[int] = []
    filenames: list[str] = []
    lines: list[int] = []
    col_t = col_s = col_f = -1
    for row in reader:
        line = reader.line_num
        if not row or all(not f.strip() for f in row):
            continue
        if header is None:
            header = [f.strip().upper() for f in row]
            for needed in ("TEMPLATE_ID", "SUBJECT_ID"):
                if needed not in header:
                    raise FacebenchError(
                        f"{where(path, line)}: the header has no {needed} column (got {','.join(header)}); a 1:N "
                        "file starts with a header such as TEMPLATE_ID,SUBJECT_ID,FILENAME,..."
                    )
            col_t, col_s = header.index("TEMPLATE_ID"), header.index("SUBJECT_ID")
            col_f = header.index("FILENAME") if "FILENAME" in header else -1
            continue
        if len(row) != len(header):
            raise FacebenchError(
                f"{where(path, line)}: expected {len(header)} fields ({','.join(header)}), got {len(row)}: "
                f"{','.join(row)!r}"
            )
        templates.append(parse_int(path, line, row[col_t].strip(), "TEMPLATE_ID"))
        subjects.append(parse_int(path, line, row[col_s].strip(), "SUBJECT_ID"))
        if col_f >= 0:
            filenames.append(row[col_f].strip())
        lines.append(line)
    if header is None:
        raise FacebenchError(f"{path}: empty file; expected a header TEMPLATE_ID,SUBJECT_ID,... and one row per image")
    if not templates:
        raise FacebenchError(f"{path}: a header but no rows")
    return SearchSet(
        templates=np.asarray(templates, dtype=np.int64),
        subjects=np.asarray(subjects, dtype=np.int64),
        filenames=np.asarray(filenames, dtype=object) if col_f >= 0 else None,
        lines=np.asarray(lines, dtype=np.int64),
        sha256=digest,
        path=str(path),
    )


def line_of_row(path: str | Path, row: int) -> int:
    """1-based line number of the ``row``-th non-blank line (0-based) of a headerless list file."""
    return _line_of_row(_read_bytes(path)[0], row)


_Buffer = bytes | mmap.mmap


def _read_bytes(path: str | Path) -> tuple[bytes, str]:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FacebenchError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise FacebenchError(f"{path}: is a directory, expected a list file") from None
    return data, hashlib.sha256(data).hexdigest()


@contextmanager
def _mapped(path: str | Path) -> Iterator[_Buffer]:
    """The file's bytes as a read-only memory map (as bytes when it cannot be mapped, e.g. empty); errors
    name the file."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        raise FacebenchError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise FacebenchError(f"{path}: is a directory, expected a list file") from None
    with handle:
        try:
            view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # empty, or not a regular file (a pipe): read it
            yield handle.read()
            return
        try:
            yield view
        finally:
            try:
                view.close()
            except BufferError:  # a traceback still holds a buffer of it: unmapped when that is released
                pass


def _read_table(
    path: str | Path,
    columns: Sequence[tuple[str, str]],
    convert: _Converters | None = None,
    cache: TableCache | None = None,
) -> tuple[list[np.ndarray], str]:
    """:func:`_parse_table` of the file and its sha256. Without ``cache`` the hash is computed in a thread
    from the same memory map (hashlib releases the GIL), so it costs no extra time; with it the hash comes
    first and keys the parsed columns (:mod:`facebench.io.tablecache`): read back when stored, else parsed,
    stored as they are parsed, and kept when the parse succeeds."""
    with _mapped(path) as data:
        if cache is None:
            with ThreadPoolExecutor(max_workers=1) as pool:
                digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
                parsed = _parse_table(data, path, columns, convert)
                return parsed, digest.result()
        digest = hashlib.sha256(data).hexdigest()
        stored = cache.load(digest, columns, convert)
        if stored is not None:
            return stored, digest
        sink = cache.writer(digest, columns)
        try:
            parsed = _parse_table(data, path, columns, convert, sink)
        except BaseException:
            sink.discard()
            raise
        sink.commit()
        return parsed, digest


def _iter_lines(data: _Buffer) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each non-blank line."""
    text = bytes(data).decode("utf-8-sig", errors="surrogateescape")
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def _line_of_row(data: _Buffer, row: int) -> int:
    for k, (number, _) in enumerate(_iter_lines(data)):
        if k == row:
            return number
    return row + 1


_DTYPES = {"str": object, "int": np.int64, "int32": np.int64, "int8": np.int64, "float": np.float64}
"""Column kind -> dtype of the pandas parse; ``int32``/``int8`` columns are narrowed afterwards when every
value fits (the fast path parses them at that width and refuses a file where one does not)."""


def _parse_table(
    data: _Buffer,
    path: str | Path,
    columns: Sequence[tuple[str, str]],
    convert: _Converters | None = None,
    sink: TableWriter | None = None,
) -> list[np.ndarray]:
    """Whitespace-separated, headerless columns (kinds ``str``, ``int``, ``int32``, ``int8``, ``float``) as
    arrays: ``str`` as objects, ``int`` int64, ``int32``/``int8`` at that width when every value fits (else
    int64), ``float`` float64. Blank lines are skipped.

    Fast path: pyarrow's CSV reader (multi-threaded), fields separated by single spaces. A file it refuses
    is parsed by pandas' C reader (any run of whitespace); any failure there (or a column count other than
    expected) falls back to a line scan that names the first bad line. ``convert`` maps numeric columns
    (piece by piece on the fast path); ``sink`` receives the columns as parsed, before ``convert``.
    """
    data = without_bom(data)
    if re.search(rb"\S", data) is None:
        raise FacebenchError(f"{path}: empty file; expected lines of {' '.join(c for c, _ in columns)}")
    parsed = _parse_arrow(data, columns, convert or {}, sink)
    if parsed is None:
        parsed = _parse_pandas(bytes(data), path, columns)
        if sink is not None:
            sink.reset()  # the fast path may have stored pieces before it refused the file
            for i, ((_, kind), values) in enumerate(zip(columns, parsed)):
                sink.add_text(i, values.tolist()) if kind == "str" else sink.add(i, values)
        for i, function in (convert or {}).items():
            parsed[i] = function(parsed[i])
    return parsed


_PIECE_BYTES = 32 << 20
"""The fast reader parses a file in pieces of about this size, one after the other (each by all threads),
copying each piece's columns into the output before the next: its working memory stays that of one piece
(a 235 MB pair list: ~180 MB peak instead of ~600 MB at once)."""


def _parse_arrow(
    data: _Buffer, columns: Sequence[tuple[str, str]], convert: _Converters, sink: TableWriter | None = None
) -> list[np.ndarray] | None:
    """The columns by pyarrow's CSV reader, or None when it refuses the file (it accepts only lines of
    exactly the expected fields separated by single spaces, no quoting, values of the column types)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {"str": pa.string(), "int": pa.int64(), "int32": pa.int32(), "int8": pa.int8(), "float": pa.float64()}
    names = [f"c{i}" for i in range(len(columns))]
    options = {
        "read_options": pacsv.ReadOptions(column_names=names, block_size=1 << 21),
        "parse_options": pacsv.ParseOptions(
            delimiter=" ", quote_char=False, double_quote=False, escape_char=False, ignore_empty_lines=True
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types={n: types[kind] for n, (_, kind) in zip(names, columns)},
            null_values=[],
            true_values=[],
            false_values=[],
            strings_can_be_null=False,
            check_utf8=True,
        ),
        # malloc's pool: the blocks one piece frees serve the next (mimalloc's would be returned, refaulted)
        "memory_pool": pa.system_memory_pool(),
    }
    has_text = any(kind == "str" for _, kind in columns)
    if has_text and any(data.find(c) >= 0 for c in (b"\t", b"\x0b", b"\x0c")):
        return None  # other whitespace: names would keep it, pandas splits (find: memchr, 40x a regex scan)
    # numbers go straight into arrays sized for the most rows the file could hold (a row takes at least
    # one byte per field plus its separator; empty names are refused below): pages never written cost nothing
    bound = (len(data) + 1) // (2 * len(columns)) + 1
    out: list = [
        [] if kind == "str" else None if i in convert else np.empty(bound, dtype=_numpy_dtype(kind))
        for i, (_, kind) in enumerate(columns)
    ]
    rows = 0
    view = memoryview(data)
    try:
        for start, stop in _pieces(data, _PIECE_BYTES):
            piece = pa.py_buffer(view[start:stop])
            try:
                table = pacsv.read_csv(pa.BufferReader(piece), **options)
            except pa.ArrowException:
                return None
            finally:
                del piece
            if any(table.column(name).null_count for name in names):
                return None
            for i, (name, (_, kind)) in enumerate(zip(names, columns)):
                chunks = table.column(name).chunks
                if kind == "str":
                    for chunk in chunks:
                        ends = np.frombuffer(chunk.buffers()[1], np.int32, len(chunk) + 1, chunk.offset * 4)
                        if len(chunk) and np.diff(ends).min() == 0:  # an empty field: a leading space
                            return None
                        out[i].extend(chunk.to_pylist())
                    continue
                at = rows
                dtype = _numpy_dtype(kind)
                for chunk in filter(len, chunks):  # value buffers read directly (to_numpy would import pandas)
                    offset = chunk.offset * dtype.itemsize
                    values = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=offset)
                    if sink is not None:
                        sink.add(i, values)
                    if i in convert:
                        values = convert[i](values)
                        if out[i] is None:
                            out[i] = np.empty(bound, dtype=values.dtype)
                    if at + len(chunk) > bound:  # cannot happen (see above); the fallback if it did
                        return None
                    out[i][at : at + len(chunk)] = values
                    at += len(chunk)
            rows += table.num_rows
            del table, chunks
    finally:
        view.release()  # (pieces still held by an exception keep the map open until they are released)
    arrays = []
    for values, (_, kind) in zip(out, columns):
        if kind == "str":
            if sink is not None:
                sink.add_text(len(arrays), values)
            strings = np.empty(len(values), dtype=object)
            strings[:] = values
            arrays.append(strings)
        else:
            arrays.append(values[:rows] if values is not None else np.empty(0, dtype=_numpy_dtype(kind)))
    return arrays


def _pieces(data: _Buffer, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive pieces of about ``size`` bytes, each ending just after a newline (or at
    the end of the data)."""
    start, n = 0, len(data)
    while start < n:
        cut = data.find(b"\n", start + size) if start + size < n else -1
        stop = n if cut < 0 else cut + 1
        yield start, stop
        start = stop


def _numpy_dtype(kind: str) -> np.dtype:
    return np.dtype(_DTYPES[kind] if kind in ("int", "float") else kind)


def _parse_pandas(data: bytes, path: str | Path, columns: Sequence[tuple[str, str]]) -> list[np.ndarray]:
    import pandas as pd

    dtypes = {i: _DTYPES[kind] for i, (_, kind) in enumerate(columns)}
    options = dict(
        sep=r"\s+",
        header=None,
        dtype=dtypes,
        quoting=csv.QUOTE_NONE,
        na_filter=False,
        engine="c",
        encoding="utf-8",
        encoding_errors="surrogateescape",
    )
    failure: Exception | None = None
    try:
        frames = [pd.read_csv(io.BytesIO(data), **options)]
        if frames[0].shape[1] != len(columns):
            frames = []
    except (ValueError, OverflowError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        frames, failure = [], exc
    if not frames:
        _raise_first_bad_line(data, path, columns)
        reason = failure or "unexpected column count"
        raise FacebenchError(f"{path}: cannot be parsed as {' '.join(c for c, _ in columns)} ({reason})")
    out = []
    for i, (_, kind) in enumerate(columns):
        values = frames[0][i].to_numpy()
        if kind == "str":
            values = values.astype(object, copy=False)
        elif kind in ("int32", "int8"):
            values = narrow(values, kind)
        out.append(values)
    return out


def narrow(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` as integer ``dtype`` when every value fits in it (an empty array stays as it is), else
    unchanged."""
    info = np.iinfo(dtype)
    if values.size and info.min <= values.min() and values.max() <= info.max:
        return values.astype(dtype)
    return values


def _raise_first_bad_line(data: bytes, path: str | Path, columns: Sequence[tuple[str, str]]) -> None:
    """Scan ``data`` line by line and raise a FacebenchError at the first malformed line (if any)."""
    what = " ".join(c for c, _ in columns)
    for number, text in _iter_lines(data):
        fields = text.split()
        expect_columns(path, number, fields, len(columns), what)
        for (name, kind), value in zip(columns, fields):
            if kind.startswith("int"):  # int32/int8 columns too: any int64 is accepted (then stored wider)
                parse_int(path, number, value, name)
                if not -(2**63) <= int(value) < 2**63:
                    raise FacebenchError(f"{where(path, number)}: {name} {value} is out of range")
            elif kind == "float":
                parse_float(path, number, value, name)


# ------------------------------------------------------------------------------------------ writing


def write_ijb(
    root: str | Path,
    prefix: str,
    images: MetaImages,
    pairs: TemplatePairs | None = None,
    searches: Mapping[str, SearchSet] | None = None,
    crops: Mapping[str, bytes] | None = None,
    decimals: int = 3,
    score_decimals: int = 6,
) -> dict[str, Path]:
    """Write a set in the insightface testsuite layout under ``root``; returns role -> path written.

    ``images`` gives both image files (landmarks with ``decimals`` places, detector scores with
    ``score_decimals``); ``pairs`` the 1:1 pair list; ``searches`` the 1:N files by role (``gallery1``,
    ``gallery2``, ``probes``); ``crops`` image file name -> encoded bytes, written into ``loose_crop/``
    (the directory is created even when empty). Each file is written atomically.
    """
    paths = layout(root, prefix)
    write_face_tid_mid(paths["tid_mid"], images.names, images.templates, images.medias)
    write_name_5pts_score(paths["landmarks"], images.names, images.landmarks, images.scores, decimals, score_decimals)
    written = {"tid_mid": paths["tid_mid"], "landmarks": paths["landmarks"]}
    if pairs is not None:
        write_template_pairs(paths["pairs"], pairs.t1, pairs.t2, pairs.label)
        written["pairs"] = paths["pairs"]
    for role, search in (searches or {}).items():
        if role not in ("gallery1", "gallery2", "probes"):
            raise ValueError(f"unknown 1:N role {role!r}; use gallery1, gallery2 or probes")
        write_search_set(paths[role], search.templates, search.subjects, search.filenames)
        written[role] = paths[role]
    paths["images"].mkdir(parents=True, exist_ok=True)
    for name, blob in (crops or {}).items():
        target = paths["images"] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target, "wb") as handle:
            handle.write(blob)
    written["images"] = paths["images"]
    return written


def write_face_tid_mid(path: str | Path, names: Sequence[str], templates: np.ndarray, medias: np.ndarray) -> None:
    """``image template_id media_id`` lines."""
    _write_rows(path, [("str", names), ("int", templates), ("int", medias)], b" ")


def write_name_5pts_score(
    path: str | Path,
    names: Sequence[str],
    landmarks: np.ndarray,
    scores: np.ndarray,
    decimals: int = 3,
    score_decimals: int = 6,
) -> None:
    """``image x1 y1 ... x5 y5 detector_score`` lines, numbers in fixed point with the given decimals."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(len(names), 10)
    columns: list[_Column] = [("str", names)]
    columns += [(f"fixed{decimals}", points[:, k]) for k in range(10)]
    columns.append((f"fixed{score_decimals}", np.asarray(scores, dtype=np.float64)))
    _write_rows(path, columns, b" ")


def write_template_pairs(path: str | Path, t1: np.ndarray, t2: np.ndarray, label: np.ndarray) -> None:
    """``template_id template_id label`` lines (label 1 genuine, 0 impostor)."""
    _write_rows(path, [("int", t1), ("int", t2), ("int", np.asarray(label).astype(np.int64))], b" ")


def write_search_set(
    path: str | Path,
    templates: np.ndarray,
    subjects: np.ndarray,
    filenames: Sequence[str] | None = None,
) -> None:
    """A 1:N CSV with the header :data:`SEARCH_HEADER`; FILENAME defaults to ``img/<row>.jpg``,
    SIGHTING_ID to the template id and the face box to zeros."""
    templates = np.asarray(templates, dtype=np.int64)
    n = templates.size
    if filenames is None:
        filenames = np.char.add(np.char.add("img/", np.arange(1, n + 1).astype(str)), ".jpg")
    zeros = np.zeros(n, dtype=np.int64)
    columns: list[_Column] = [
        ("int", templates),
        ("int", subjects),
        ("str,", filenames),
        ("int", templates),
        ("int", zeros),
        ("int", zeros),
        ("int", zeros),
        ("int", zeros),
    ]
    _write_rows(path, columns, b",", header=(",".join(SEARCH_HEADER) + "\n").encode())


# Text is formatted by pyarrow's CSV writer (``quoting_style="none"``): integers as they are, fixed-point
# numbers as ``decimal128`` values of that scale, strings after the checks below. pyarrow is the IJB reader's
# engine already; bench/bench_ijb_writer.py measured it against the former numpy formatter (same bytes,
# less CPU).
_Column = tuple[str, object]  # (kind: "int" | "fixed<decimals>" | "str" | "str<forbidden chars>", values)
_WHITESPACE = " \t\r\n\v\f"


def _int_array(values: object) -> "pa.Array":
    import pyarrow as pa

    v = np.asarray(values)
    if v.dtype.kind not in "iub":
        raise ValueError(f"integer column expected, got dtype {v.dtype}")
    return pa.array(v.astype(np.int64, copy=False).ravel())


def _fixed_array(values: object, decimals: int) -> "pa.Array":
    """Fixed-point decimals (``-12.345``): ``|v| * 10**decimals`` rounded half to even, signed unless it
    rounds to zero, as a ``decimal128`` of that scale."""
    import pyarrow as pa

    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(v).all():
        raise ValueError("cannot write NaN or infinite values")
    scaled = np.rint(np.abs(v) * 10**decimals).astype(np.int64)
    words = np.empty((v.size, 2), dtype=np.int64)  # a decimal128 is two little-endian words: low, high
    words[:, 0] = np.where(v < 0, -scaled, scaled)
    words[:, 1] = np.where(words[:, 0] < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(38, decimals), v.size, [None, pa.py_buffer(words)])


def _str_array(values: object, forbidden: str) -> "pa.Array":
    """UTF-8 strings; an empty value or one containing whitespace or a ``forbidden`` character is an error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(values if isinstance(values, np.ndarray) else list(values), pa.string())  # type: ignore[call-overload]
    pattern = "[" + "".join(f"\\x{ord(c):02x}" for c in _WHITESPACE + forbidden) + "]"
    bad = pc.or_(pc.equal(pc.utf8_length(array), 0), pc.match_substring_regex(array, pattern))
    if pc.any(bad).as_py():
        i = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"value {array[i].as_py()!r} (row {i}) is empty or contains whitespace or {forbidden.encode()!r}")
    return array


def _column_array(kind: str, values: object) -> "pa.Array":
    if kind == "int":
        return _int_array(values)
    if kind.startswith("fixed"):
        return _fixed_array(values, int(kind[5:]))
    return _str_array(values, kind[3:])


def _write_rows(path: str | Path, columns: list[_Column], sep: bytes, header: bytes = b"") -> None:
    """``columns`` as lines of fields joined by ``sep``, ``\\n`` line ends, after ``header``; atomic."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    lengths = {len(values) for _, values in columns}  # type: ignore[arg-type]
    if len(lengths) != 1:
        raise ValueError(f"columns differ in length: {sorted(lengths)}")
    table = pa.table([_column_array(kind, values) for kind, values in columns], names=[str(i) for i in range(len(columns))])
    options = pacsv.WriteOptions(include_header=False, delimiter=sep.decode(), quoting_style="none")
    with atomic_open(path, "wb") as handle:
        handle.write(header)
        if table.num_rows:
            pacsv.write_csv(table, handle, options)
