"""The embedding store: `facebench extract` writes shards with a manifest, resumes, gives the same rows
whatever the batching, and `run --features STORE` reads it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebench.extraction import store
from facebench.cli import main
from facebench.errors import FacebenchError
from facebench.atomic import sha256_file
from tests.fakes import tiny_onnx
from tests._folders import make_folder
from facebench.results import read_results


def test_extract_resume_batching_and_run_from_the_store(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces", [3, 4, 3, 3, 2])
    model = tiny_onnx(tmp_path / "m.onnx")
    base = ["-q", "extract", str(model), f"folder:{root}", "--shard-rows", "4", "--no-cache", "--workers", "0"]
    assert main([*base, "--out", str(tmp_path / "s1"), "--batch-size", "3"]) == 0
    index = json.loads((tmp_path / "s1" / "store.json").read_text())
    assert index["format"] == store.FORMAT and index["model_sha256"] == sha256_file(model)
    assert index["input_contract"]["name"] == "insightface" and index["parts"]["folder_faces"]["samples"] == 15
    assert index["parts"]["folder_faces"]["shards"] == 4
    feats, ids, keys = store.read_part(tmp_path / "s1", "folder_faces")
    paths = sorted(str(p) for p in root.glob("id_*/*.png"))
    assert ids == paths and keys == [sha256_file(p) for p in paths] and feats.shape[0] == 15
    lines = (tmp_path / "s1" / "folder_faces" / "shard-00001.tsv").read_text().splitlines()
    assert lines == [f"{p}\t{sha256_file(p)}" for p in paths[4:8]]
    # another batch size: bit-identical rows (ONNX)
    assert main([*base, "--out", str(tmp_path / "s2"), "--batch-size", "7"]) == 0
    assert np.array_equal(store.read_part(tmp_path / "s2", "folder_faces")[0], feats)
    # resume: a lost shard is the only one written again
    shard = tmp_path / "s1" / "folder_faces" / "shard-00002.npy"
    shard.unlink()
    kept = (tmp_path / "s1" / "folder_faces" / "shard-00000.npy").stat().st_mtime_ns
    assert main([*base, "--out", str(tmp_path / "s1")]) == 0
    assert shard.is_file() and (tmp_path / "s1" / "folder_faces" / "shard-00000.npy").stat().st_mtime_ns == kept
    assert np.array_equal(store.read_part(tmp_path / "s1", "folder_faces")[0], feats)
    # run from the store = run from the model
    assert main(["-q", "run", "-b", f"folder:{root}", "--features", str(tmp_path / "s1"), "--out",
                 str(tmp_path / "a"), "--no-speed"]) == 0
    assert main(["-q", "run", str(model), "-b", f"folder:{root}", "--out", str(tmp_path / "b"), "--no-speed",
                 "--no-cache", "--workers", "0"]) == 0
    a, b = (read_results(tmp_path / d).benchmarks["folder_faces"] for d in "ab")
    assert a.metrics == b.metrics
    # another contract is refused, never mixed
    with pytest.raises(FacebenchError, match="another model or input contract"):
        store.open_store(tmp_path / "s1", sha256_file(model), {"name": "facexzoo"})


def test_incomplete_store_is_an_error(tmp_path: Path) -> None:
    store.open_store(tmp_path / "s", "abc", {"name": "insightface"})
    store.write_part(tmp_path / "s", "x", ["a", "b", "c"], ["k1", "k2", "k3"],
                     lambda s, e: np.arange(s, e, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32), shard_rows=2)
    feats, ids, _ = store.read_part(tmp_path / "s", "x")
    assert feats[:, 0].tolist() == [0, 1, 2] and ids == ["a", "b", "c"]
    (tmp_path / "s" / "x" / "shard-00001.npy").unlink()
    with pytest.raises(FacebenchError, match="shard 1 is missing"):
        store.read_part(tmp_path / "s", "x")


def test_engine_ray_without_ray_names_the_extra(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(__import__("sys").modules, "ray.data", None)  # import ray.data raises ImportError
    model = tiny_onnx(tmp_path / "m.onnx")
    code = main(["-q", "extract", str(model), f"folder:{tmp_path}", "--out", str(tmp_path / "s"), "--engine", "ray"])
    assert code == 2 and 'pip install "facebench[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    code = main(["-q", "extract", str(model), f"folder:{tmp_path}", "--out", str(tmp_path / "s"), "--ray-workers", "2"])
    assert code == 2 and "apply to --engine ray" in capsys.readouterr().err
