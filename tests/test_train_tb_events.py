"""TensorBoard event files written by facebench: CRC-32C, record framing, and TensorBoard's own reader."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from facebench.train.logs import TrainLogger
from facebench.train.tb_events import EventFileWriter, crc32c, event_bytes, masked_crc32c, tfrecord


def test_crc32c_check_values() -> None:
    # the standard check value of CRC-32C, and RFC 3720 B.4's 32 zero bytes / 32 0xFF bytes
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") != zlib.crc32(b"123456789")  # not the zip polynomial


def test_masked_crc_is_rotation_plus_delta() -> None:
    c = 0xE3069283
    assert masked_crc32c(b"123456789") == ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_tfrecord_frame_layout() -> None:
    payload = b"abc"
    frame = tfrecord(payload)
    assert len(frame) == 8 + 4 + 3 + 4
    assert struct.unpack("<Q", frame[:8])[0] == 3
    assert struct.unpack("<I", frame[8:12])[0] == masked_crc32c(frame[:8])
    assert frame[12:15] == payload
    assert struct.unpack("<I", frame[15:])[0] == masked_crc32c(payload)


def test_event_bytes_hand_encoded() -> None:
    # Event{wall_time=1.5, step=300, summary{value{tag="a", simple_value=0.25}}} encoded by hand
    expected = (b"\x09" + struct.pack("<d", 1.5) + b"\x10\xac\x02"
                + b"\x2a\x0a" + b"\x0a\x08" + b"\x0a\x01a" + b"\x15" + struct.pack("<f", 0.25))
    assert event_bytes(1.5, 300, scalars={"a": 0.25}) == expected
    assert event_bytes(2.0, 0, file_version="brain.Event:2") == b"\x09" + struct.pack("<d", 2.0) + b"\x1a\x0dbrain.Event:2"
    assert event_bytes(2.0, 7, session_start=True) == b"\x09" + struct.pack("<d", 2.0) + b"\x10\x07" + b"\x3a\x02\x08\x01"


def _read_with_tensorboard(directory: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = accumulator_mod.EventAccumulator(str(directory), size_guidance={accumulator_mod.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_reads_the_scalars(tmp_path: Path) -> None:
    writer = EventFileWriter(tmp_path)
    writer.add_scalars(10, {"train/loss": 3.5, "train/lr": 0.1})
    writer.add_scalars(20, {"train/loss": 2.25})
    writer.close()
    assert "tfevents" in writer.path.name
    scalars = _read_with_tensorboard(tmp_path)
    assert scalars["train/loss"] == [(10, 3.5), (20, 2.25)]
    assert scalars["train/lr"] == [(10, pytest.approx(0.1))]


def test_tensorboard_event_loader_checks_our_crcs(tmp_path: Path) -> None:
    loader_mod = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
    writer = EventFileWriter(tmp_path)
    writer.add_scalars(5, {"x": 1.0})
    writer.close()
    events = list(loader_mod.LegacyEventFileLoader(str(writer.path)).Load())
    assert [e.file_version for e in events][:1] == ["brain.Event:2"]
    assert events[1].step == 5 and events[1].summary.value[0].tag == "x"
    assert len(events) == 2
    # with one payload byte flipped TensorBoard's reader (which verifies the data CRC) stops before the record
    data = bytearray(writer.path.read_bytes())
    data[-6] ^= 0x01
    writer.path.write_bytes(bytes(data))
    assert len(list(loader_mod.LegacyEventFileLoader(str(writer.path)).Load())) == 1


def test_resumed_logger_purges_the_stale_tail(tmp_path: Path) -> None:
    first = TrainLogger(tmp_path, 0)
    for step in (10, 20, 30):
        first.train({"step": step, "loss": float(step)})
    first.close()
    # interrupted after step 30 but resumed from the checkpoint at step 20
    second = TrainLogger(tmp_path, 20)
    second.train({"step": 30, "loss": 99.0})
    second.train({"step": 40, "loss": 100.0})
    second.close()
    scalars = _read_with_tensorboard(tmp_path / "tensorboard")
    assert scalars["train/loss"] == [(10, 10.0), (20, 20.0), (30, 99.0), (40, 100.0)]
    rows = (tmp_path / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["10", "20", "30", "40"]


def test_logger_without_tensorboard_writes_no_event_file(tmp_path: Path) -> None:
    logger = TrainLogger(tmp_path, 0, tensorboard=False)
    logger.train({"step": 1, "loss": 1.0})
    logger.close()
    assert not (tmp_path / "tensorboard").exists()


def test_records_equal_torch_summary_writer_bytes(tmp_path: Path) -> None:
    """torch.utils.tensorboard (protobuf-serialised) writes the same scalar record bytes."""
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    theirs = SummaryWriter(str(tmp_path / "torch"))
    theirs.add_scalar("val/lfw/accuracy", 0.9875, 1200, walltime=1795840000.25)
    theirs.add_scalar("train/loss", -3.0, 7, walltime=1795840001.5)
    theirs.close()
    (path,) = (tmp_path / "torch").iterdir()
    data = path.read_bytes()
    frames = []
    while data:
        n = struct.unpack("<Q", data[:8])[0]
        frames.append(data[: 16 + n])
        data = data[16 + n:]
    assert frames[-2:] == [tfrecord(event_bytes(1795840000.25, 1200, scalars={"val/lfw/accuracy": 0.9875})),
                           tfrecord(event_bytes(1795840001.5, 7, scalars={"train/loss": -3.0}))]
