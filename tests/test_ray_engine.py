"""`facebench extract --engine ray` in Ray's local mode: the store Ray Data writes is bit-identical to the
one-process store and to `run --save-features` (ONNX), and a deleted shard is the only one written again.
One test, because a local Ray takes tens of seconds to start; skipped when Ray is not installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from facebench.cli import main  # noqa: E402
from facebench.extraction import store  # noqa: E402
from tests.fakes import tiny_onnx  # noqa: E402
from tests._folders import make_folder  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_store_is_the_one_process_store_and_resumes(tmp_path: Path, local_ray, capsys) -> None:
    root = make_folder(tmp_path / "faces", [3, 4, 3, 3, 2])
    model = tiny_onnx(tmp_path / "m.onnx")
    args = ["--no-cache", "--workers", "0", "--batch-size", "3"]
    extract = ["-q", "extract", str(model), f"folder:{root}", *args, "--shard-rows", "4"]
    assert main([*extract, "--out", str(tmp_path / "one")]) == 0
    assert main([*extract, "--out", str(tmp_path / "ray"), "--engine", "ray", "--ray-workers", "2"]) == 0
    assert main(["-q", "run", str(model), "-b", f"folder:{root}", *args, "--out", str(tmp_path / "run"), "--no-speed", "--save-features",
                 str(tmp_path / "feats")]) == 0
    one, ids, keys = store.read_part(tmp_path / "one", "folder_faces")
    got, ray_ids, ray_keys = store.read_part(tmp_path / "ray", "folder_faces")
    assert got.dtype == np.float32 and got.shape == (15, 16)
    assert got.tobytes() == one.tobytes() and ray_ids == ids and ray_keys == keys
    assert got.tobytes() == np.load(tmp_path / "feats" / "folder_faces.npy").tobytes()
    index = json.loads((tmp_path / "ray" / "store.json").read_text())
    assert index["parts"] == json.loads((tmp_path / "one" / "store.json").read_text())["parts"]
    assert index["parts"]["folder_faces"] == {"samples": 15, "dim": 16, "shard_rows": 4, "shards": 4}
    for k in range(4):  # exactly one row per sample, in its shard
        assert (tmp_path / "ray" / "folder_faces" / f"shard-{k:05d}.tsv").read_text().splitlines() == [
            f"{i}\t{c}" for i, c in zip(ids[4 * k : 4 * k + 4], keys[4 * k : 4 * k + 4])]
    # resume: the deleted shard is the only one Ray writes again
    folder = tmp_path / "ray" / "folder_faces"
    (folder / "shard-00002.npy").unlink()
    kept = {k: (folder / f"shard-{k:05d}.npy").stat().st_mtime_ns for k in (0, 1, 3)}
    assert main([*extract, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    assert {k: (folder / f"shard-{k:05d}.npy").stat().st_mtime_ns for k in (0, 1, 3)} == kept
    assert store.read_part(tmp_path / "ray", "folder_faces")[0].tobytes() == one.tobytes()
    # a replica's error reaches the command line as one line naming the image; the part is not recorded
    bad = sorted(root.glob("id_03/*.png"))[1]
    bad.write_bytes(bad.read_bytes()[:200])  # a PNG header, truncated data: only decoding fails
    capsys.readouterr()
    assert main([*extract, "--out", str(tmp_path / "bad"), "--engine", "ray", "--ray-workers", "1"]) == 1
    err = capsys.readouterr().err
    assert f"folder_faces: FAILED: {root}: {bad}" in err
    index = json.loads((tmp_path / "bad" / "store.json").read_text())
    assert index["parts"] == {}
