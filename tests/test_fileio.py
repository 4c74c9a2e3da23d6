"""Atomic outputs: the .npz writer (streamed, per-member compression) and the all-or-nothing rule."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from facebench.atomic import STORED_FLOAT_BYTES, save_npz


def test_npz_round_trips_and_stores_large_floats_without_deflate(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "scores": rng.random(STORED_FLOAT_BYTES // 8),  # exactly the threshold: stored
        "small_floats": rng.random(10),
        "template1": np.repeat(np.arange(1000, dtype=np.int32), 300),
        "labels": rng.random(5000) < 0.1,
        "scalar": np.float64(2.5),
        "empty": np.zeros((0, 3), np.float32),
    }
    path = tmp_path / "run" / "ijbc.npz"
    save_npz(path, **arrays)
    with np.load(path, allow_pickle=False) as loaded:
        assert sorted(loaded.files) == sorted(arrays)
        for name, value in arrays.items():
            assert loaded[name].dtype == value.dtype and np.array_equal(loaded[name], value), name
    methods = {i.filename: i.compress_type for i in zipfile.ZipFile(path).infolist()}
    assert methods["scores.npy"] == zipfile.ZIP_STORED
    assert {methods[f"{n}.npy"] for n in arrays if n != "scores"} == {zipfile.ZIP_DEFLATED}
    assert path.stat().st_size < arrays["scores"].nbytes + 100_000  # the integer ids deflate
    assert [p.name for p in path.parent.iterdir()] == ["ijbc.npz"]  # no temporary file left


def test_npz_error_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    save_npz(path, a=np.arange(3))
    with pytest.raises(ValueError):
        save_npz(path, a=np.arange(4), b=np.array([object()], dtype=object))  # object arrays are refused
    with np.load(path) as loaded:
        assert loaded["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
