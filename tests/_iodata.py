"""Builders for the io tests: small JPEGs and Python-2 pickles assembled opcode by opcode."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np


def jpeg(seed: int, size: tuple[int, int] = (112, 112)) -> bytes:
    """A small, distinct, deterministic JPEG (a gradient plus a seed-coloured block)."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([(xx * 2) % 256, (yy * 2) % 256, np.full((h, w), seed % 256)], axis=-1).astype(np.uint8)
    y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    image[y0 : y0 + h // 3, x0 : x0 + w // 3] = rng.integers(0, 256, 3)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


# --- Python 2 pickles (protocol 2), as Python 2's cPickle writes them -------------------------------------


def _py2_str(data: bytes) -> bytes:
    """A Python 2 ``str``: SHORT_BINSTRING (U) under 256 bytes, else BINSTRING (T)."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def _py2_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)  # BININT


def py2_uint8_array(data: bytes) -> bytes:
    """The opcodes Python 2 numpy writes for ``np.frombuffer(data, np.uint8)``: ``_reconstruct(ndarray, (0,), 'b')``
    then BUILD with ``(1, (len,), dtype('u1', 0, 1) + BUILD (3, '|', None, None, None, -1, -1, 0), False, data)``."""
    return (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n" + _py2_int(0) + b"\x85" + _py2_str(b"b") + b"\x87R"
        + b"(" + _py2_int(1) + _py2_int(len(data)) + b"\x85"
        + b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"
        + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + _py2_int(-1) + _py2_int(-1) + _py2_int(0) + b"tb"
        + b"\x89" + _py2_str(data) + b"tb"
    )


def py2_pack(blobs: list[bytes], issame: list[bool], arrays: bool = False) -> bytes:
    """A Python 2 protocol-2 pickle of ``(bins, issame)``: bins as ``str`` (or numpy arrays), issame as bools."""
    out = bytearray(b"\x80\x02")  # PROTO 2
    out += b"](" # EMPTY_LIST, MARK
    for blob in blobs:
        out += py2_uint8_array(blob) if arrays else _py2_str(blob)
    out += b"e"  # APPENDS
    out += b"]("
    for flag in issame:
        out += b"\x88" if flag else b"\x89"  # NEWTRUE / NEWFALSE
    out += b"e\x86."  # APPENDS, TUPLE2, STOP
    return bytes(out)
