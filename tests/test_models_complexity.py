"""Model size, FLOPs counted from the graph (ONNX and torch), speed measurement."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from torch import nn

from facebench.models.complexity import measure_speed, model_complexity, onnx_macs, torch_macs
from facebench.models.loader import load_encoder


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)  # 8*16*16 outputs x 3*3*3 = 55,296 MACs
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # 8*16*16 x 9 = 18,432 MACs
        self.fc = nn.Linear(8 * 16 * 16, 10)  # 2,048 x 10 = 20,480 MACs

    def forward(self, x):
        return self.fc(torch.flatten(self.dw(torch.relu(self.conv(x))), 1))


HAND_COUNT = 55_296 + 18_432 + 20_480


@pytest.fixture(scope="module")
def net_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("complexity")
    net = _Net().eval()
    onnx_path, ts_path = root / "net.onnx", root / "net.pt"
    torch.onnx.export(net, (torch.zeros(1, 3, 16, 16),), str(onnx_path), input_names=["x"],
                      dynamic_axes={"x": {0: "n"}}, opset_version=17, dynamo=False)  # fmt: skip
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 16, 16)), ts_path)
    return net, onnx_path, ts_path


def test_macs_match_a_hand_count(net_files):
    net, onnx_path, _ = net_files
    assert torch_macs(net, (16, 16)) == HAND_COUNT
    counted = onnx_macs(onnx_path)
    assert counted == {"macs": HAND_COUNT, "by_op": {"Conv": 55_296 + 18_432, "Gemm": 20_480}, "uncounted": []}


def test_model_complexity_of_loaded_encoders(net_files):
    net, onnx_path, ts_path = net_files
    params = sum(p.numel() for p in net.parameters())
    for path in (onnx_path, ts_path):
        encoder = load_encoder(path, device="cpu", input_size=(16, 16), trust_checkpoint_code=True)
        info = model_complexity(encoder)
        assert info["parameters"] == params
        assert info["file_bytes"] == os.path.getsize(path)
        assert info["macs"] == HAND_COUNT and info["flops"] == 2 * HAND_COUNT
        assert info["flops_source"] == ("onnx graph" if path == onnx_path else "torch")


@pytest.mark.skipif(importlib.util.find_spec("face_recognition_models") is None, reason="facebench[dlib] not installed")
def test_dlib_counts_agree_between_torch_and_its_onnx_export(tmp_path):
    from facebench.models.dlib import find_dlib_model
    from facebench.models.export import export_checked

    encoder = load_encoder(find_dlib_model(), device="cpu")
    export_checked(encoder, tmp_path / "dlib.onnx", "onnx")
    torch_info = model_complexity(encoder)
    onnx_info = model_complexity(load_encoder(tmp_path / "dlib.onnx", device="cpu"))
    assert torch_info["parameters"] == onnx_info["parameters"] == 5_614_592
    # the exported padding hides shapes from static inference: the counter reads them from one run
    assert torch_info["macs"] == onnx_info["macs"] > 0
    assert "uncounted_nodes" not in onnx_info


def test_measure_speed_reports_latency_and_throughput(net_files):
    _, onnx_path, _ = net_files
    encoder = load_encoder(onnx_path, device="cpu")
    speed = measure_speed(encoder, batch=4, repeats=2, warmup=1)
    assert speed["batch"] == 4 and speed["repeats"] == 2
    assert speed["latency_ms"] > 0 and speed["throughput_images_per_s"] > 0
    assert speed["machine"]["cpu_count"] == os.cpu_count()
    assert speed["machine"]["device"] == "CPUExecutionProvider"
