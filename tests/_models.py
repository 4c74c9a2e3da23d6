"""Helpers for the model tests: random weights with output magnitudes of order one."""

from __future__ import annotations

import math

import torch
from torch import nn


def randomise(model: nn.Module, seed: int = 0, gain: float = 1.0) -> nn.Module:
    """Fill every float parameter and buffer with seeded values that keep activations moderate:
    conv/linear weights uniform with variance ``gain**2 / fan_in``, PReLU slopes in [0.1, 0.3),
    BN scales in [0.9, 1.1), shifts and means in [-0.1, 0.1), variances in [0.5, 1.5)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            for name, t in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
                if not t.dtype.is_floating_point:
                    continue
                if isinstance(module, nn.PReLU):
                    t.uniform_(0.1, 0.3, generator=g)
                elif name == "running_var":
                    t.uniform_(0.5, 1.5, generator=g)
                elif name in ("running_mean", "bias"):
                    t.uniform_(-0.1, 0.1, generator=g)
                elif t.ndim >= 2:
                    bound = gain * math.sqrt(3.0 / t[0].numel())
                    t.uniform_(-bound, bound, generator=g)
                else:
                    t.uniform_(0.9, 1.1, generator=g)
    return model.eval()


def random_backbone(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """A registered backbone with :func:`randomise`d weights, skipping the constructor's own initialisation."""
    from facebench.models.registry import create_backbone

    with torch.device("meta"):
        model = create_backbone(name, **kwargs)
    return randomise(model.to_empty(device="cpu"), seed)
