"""insightface MXNet RecordIO training packs, read and written without mxnet.

Byte layout (dmlc-core ``recordio.h``/``recordio.cc`` and mxnet ``python/mxnet/recordio.py``; all integers
little-endian):

- ``train.rec`` is a sequence of framed records: ``uint32 magic = 0xced7230a``, ``uint32 lrecord`` with
  ``cflag = lrecord >> 29`` and ``length = lrecord & (2**29 - 1)``, ``length`` data bytes, zero padding to a
  multiple of 4. A record whose data holds the magic word at a 4-byte aligned offset is written in parts split
  there (the magic word itself dropped): ``cflag`` 1 = first part, 2 = middle, 3 = last, 0 = a whole record;
  the reader rejoins the parts with the magic word between them.
- A record's data is an image record: the header ``IfQQ`` (``flag``, ``label``, ``id``, ``id2``; 24 bytes); when
  ``flag > 0``, ``flag`` float32 labels follow (and ``label`` is 0); then the encoded image.
- ``train.idx``: lines ``key<TAB>offset`` (offset of the record's first frame in ``train.rec``).
- ``property``: one line ``num_classes,height,width`` (e.g. ``85742,112,112``).

Two layouts of the keys:

- insightface (``face2rec2.py``): key 0 is a header record with no image, ``flag > 0`` and labels
  ``[L0, L1]``; images are keys ``1 .. L0-1``; keys ``L0 .. L1-1`` (when present) are identity records whose two
  labels are the ``[start, end)`` key range of one identity's images. An image's class is its first label
  (insightface writes ``[class, aligned]``) or its scalar label.
- plain (``im2rec``): every key in ``train.idx`` order is an image.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from facebench.errors import FacebenchError, where
from facebench.atomic import atomic_open
from facebench.io.textlines import expect_columns, iter_fields, parse_int

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_FRAME = struct.Struct("<II")
_IR = struct.Struct("<IfQQ")
_LENGTH_MASK = (1 << 29) - 1
MAX_RECORD_BYTES = _LENGTH_MASK
"""The largest record dmlc-core writes (2**29 - 1 bytes)."""
_LABEL_EXACT = 1 << 24  # float32 holds every integer below this exactly


def _align4(n: int) -> int:
    return (n + 3) & ~3


@dataclass(frozen=True)
class RecordHeader:
    """The image-record header: ``label`` is a float when ``flag == 0``, else ``flag`` float32 values."""

    flag: int
    label: float | np.ndarray
    id: int
    id2: int = 0

    def class_label(self) -> float:
        """The class: the scalar label, or the first of the label values (insightface's rule)."""
        if isinstance(self.label, np.ndarray):
            return float(self.label[0])
        return float(self.label)


def pack_record(label: float | Sequence[float] | np.ndarray, payload: bytes, record_id: int, id2: int = 0) -> bytes:
    """Image-record data: a scalar ``label`` gives ``flag = 0``; a sequence of labels gives ``flag = len`` with the
    float32 values between the header and ``payload`` (mxnet ``recordio.pack``)."""
    if isinstance(label, (int, float, np.integer, np.floating)):
        return _IR.pack(0, float(label), record_id, id2) + bytes(payload)
    values = np.asarray(label, dtype="<f4").reshape(-1)
    if values.size == 0:
        raise ValueError("a label sequence needs at least one value")
    return _IR.pack(values.size, 0.0, record_id, id2) + values.tobytes() + bytes(payload)


def unpack_record(data: bytes, origin: str) -> tuple[RecordHeader, bytes]:
    """Split image-record data into its header and payload (mxnet ``recordio.unpack``)."""
    if len(data) < _IR.size:
        raise FacebenchError(f"{origin}: record of {len(data)} bytes is shorter than its 24-byte header")
    flag, label, record_id, id2 = _IR.unpack_from(data, 0)
    if flag == 0:
        return RecordHeader(0, float(label), record_id, id2), data[_IR.size :]
    end = _IR.size + 4 * flag
    if len(data) < end:
        raise FacebenchError(f"{origin}: header says {flag} labels but the record holds {len(data)} bytes")
    labels = np.frombuffer(data, dtype="<f4", count=flag, offset=_IR.size).astype(np.float32)
    return RecordHeader(flag, labels, record_id, id2), data[end:]


def frame_record(data: bytes) -> bytes:
    """The bytes dmlc-core's ``RecordIOWriter::WriteRecord`` writes for ``data`` (split at aligned magic words)."""
    if len(data) > MAX_RECORD_BYTES:
        raise FacebenchError(f"a RecordIO record holds at most {MAX_RECORD_BYTES} bytes, got {len(data)}")
    lower = len(data) & ~3
    words = np.frombuffer(data, dtype="<u4", count=lower // 4)
    cuts = (np.flatnonzero(words == MAGIC) * 4).tolist()
    out = bytearray()
    start = 0
    for cut in cuts:
        out += _FRAME.pack(MAGIC, ((1 if start == 0 else 2) << 29) | (cut - start))
        out += data[start:cut]
        start = cut + 4
    out += _FRAME.pack(MAGIC, ((3 if cuts else 0) << 29) | (len(data) - start))
    out += data[start:]
    out += b"\0" * (_align4(len(data)) - len(data))
    return bytes(out)


def read_framed(fd: int, offset: int, origin: str, size: int) -> tuple[bytes, int]:
    """Read the record whose first frame starts at ``offset``; return its data and the offset after it."""
    parts = []
    pos = offset
    while True:
        head = os.pread(fd, 8, pos)
        if len(head) < 8:
            raise FacebenchError(f"{origin} offset {pos}: file ends inside a record header (truncated?)")
        magic, lrecord = _FRAME.unpack(head)
        if magic != MAGIC:
            raise FacebenchError(
                f"{origin} offset {pos}: no RecordIO record starts here (magic {magic:#010x}, expected "
                f"{MAGIC:#010x}); the file or its .idx is corrupt"
            )
        cflag, length = lrecord >> 29, lrecord & _LENGTH_MASK
        if cflag not in ((0, 1) if not parts else (2, 3)):
            raise FacebenchError(f"{origin} offset {pos}: unexpected continuation flag {cflag}")
        if pos + 8 + length > size:
            raise FacebenchError(f"{origin} offset {pos}: record of {length} bytes runs past the end (truncated?)")
        parts.append(os.pread(fd, length, pos + 8))
        pos += 8 + _align4(length)
        if cflag in (0, 3):
            return _MAGIC_BYTES.join(parts), pos


def iter_records(rec_path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, data)`` for every record of a ``.rec`` file in file order (no ``.idx`` needed)."""
    rec_path = Path(rec_path)
    fd = _open(rec_path)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            data, after = read_framed(fd, pos, str(rec_path), size)
            yield pos, data
            pos = after
    finally:
        os.close(fd)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise FacebenchError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise FacebenchError(f"{path}: is a directory, expected a RecordIO file") from None


def read_idx(idx_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, offsets)`` (int64, file order) from a ``.idx`` file of ``key<TAB>offset`` lines."""
    keys, offsets, lines = [], [], []
    for line, fields in iter_fields(idx_path):
        expect_columns(idx_path, line, fields, 2, "key offset")
        keys.append(parse_int(idx_path, line, fields[0], "record key", minimum=0))
        offsets.append(parse_int(idx_path, line, fields[1], "offset", minimum=0))
        lines.append(line)
    if not keys:
        raise FacebenchError(f"{idx_path}: empty index")
    key_array = np.asarray(keys, dtype=np.int64)
    order = np.argsort(key_array, kind="stable")
    repeat = np.flatnonzero(np.diff(key_array[order]) == 0)
    if repeat.size:
        first, again = order[repeat[0]], order[repeat[0] + 1]
        raise FacebenchError(f"{where(idx_path, lines[again])}: key {keys[again]} repeats line {lines[first]}")
    return key_array, np.asarray(offsets, dtype=np.int64)


def read_property(property_path: str | Path) -> tuple[int, tuple[int, int]]:
    """``(num_classes, (height, width))`` from a ``property`` file (``num_classes,height,width``)."""
    lines = list(iter_fields(property_path, sep=","))
    if len(lines) != 1:
        raise FacebenchError(f"{property_path}: expected one line 'num_classes,height,width', got {len(lines)} lines")
    line, fields = lines[0]
    expect_columns(property_path, line, fields, 3, "num_classes,height,width")
    num_classes, height, width = (parse_int(property_path, line, f, what, minimum=1)
                                  for f, what in zip(fields, ("num_classes", "height", "width")))
    return num_classes, (height, width)


def _pack_paths(path: str | Path) -> tuple[Path, Path, Path]:
    path = Path(path)
    if path.is_dir():
        return path / "train.rec", path / "train.idx", path / "property"
    return path, path.with_suffix(".idx"), path.parent / "property"


class RecordPack:
    """A training pack opened for random access: ``len(pack)`` images, ``pack.image(i) -> (class, encoded)``.

    ``path`` is the pack folder (``train.rec``, ``train.idx``, optional ``property``) or a ``.rec`` file with its
    ``.idx`` beside it. Reads use ``os.pread`` on a descriptor opened per process, so a pack can be shared with
    DataLoader workers (forked or spawned).
    """

    def __init__(self, path: str | Path) -> None:
        self.rec_path, self.idx_path, self.property_path = _pack_paths(path)
        if not self.rec_path.is_file():
            raise FacebenchError(f"{self.rec_path}: file not found")
        if not self.idx_path.is_file():
            raise FacebenchError(f"{self.idx_path}: file not found (the index of {self.rec_path.name})")
        self._fd: int | None = None
        self._pid = -1
        self.size = self.rec_path.stat().st_size
        keys, offsets = read_idx(self.idx_path)
        bad = np.flatnonzero((offsets < 0) | (offsets + 8 > self.size))
        if bad.size:
            raise FacebenchError(
                f"{self.idx_path}: key {keys[bad[0]]} points at offset {offsets[bad[0]]}, past the end of "
                f"{self.rec_path.name} ({self.size} bytes; truncated?)"
            )
        self._keys = keys
        order = np.argsort(keys)
        self._sorted_keys, self._sorted_offsets = keys[order], offsets[order]
        self.num_classes: int | None = None
        self.image_size: tuple[int, int] | None = None
        if self.property_path.is_file():
            self.num_classes, self.image_size = read_property(self.property_path)
        self.header0: RecordHeader | None = None
        self._identity_keys: np.ndarray | None = None
        header0 = self._header0()
        if header0 is not None:
            start, end = int(header0.label[0]), int(header0.label[1])  # type: ignore[index]
            image_keys = np.arange(1, start, dtype=np.int64)
            found = self._lookup(image_keys)
            if (found < 0).any():
                missing = image_keys[found < 0]
                raise FacebenchError(
                    f"{self.idx_path}: the header record says images are keys 1..{start - 1}, but key "
                    f"{missing[0]} is not indexed ({missing.size} missing)"
                )
            self.header0 = header0
            self.image_keys, self.image_offsets = image_keys, found
            identity_keys = np.arange(start, max(start, end), dtype=np.int64)
            if identity_keys.size and (self._lookup(identity_keys) >= 0).all():
                self._identity_keys = identity_keys
        else:
            self.image_keys, self.image_offsets = keys, offsets

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        """Offsets of ``keys`` (-1 where a key is not indexed)."""
        at = np.minimum(np.searchsorted(self._sorted_keys, keys), len(self._sorted_keys) - 1)
        return np.where(self._sorted_keys[at] == keys, self._sorted_offsets[at], -1)

    def _header0(self) -> RecordHeader | None:
        """The insightface header record (key 0, flag > 0, >= 2 labels, no image), or None."""
        if self._lookup(np.zeros(1, dtype=np.int64))[0] < 0:
            return None
        header, payload = self.record(0)
        if header.flag >= 2 and not payload:
            lo, hi = float(header.label[0]), float(header.label[1])  # type: ignore[index]
            if lo >= 1 and lo == int(lo) and hi == int(hi):
                return header
        return None

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = _open(self.rec_path)
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        """Close the descriptor (it reopens on the next read)."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RecordPack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fd"], state["_pid"] = None, -1
        return state

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __len__(self) -> int:
        return len(self.image_keys)

    @property
    def keys(self) -> np.ndarray:
        """Every indexed key, in ``.idx`` order."""
        return self._keys

    def record(self, key: int) -> tuple[RecordHeader, bytes]:
        """Header and payload of the record with ``key``."""
        offset = int(self._lookup(np.asarray([key], dtype=np.int64))[0])
        if offset < 0:
            raise FacebenchError(f"{self.idx_path}: no record with key {key}")
        origin = f"{self.rec_path} record {key}"
        data, _ = read_framed(self._descriptor(), offset, origin, self.size)
        return unpack_record(data, origin)

    def image(self, i: int) -> tuple[int, bytes]:
        """``(class, encoded image)`` of the i-th image (0-based, in pack order)."""
        key = int(self.image_keys[i])
        header, payload = self.record(key)
        return _class_of(header, f"{self.rec_path} record {key}"), payload

    def labels(self, chunk: int = 65536) -> np.ndarray:
        """The class of every image (int64, pack order), read from each record header.

        Whole records are read in vectorised chunks through a memory map; records split into parts (a magic word
        inside their data) are read one by one.
        """
        out = np.empty(len(self), dtype=np.int64)
        mm = np.memmap(self.rec_path, dtype=np.uint8, mode="r")
        span = np.arange(8 + _IR.size + 4)
        for lo in range(0, len(self), chunk):
            offs = self.image_offsets[lo : lo + chunk]
            fits = offs + span.size <= self.size
            rows = mm[np.minimum(np.where(fits, offs, 0)[:, None] + span, self.size - 1)]
            magic = rows[:, 0:4].copy().view("<u4").ravel()
            lrec = rows[:, 4:8].copy().view("<u4").ravel()
            flag = rows[:, 8:12].copy().view("<u4").ravel()
            scalar = rows[:, 12:16].copy().view("<f4").ravel()
            first = rows[:, 32:36].copy().view("<f4").ravel()
            length = lrec & _LENGTH_MASK
            fast = fits & (magic == MAGIC) & ((lrec >> 29) == 0) & (length >= _IR.size + 4 * (flag > 0))
            values = np.where(flag > 0, first, scalar).astype(np.float64)
            ok = fast & (values >= 0) & (values == np.floor(values)) & (values < _LABEL_EXACT)
            out[lo : lo + len(offs)] = np.where(ok, values, 0).astype(np.int64)
            for j in np.flatnonzero(~ok).tolist():
                out[lo + j] = self.image(lo + j)[0]
        del mm
        return out

    def identity_ranges(self) -> np.ndarray | None:
        """``(K, 2)`` int64 ``[start, end)`` image-key ranges of the identity records, or None without them."""
        if self._identity_keys is None:
            return None
        ranges = np.empty((len(self._identity_keys), 2), dtype=np.int64)
        for row, key in enumerate(self._identity_keys.tolist()):
            header, _ = self.record(key)
            if header.flag < 2:
                raise FacebenchError(f"{self.rec_path} record {key}: expected an identity record [start, end)")
            ranges[row] = [int(header.label[0]), int(header.label[1])]  # type: ignore[index]
        return ranges


def _class_of(header: RecordHeader, origin: str) -> int:
    value = header.class_label()
    if not (0 <= value < _LABEL_EXACT) or value != int(value):
        raise FacebenchError(f"{origin}: label {value!r} is not a class number")
    return int(value)


def write_record_pack(
    out_dir: str | Path,
    items: Iterable[tuple[int, bytes | np.ndarray]],
    *,
    image_size: tuple[int, int] = (112, 112),
    num_classes: int | None = None,
    identity_records: bool = True,
) -> int:
    """Write ``train.rec``, ``train.idx`` and ``property`` into ``out_dir`` atomically; return the image count.

    ``items`` yields ``(class, encoded image)`` and is streamed. With ``identity_records`` (the insightface
    layout) images are keys 1..N with scalar labels, written first; then the header record (key 0, labels
    ``[N+1, N+1+K]``) and one identity record per class in order of appearance (labels ``[start, end)``), as
    insightface's ``face2rec2.py`` orders them; each class's images must then be consecutive. Without it, images
    are keys 0..N-1. ``num_classes`` defaults to the largest class + 1.
    """
    out_dir = Path(out_dir)
    rec, idx, prop = out_dir / "train.rec", out_dir / "train.idx", out_dir / "property"
    count = 0
    ranges: list[list[int]] = []
    seen: set[int] = set()
    top = -1
    with atomic_open(rec, "wb") as frec, atomic_open(idx, "w") as fidx, atomic_open(prop, "w") as fprop:
        pos = 0

        def put(key: int, data: bytes) -> None:
            nonlocal pos
            framed = frame_record(data)
            frec.write(framed)
            fidx.write(f"{key}\t{pos}\n")
            pos += len(framed)

        first_key = 1 if identity_records else 0
        for label, payload in items:
            label = int(label)
            if not 0 <= label < _LABEL_EXACT:
                raise FacebenchError(f"image {count}: class {label} out of range [0, {_LABEL_EXACT})")
            key = first_key + count
            if identity_records:
                if ranges and ranges[-1][2] == label:
                    ranges[-1][1] = key + 1
                elif label in seen:
                    raise FacebenchError(
                        f"image {count}: class {label} appears again after other classes; the insightface layout "
                        "needs each class's images together (sort the items by class)"
                    )
                else:
                    seen.add(label)
                    ranges.append([key, key + 1, label])
            data = payload.tobytes() if isinstance(payload, np.ndarray) else bytes(payload)
            put(key, pack_record(float(label), data, key))
            top = max(top, label)
            count += 1
        if count == 0:
            raise FacebenchError(f"{out_dir}: no images to write")
        if identity_records:
            start = count + 1
            if start + len(ranges) >= _LABEL_EXACT:
                raise FacebenchError(
                    f"{out_dir}: {count} images and {len(ranges)} classes exceed the keys a float32 header label "
                    "holds exactly; write without identity records"
                )
            put(0, pack_record([float(start), float(start + len(ranges))], b"", 0))
            for k, (lo, hi, _) in enumerate(ranges):
                put(start + k, pack_record([float(lo), float(hi)], b"", start + k))
        classes = num_classes if num_classes is not None else top + 1
        if classes <= top:
            raise FacebenchError(f"{out_dir}: num_classes {classes} but the largest class is {top}")
        fprop.write(f"{classes},{image_size[0]},{image_size[1]}\n")
    return count
