"""MegaFace challenge 1 files, read and written (PROTOCOLS 4): devkit JSON lists, noise lists, matio feature
files, the ``--features DIR`` layout and landmark files for the raw images.

Formats
-------
- Probe list ``facescrub_features_list.json``: ``{"path": [...], "id": [...]}`` (3,530 FaceScrub images of 80
  identities in the devkit), paths relative to the FaceScrub image root. The devkit file is Python 2
  ``json.dump(..., indent=4)``: 4-space indent, ``", "`` item separator (so lines end in a space), no final
  newline. :func:`write_probe_list` reproduces it byte for byte.
- Distractor list ``megaface_features_list.json_<size>_<set>``: ``{"path": [...]}`` on one line, no final
  newline (sizes 10 ... 1,000,000, set 1). The lists of different sizes are independent samples.
- Noise lists (insightface ``src/megaface``): one name per line, ``#`` comment lines. FaceScrub noise names are
  image base names (``Aaron_Eckhart_136.png``); MegaFace noise names are the last three path components
  (``375/37531198@N00/4174611825_0.jpg``), and a line with a tab keeps its second field.
- matio (the devkit's OpenCV matrix file): int32 little-endian header ``rows, cols, stride, type`` then the
  values; a feature vector is ``(dim, 1, 4, 5)`` (type 5 = CV_32F) followed by ``dim`` float32. The devkit
  looks for the feature of list entry ``p`` at ``<root>/<p><suffix>`` (e.g. ``..._0.jpg_r100.bin``).
- ``--features DIR``: ``facescrub.npy`` (probe-list order), ``megaface.npy`` with ``megaface.txt`` (the
  devkit-relative path of each row, one per line, UTF-8), so any distractor list maps onto it by path.
- FaceX-Zoo ``facescrub_face_info.txt``: ``path x1,y1,x2,y2 x1,y1,...,x106,y106`` (a box and 106 landmarks);
  the 5 points are landmarks 105, 106, 55, 85, 91 (1-based: eye centres, nose tip, mouth corners).
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from facebench.errors import FacebenchError, where
from facebench.atomic import atomic_path, write_text
from facebench.io.textlines import iter_fields, open_text, parse_float, read_text
from facebench.io.textdoc import parse_json

PROBE_LIST_NAME = "facescrub_features_list.json"
DISTRACTOR_SIZES: tuple[int, ...] = (10, 100, 1000, 10000, 100000, 1000000)
FACESCRUB_NPY = "facescrub.npy"
MEGAFACE_NPY = "megaface.npy"
MEGAFACE_TXT = "megaface.txt"
MATIO_HEADER = struct.Struct("<4i")
MATIO_CV_32F = 5
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
FACE_INFO_5_POINTS: tuple[int, ...] = (104, 105, 54, 84, 90)
"""0-based indices of the 5 ArcFace-order points among FaceX-Zoo's 106 landmarks."""


def distractor_list_name(size: int, set_number: int = 1) -> str:
    """The devkit file name of a distractor list: ``megaface_features_list.json_<size>_<set>``."""
    return f"megaface_features_list.json_{size}_{set_number}"


# ---------------------------------------------------------------------------------------------- JSON lists


@dataclass(frozen=True)
class ProbeList:
    """The FaceScrub probe list: image paths and identity names, in list order."""

    paths: tuple[str, ...]
    ids: tuple[str, ...]
    origin: str = ""

    def __len__(self) -> int:
        return len(self.paths)

    def identity_index(self) -> tuple[list[str], np.ndarray]:
        """Identity names in order of first appearance and each image's index into them."""
        order: dict[str, int] = {}
        labels = np.array([order.setdefault(name, len(order)) for name in self.ids], dtype=np.int64)
        return list(order), labels


def _load_json(path: str | Path, what: str) -> dict:
    try:
        with open(path, "rb") as handle:
            data = parse_json(handle.read().decode("utf-8-sig"), str(path))
    except FileNotFoundError:
        raise FacebenchError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise FacebenchError(f"{path}: is a directory, expected the {what} (a devkit JSON file)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FacebenchError(f"{path}: not a devkit JSON {what}: {exc}") from None
    if not isinstance(data, dict):
        raise FacebenchError(f"{path}: expected a JSON object with a 'path' list, got {type(data).__name__}")
    return data


def _string_list(data: dict, key: str, path: str | Path) -> list[str]:
    if key not in data:
        raise FacebenchError(f"{path}: missing key {key!r} (keys: {sorted(data)})")
    values = data[key]
    if not isinstance(values, list):
        raise FacebenchError(f"{path}: {key!r} must be a list, got {type(values).__name__}")
    if set(map(type, values)) - {str} or "" in values:
        for i, value in enumerate(values):
            if not isinstance(value, str) or not value:
                raise FacebenchError(f"{path}: {key}[{i}] must be a non-empty string, got {value!r}")
    return values


def check_unique_paths(paths: Sequence[str], origin: str | Path) -> None:
    """An error naming the first path of ``paths`` that repeats an earlier one (and that one), if any."""
    if len(set(paths)) != len(paths):
        seen: dict[str, int] = {}
        for i, p in enumerate(paths):
            if p in seen:
                raise FacebenchError(f"{origin}: path[{i}] {p!r} repeats path[{seen[p]}]")
            seen[p] = i


def read_probe_list(path: str | Path) -> ProbeList:
    """Read a devkit FaceScrub list ``{"path": [...], "id": [...]}``; paths unique, one id per path."""
    data = _load_json(path, "FaceScrub probe list")
    paths = _string_list(data, "path", path)
    ids = _string_list(data, "id", path)
    if len(paths) != len(ids):
        raise FacebenchError(f"{path}: {len(paths)} paths but {len(ids)} ids; the lists must be parallel")
    if not paths:
        raise FacebenchError(f"{path}: the probe list is empty")
    check_unique_paths(paths, path)
    return ProbeList(tuple(paths), tuple(ids), str(path))


def read_distractor_list(path: str | Path, check_unique: bool = True) -> list[str]:
    """Read a devkit distractor list ``{"path": [...]}``; paths unique (checked here unless ``check_unique``
    is False: the MegaFace evaluator finds a repeat from the feature rows it maps the paths to, and then
    raises :func:`check_unique`'s error)."""
    data = _load_json(path, "MegaFace distractor list")
    paths = _string_list(data, "path", path)
    if check_unique:
        check_unique_paths(paths, path)
    return paths


def probe_list_text(paths: Sequence[str], ids: Sequence[str]) -> str:
    """The devkit text of a probe list (keys ``path`` then ``id``), exactly as the devkit ships it."""
    if len(paths) != len(ids):
        raise ValueError(f"{len(paths)} paths but {len(ids)} ids")
    return json.dumps({"path": list(paths), "id": list(ids)}, indent=4, separators=(", ", ": "))


def distractor_list_text(paths: Sequence[str]) -> str:
    """The devkit text of a distractor list: ``{"path": ["a", "b"]}`` on one line."""
    return json.dumps({"path": list(paths)})


def write_probe_list(path: str | Path, paths: Sequence[str], ids: Sequence[str]) -> None:
    """Write a probe list in the devkit's exact layout (atomically)."""
    write_text(path, probe_list_text(paths, ids))


def write_distractor_list(path: str | Path, paths: Sequence[str]) -> None:
    """Write a distractor list in the devkit's exact layout (atomically)."""
    write_text(path, distractor_list_text(paths))


# --------------------------------------------------------------------------------------------- noise lists


def facescrub_noise_key(path: str) -> str:
    """The key a FaceScrub list path is matched on against the noise list: its base name."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def megaface_noise_key(path: str) -> str:
    """The key a MegaFace list path is matched on against the noise list: its last three components."""
    return "/".join(path.replace("\\", "/").split("/")[-3:])


def _noise_lines(path: str | Path) -> list[str]:
    text = read_text(path, "noise list")
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


def read_facescrub_noises(path: str | Path) -> set[str]:
    """FaceScrub noise names (image base names, e.g. ``Aaron_Eckhart_136.png``)."""
    return {facescrub_noise_key(line) for line in _noise_lines(path)}


def read_megaface_noises(path: str | Path) -> set[str]:
    """MegaFace noise names (``a/b/c.jpg``); a line with a tab keeps its second field (insightface's rule)."""
    out = set()
    for line in _noise_lines(path):
        fields = line.split("\t")
        out.add(megaface_noise_key(fields[1].strip() if len(fields) > 1 else line))
    return out


def write_noise_list(path: str | Path, names: Iterable[str], comment: str | None = None) -> None:
    """Write a noise list: an optional ``#`` comment line, then one name per line (atomically)."""
    lines = ([f"#{comment}"] if comment else []) + [str(n) for n in names]
    write_text(path, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------------- matio


def encode_matio(vector: np.ndarray) -> bytes:
    """A feature vector as matio bytes: header ``(dim, 1, 4, 5)`` then ``dim`` little-endian float32."""
    values = np.asarray(vector, dtype="<f4").reshape(-1)
    return MATIO_HEADER.pack(values.size, 1, 4, MATIO_CV_32F) + values.tobytes()


def decode_matio(data: bytes, origin: str) -> np.ndarray:
    """Decode matio bytes holding one float32 vector (``rows x 1`` or ``1 x cols``); errors name ``origin``."""
    if len(data) < MATIO_HEADER.size:
        raise FacebenchError(f"{origin}: {len(data)} bytes, too short for a matio header (16 bytes)")
    rows, cols, stride, kind = MATIO_HEADER.unpack_from(data)
    if kind != MATIO_CV_32F or stride != 4:
        raise FacebenchError(
            f"{origin}: matio type {kind} with stride {stride}; expected float32 features (type 5, stride 4)"
        )
    if rows < 1 or cols < 1 or min(rows, cols) != 1:
        raise FacebenchError(f"{origin}: a {rows}x{cols} matio matrix; expected one feature vector (dim x 1)")
    dim = rows * cols
    if len(data) != MATIO_HEADER.size + 4 * dim:
        raise FacebenchError(
            f"{origin}: {len(data)} bytes, but a {dim}-dim float32 matio file has {MATIO_HEADER.size + 4 * dim}"
        )
    return np.frombuffer(data, dtype="<f4", offset=MATIO_HEADER.size).astype(np.float32)


def read_matio(path: str | Path) -> np.ndarray:
    """Read one matio feature file as a float32 vector."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise FacebenchError(f"{path}: feature file not found") from None
    return decode_matio(data, str(path))


def _write_bytes_atomic(path: str, data: bytes) -> None:
    # Many small files: temp + rename (atomic) without the per-file fsync of facebench.atomic.
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def write_matio(path: str | Path, vector: np.ndarray) -> None:
    """Write one feature vector as a matio file (atomically; parent directories are created)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _write_bytes_atomic(str(path), encode_matio(vector))


def matio_path(root: str | Path, path: str, suffix: str) -> str:
    """Where the devkit looks for the feature of list entry ``path``: ``<root>/<path><suffix>``."""
    return os.path.join(str(root), path + suffix)


def read_matio_features(
    root: str | Path, paths: Sequence[str], suffix: str, dim: int | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """Features ``(N, dim)`` float32 of list entries ``paths`` from ``<root>/<path><suffix>`` matio files.

    The first missing file, or the first whose dimension differs from ``dim`` (default: the first file's),
    is an error naming that file and its list entry. ``out`` may be a preallocated ``(N, dim)`` array.
    """
    if not suffix:
        raise FacebenchError("matio features need the devkit file suffix (--feature-suffix, e.g. _r100.bin)")
    for i, path in enumerate(paths):
        file = matio_path(root, path, suffix)
        try:
            with open(file, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            raise FacebenchError(f"{file}: feature file not found (list entry {i}: {path})") from None
        vector = decode_matio(data, file)
        if out is None:
            dim = vector.size if dim is None else dim
            out = np.empty((len(paths), dim), dtype=np.float32)
        if vector.size != out.shape[1]:
            raise FacebenchError(
                f"{file}: a {vector.size}-dim feature, but the others are {out.shape[1]}-dim (list entry {i}: {path})"
            )
        out[i] = vector
    if out is None:
        return np.zeros((0, dim or 0), dtype=np.float32)
    return out


def write_matio_features(root: str | Path, paths: Sequence[str], features: np.ndarray, suffix: str) -> None:
    """Write one matio file per list entry at ``<root>/<path><suffix>`` (the devkit's feature layout)."""
    if not suffix:
        raise ValueError("a devkit feature suffix is required (e.g. _r100.bin)")
    if len(paths) != features.shape[0]:
        raise ValueError(f"{len(paths)} paths but {features.shape[0]} feature rows")
    made: set[str] = set()
    for i, path in enumerate(paths):
        file = matio_path(root, path, suffix)
        parent = os.path.dirname(file)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        _write_bytes_atomic(file, encode_matio(features[i]))


# ------------------------------------------------------------------------------------- .npy row streaming


class NpyRows:
    """Rows of a 2-D ``.npy`` matrix read on demand (the matrix is never loaded whole).

    Contiguous row ranges are read with ``readinto`` (no memory map stays resident); arbitrary row sets
    through a short-lived memory map.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            mm = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise FacebenchError(f"{self.path}: features file not found") from None
        except ValueError as exc:
            raise FacebenchError(f"{self.path}: not a plain .npy array ({exc}); pickled arrays are refused") from None
        if not isinstance(mm, np.memmap):
            raise FacebenchError(f"{self.path}: not a .npy array file")
        shape, dtype, fortran, self.offset = mm.shape, mm.dtype, bool(np.isfortran(mm)), int(mm.offset)
        del mm
        if dtype.hasobject:
            raise FacebenchError(f"{self.path}: an object array; pickled arrays are refused")
        if len(shape) != 2:
            raise FacebenchError(f"{self.path}: expected a 2-D (images, dim) array, got shape {shape}")
        if fortran and shape[0] > 1 and shape[1] > 1:
            raise FacebenchError(f"{self.path}: a Fortran-ordered array; save it C-ordered (np.ascontiguousarray)")
        if dtype.kind != "f":
            raise FacebenchError(f"{self.path}: features must be floating point, got {dtype}")
        expected = self.offset + int(np.prod(shape)) * dtype.itemsize
        if self.path.stat().st_size < expected:
            raise FacebenchError(f"{self.path}: truncated ({self.path.stat().st_size} bytes, need {expected})")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = dtype

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a new array of the file's dtype."""
        start, stop = max(0, start), min(stop, self.shape[0])
        out = np.empty((max(0, stop - start), self.shape[1]), dtype=self.dtype)
        if out.size:
            with open(self.path, "rb", buffering=0) as handle:
                handle.seek(self.offset + start * self.shape[1] * self.dtype.itemsize)
                view = memoryview(out).cast("B")
                got = 0
                while got < view.nbytes:
                    n = handle.readinto(view[got:])
                    if not n:
                        raise FacebenchError(f"{self.path}: unexpected end of file at row {start}")
                    got += n
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows at the given indices (any order) as a new array."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        if hi - lo == rows.size and np.all(np.diff(rows) == 1):
            return self.read(lo, hi)
        mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape)
        try:
            return np.array(mm[rows])
        finally:
            del mm

    def load(self) -> np.ndarray:
        """The whole matrix."""
        return self.read(0, self.shape[0])


class NpyRowWriter:
    """Write a 2-D float32 ``.npy`` file block by block; the file appears under its name only when
    :meth:`close` finds every row written (atomic: an error or an incomplete write leaves nothing)."""

    def __init__(self, path: str | Path, n_rows: int, dim: int, dtype: str = "<f4") -> None:
        self.path = Path(path)
        self.shape = (int(n_rows), int(dim))
        self.dtype = np.dtype(dtype)
        self._context = atomic_path(self.path)
        self._tmp = self._context.__enter__()
        self._handle = open(self._tmp, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._handle, header)
        self.rows_written = 0
        self._done = False

    def write(self, block: np.ndarray) -> None:
        """Append rows (``(b, dim)``)."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.ndim != 2 or block.shape[1] != self.shape[1]:
            raise ValueError(f"expected (rows, {self.shape[1]}) blocks, got {block.shape}")
        if self.rows_written + block.shape[0] > self.shape[0]:
            raise ValueError(f"more than the declared {self.shape[0]} rows")
        self._handle.write(block.tobytes())
        self.rows_written += block.shape[0]

    def close(self) -> None:
        """Finish: rename into place when complete, else discard and raise."""
        if self._done:
            return
        self._done = True
        self._handle.close()
        if self.rows_written != self.shape[0]:
            exc = ValueError(f"{self.path}: {self.rows_written} of {self.shape[0]} rows written")
            self._context.__exit__(ValueError, exc, None)
            raise exc
        self._context.__exit__(None, None, None)

    def abort(self) -> None:
        """Discard the partial file."""
        if self._done:
            return
        self._done = True
        self._handle.close()
        self._context.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> NpyRowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_npy_rows(path: str | Path, matrix: np.ndarray, block_rows: int = 65536) -> None:
    """Write a 2-D array (a memory map is fine) as float32 ``.npy`` in blocks, atomically."""
    with NpyRowWriter(path, matrix.shape[0], matrix.shape[1]) as writer:
        for start in range(0, matrix.shape[0], block_rows):
            writer.write(matrix[start : start + block_rows])


# ----------------------------------------------------------------------------------- --features DIR layout


@dataclass
class FeaturesDir:
    """The ``--features DIR`` layout: probe features (loaded), distractor rows (on demand) and row paths."""

    directory: Path
    facescrub: np.ndarray
    megaface: NpyRows
    megaface_paths: list[str] | None  # None when opened with read_paths=False


def read_path_list(path: str | Path) -> list[str]:
    """``megaface.txt``: one devkit-relative path per line; blank or repeated lines are errors."""
    text = read_text(path, f"list of one devkit path per row of {MEGAFACE_NPY}", newline="")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if any(line.endswith("\r") for line in lines[:1]):
        lines = [line.rstrip("\r") for line in lines]
    if len(set(lines)) == len(lines) and not _BLANK_LINE.search("\n" + "\n".join(lines) + "\n"):
        return lines
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise FacebenchError(f"{where(path, number)}: empty line; every line names the image of one row")
        if line in seen:
            raise FacebenchError(f"{where(path, number)}: {line!r} repeats line {seen[line]}")
        seen[line] = number
    return lines


def check_path_count(txt: Path, paths: Sequence[str], distractors: NpyRows) -> None:
    """An error when ``megaface.txt`` does not list one path per row of ``megaface.npy``."""
    if len(paths) != distractors.shape[0]:
        raise FacebenchError(f"{txt}: {len(paths)} paths but {distractors.path} has {distractors.shape[0]} rows")


def open_features_dir(directory: str | Path, n_probes: int | None = None, read_paths: bool = True) -> FeaturesDir:
    """Open ``DIR/facescrub.npy``, ``DIR/megaface.npy`` and ``DIR/megaface.txt``, checking their shapes.

    Errors name the offending file: a missing file, a probe row count other than ``n_probes``, a path count
    other than ``megaface.npy``'s rows, or two different feature dimensions. ``read_paths=False`` leaves
    ``megaface.txt`` unread (checked to exist), its paths and their count to the caller.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FacebenchError(
            f"{directory}: MegaFace features must be a directory with {FACESCRUB_NPY}, {MEGAFACE_NPY}, {MEGAFACE_TXT}"
        )
    probes = NpyRows(directory / FACESCRUB_NPY)
    if n_probes is not None and probes.shape[0] != n_probes:
        raise FacebenchError(
            f"{probes.path}: has {probes.shape[0]} rows but the probe list has {n_probes} images; "
            "rows must follow the probe list order"
        )
    distractors = NpyRows(directory / MEGAFACE_NPY)
    txt = directory / MEGAFACE_TXT
    if read_paths:
        paths: list[str] | None = read_path_list(txt)
        check_path_count(txt, paths, distractors)  # type: ignore[arg-type]
    else:  # the caller reads (or finds cached) what it needs of the file; it must be there
        with open_text(txt, f"list of one devkit path per row of {MEGAFACE_NPY}"):
            paths = None
    if distractors.shape[1] != probes.shape[1]:
        raise FacebenchError(
            f"{distractors.path}: {distractors.shape[1]}-dim features but {probes.path} has {probes.shape[1]}-dim"
        )
    return FeaturesDir(directory, probes.load().astype(np.float32, copy=False), distractors, paths)


def write_features_dir(
    directory: str | Path, facescrub: np.ndarray, megaface: np.ndarray, megaface_paths: Sequence[str]
) -> None:
    """Write the ``--features DIR`` layout (float32 ``.npy`` files written in blocks, each atomically)."""
    if megaface.shape[0] != len(megaface_paths):
        raise ValueError(f"{megaface.shape[0]} distractor rows but {len(megaface_paths)} paths")
    if facescrub.shape[1] != megaface.shape[1]:
        raise ValueError(f"probe dim {facescrub.shape[1]} != distractor dim {megaface.shape[1]}")
    bad = [p for p in megaface_paths if not p or "\n" in p or "\r" in p]
    if bad:
        raise ValueError(f"path {bad[0]!r} cannot be written one per line")
    directory = Path(directory)
    write_npy_rows(directory / FACESCRUB_NPY, facescrub)
    write_npy_rows(directory / MEGAFACE_NPY, megaface)
    write_path_list(directory / MEGAFACE_TXT, megaface_paths)


def write_path_list(path: str | Path, paths: Sequence[str]) -> None:
    """Write ``megaface.txt`` (one path per line, final newline), atomically."""
    write_text(path, "".join(f"{p}\n" for p in paths))


# ------------------------------------------------------------------------------------------ landmark files


def read_face_info(path: str | Path) -> dict[str, np.ndarray]:
    """FaceX-Zoo's ``*_face_info.txt`` as ``{relative path: (5, 2)}``: the 5 ArcFace-order points taken from
    the 106 landmarks (1-based points 105, 106, 55, 85, 91). Errors name the file and line."""
    out: dict[str, np.ndarray] = {}
    for line, fields in iter_fields(path):
        if len(fields) != 3:
            raise FacebenchError(f"{where(path, line)}: expected 3 columns (path box landmarks), got {len(fields)}")
        values = fields[2].split(",")
        if len(values) != 212:
            raise FacebenchError(f"{where(path, line)}: expected 212 landmark values (106 points), got {len(values)}")
        points = [
            [parse_float(path, line, values[2 * k], f"x{k + 1}"), parse_float(path, line, values[2 * k + 1], f"y{k + 1}")]
            for k in FACE_INFO_5_POINTS
        ]
        if fields[0] in out:
            raise FacebenchError(f"{where(path, line)}: {fields[0]} is listed twice")
        out[fields[0]] = np.asarray(points, dtype=np.float64)
    if not out:
        raise FacebenchError(f"{path}: no landmarks found")
    return out


def read_five_points(path: str | Path) -> dict[str, np.ndarray]:
    """facebench's 11-column landmark file (``path x1 y1 ... x5 y5``) as ``{relative path: (5, 2)}``."""
    out: dict[str, np.ndarray] = {}
    for line, fields in iter_fields(path):
        if len(fields) != 11:
            raise FacebenchError(f"{where(path, line)}: expected 11 columns (path x1 y1 ... x5 y5), got {len(fields)}")
        values = [parse_float(path, line, t, f"{'xy'[k % 2]}{k // 2 + 1}") for k, t in enumerate(fields[1:])]
        if fields[0] in out:
            raise FacebenchError(f"{where(path, line)}: {fields[0]} is listed twice")
        out[fields[0]] = np.asarray(values, dtype=np.float64).reshape(5, 2)
    if not out:
        raise FacebenchError(f"{path}: no landmarks found")
    return out


def read_landmark_file(path: str | Path) -> dict[str, np.ndarray]:
    """A landmark file in either format, told apart by its first line: 11 columns (facebench) or
    3 columns with comma-separated values (FaceX-Zoo face_info)."""
    for _, fields in iter_fields(path):
        return read_face_info(path) if len(fields) == 3 and "," in fields[2] else read_five_points(path)
    raise FacebenchError(f"{path}: no landmarks found")


def match_landmarks(
    paths: Sequence[str], landmarks: Mapping[str, np.ndarray], origin: str
) -> tuple[list[str], np.ndarray]:
    """Landmarks for list entries ``paths``: ``(image paths, (N, 5, 2) with NaN rows for unlisted images)``.

    An entry is matched by its exact path, else by its path without the extension (FaceX-Zoo's FaceScrub
    file names the original ``.jpg`` images where the devkit list says ``.png``); in that case the image
    read is the one the landmark file names. A file that matches none of the entries is an error.
    """
    by_stem: dict[str, str] = {}
    for key in landmarks:
        by_stem.setdefault(os.path.splitext(key)[0], key)
    images: list[str] = []
    out = np.full((len(paths), 5, 2), np.nan, dtype=np.float64)
    found = 0
    for i, p in enumerate(paths):
        key = p if p in landmarks else by_stem.get(os.path.splitext(p)[0])
        images.append(key if key is not None else p)
        if key is not None:
            out[i] = landmarks[key]
            found += 1
    if paths and found == 0:
        raise FacebenchError(
            f"{origin}: the landmark file lists none of the {len(paths)} images (a list entry is {paths[0]}, "
            f"a landmark entry is {next(iter(landmarks))}): give paths relative to the image root"
        )
    return images, out
