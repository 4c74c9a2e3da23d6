"""`facebench export`: ONNX and TorchScript outputs, parity printed, failure leaves nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facebench.cli import main
from facebench.models.loader import load_encoder
from facebench.extraction.preprocess import PROFILES, write_sidecar
from tests._models import random_backbone


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "backbone.pth"
    torch.save(random_backbone("mobilefacenet", seed=5).state_dict(), path)
    write_sidecar(path, PROFILES["facexzoo"])
    return path


def test_export_writes_both_formats_after_parity(checkpoint, tmp_path, capsys):
    onnx_out, ts_out = tmp_path / "m.onnx", tmp_path / "m.pt"
    args = ["--onnx", str(onnx_out), "--torchscript", str(ts_out)]
    status = main(["-q", "export", str(checkpoint), "--arch", "mobilefacenet", *args])
    printed = capsys.readouterr().out
    assert status == 0
    assert f"wrote {onnx_out} (onnx); parity on 3 random inputs: max abs diff" in printed
    assert f"wrote {ts_out} (torchscript)" in printed
    source = load_encoder(checkpoint, arch="mobilefacenet", device="cpu")
    x = np.random.default_rng(0).standard_normal((2, 3, 112, 112)).astype(np.float32)
    for out in (onnx_out, ts_out):
        np.testing.assert_allclose(load_encoder(out, device="cpu", trust_checkpoint_code=True).embed(x), source.embed(x), atol=1e-5)
        sidecar = json.loads(out.with_name(out.name + ".facebench.json").read_text())
        assert sidecar["profile"]["name"] == "facexzoo"
    import onnx

    graph = onnx.load(str(onnx_out)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch axis


def test_export_fails_above_tolerance_and_writes_nothing(checkpoint, tmp_path, capsys):
    out = tmp_path / "strict.onnx"
    args = ["--onnx", str(out), "--tolerance", "1e-12"]
    status = main(["-q", "export", str(checkpoint), "--arch", "mobilefacenet", *args])
    assert status == 1
    assert "parity check failed" in capsys.readouterr().out
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_export_usage_errors(checkpoint, tmp_path, capsys):
    assert main(["-q", "export", str(checkpoint), "--arch", "mobilefacenet"]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert main(["-q", "export", str(checkpoint), "--arch", "resnet50", "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "unknown architecture 'resnet50'" in capsys.readouterr().err
