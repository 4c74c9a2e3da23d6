"""MXNet RecordIO training packs without mxnet: the writer's layout, hand-built records, errors."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from _iodata import decode, jpeg
from facebench.errors import FacebenchError
from facebench.io.recordio import (
    MAGIC,
    RecordPack,
    frame_record,
    iter_records,
    pack_record,
    read_idx,
    write_record_pack,
)

MAGIC_LE = struct.pack("<I", 0xCED7230A)


def _frame(data: bytes, cflag: int = 0) -> bytes:
    """One dmlc frame written by hand: magic, lrecord = cflag << 29 | length, data, zero pad to 4 bytes."""
    return struct.pack("<II", 0xCED7230A, (cflag << 29) | len(data)) + data + b"\0" * (-len(data) % 4)


def _header(flag: int, label: float, key: int, labels: tuple[float, ...] = ()) -> bytes:
    """The IfQQ image-record header by hand, then ``flag`` float32 labels."""
    return struct.pack("<IfQQ", flag, label, key, 0) + struct.pack(f"<{len(labels)}f", *labels)


def _jpeg_with_magic(seed: int) -> bytes:
    """A valid JPEG with the RecordIO magic word inside a COM segment, at record offset 32 when it follows a
    24-byte header: a record dmlc-core must split in two."""
    body = jpeg(seed)
    comment = b"xx" + MAGIC_LE + b"yy"
    return body[:2] + b"\xff\xfe" + struct.pack(">H", 2 + len(comment)) + comment + body[2:]


def _items(n_classes: int = 7):
    items = []
    for label in range(n_classes):
        for k in range(1 + label % 3):
            items.append((label * 3, jpeg(100 * label + k)))
    items[4] = (items[4][0], _jpeg_with_magic(4))
    return items


def test_write_read_insightface_layout(tmp_path):
    items = _items()
    n = write_record_pack(tmp_path / "pack", items, num_classes=20)
    assert n == len(items)
    pack = RecordPack(tmp_path / "pack")
    assert len(pack) == n and pack.num_classes == 20 and pack.image_size == (112, 112)
    for i, (label, data) in enumerate(items):
        got_label, got = pack.image(i)
        assert got_label == label and got == data
        np.testing.assert_array_equal(decode(got), decode(data))
    np.testing.assert_array_equal(pack.labels(), [label for label, _ in items])
    np.testing.assert_array_equal(pack.labels(chunk=3), [label for label, _ in items])
    # header record: images are keys 1..N, identity records N+1..N+K with [start, end) key ranges
    assert pack.header0 is not None and pack.header0.label.tolist() == [n + 1, n + 1 + 7]
    starts = np.cumsum([0] + [1 + c % 3 for c in range(7)]) + 1
    np.testing.assert_array_equal(pack.identity_ranges(), np.stack([starts[:-1], starts[1:]], axis=1))
    # face2rec2's physical order: images, then the header record, then the identity records
    keys, offsets = read_idx(tmp_path / "pack" / "train.idx")
    assert keys.tolist() == list(range(1, n + 1)) + [0] + list(range(n + 1, n + 8))
    assert (np.diff(offsets) > 0).all()
    assert (tmp_path / "pack" / "property").read_text() == "20,112,112\n"
    # the magic word inside item 4 split its record in two frames (cflag 1 then 3)
    start = offsets[4]
    raw = (tmp_path / "pack" / "train.rec").read_bytes()
    assert struct.unpack_from("<II", raw, start)[1] >> 29 == 1


def test_plain_layout(tmp_path):
    items = [(3, jpeg(0)), (1, jpeg(1)), (3, jpeg(2))]  # classes need not be grouped without identity records
    write_record_pack(tmp_path, items, identity_records=False)
    pack = RecordPack(tmp_path / "train.rec")
    assert pack.header0 is None and pack.identity_ranges() is None and pack.num_classes == 4
    assert [pack.image(i) for i in range(3)] == items
    assert pack.labels().tolist() == [3, 1, 3]
    assert read_idx(tmp_path / "train.idx")[0].tolist() == [0, 1, 2]


def test_hand_built_pack(tmp_path):
    """Records assembled byte by byte (not by the writer), in the insightface layout and order."""
    j0, j1, j2 = jpeg(10), jpeg(11), _jpeg_with_magic(12)
    rec2 = _header(0, 7.0, 3) + j2
    cut = rec2.index(MAGIC_LE)
    assert cut == 32
    records = [
        (1, _frame(_header(0, 5.0, 1) + j0)),                      # scalar label
        (2, _frame(_header(2, 0.0, 2, (7.0, 1.0)) + j1)),          # face2rec2: labels [class, aligned]
        (3, _frame(rec2[:cut], 1) + _frame(rec2[cut + 4 :], 3)),  # split at the magic word
        (0, _frame(_header(2, 0.0, 0, (4.0, 6.0)))),               # header: images 1..3, identities 4..5
        (4, _frame(_header(2, 0.0, 4, (1.0, 2.0)))),
        (5, _frame(_header(2, 0.0, 5, (2.0, 4.0)))),
    ]
    blob, idx = b"", ""
    for key, framed in records:
        idx += f"{key}\t{len(blob)}\n"
        blob += framed
    (tmp_path / "train.rec").write_bytes(blob)
    (tmp_path / "train.idx").write_text(idx)
    (tmp_path / "property").write_text("8,112,112\n")

    pack = RecordPack(tmp_path)
    assert len(pack) == 3 and pack.num_classes == 8
    assert [pack.image(i) for i in range(3)] == [(5, j0), (7, j1), (7, j2)]
    assert pack.labels().tolist() == [5, 7, 7]
    assert pack.identity_ranges().tolist() == [[1, 2], [2, 4]]
    header, payload = pack.record(2)
    assert header.flag == 2 and header.label.tolist() == [7.0, 1.0] and header.id == 2 and payload == j1
    # the writer frames the same data into the same bytes
    assert frame_record(rec2) == records[2][1]
    assert frame_record(_header(0, 5.0, 1) + j0) == records[0][1]
    assert pack_record(7.0, j2, 3) == rec2 and pack_record([7.0, 1.0], j1, 2) == _header(2, 0.0, 2, (7.0, 1.0)) + j1
    # sequential scan without the index
    scanned = list(iter_records(tmp_path / "train.rec"))
    assert [off for off, _ in scanned] == [int(line.split("\t")[1]) for line in idx.splitlines()]
    assert scanned[2][1] == rec2


def test_header_record_without_identity_records(tmp_path):
    # a common third-party variant: header labels [N+1, num_classes], no identity records
    j = [jpeg(i) for i in range(3)]
    records = [(0, _frame(_header(2, 0.0, 0, (4.0, 2.0))))] + [
        (k + 1, _frame(_header(0, float(k % 2), k + 1) + j[k])) for k in range(3)
    ]
    blob, idx = b"", ""
    for key, framed in records:
        idx += f"{key}\t{len(blob)}\n"
        blob += framed
    (tmp_path / "t.rec").write_bytes(blob)
    (tmp_path / "t.idx").write_text(idx)
    pack = RecordPack(tmp_path / "t.rec")
    assert len(pack) == 3 and pack.identity_ranges() is None and pack.num_classes is None
    assert [pack.image(i) for i in range(3)] == [(0, j[0]), (1, j[1]), (0, j[2])]


def test_pack_survives_pickling_for_workers(tmp_path):
    items = _items(3)
    write_record_pack(tmp_path, items)
    pack = RecordPack(tmp_path)
    pack.image(0)
    clone = pickle.loads(pickle.dumps(pack))
    assert clone.image(len(items) - 1) == items[-1]


def test_errors(tmp_path):
    items = _items(3)
    write_record_pack(tmp_path, items)
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    good_rec, good_idx = rec.read_bytes(), idx.read_text()

    rec.write_bytes(good_rec[: len(good_rec) - 30])  # truncated: the last identity record is cut
    with pytest.raises(FacebenchError, match=r"train\.rec record 9 offset \d+: record of 32 bytes runs past the end \(truncated\?\)"):
        RecordPack(tmp_path).identity_ranges()
    rec.write_bytes(good_rec[: len(good_rec) // 2])
    with pytest.raises(FacebenchError, match=r"train\.idx: key \d+ points at offset \d+, past the end of train\.rec"):
        RecordPack(tmp_path)
    rec.write_bytes(good_rec)

    lines = good_idx.splitlines()
    lines[1] = lines[1].split("\t")[0] + "\t" + str(int(lines[1].split("\t")[1]) + 4)
    idx.write_text("\n".join(lines) + "\n")
    with pytest.raises(FacebenchError, match=r"train\.rec record 2 offset \d+: no RecordIO record starts here \(magic"):
        RecordPack(tmp_path).image(1)
    lines[1] = "2"
    idx.write_text("\n".join(lines) + "\n")
    with pytest.raises(FacebenchError, match=r"train\.idx line 2: expected 2 columns \(key offset\), got 1"):
        RecordPack(tmp_path)
    idx.write_text(good_idx.replace("2\t", "1\t", 1))
    with pytest.raises(FacebenchError, match=r"train\.idx line 2: key 1 repeats line 1"):
        RecordPack(tmp_path)
    idx.write_text("\n".join(good_idx.splitlines()[2:]) + "\n")  # keys 1 and 2 not indexed
    with pytest.raises(FacebenchError, match=r"header record says images are keys 1\.\.\d+, but key 1 is not indexed"):
        RecordPack(tmp_path)
    idx.write_text(good_idx)

    (tmp_path / "property").write_text("85742,112\n")
    with pytest.raises(FacebenchError, match=r"property line 1: expected 3 columns \(num_classes,height,width\), got 2"):
        RecordPack(tmp_path)
    idx.unlink()
    with pytest.raises(FacebenchError, match=r"train\.idx: file not found"):
        RecordPack(tmp_path)


def test_writer_refuses_scattered_classes_and_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(FacebenchError, match="image 2: class 0 appears again after other classes"):
        write_record_pack(out, [(0, jpeg(0)), (1, jpeg(1)), (0, jpeg(2))])
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(FacebenchError, match="num_classes 2 but the largest class is 4"):
        write_record_pack(out, [(4, jpeg(0))], num_classes=2)
    assert not out.exists() or not any(out.iterdir())


def test_magic_constant():
    assert MAGIC == 0xCED7230A and (MAGIC >> 29) & 7 > 3  # an lrecord can never equal the magic word
