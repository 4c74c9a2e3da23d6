"""PRelu rewrite for onnxruntime's blocked CPU layout (facebench.models.onnx_rewrite) and its use by OnnxEncoder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from facebench.models.onnx_backend import CPU_RUN_BATCH, OnnxEncoder
from facebench.models.onnx_rewrite import rewrite_prelu

DEMO_ONNX = Path(__file__).resolve().parents[1] / "facebench" / "demo" / "assets" / "demo_mobilefacenet_small.onnx"
C = 16


def _prelu_graph(slopes: dict[str, np.ndarray], computed_slope: bool = False) -> onnx.ModelProto:
    """x (N, C, 4, 4) -> one PRelu per entry of ``slopes`` (output ``y_<name>``); with ``computed_slope`` also
    a PRelu whose slope is computed (Abs of an initializer), output ``y_computed``."""
    nodes, inits, outputs = [], [], []
    for name, a in slopes.items():
        inits.append(numpy_helper.from_array(a.astype(np.float32), f"a_{name}"))
        nodes.append(helper.make_node("PRelu", ["x", f"a_{name}"], [f"y_{name}"], name=f"prelu_{name}"))
        outputs.append(helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, ["n", C, 4, 4]))
    if computed_slope:
        inits.append(numpy_helper.from_array(np.full((C, 1, 1), -0.3, np.float32), "a_raw"))
        nodes += [helper.make_node("Abs", ["a_raw"], ["a_abs"]), helper.make_node("PRelu", ["x", "a_abs"], ["y_computed"])]
        outputs.append(helper.make_tensor_value_info("y_computed", TensorProto.FLOAT, ["n", C, 4, 4]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", C, 4, 4])
    graph = helper.make_graph(nodes, "prelus", [x], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"x": x})))


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, C, 4, 4)).astype(np.float32) * 3


def test_per_channel_prelu_becomes_blocked_layout_operators_with_prelu_values(x):
    a = np.linspace(-0.9, 1.6, C).astype(np.float32)  # negative, small, one, above one
    model = _prelu_graph({"chw": a.reshape(C, 1, 1), "nchw": a.reshape(1, C, 1, 1)})
    rewritten, count = rewrite_prelu(model)
    assert count == 2
    ops = Counter(n.op_type for n in rewritten.graph.node)
    assert ops == {"BatchNormalization": 4, "Relu": 2, "Add": 2}
    onnx.checker.check_model(rewritten)
    assert not {"a_chw", "a_nchw"} & {t.name for t in rewritten.graph.initializer}  # unused slopes dropped
    out = _run(rewritten, x)
    slope = a.reshape(1, C, 1, 1)
    expected = np.where(x >= 0, x, slope * x)  # PRelu written out
    for name in ("y_chw", "y_nchw"):
        np.testing.assert_array_equal(out[name][x >= 0], x[x >= 0])  # exact where z >= 0
        np.testing.assert_allclose(out[name], expected, rtol=2e-6, atol=1e-6)


def test_one_slope_for_all_channels_becomes_leaky_relu_exactly(x):
    model = _prelu_graph({"one": np.array([0.25])})
    rewritten, count = rewrite_prelu(model)
    assert count == 1 and [n.op_type for n in rewritten.graph.node] == ["LeakyRelu"]
    assert rewritten.graph.node[0].attribute[0].f == pytest.approx(0.25)
    np.testing.assert_array_equal(_run(rewritten, x)["y_one"], np.where(x >= 0, x, np.float32(0.25) * x))


def test_other_prelus_are_left_as_they_are(x):
    # a (C,)-shaped slope broadcasts over the last axis (W), not the channels; a computed slope is not a constant
    model = _prelu_graph({"last_axis": np.full(4, 0.1)}, computed_slope=True)
    rewritten, count = rewrite_prelu(model)
    assert count == 0 and rewritten is model
    old = _prelu_graph({"old": np.full((C, 1, 1), 0.1)})
    old.opset_import[0].version = 8
    assert rewrite_prelu(old) == (old, 0)


def test_mixed_graph_rewrites_only_what_it_can(x):
    model = _prelu_graph({"chw": np.full((C, 1, 1), 0.2), "last_axis": np.full(4, 0.1)}, computed_slope=True)
    rewritten, count = rewrite_prelu(model)
    assert count == 1
    assert Counter(n.op_type for n in rewritten.graph.node)["PRelu"] == 2
    got, want = _run(rewritten, x), _run(model, x)
    np.testing.assert_array_equal(got["y_last_axis"], want["y_last_axis"])
    np.testing.assert_array_equal(got["y_computed"], want["y_computed"])
    np.testing.assert_allclose(got["y_chw"], want["y_chw"], rtol=2e-6, atol=1e-6)


def test_encoder_runs_the_rewritten_demo_graph_in_small_batches():
    encoder = OnnxEncoder(DEMO_ONNX, device="cpu", max_batch=32)
    assert encoder.prelu_rewritten == 19 and encoder.run_batch == CPU_RUN_BATCH
    assert encoder.describe()["run_batch"] == CPU_RUN_BATCH
    batch = np.random.default_rng(1).standard_normal((9, 3, 112, 112)).astype(np.float32)
    plain = ort.InferenceSession(str(DEMO_ONNX), providers=["CPUExecutionProvider"])
    expected = plain.run(None, {"input": batch})[0]
    got = encoder.embed(batch)
    assert got.shape == expected.shape == (9, 128)
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
