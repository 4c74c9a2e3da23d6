"""ONNX models through onnxruntime.

The input name, layout (NCHW or NHWC), size and batch dimension are read from the graph. Whether the graph
normalises its own input is read from the graph too (:func:`graph_normalizes_input`), because a model that
expects raw pixels scores near chance when fed normalised ones, and the other way round.

On the CPU provider the session runs the graph with its PRelu nodes rewritten for onnxruntime's blocked
layout (:mod:`facebench.models.onnx_rewrite`; not for graphs with external data) and feeds it at most
``CPU_RUN_BATCH`` images per call: small batches keep a layer's activations in the CPU caches (the
measurement behind both choices: bench/README.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from facebench.errors import FacebenchError
from facebench.atomic import sha256_file
from facebench.models.base import check_batch
from facebench.models.onnx_rewrite import rewrite_prelu
from facebench.extraction.preprocess import PROFILES, Profile

log = logging.getLogger(__name__)

NORMALISING_OPS = frozenset({"Sub", "Div", "Mul", "Add", "BatchNormalization"})
TRANSPARENT_OPS = frozenset(
    {"Transpose", "Reshape", "Cast", "Identity", "Unsqueeze", "Squeeze", "Slice", "Gather", "Split", "Concat"}
)
FIRST_LAYER_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "Gemm", "MatMul"})
FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
CPU_RUN_BATCH = 4
"""Most images per onnxruntime call on the CPU provider (``embed`` splits larger batches)."""


def _constant_names(graph: onnx.GraphProto) -> set[str]:
    names = {init.name for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            names.update(node.output)
    return names


def external_data_files(model: onnx.ModelProto, path: str | Path) -> list[Path]:
    """The external-data files a model's tensors are stored in (initializers, sparse initializers and
    tensor attributes, subgraphs included), resolved beside the model file, in first-use order."""
    base = Path(path).parent
    found: dict[str, None] = {}

    def tensors(graph: onnx.GraphProto):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    yield from tensors(attr.g)
                for sub in attr.graphs:
                    yield from tensors(sub)

    for tensor in tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    found.setdefault(entry.value, None)
    return [base / name for name in found]


def graph_normalizes_input(model: onnx.ModelProto, input_name: str) -> bool | None:
    """Whether the graph applies a fixed affine map to its input before the first layer.

    Rule: follow the input forward through layout-only nodes (Transpose, Reshape, Cast, Identity,
    (Un)squeeze, Slice, Gather, Split, Concat). ``True`` when a Sub, Div, Mul or Add whose other operand is a
    constant (initializer or Constant node), or a BatchNormalization, is met before the first
    Conv/Gemm/MatMul; ``False`` when the first such layer is reached without one; ``None`` when another
    operator is met first (undecidable).
    """
    graph = model.graph
    constants = _constant_names(graph)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    frontier = [input_name]
    seen: set[str] = set()
    found = False
    reached_layer = False
    while frontier:
        tensor = frontier.pop()
        for node in consumers.get(tensor, []):
            key = node.name or f"{node.op_type}:{','.join(node.output)}"
            if key in seen:
                continue
            seen.add(key)
            if node.op_type in FIRST_LAYER_OPS:
                reached_layer = True
                continue
            if node.op_type in NORMALISING_OPS:
                others = [n for n in node.input if n and n != tensor]
                if node.op_type == "BatchNormalization" or (others and all(n in constants for n in others)):
                    found = True
                    continue
                return None
            if node.op_type in TRANSPARENT_OPS:
                frontier.extend(node.output)
                continue
            return None
    if found:
        return True
    return False if reached_layer else None


class OnnxEncoder:
    """An ONNX graph as a facebench Encoder (onnxruntime; CUDA provider when available and asked for)."""

    format = "onnx"

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "auto",
        input_size: tuple[int, int] | None = None,
        max_batch: int = 64,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = str(path)
        self.half = False
        try:
            model = onnx.load(self.path, load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and friends
            raise FacebenchError(f"{path}: not a readable ONNX model: {exc}") from None
        available = ort.get_available_providers()
        if device == "cpu":
            providers = ["CPUExecutionProvider"]
        elif device in ("auto", "cuda") or device.startswith("cuda:"):
            if "CUDAExecutionProvider" in available:
                index = int(device.split(":")[1]) if device.startswith("cuda:") else 0
                providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
            elif device == "auto":
                providers = ["CPUExecutionProvider"]
            else:
                raise FacebenchError(
                    f"device {device!r} requested but onnxruntime has no CUDA provider here ({available})"
                )
        else:
            raise FacebenchError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.data_files = external_data_files(model, self.path)
        on_cpu = providers == ["CPUExecutionProvider"]
        rewritten, self.prelu_rewritten = rewrite_prelu(model) if on_cpu and not self.data_files else (model, 0)
        source: str | bytes = rewritten.SerializeToString() if self.prelu_rewritten else self.path
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise FacebenchError(f"{path}: onnxruntime cannot load the model: {str(exc).splitlines()[0]}") from None
        self.providers = list(self.session.get_providers())
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise FacebenchError(f"{path}: expected one graph input (the image batch), found {names}")
        spec = inputs[0]
        self.input_name = spec.name
        if spec.type not in FLOAT_TYPES:
            raise FacebenchError(f"{path}: input {spec.name!r} has type {spec.type}; a float image batch is required")
        self.input_dtype = FLOAT_TYPES[spec.type]
        shape = list(spec.shape)
        if len(shape) != 4:
            raise FacebenchError(
                f"{path}: input {spec.name!r} has shape {shape}; expected 4 dims (N, 3, H, W) or (N, H, W, 3)"
            )
        if shape[1] == 3:
            self.layout, dims = "NCHW", shape[2:4]
        elif shape[3] == 3:
            self.layout, dims = "NHWC", shape[1:3]
        else:
            raise FacebenchError(f"{path}: input shape {shape} has no 3-channel axis at position 1 or 3")
        fixed = tuple(d if isinstance(d, int) and d > 0 else None for d in dims)
        if input_size is not None:
            if any(f is not None and f != s for f, s in zip(fixed, input_size)):
                raise FacebenchError(
                    f"{path}: the graph takes {fixed[0]}x{fixed[1]} input, not {input_size[0]}x{input_size[1]}"
                )
            self.input_size = (int(input_size[0]), int(input_size[1]))
        elif None in fixed:
            raise FacebenchError(f"{path}: the graph leaves the input size open ({shape}); pass --input-size HxW")
        else:
            self.input_size = (int(fixed[0]), int(fixed[1]))  # type: ignore[arg-type]
        batch_dim = shape[0]
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self.max_batch = self.fixed_batch or int(max_batch)
        if self.max_batch < 1:
            raise FacebenchError(f"batch size must be >= 1, got {max_batch}")
        self.run_batch = self.fixed_batch or (min(self.max_batch, CPU_RUN_BATCH) if on_cpu else self.max_batch)
        self.output_name = self.session.get_outputs()[0].name
        self.normalizes_input = graph_normalizes_input(model, self.input_name)
        self.default_profile: Profile | None = PROFILES["raw"] if self.normalizes_input else None
        self.architecture = model.graph.name or None
        self.parameters = int(sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer))
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None)
        self._sha256: str | None = None
        self.embedding_dim: int | None = None
        self.embedding_dim = int(self.embed(np.zeros((1, 3, *self.input_size), dtype=np.float32)).shape[1])

    def _run(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if self.fixed_batch and n < self.fixed_batch:
            x = np.concatenate([x, np.zeros((self.fixed_batch - n, *x.shape[1:]), dtype=x.dtype)])
        if self.layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        try:
            out = self.session.run([self.output_name], {self.input_name: x.astype(self.input_dtype, copy=False)})[0]
        except Exception as exc:  # onnxruntime's own exception types
            detail = str(exc).splitlines()[0]
            raise FacebenchError(f"{self.path}: onnxruntime failed on a batch of {len(x)}: {detail}") from None
        out = np.asarray(out)
        if out.ndim != 2 or out.shape[0] != len(x):
            raise FacebenchError(
                f"{self.path}: output {self.output_name!r} has shape {out.shape} for {len(x)} images; "
                "an embedding model must return (N, D)"
            )
        return out[:n].astype(np.float32, copy=False)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """float32 ``(N, 3, H, W)`` -> float32 ``(N, D)``, un-normalised embeddings."""
        batch = check_batch(batch, self.input_size, str(self.path))
        chunks = [self._run(batch[s : s + self.run_batch]) for s in range(0, len(batch), self.run_batch)]
        out = np.concatenate(chunks) if chunks else np.zeros((0, self.embedding_dim or 0), np.float32)
        if self.embedding_dim is not None and out.shape[1] != self.embedding_dim:
            raise FacebenchError(f"{self.path}: output dimension changed from {self.embedding_dim} to {out.shape[1]}")
        return out

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    def parameter_count(self) -> int:
        return self.parameters

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance of this encoder."""
        import onnxruntime as ort

        return {
            "path": self.path,
            "sha256": self.sha256,
            "format": self.format,
            "architecture": self.architecture,
            "backend": "onnxruntime",
            "onnxruntime_version": ort.__version__,
            "providers": self.providers,
            "opset": self.opset,
            "half": False,
            "max_batch": self.max_batch,
            "run_batch": self.run_batch,
            "prelu_rewritten": self.prelu_rewritten,
            "input_name": self.input_name,
            "input_layout": self.layout,
            "input_size": list(self.input_size),
            "embedding_dim": self.embedding_dim,
            "normalizes_input": self.normalizes_input,
            "parameters": self.parameters,
            "default_profile": self.default_profile.to_dict() if self.default_profile else None,
        }

