"""Encoder: the network itself, chips in, embeddings out (`extraction.extractor.FeatureExtractor` wraps one).

The encoder interface every checkpoint backend implements.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from facebench.errors import FacebenchError


@runtime_checkable
class Encoder(Protocol):
    """A face-embedding model: normalised float32 NCHW batches in, one embedding row per image out.

    Attributes:
        format: ``"onnx"``, ``"torchscript"``, ``"pytorch"`` or ``"dlib"``.
        input_size: ``(height, width)`` the model takes.
        embedding_dim: length of one embedding (``None`` when the graph does not say).
        normalizes_input: ``True`` when the graph itself normalises raw pixels, ``False`` when it
            expects normalised input, ``None`` when unknown.
    """

    format: str
    input_size: tuple[int, int]
    embedding_dim: int | None
    normalizes_input: bool | None

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Return float32 ``(N, D)`` embeddings (not normalised) for float32 ``(N, 3, H, W)`` input."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance: path, sha256, format, architecture, runtime settings, parameter count."""
        ...


def check_batch(batch: np.ndarray, input_size: tuple[int, int], name: str) -> np.ndarray:
    """A float32 C-contiguous ``(N, 3, H, W)`` copy-or-view of ``batch``; any other shape or a spatial size
    other than ``input_size`` is an error naming the model."""
    if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[1] != 3:
        raise FacebenchError(f"{name}: expected a float32 (N, 3, H, W) batch, got shape {getattr(batch, 'shape', None)}")
    if tuple(batch.shape[2:]) != tuple(input_size):
        h, w = input_size
        raise FacebenchError(
            f"{name}: the model takes 3x{h}x{w} input, got 3x{batch.shape[2]}x{batch.shape[3]}; "
            "check the chip size of the profile"
        )
    return np.ascontiguousarray(batch, dtype=np.float32)
