"""TensorBoard scalar event files, written without TensorFlow or the ``tensorboard`` package.

An event file is a TFRecord stream: each record is ``uint64 length`` (little endian), ``uint32
masked_crc32c(length bytes)``, the payload, ``uint32 masked_crc32c(payload)``, where
``masked(c) = ((c >> 15 | c << 17) + 0xA282EAD8) mod 2**32`` and CRC-32C is the Castagnoli polynomial
(reflected 0x82F63B78). Each payload is a serialised ``tensorflow.Event`` protobuf:

- field 1 ``wall_time`` (double), 2 ``step`` (int64), 3 ``file_version`` (string, first record
  ``"brain.Event:2"``), 5 ``summary`` (``Summary``: repeated field 1 ``Value`` with 1 ``tag`` (string) and
  2 ``simple_value`` (float)), 7 ``session_log`` (``SessionLog``: field 1 ``status``, START = 1).

A ``SessionLog START`` at step ``k`` tells TensorBoard to drop the events of earlier files at steps
``>= k``: a resumed run writes one so its curves read as one uninterrupted run. The file name holds
``tfevents`` (TensorBoard's discovery rule): ``events.out.tfevents.<seconds>.<host>.<pid>.<n>``.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from pathlib import Path
from typing import BinaryIO

FILE_VERSION = "brain.Event:2"
SESSION_START = 1
_CASTAGNOLI_REFLECTED = 0x82F63B78
_MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CASTAGNOLI_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``; ``crc32c(b"123456789") == 0xE3069283``."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: the CRC rotated right by 15 bits plus 0xA282EAD8, modulo 2**32."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def tfrecord(payload: bytes) -> bytes:
    """One TFRecord frame around ``payload``."""
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked_crc32c(length)) + payload + struct.pack("<I", masked_crc32c(payload))


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def event_bytes(wall_time: float, step: int, *, file_version: str | None = None,
                scalars: dict[str, float] | None = None, session_start: bool = False) -> bytes:
    """The serialised ``Event`` with the given content (fields in protobuf's canonical order)."""
    out = _key(1, 1) + struct.pack("<d", wall_time)
    if step:
        out += _key(2, 0) + _varint(step)
    if file_version is not None:
        out += _length_delimited(3, file_version.encode("utf-8"))
    if scalars:
        values = b"".join(
            _length_delimited(1, _length_delimited(1, tag.encode("utf-8")) + _key(2, 5) + struct.pack("<f", value))
            for tag, value in scalars.items())
        out += _length_delimited(5, values)
    if session_start:
        out += _length_delimited(7, _key(1, 0) + _varint(SESSION_START))
    return out


_FILE_COUNTER = itertools.count()


class EventFileWriter:
    """Appends scalar events to a new event file in ``directory``.

    ``purge_step`` (a resumed run's first step) writes a ``SessionLog START`` there, so TensorBoard hides
    the older files' events from that step on.
    """

    def __init__(self, directory: Path, purge_step: int | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILE_COUNTER)}"
        self.path = directory / name
        self._handle: BinaryIO = open(self.path, "wb")
        self._handle.write(tfrecord(event_bytes(now, 0, file_version=FILE_VERSION)))
        if purge_step is not None:
            self._handle.write(tfrecord(event_bytes(now, purge_step, session_start=True)))
        self._handle.flush()

    def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """One event holding every ``tag: value`` of ``scalars`` at ``step``."""
        if scalars:
            values = {tag: float(value) for tag, value in scalars.items()}
            self._handle.write(tfrecord(event_bytes(time.time(), step, scalars=values)))

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
