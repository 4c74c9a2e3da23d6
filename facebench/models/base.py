"""The encoder interface every checkpoint backend implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


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
