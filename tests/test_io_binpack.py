"""insightface .bin packs: every item and pickle flavour in circulation, structure errors, atomic writes."""

from __future__ import annotations

import hashlib
import pickle

import cv2
import numpy as np
import pytest

from _iodata import decode, jpeg, py2_pack
from facebench.errors import FacebenchError
from facebench.extraction.images import arcface_chip
from facebench.io.binpack import read_bin, write_bin


def _set(n_pairs: int = 20):
    blobs = [jpeg(i) for i in range(2 * n_pairs)]
    issame = [(i // 2) % 2 == 0 for i in range(n_pairs)]
    return blobs, issame


def test_write_then_read_round_trip(tmp_path):
    blobs, issame = _set()
    path = tmp_path / "lfw.bin"
    digest = write_bin(path, blobs, issame)
    pack = read_bin(path)
    assert digest == pack.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pack.inputs == {"lfw.bin": digest}
    assert [bytes(b) for b in pack.blobs] == blobs
    assert pack.issame.dtype == bool and pack.issame.tolist() == issame
    # 20 pairs in 10 contiguous folds of 2
    assert pack.folds.tolist() == [k for k in range(10) for _ in range(2)]
    # the file is exactly the pickle insightface's loaders read: a tuple (list of bytes, list of bool)
    raw = pickle.loads(path.read_bytes())
    assert isinstance(raw, tuple) and raw[0] == blobs and raw[1] == issame
    assert all(type(x) is bool for x in raw[1])
    assert list(tmp_path.iterdir()) == [path]  # no temporary left behind


def test_image_list_decodes_pack_order(tmp_path):
    blobs, issame = _set(10)
    path = tmp_path / "p.bin"
    write_bin(path, blobs, issame)
    images = read_bin(path).to_image_list()
    assert len(images) == 20 and images.crops
    chip = arcface_chip()
    for i in (0, 7, 19):
        expected = cv2.cvtColor(decode(blobs[i]), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(images.load_chip(i, chip), expected)


def test_numpy_items_as_newer_packs_hold_them(tmp_path):
    blobs, issame = _set(10)
    # cv2.imencode returns (L, 1) uint8 arrays in some OpenCV versions, 1-D in others; packs hold either
    arrays = [np.frombuffer(b, np.uint8).reshape(-1, 1) if i % 2 else np.frombuffer(b, np.uint8)
              for i, b in enumerate(blobs)]
    for protocol in (2, 4, 5):
        path = tmp_path / f"np{protocol}.bin"
        path.write_bytes(pickle.dumps((arrays, np.array(issame)), protocol=protocol))
        pack = read_bin(path)
        assert all(isinstance(b, np.ndarray) and b.ndim == 1 for b in pack.blobs)
        assert [b.tobytes() for b in pack.blobs] == blobs
        assert pack.issame.tolist() == issame


@pytest.mark.parametrize("arrays", [False, True])
def test_python2_packs(tmp_path, arrays):
    blobs, issame = _set(10)
    blobs[3] = jpeg(3, size=(300, 300))  # longer than 255 bytes either way: BINSTRING, not SHORT_BINSTRING
    path = tmp_path / "py2.bin"
    path.write_bytes(py2_pack(blobs, issame, arrays=arrays))
    pack = read_bin(path)
    got = [b.tobytes() if isinstance(b, np.ndarray) else b for b in pack.blobs]
    assert got == blobs
    assert pack.issame.tolist() == issame


def test_protocol2_written_pack_reads(tmp_path):
    # Python 3 writes bytes under protocol 2 as _codecs.encode(text, 'latin1'): admitted, only for latin1
    blobs, issame = _set(10)
    path = tmp_path / "p2.bin"
    write_bin(path, blobs, issame, protocol=2)
    assert b"_codecs" in path.read_bytes()
    assert [bytes(b) for b in read_bin(path).blobs] == blobs


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"bins": []}, r"expected a pack \(bins, issame\), a 2-tuple, got a dict"),
        (([b"a", b"b"], [True], [1]), "got a tuple of length 3"),
        (([b"a", b"b", b"c"], [True]), "3 images for 1 pairs"),
        ((b"ab", [True]), "expected bins to be a list"),
        (([b"a", np.zeros((2, 2), np.float32)], [True]), r"item 1: expected an encoded image .* float32 array of shape \(2, 2\)"),
        (([b"a", 5], [True]), "item 1: expected an encoded image .* got int"),
        (([b"a", b""], [True]), "item 1: empty image"),
        (([b"a", b"b"], ["yes"]), r"issame\[0\] is 'yes'"),
        (([], []), "holds no pairs"),
    ],
)
def test_structure_errors_name_file_and_item(tmp_path, obj, message):
    path = tmp_path / "bad.bin"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(FacebenchError, match=message) as err:
        read_bin(path)
    assert str(err.value).startswith(str(path))


def test_truncated_pack(tmp_path):
    blobs, issame = _set()
    full = tmp_path / "full.bin"
    write_bin(full, blobs, issame)
    data = full.read_bytes()
    for cut in (10, len(data) // 3, len(data) - 2):
        path = tmp_path / "cut.bin"
        path.write_bytes(data[:cut])
        with pytest.raises(FacebenchError, match=r"cut\.bin: .*truncated"):
            read_bin(path)


def test_corrupt_jpeg_error_names_the_item(tmp_path):
    blobs, issame = _set(10)
    blobs[13] = blobs[13][:40] + b"\x00" * 10  # a JPEG cut short: cannot decode
    path = tmp_path / "corrupt.bin"
    write_bin(path, blobs, issame)
    images = read_bin(path).to_image_list()
    images.load_chip(12, arcface_chip())
    with pytest.raises(FacebenchError, match=r"corrupt\.bin item 13: cannot decode"):
        images.load_chip(13, arcface_chip())


def test_missing_file_and_bad_write(tmp_path):
    with pytest.raises(FacebenchError, match="file not found"):
        read_bin(tmp_path / "absent.bin")
    with pytest.raises(FacebenchError, match="3 images for 2 pairs"):
        write_bin(tmp_path / "w.bin", [b"a", b"b", b"c"], [True, False])
    assert not any(tmp_path.iterdir())  # nothing half-written
