"""Every checkpoint format through load_encoder: same embeddings, clear errors, ONNX graph inspection."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from facebench.errors import FacebenchError
from facebench.models.export import export_checked
from facebench.models.loader import detect_format, load_encoder
from facebench.models.onnx_backend import graph_normalizes_input
from facebench.models.torch_backend import unwrap_state_dict
from tests._models import random_backbone

ARCH = "mobilefacenet"


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return random_backbone(ARCH, seed=3)


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((3, 3, 112, 112)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(model, batch) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(batch)).numpy()
    assert np.abs(out).max() > 0.1  # a meaningful scale for a 1e-5 comparison
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    """The same weights in every format the loader reads."""
    root = tmp_path_factory.mktemp("formats")
    state = model.state_dict()
    paths = {
        "plain": root / "backbone.pth",
        "arcface_torch": root / "checkpoint_gpu_0.pt",
        "ddp": root / "ddp.pt",
        "whole_model_ckpt": root / "facexzoo_style.pt",
        "torchscript": root / "model.torchscript",
    }
    torch.save(state, paths["plain"])
    # arcface_torch's resumable checkpoint (train.py, save_all_states); its model.pt is the plain state_dict
    torch.save({"epoch": 3, "global_step": 10, "state_dict_backbone": state,
                "state_dict_softmax_fc": {"weight": torch.zeros(10, 512)},
                "state_optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
                "state_lr_scheduler": {"last_epoch": 9}}, paths["arcface_torch"])  # fmt: skip
    # a DDP-wrapped model saved without .module: every key prefixed "module."
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, paths["ddp"])
    # whole-model checkpoints: backbone under a prefix, plus a classification head
    whole = {f"backbone.{k}": v for k, v in state.items()}
    whole["head.weight"] = torch.zeros(10, 512)
    torch.save({"model": whole, "optimizer": {"lr": 0.1}}, paths["whole_model_ckpt"])
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 112, 112)), paths["torchscript"])
    encoder = load_encoder(paths["plain"], arch=ARCH, device="cpu")
    paths["onnx"] = root / "model.onnx"
    export_checked(encoder, paths["onnx"], "onnx", tolerance=1e-4)
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "arcface_torch", "ddp", "whole_model_ckpt", "torchscript", "onnx"])
def test_every_format_gives_the_same_embeddings(files, kind, batch, reference):
    arch = ARCH if kind in ("plain", "arcface_torch", "ddp", "whole_model_ckpt") else None
    encoder = load_encoder(files[kind], arch=arch, device="cpu", batch_hint=2, trust_checkpoint_code=kind == "torchscript")
    expected_format = {"torchscript": "torchscript", "onnx": "onnx"}.get(kind, "pytorch")
    assert encoder.format == expected_format
    assert encoder.input_size == (112, 112)
    assert encoder.embedding_dim == 512
    out = encoder.embed(batch)
    assert out.dtype == np.float32 and out.shape == (3, 512)
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-5)
    info = encoder.describe()
    assert info["format"] == expected_format and info["embedding_dim"] == 512
    assert len(info["sha256"]) == 64


def test_detect_format(files):
    assert detect_format(files["plain"]) == "pytorch"
    assert detect_format(files["torchscript"]) == "torchscript"
    assert detect_format(files["onnx"]) == "onnx"


@pytest.mark.slow
def test_architecture_recognised_without_arch(files):
    encoder = load_encoder(files["plain"], device="cpu")
    assert encoder.architecture == ARCH


def test_state_dict_that_does_not_fit_lists_the_keys(tmp_path, model):
    state = dict(model.state_dict())
    del state["conv_sep.layers.0.weight"]
    state["features.layers.2.weight"] = torch.zeros(256, 512)
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(FacebenchError) as err:
        load_encoder(path, arch=ARCH, device="cpu")
    message = str(err.value)
    assert f"{path}: the state_dict does not fit architecture 'mobilefacenet'" in message
    assert "shape mismatches (1): features.layers.2.weight: checkpoint 256x512 vs model 512x512" in message
    assert "missing keys (1): conv_sep.layers.0.weight" in message
    assert "unexpected keys (1): extra.weight" in message


def test_wrong_architecture_names_the_one_that_fits(files):
    with pytest.raises(FacebenchError, match="architectures that fit: mobilefacenet"):
        load_encoder(files["plain"], arch="iresnet18", device="cpu")


def test_pickled_module_is_refused_without_running_it(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save(nn.Linear(2, 2), path)  # a pickled module: needs arbitrary unpickling
    with pytest.raises(FacebenchError, match="refused to unpickle"):
        load_encoder(path, arch=ARCH, device="cpu")


class _Exploit:
    def __reduce__(self):
        return (print, ("executed",))


def test_malicious_pickle_never_executes(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"weight": _Exploit()}, protocol=2))
    with pytest.raises(FacebenchError, match="refused to unpickle"):
        load_encoder(path, arch=ARCH, device="cpu")
    assert "executed" not in capsys.readouterr().out


def test_unwrap_state_dict_rules():
    t = torch.zeros(1)
    assert unwrap_state_dict({"model": {"module.a": t, "module.b": t}}, "x") == {"a": t, "b": t}
    assert set(unwrap_state_dict({"state_dict": {"_orig_mod.module.a": t}, "epoch": 1}, "x")) == {"a"}
    nested = {"backbone.a": t, "backbone.b": t, "head.w": t}
    assert set(unwrap_state_dict(nested, "x", expected={"a", "b"})) == {"a", "b"}
    with pytest.raises(FacebenchError, match="no state_dict found"):
        unwrap_state_dict({"epoch": 3}, "ckpt.pt")


def test_wrong_input_size_is_a_clear_error(files):
    encoder = load_encoder(files["onnx"], device="cpu")
    with pytest.raises(FacebenchError, match="the model takes 3x112x112 input, got 3x150x150"):
        encoder.embed(np.zeros((1, 3, 150, 150), np.float32))
    encoder = load_encoder(files["plain"], arch=ARCH, device="cpu")
    with pytest.raises(FacebenchError, match="the model takes 3x112x112 input, got 3x96x96"):
        encoder.embed(np.zeros((1, 3, 96, 96), np.float32))


class _Spatial(nn.Module):
    def forward(self, x):
        return x[:, :, :4, :4]


def test_output_that_is_not_an_embedding_is_rejected(tmp_path):
    path = tmp_path / "spatial.pt"
    torch.jit.save(torch.jit.trace(_Spatial(), torch.zeros(1, 3, 112, 112)), path)
    expected = r"output has shape \(2, 3, 4, 4\) for 2 images; an embedding model must return \(N, D\)"
    with pytest.raises(FacebenchError, match=expected):
        load_encoder(path, device="cpu", trust_checkpoint_code=True)


def test_torchscript_of_another_input_size_needs_input_size(tmp_path):
    path = tmp_path / "conv.pt"
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 14 * 14, 8))
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 16, 16)), path)
    with pytest.raises(FacebenchError, match="wrong input size or architecture"):
        load_encoder(path, device="cpu", trust_checkpoint_code=True)
    assert load_encoder(path, device="cpu", input_size=(16, 16), trust_checkpoint_code=True).embedding_dim == 8


def test_half_needs_cuda(files):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: fp16 autocast is allowed here")
    with pytest.raises(FacebenchError, match="fp16"):
        load_encoder(files["plain"], arch=ARCH, device="cpu", half=True)


# ONNX graph inspection -------------------------------------------------------------------------------


class _Small(nn.Module):
    """A small embedding net; ``normalise`` puts insightface's (x - 127.5) / 127.5 inside the graph."""

    def __init__(self, normalise: bool = False, nhwc: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.normalise, self.nhwc = normalise, nhwc
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.fc = nn.Linear(4 * 7 * 7, 6)

    def forward(self, x):
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        if self.normalise:
            x = (x - 127.5) / 127.5
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def _onnx(module: nn.Module, path, shape) -> None:
    torch.onnx.export(module, (torch.zeros(shape),), str(path), input_names=["data"], output_names=["fc1"],
                      dynamic_axes={"data": {0: "n"}, "fc1": {0: "n"}}, opset_version=17, dynamo=False)  # fmt: skip


def test_onnx_normalisation_inside_the_graph_is_detected(tmp_path):
    inside, outside = tmp_path / "inside.onnx", tmp_path / "outside.onnx"
    _onnx(_Small(normalise=True), inside, (1, 3, 16, 16))
    _onnx(_Small(normalise=False), outside, (1, 3, 16, 16))
    enc_in = load_encoder(inside, device="cpu")
    enc_out = load_encoder(outside, device="cpu")
    assert enc_in.normalizes_input is True
    assert enc_in.default_profile is not None and enc_in.default_profile.name == "raw"
    assert enc_out.normalizes_input is False and enc_out.default_profile is None
    # both graphs compute the same function of the normalised image
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(enc_in.embed(pixels), enc_out.embed((pixels - 127.5) / 127.5), atol=1e-5)


def test_onnx_input_layout_and_size_come_from_the_graph(tmp_path):
    path = tmp_path / "nhwc.onnx"
    _onnx(_Small(normalise=True, nhwc=True), path, (1, 16, 16, 3))
    encoder = load_encoder(path, device="cpu")
    assert encoder.layout == "NHWC" and encoder.input_size == (16, 16) and encoder.input_name == "data"
    assert encoder.normalizes_input is True  # seen through the Transpose
    x = np.random.default_rng(1).uniform(0, 255, (2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = _Small(normalise=True, nhwc=True)(torch.from_numpy(x).permute(0, 2, 3, 1)).numpy()
    np.testing.assert_allclose(encoder.embed(x), expected, atol=1e-5)


def test_graph_normalizes_input_undecidable_case(tmp_path):
    import onnx

    class _Clip(nn.Module):
        def forward(self, x):
            return torch.flatten(torch.clamp(x, 0, 1), 1)

    path = tmp_path / "clip.onnx"
    _onnx(_Clip(), path, (1, 3, 4, 4))
    model = onnx.load(str(path))
    assert graph_normalizes_input(model, "data") is None


def test_onnx_fixed_batch_graph_is_run_in_its_batch(tmp_path, batch):
    path = tmp_path / "fixed.onnx"
    net = _Small()
    torch.onnx.export(net, (torch.zeros(2, 3, 16, 16),), str(path), input_names=["x"], opset_version=17, dynamo=False)
    encoder = load_encoder(path, device="cpu")
    assert encoder.fixed_batch == 2 and encoder.max_batch == 2
    x = np.random.default_rng(2).standard_normal((5, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(encoder.embed(x), expected, atol=1e-5)
