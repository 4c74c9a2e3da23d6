"""Export torch-backed encoders (state_dict, TorchScript, dlib) to ONNX or TorchScript, with a parity check.

Rule: the exported file is written to a temporary name, loaded back through :func:`load_encoder` and run on
seeded standard-normal inputs next to the source; only when the largest absolute difference of the outputs
is within the tolerance is it renamed into place. ONNX graphs get a dynamic batch axis (input ``input``,
output ``embedding``; legacy TorchScript-based exporter, ``dynamo=False``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from facebench.errors import FacebenchError
from facebench.atomic import atomic_path
from facebench.models.base import Encoder
from facebench.models.torch_backend import TorchEncoder
from facebench.registry import Registry

DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-4
PARITY_BATCH = 3
INPUT_NAME = "input"
OUTPUT_NAME = "embedding"


class ParityError(FacebenchError):
    """The exported model's outputs differ from the source's by more than the tolerance."""

    def __init__(self, message: str, max_abs_diff: float) -> None:
        super().__init__(message)
        self.max_abs_diff = max_abs_diff


@dataclass(frozen=True)
class ExportResult:
    """One written file and its measured parity."""

    path: str
    format: str
    max_abs_diff: float
    tolerance: float
    parity_inputs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "parity_inputs": self.parity_inputs,
        }


def _dummy(encoder: TorchEncoder, batch: int) -> torch.Tensor:
    return torch.zeros((batch, 3, *encoder.input_size), dtype=torch.float32, device=encoder.device)


def write_onnx(encoder: TorchEncoder, path: str | Path, opset: int = DEFAULT_OPSET) -> None:
    """Export ``encoder.module`` to ONNX at ``path`` (not atomic by itself; see :func:`export_checked`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is chosen on purpose
        warnings.simplefilter("ignore", UserWarning)  # exporter chatter about constant folding
        torch.onnx.export(
            encoder.module,
            (_dummy(encoder, 2),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def write_torchscript(encoder: TorchEncoder, path: str | Path) -> None:
    """Save ``encoder.module`` as TorchScript (scripted modules as they are, others traced)."""
    module = encoder.module
    if not isinstance(module, torch.jit.ScriptModule):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            with torch.inference_mode(False), torch.no_grad():
                module = torch.jit.trace(module, (_dummy(encoder, 2),), check_trace=False)
    torch.jit.save(module, str(path))


EXPORT_FORMATS: Registry[Callable[[TorchEncoder, Path, int], None]] = Registry("export format", [
    ("onnx", write_onnx),
    ("torchscript", lambda encoder, path, opset: write_torchscript(encoder, path)),
])
"""Export format -> its writer ``(encoder, path, opset)`` (the opset applies to ONNX only)."""


def output_difference(a: Encoder, b: Encoder, count: int = PARITY_BATCH, seed: int = 0) -> tuple[float, float]:
    """``(max abs difference, max abs output of a)`` of two encoders on ``count`` seeded standard-normal
    inputs."""
    if tuple(a.input_size) != tuple(b.input_size):
        raise FacebenchError(f"input sizes differ: {a.input_size} vs {b.input_size}")
    x = np.random.default_rng(seed).standard_normal((count, 3, *a.input_size)).astype(np.float32)
    ya, yb = a.embed(x), b.embed(x)
    if ya.shape != yb.shape:
        raise FacebenchError(f"output shapes differ: {ya.shape} vs {yb.shape}")
    return float(np.max(np.abs(ya.astype(np.float64) - yb.astype(np.float64)))), float(np.max(np.abs(ya)))


def export_checked(
    encoder: Encoder,
    path: str | Path,
    format: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int = DEFAULT_OPSET,
    parity_inputs: int = PARITY_BATCH,
) -> ExportResult:
    """Write ``encoder`` as ``format`` (``onnx`` or ``torchscript``) to ``path`` only if it passes parity.

    Raises ParityError (nothing written) when the max abs difference exceeds ``tolerance``.
    """
    from facebench.models.loader import load_encoder

    if not isinstance(encoder, TorchEncoder):
        raise FacebenchError(
            f"{getattr(encoder, 'path', encoder)}: only torch-backed checkpoints (state_dict, TorchScript, dlib) "
            "can be exported"
        )
    if encoder.half:
        raise FacebenchError("export runs the source in float32: load the checkpoint without half (fp16)")
    write = EXPORT_FORMATS.get(format)
    path = Path(path)
    with atomic_path(path) as tmp:
        write(encoder, tmp, opset)
        device = "auto" if format == "onnx" else str(encoder.device)  # onnxruntime may lack a CUDA provider
        # the archive just written holds facebench's own trace of the source model: its code is trusted
        exported = load_encoder(tmp, format=format, device=device, input_size=encoder.input_size,
                                trust_checkpoint_code=True)
        diff, scale = output_difference(encoder, exported, parity_inputs)
        if not diff <= tolerance:
            hint = ""
            if scale > 0 and diff / scale < 1e-5:
                hint = (
                    f"; relative to the largest output ({scale:.3g}) that is {diff / scale:.2g}, float32 rounding: "
                    "raise --tolerance if outputs this large are expected"
                )
            raise ParityError(
                f"{path}: {format} export differs from the source by {diff:.3g} (max abs, {parity_inputs} random "
                f"inputs) > tolerance {tolerance:g}; nothing written{hint}",
                diff,
            )
    return ExportResult(str(path), format, diff, tolerance, parity_inputs)
