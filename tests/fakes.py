"""Small stand-ins shared by tests: a numpy encoder and JPEG helpers."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


class LinearEncoder:
    """A deterministic per-image linear encoder (random projection of the pixels); satisfies Encoder."""

    format = "test"
    normalizes_input = False

    def __init__(self, size: int = 112, dim: int = 16, seed: int = 0) -> None:
        self.input_size = (size, size)
        self.embedding_dim = dim
        rng = np.random.default_rng(seed)
        self.weight = rng.standard_normal((3 * size * size, dim)).astype(np.float64) / np.sqrt(3 * size * size)
        self.calls: list[int] = []

    def embed(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(batch.shape[0])
        flat = batch.reshape(batch.shape[0], -1).astype(np.float64)
        return (flat @ self.weight).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"format": self.format, "arch": "linear", "dim": self.embedding_dim}


def jpeg_bytes(image_rgb: np.ndarray, quality: int = 95) -> bytes:
    """Encode an RGB uint8 image as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png_bytes(image_rgb: np.ndarray) -> bytes:
    """Encode an RGB uint8 image as lossless PNG bytes."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def random_images(n: int, size: int = 112, seed: int = 0) -> list[np.ndarray]:
    """Smooth random RGB images (so JPEG keeps them recognisable)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        out.append(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC))
    return out


def tiny_onnx(path):
    """A seeded random conv net (8x8 stride-8 patches -> 16-d) exported to ONNX at ``path``; returns ``path``."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 8, stride=8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 16)).eval()
    torch.onnx.export(net, torch.zeros(1, 3, 112, 112), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return path
