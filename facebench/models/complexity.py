"""Model size, FLOPs per image and measured speed, as JSON-ready dicts for every result.

Counting rule (both backends): multiply-accumulates of convolutions and matrix products for one image,
``macs``; ``flops = 2 * macs``. Element-wise operations (batch norm, activations, additions, pooling) are not
counted, as in the published FLOPs tables of the field. ONNX: Conv/ConvTranspose/Gemm/MatMul nodes with
shapes from ONNX shape inference at batch 1. Torch: ``torch.utils.flop_counter`` on one forward pass of a
batch of 1 (convolution, mm/addmm/bmm, attention).
"""

from __future__ import annotations

import os
import platform
import sys
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from facebench.errors import FacebenchError
from facebench.models.base import Encoder

FLOPS_RULE = "2 x multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul for one image; element-wise ops not counted"


def _dims(value_info: Any) -> list[int] | None:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(int(d.dim_value))
    return dims


def onnx_macs(model: Any, input_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Multiply-accumulates per image of an ONNX model (a path or ``onnx.ModelProto``).

    The graph input's batch dimension is fixed to 1 (and its height/width to ``input_size`` when given)
    before shape inference. Returns ``{"macs", "by_op", "uncounted"}``; ``macs`` is ``None`` when a counted
    node's shapes stay unknown (``uncounted`` names them).
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initializers = {t.name: list(t.dims) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise FacebenchError(f"expected one graph input, found {[i.name for i in inputs]}")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise FacebenchError(f"graph input {inputs[0].name!r} is not 4-D")
    dims[0].dim_value = 1
    channel_axis = 1 if dims[1].HasField("dim_value") and dims[1].dim_value == 3 else 3
    spatial = (2, 3) if channel_axis == 1 else (1, 2)
    if input_size is not None:
        for axis, value in zip(spatial, input_size):
            dims[axis].dim_value = int(value)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and friends
        raise FacebenchError(f"ONNX shape inference failed: {exc}") from None
    shapes: dict[str, list[int] | None] = {name: dims_ for name, dims_ in initializers.items()}
    for vi in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        shapes.setdefault(vi.name, _dims(vi))
    counted_ops = ("Conv", "ConvTranspose", "Gemm", "MatMul")
    wanted = [
        name
        for node in inferred.graph.node
        if node.op_type in counted_ops
        for name in (*node.input[:2], node.output[0])
    ]
    unknown = sorted({n for n in wanted if shapes.get(n) is None})
    if unknown:
        shapes.update(_runtime_shapes(inferred, unknown))
    by_op: dict[str, int] = {}
    uncounted: list[str] = []
    for node in inferred.graph.node:
        op = node.op_type
        if op not in counted_ops:
            continue
        label = node.name or f"{op}:{node.output[0]}"
        a = shapes.get(node.input[0])
        b = shapes.get(node.input[1])
        y = shapes.get(node.output[0])
        macs: int | None = None
        if op == "Conv" and b is not None and y is not None:
            # weight (M, C/g, kh, kw); output (N, M, *spatial): each output value is C/g * kh * kw MACs
            macs = int(np.prod(y, dtype=np.int64)) * int(np.prod(b[1:], dtype=np.int64))
        elif op == "ConvTranspose" and a is not None and b is not None:
            # weight (C, M/g, kh, kw): each input value feeds M/g * kh * kw outputs
            macs = int(np.prod(a, dtype=np.int64)) * int(np.prod(b[1:], dtype=np.int64))
        elif op == "Gemm" and a is not None and b is not None:
            attrs = {at.name: at.i for at in node.attribute}
            m, k = (a[1], a[0]) if attrs.get("transA", 0) else (a[0], a[1])
            n = b[0] if attrs.get("transB", 0) else b[1]
            macs = m * k * n
        elif op == "MatMul" and a is not None and b is not None and y is not None:
            k = a[-1]
            macs = int(np.prod(y, dtype=np.int64)) * k
        if macs is None:
            uncounted.append(label)
        else:
            by_op[op] = by_op.get(op, 0) + macs
    total = None if uncounted else int(sum(by_op.values()))
    return {"macs": total, "by_op": by_op, "uncounted": uncounted}


def _runtime_shapes(model: Any, names: list[str]) -> dict[str, list[int] | None]:
    """Shapes of intermediate tensors ``names`` from one onnxruntime run (CPU) on a zero input of the
    graph's (fixed) input shape; names it cannot expose map to ``None``."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    existing = {o.name for o in probe.graph.output}
    for name in names:
        if name not in existing:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    initializers = {t.name for t in probe.graph.initializer}
    graph_input = next(i for i in probe.graph.input if i.name not in initializers)
    shape = [int(d.dim_value) for d in graph_input.type.tensor_type.shape.dim]
    try:
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        input_type = session.get_inputs()[0].type
        dtype = {"tensor(float16)": np.float16, "tensor(double)": np.float64}.get(input_type, np.float32)
        outputs = session.run(names, {graph_input.name: np.zeros(shape, dtype=dtype)})
    except Exception:  # onnxruntime's own exception types: leave the shapes unknown
        return {name: None for name in names}
    return {name: list(np.shape(value)) for name, value in zip(names, outputs)}


def torch_macs(module: Any, input_size: tuple[int, int], device: Any = "cpu") -> int:
    """Multiply-accumulates per image of a torch module (``flop_counter`` FLOPs / 2, batch of 1)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((1, 3, *input_size), dtype=torch.float32, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(x)
    return int(counter.get_total_flops()) // 2


def model_complexity(encoder: Encoder) -> dict[str, Any]:
    """Parameters, file bytes, MACs and FLOPs per image of a loaded encoder (counted from its graph)."""
    path = getattr(encoder, "path", None)
    info: dict[str, Any] = {
        "parameters": int(encoder.parameter_count()) if hasattr(encoder, "parameter_count") else None,
        "file_bytes": os.path.getsize(path) if path and Path(path).is_file() else None,
        "input_size": list(encoder.input_size),
        "flops_rule": FLOPS_RULE,
    }
    if encoder.format == "onnx":
        counted = onnx_macs(path, encoder.input_size)
        info.update(macs=counted["macs"], flops_source="onnx graph")
        if counted["uncounted"]:
            info["uncounted_nodes"] = counted["uncounted"]
    else:
        module = getattr(encoder, "module", None)
        if module is None:
            raise FacebenchError(f"{path}: cannot count FLOPs of a {encoder.format} encoder without its module")
        macs = torch_macs(module, encoder.input_size, getattr(encoder, "device", "cpu"))
        info.update(macs=macs, flops_source="torch")
    info["flops"] = None if info["macs"] is None else 2 * info["macs"]
    info["gflops"] = None if info["flops"] is None else round(info["flops"] / 1e9, 4)
    return info


def machine_description(encoder: Encoder | None = None) -> dict[str, Any]:
    """Where a speed measurement ran: CPU, core count, torch threads (when torch runs the model), accelerator."""
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
    }
    device = str(getattr(encoder, "device", "")) if encoder is not None else ""
    providers = getattr(encoder, "providers", None)
    torch = sys.modules.get("torch")  # loaded only when a torch backend runs the model
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    if device.startswith("cuda") and torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device).index or 0)
    elif providers and "CUDAExecutionProvider" in providers[:1]:
        import onnxruntime

        info["gpu"] = onnxruntime.get_device()
    info["device"] = device or (providers[0] if providers else None)
    return info


def measure_speed(
    encoder: Encoder, batch: int = 32, repeats: int = 5, warmup: int = 1, seed: int = 0
) -> dict[str, Any]:
    """Latency at batch 1 and throughput at ``batch`` of ``encoder.embed`` on this machine.

    Rule: ``warmup`` untimed calls at each batch size, then ``repeats`` timed calls (wall clock,
    ``time.perf_counter``; ``embed`` returns host arrays, so GPU work is complete when it returns).
    Latency = the median batch-1 call in milliseconds; throughput = ``batch * repeats`` images divided by
    the summed time of the batch calls.
    """
    if batch < 1 or repeats < 1 or warmup < 0:
        raise FacebenchError(
            f"speed measurement needs batch >= 1, repeats >= 1, warmup >= 0 (got {batch}, {repeats}, {warmup})"
        )
    rng = np.random.default_rng(seed)
    one = rng.standard_normal((1, 3, *encoder.input_size)).astype(np.float32)
    many = rng.standard_normal((batch, 3, *encoder.input_size)).astype(np.float32)

    def timed(x: np.ndarray) -> list[float]:
        for _ in range(warmup):
            encoder.embed(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            encoder.embed(x)
            times.append(time.perf_counter() - start)
        return times

    latency = timed(one)
    batched = timed(many)
    return {
        "latency_ms": round(statistics.median(latency) * 1e3, 3),
        "throughput_images_per_s": round(batch * repeats / sum(batched), 2),
        "batch": batch,
        "repeats": repeats,
        "warmup": warmup,
        "machine": machine_description(encoder),
    }
