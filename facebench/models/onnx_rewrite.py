"""Rewrite PRelu activations into operators onnxruntime's CPU blocked layout (NCHWc) keeps fused.

onnxruntime runs CPU convolutions in a blocked channel layout (NCHWc) and fuses Relu, LeakyRelu and
BatchNormalization into them, but PRelu has no blocked kernel: every PRelu costs a pass of its own plus a
reorder out of and back into the blocked layout. In a MobileFaceNet or an insightface IResNet, where a PRelu
follows most convolutions, that is more than half of the CPU time.

Rule, for each PRelu ``y = PRelu(z, a)`` whose slope ``a`` is a float32 initializer and whose input ``z`` is
4-D (by ONNX shape inference):

- one slope for all channels: ``y = LeakyRelu(z, alpha=a)`` (the same arithmetic: ``a * z`` where
  ``z < 0``);
- one slope per channel (shape ``(C, 1, 1)`` or ``(1, C, 1, 1)``):
  ``y = z + BatchNormalization(Relu(BatchNormalization(z, scale=-1)), scale=1-a)`` with zero bias and mean,
  unit variance and epsilon 0, i.e. ``y = z + (1 - a) * max(-z, 0)``: ``z`` where ``z >= 0`` and ``a * z``
  otherwise. onnxruntime turns both batch normalisations into blocked 1x1 depthwise convolutions (the Relu
  fused into the first, the Add into the second). The result equals PRelu up to float rounding (a few units
  in the last place where ``z < 0``).

Other PRelu nodes (a computed slope, another broadcast, an unknown rank, float16) are left as they are;
graphs below opset 9 are not rewritten.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

MIN_OPSET = 9


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> rank, from ONNX shape inference (names it cannot type are absent)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # onnx raises InferenceError and friends on graphs it cannot type
        return {}
    graph = inferred.graph
    out = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        if tensor.HasField("shape"):
            out[info.name] = len(tensor.shape.dim)
    return out


def _opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def rewrite_prelu(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` with its PRelu nodes rewritten by the module rule, and how many were rewritten
    (0: ``model`` itself is returned)."""
    if _opset(model) < MIN_OPSET or not any(n.op_type == "PRelu" for n in model.graph.node):
        return model, 0
    slopes = {t.name: t for t in model.graph.initializer}
    ranks = _ranks(model)
    nodes: list[onnx.NodeProto] = []
    added: list[onnx.TensorProto] = []
    replaced: set[str] = set()  # slopes of rewritten nodes (dropped when nothing else reads them)
    taken = {name for node in model.graph.node for name in (*node.input, *node.output, node.name)} | set(slopes)
    count = 0

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    def constant(base: str, values: np.ndarray) -> str:
        name = fresh(base)
        added.append(numpy_helper.from_array(np.ascontiguousarray(values, dtype=np.float32), name))
        return name

    for node in model.graph.node:
        z = node.input[0] if node.op_type == "PRelu" else ""
        slope = slopes.get(node.input[1]) if node.op_type == "PRelu" and len(node.input) > 1 else None
        if slope is None or slope.data_type != onnx.TensorProto.FLOAT or ranks.get(z) != 4:
            nodes.append(node)
            continue
        a = numpy_helper.to_array(slope)
        shape = tuple(int(d) for d in a.shape)
        base = node.name or node.output[0]
        replaced.add(slope.name)  # dropped below unless another node reads it
        if a.size == 1:
            nodes.append(helper.make_node("LeakyRelu", [z], list(node.output), name=fresh(base), alpha=float(a.reshape(-1)[0])))
            count += 1
            continue
        channels = a.size
        if shape not in ((channels, 1, 1), (1, channels, 1, 1)):
            nodes.append(node)
            continue
        zeros, ones = np.zeros(channels, np.float32), np.ones(channels, np.float32)
        neg, relu, scaled = fresh(f"{base}_neg"), fresh(f"{base}_relu_neg"), fresh(f"{base}_scaled")
        bn_rest = [constant(f"{base}_bias", zeros), constant(f"{base}_mean", zeros), constant(f"{base}_var", ones)]
        nodes += [
            helper.make_node("BatchNormalization", [z, constant(f"{base}_minus_one", -ones), *bn_rest], [neg],
                             name=fresh(f"{base}_negate"), epsilon=0.0),
            helper.make_node("Relu", [neg], [relu], name=fresh(f"{base}_relu")),
            helper.make_node("BatchNormalization", [relu, constant(f"{base}_one_minus_slope", 1.0 - a.reshape(-1)),
                                                    *bn_rest], [scaled], name=fresh(f"{base}_scale"), epsilon=0.0),
            helper.make_node("Add", [z, scaled], list(node.output), name=fresh(f"{base}_add")),
        ]
        count += 1
    if not count:
        return model, 0
    graph = model.graph
    used = {name for node in nodes for name in node.input} | {v.name for v in (*graph.input, *graph.output)}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    kept = [t for t in out.graph.initializer if t.name in used or t.name not in replaced]
    del out.graph.initializer[:]
    out.graph.initializer.extend([*kept, *added])
    return out, count
