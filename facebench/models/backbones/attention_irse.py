"""AttentionNet-IRSE: Residual Attention Networks built from IR-SE blocks for 112x112 faces.

The backbone family of the MV-Softmax paper (Wang et al., AAAI 2020): Attention-56 and Attention-92 with
improved-residual squeeze-excitation units, in the layout of the authors' code and FaceX-Zoo's
``AttentionNets.py``.

Rules:

- IR-SE unit: ``BN -> conv3x3 -> PReLU -> conv3x3 (stride s) -> BN -> SE(reduction 16)``; the shortcut is
  the input (sub-sampled by ``s``) when the width does not change, else ``conv1x1 (stride s) -> BN``.
- Attention module with ``levels`` = L down-samplings (L = 3, 2, 1 at 56, 28, 14 pixels): a first unit,
  then a trunk T of two units; the mask branch max-pools (3x3/2, pad 1) L times, with one unit after each
  pool (two at the bottom) and a skip unit on every level but the bottom, then climbs back by bilinear
  up-sampling (``align_corners=True``) and adding the level's map and its skip, one unit per level; at the
  top the up-sampled map plus T goes through ``BN-ReLU-conv1x1-BN-ReLU-conv1x1-sigmoid`` to the mask M,
  and the module returns ``last_unit((1 + M) * T)`` (attention residual learning).
- Network: conv3x3/1 (64) -> BN -> PReLU at 112; IR-SE down-sampling unit to 64 @ 56, attention
  stage 1 (x n1); unit to 128 @ 28, stage 2 (x n2); unit to 256 @ 14, stage 3 (x n3); unit to 512 @ 7,
  two more 512 units; output BN2d -> Dropout -> flatten -> Linear(512*7*7, D) -> BN1d(D, no affine).
  Attention-56: (n1, n2, n3) = (1, 1, 1); Attention-92: (1, 2, 3).

One deliberate difference from the authors' code: their stage-1 module adds ``(1 + M) + T`` where every
other module (and the Residual Attention Network paper) multiplies; here every stage multiplies.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from facebench.models.backbones import kaiming_init

STAGES: dict[str, tuple[int, int, int]] = {
    "attention56_irse": (1, 1, 1),
    "attention92_irse": (1, 2, 3),
}
WIDTHS = (64, 128, 256, 512)


class SEModule(nn.Module):
    """Squeeze-excitation: global average -> conv1x1 (C/r) -> ReLU -> conv1x1 (C) -> sigmoid, times input."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * w


class IRSEUnit(nn.Module):
    """Improved residual unit with squeeze-excitation (see the module docstring for the rule)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.shortcut: nn.Module | None = None
        if in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, channels, 3, stride=1, padding=1, bias=False),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            SEModule(channels, 16),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is not None:
            shortcut = self.shortcut(x)
        else:
            shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        return self.residual(x) + shortcut


def _units(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*[IRSEUnit(channels, channels) for _ in range(count)])


class AttentionModule(nn.Module):
    """One residual attention module with ``levels`` mask down-samplings, constant width ``channels``."""

    def __init__(self, channels: int, levels: int) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"an attention module needs levels >= 1, got {levels}")
        self.first = IRSEUnit(channels, channels)
        self.trunk = _units(channels, 2)
        self.down = nn.ModuleList([IRSEUnit(channels, channels) for _ in range(levels - 1)])
        self.skips = nn.ModuleList([IRSEUnit(channels, channels) for _ in range(levels - 1)])
        self.bottom = _units(channels, 2)
        self.up = nn.ModuleList([IRSEUnit(channels, channels) for _ in range(levels - 1)])
        self.mask = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.Sigmoid(),
        )
        self.last = IRSEUnit(channels, channels)

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)

    @staticmethod
    def _upsample(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        trunk = self.trunk(x)
        levels: list[torch.Tensor] = []
        skips: list[torch.Tensor] = []
        current = x
        for down, skip in zip(self.down, self.skips):
            current = down(self._pool(current))
            levels.append(current)
            skips.append(skip(current))
        current = self.bottom(self._pool(current))
        for up, level, skip in zip(reversed(self.up), reversed(levels), reversed(skips)):
            current = up(self._upsample(current, level) + level + skip)
        mask = self.mask(self._upsample(current, trunk) + trunk)
        return self.last((1 + mask) * trunk)


class AttentionNetIRSE(nn.Module):
    """Attention-N-IRSE for 112x112 faces; ``forward`` returns the (un-normalised) embedding."""

    def __init__(self, stages: Sequence[int], num_features: int = 512, dropout: float = 0.4) -> None:
        super().__init__()
        if len(stages) != 3 or any(int(n) < 1 for n in stages):
            raise ValueError(f"AttentionNetIRSE needs 3 module counts >= 1, got {tuple(stages)}")
        w1, w2, w3, w4 = WIDTHS
        self.input_layer = nn.Sequential(nn.Conv2d(3, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1), nn.PReLU(w1))
        body: list[nn.Module] = [IRSEUnit(w1, w1, 2)]
        body += [AttentionModule(w1, 3) for _ in range(stages[0])]
        body += [IRSEUnit(w1, w2, 2)]
        body += [AttentionModule(w2, 2) for _ in range(stages[1])]
        body += [IRSEUnit(w2, w3, 2)]
        body += [AttentionModule(w3, 1) for _ in range(stages[2])]
        body += [IRSEUnit(w3, w4, 2), IRSEUnit(w4, w4), IRSEUnit(w4, w4)]
        self.body = nn.Sequential(*body)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(w4),
            nn.Dropout(dropout),
            nn.Flatten(1),
            nn.Linear(w4 * 7 * 7, num_features),
            nn.BatchNorm1d(num_features, affine=False),
        )
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(x)))


def attention56_irse(num_features: int = 512, dropout: float = 0.4) -> AttentionNetIRSE:
    """Attention-56 with IR-SE units: one attention module per stage."""
    return AttentionNetIRSE(STAGES["attention56_irse"], num_features, dropout)


def attention92_irse(num_features: int = 512, dropout: float = 0.4) -> AttentionNetIRSE:
    """Attention-92 with IR-SE units: 1, 2 and 3 attention modules in stages 1, 2, 3."""
    return AttentionNetIRSE(STAGES["attention92_irse"], num_features, dropout)
