"""dlib's face-recognition ResNet: the .dat reader, the torch network, its ONNX export and its chip."""

from __future__ import annotations

import importlib.util
import math
import struct

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.extraction.images import ARCFACE_TEMPLATE, align, umeyama_similarity
from facebench.extraction.dlib_chip import dlib_chip
from facebench.models.dlib import read_dlib_network
from facebench.models.dlib_torch import DlibResNet
from facebench.models.loader import load_encoder
from facebench.extraction.preprocess import PROFILES

HAVE_MODEL = importlib.util.find_spec("face_recognition_models") is not None
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="face_recognition_models (facebench[dlib]) not installed")


# A writer of dlib's serialisation, written from the format description, to build small networks ------------


def _int(v: int) -> bytes:
    mag = abs(v)
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def _float(x: float) -> bytes:
    mantissa, exponent = math.frexp(x)
    return _int(int(mantissa * (1 << 53))) + _int(exponent - 53)


def _str(s: str) -> bytes:
    return _int(len(s)) + s.encode()


def _tensor(a: np.ndarray) -> bytes:
    dims = list(a.shape) + [1] * (4 - a.ndim) if a.size else [0, 0, 0, 0]
    return _int(2) + b"".join(_int(d) for d in dims) + np.asarray(a, "<f4").tobytes()


def _alias(*dims: int) -> bytes:
    return _int(1) + b"".join(_int(d) for d in dims)


EMPTY = _tensor(np.zeros(0, np.float32))
MULTIPLIERS = _float(1.0) * 3 + _float(0.0)


def _con(w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> bytes:
    n, k, nr, nc = w.shape
    params = np.concatenate([w.ravel(), b]).reshape(-1, 1, 1, 1)
    return (_str("con_4") + _tensor(params) + b"".join(_int(v) for v in (n, nr, nc, stride, stride, pad, pad))
            + _alias(n, k, nr, nc) + _alias(1, n, 1, 1) + MULTIPLIERS)  # fmt: skip


def _affine(gamma: np.ndarray, beta: np.ndarray) -> bytes:
    params = np.concatenate([gamma, beta]).reshape(2, len(gamma), 1, 1)
    return _str("affine_") + _tensor(params) + _alias(1, len(gamma), 1, 1) * 2 + _int(0)


def _pool(name: str, k: int, stride: int, pad: int = 0) -> bytes:
    return _str(name) + b"".join(_int(v) for v in (k, k, stride, stride, pad, pad))


def _fc(w: np.ndarray) -> bytes:  # no bias; dlib stores W as inputs x outputs
    n_in, n_out = w.shape
    weights = _tensor(w.reshape(-1, 1, 1, 1)) + _alias(n_in, n_out, 1, 1) + _alias(1, n_out, 1, 1)
    return _str("fc_2") + _int(n_out) + _int(n_in) + weights + _int(1) + MULTIPLIERS


BOOKKEEPING = b"110" + EMPTY + EMPTY + EMPTY  # setup/stale/disabled flags, x_grad, cached_output, params_grad
INNER_BOOKKEEPING = b"110" + EMPTY + EMPTY + EMPTY + _int(1)  # ... grad_final, sample expansion factor


@pytest.fixture(scope="module")
def tiny():
    """input 8x8 -> con 4 3x3/1 pad 1 -> relu -> tag1 -> con 6 3x3/2 pad 0 -> affine -> tag2 -> skip1 ->
    avg_pool 2x2/2 -> add_prev2 (6x3x3 + 4x4x4 -> 6x4x4) -> avg_pool_everything -> fc_no_bias 5."""
    rng = np.random.default_rng(0)
    p = {
        "w1": rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3,
        "b1": rng.standard_normal(4).astype(np.float32) * 0.1,
        "w2": rng.standard_normal((6, 4, 3, 3)).astype(np.float32) * 0.3,
        "b2": rng.standard_normal(6).astype(np.float32) * 0.1,
        "g": rng.uniform(0.5, 1.5, 6).astype(np.float32),
        "beta": rng.standard_normal(6).astype(np.float32) * 0.1,
        "fc": rng.standard_normal((6, 5)).astype(np.float32),
        "mean": (120.5, 110.25, 100.0),
    }
    prefix = [2, 2, 2, 2, 1, 1, 2, 2, 1, 2]  # fc, gap, add_prev, avg_pool, skip, tag2, affine, con, tag1, relu
    data = _int(1) + _str("loss_metric_2") + _float(0.04) + _float(0.6)
    data += b"".join(_int(v) for v in prefix) + _int(3)
    data += _str("input_rgb_image_sized") + b"".join(_float(m) for m in p["mean"]) + _int(8) + _int(8)
    data += _con(p["w1"], p["b1"], 1, 1) + INNER_BOOKKEEPING
    data += _str("relu_") + BOOKKEEPING
    data += _con(p["w2"], p["b2"], 2, 0) + BOOKKEEPING
    data += _affine(p["g"], p["beta"]) + BOOKKEEPING
    data += _pool("avg_pool_2", 2, 2) + BOOKKEEPING
    data += _str("add_prev_") + BOOKKEEPING
    data += _pool("avg_pool_2", 0, 1) + BOOKKEEPING
    data += _fc(p["fc"]) + BOOKKEEPING
    return data, p


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    n, _, kh, kw = w.shape
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((n, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, i, j] = np.tensordot(w, patch, axes=3) + b
    return out


def _tiny_forward(x: np.ndarray, p: dict) -> np.ndarray:
    """The tiny network of the fixture, written out by hand in float64 numpy."""
    a = np.maximum(_conv(x, p["w1"], p["b1"], 1, 1), 0)  # 4x8x8 (tag1)
    c = _conv(a, p["w2"], p["b2"], 2, 0) * p["g"][:, None, None] + p["beta"][:, None, None]  # 6x3x3 (tag2)
    pooled = a.reshape(4, 4, 2, 4, 2).mean(axis=(2, 4))  # skip to tag1, 2x2/2 average: 4x4x4
    total = np.zeros((6, 4, 4))
    total[:4] += pooled
    total[:, :3, :3] += c  # add_prev zero-pads channels and bottom/right
    return total.mean(axis=(1, 2)) @ p["fc"]


def test_reader_and_network_on_a_file_built_byte_by_byte(tmp_path, tiny):
    data, p = tiny
    path = tmp_path / "tiny.dat"
    path.write_bytes(data)
    net = read_dlib_network(path)
    assert net.loss == {"name": "loss_metric", "margin": 0.04, "distance_threshold": 0.6}
    assert net.input == {"name": "input_rgb_image_sized", "mean": p["mean"], "size": (8, 8)}
    assert [layer.kind for layer in net.layers] == [
        "con", "relu", "wrap", "con", "affine", "wrap", "wrap", "avg_pool", "add_prev", "avg_pool", "fc"]  # fmt: skip
    assert net.parameter_count == 4 * 27 + 4 + 6 * 36 + 6 + 12 + 30
    model = DlibResNet(net).eval()
    assert model.output_shape == (5, 1, 1)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    expected = np.stack([_tiny_forward(xi.astype(np.float64), p) for xi in x])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_truncated_or_foreign_files_are_clear_errors(tmp_path, tiny):
    data, _ = tiny
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[:-20])
    with pytest.raises(FacebenchError, match=r"cut\.dat byte \d+: "):
        read_dlib_network(cut)
    other = tmp_path / "svm.dat"
    other.write_bytes(_int(1) + _str("loss_multiclass_log_") + b"\x00" * 8)
    with pytest.raises(FacebenchError, match="unsupported loss 'loss_multiclass_log_'"):
        read_dlib_network(other)
    trailing = tmp_path / "trailing.dat"
    trailing.write_bytes(data + b"\x01")
    with pytest.raises(FacebenchError, match="1 trailing bytes"):
        read_dlib_network(trailing)


def test_float_encoding_specials():
    from facebench.models.dlib import _Stream

    s = _Stream(_int(0) + _int(32000) + _int(0) + _int(32001) + _int(-3) + _int(-1) + struct.pack("B", 0x31), "x")
    assert s.float() == math.inf and s.float() == -math.inf and s.float() == -1.5 and s.bool() is True


# The real model ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dlib_path():
    if not HAVE_MODEL:
        pytest.skip("face_recognition_models (facebench[dlib]) not installed")
    from facebench.models.dlib import find_dlib_model

    return find_dlib_model()


@pytest.fixture(scope="module")
def reference(reference_dir):
    folder = reference_dir / "dlib"
    if not (folder / "chips.npy").is_file():
        pytest.skip("../shared/reference/dlib is not present")
    return np.load(folder / "chips.npy"), np.load(folder / "descriptors.npy")


@needs_model
def test_real_file_structure(dlib_path):
    net = read_dlib_network(dlib_path)
    counts = {k: net.count(k) for k in ("con", "affine", "relu", "max_pool", "add_prev", "avg_pool", "fc")}
    assert counts == {"con": 29, "affine": 29, "relu": 29, "max_pool": 1, "add_prev": 14, "avg_pool": 5, "fc": 1}
    assert net.parameter_count == 5_614_592
    assert np.allclose(net.input["mean"], PROFILES["dlib"].mean, atol=1e-4)
    assert net.input["size"] == (150, 150)
    assert net.loss["distance_threshold"] == pytest.approx(0.6)


@needs_model
def test_reproduces_dlibs_descriptors_in_torch_and_onnx(dlib_path, reference, tmp_path):
    from facebench.models.export import export_checked

    chips, descriptors = reference
    encoder = load_encoder(dlib_path, device="cpu")
    assert encoder.format == "dlib" and encoder.input_size == (150, 150) and encoder.embedding_dim == 128
    assert encoder.default_profile == PROFILES["dlib"]
    x = PROFILES["dlib"].normalise(chips)
    torch_out = encoder.embed(x)
    assert np.abs(torch_out - descriptors).max() <= 1e-5

    onnx_path = tmp_path / "dlib.onnx"
    export_checked(encoder, onnx_path, "onnx")
    onnx_encoder = load_encoder(onnx_path, device="cpu")
    assert onnx_encoder.format == "onnx" and onnx_encoder.normalizes_input is False
    assert np.abs(onnx_encoder.embed(x) - descriptors).max() <= 1e-5


def test_dlib_chip_geometry():
    chip = dlib_chip()
    assert chip.name == "dlib" and chip.size == 150 and chip.fit == (0, 1)
    t = chip.template
    # mean-face eye centres (points 36-41, 42-47) through dlib's padding 0.25 and 0..149 pixel span
    left = np.mean([[0.121737, 0.216423], [0.187122, 0.178758], [0.265825, 0.179852],
                    [0.334606, 0.231733], [0.260918, 0.245099], [0.182743, 0.244077]], axis=0)  # fmt: skip
    np.testing.assert_allclose(t[0], (0.25 + left) / 1.5 * 149, atol=1e-9)
    assert t[0, 1] == pytest.approx(t[1, 1])  # the mean face is level
    assert t[0, 0] + t[1, 0] == pytest.approx(2 * t[2, 0], abs=0.05)  # nose tip on the midline
    # dlib's own 5-point template (eye corners) puts each eye centre within a pixel of ours
    corners = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                        [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242]])  # fmt: skip
    five = (0.25 + corners) / 1.5 * 149
    np.testing.assert_allclose(five[2:].mean(axis=0), t[0], atol=1.0)
    np.testing.assert_allclose(five[:2].mean(axis=0), t[1], atol=1.0)


def test_arcface_crop_maps_onto_the_dlib_chip_by_the_eyes():
    chip = dlib_chip()
    matrix = umeyama_similarity(ARCFACE_TEMPLATE[:2], chip.template[:2])
    mapped = ARCFACE_TEMPLATE @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped[:2], chip.template[:2], atol=1e-9)
    # a bright dot at the ArcFace left-eye centre lands at the dlib left-eye centre
    crop = np.zeros((112, 112, 3), np.uint8)
    x, y = np.rint(ARCFACE_TEMPLATE[0]).astype(int)
    crop[y - 1 : y + 2, x - 1 : x + 2] = 255
    out = align(crop, ARCFACE_TEMPLATE, chip)
    assert out.shape == (150, 150, 3)
    ys, xs = np.nonzero(out[..., 0] > 128)
    target = np.array([x, y], float) @ matrix[:, :2].T + matrix[:, 2]
    assert abs(xs.mean() - target[0]) < 1.0 and abs(ys.mean() - target[1]) < 1.0
