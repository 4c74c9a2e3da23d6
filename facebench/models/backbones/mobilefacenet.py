"""MobileFaceNet as trained by insightface's arcface_torch (``mbf``; ``scale=2``, blocks ``(1, 4, 6, 2)``).

Parameter names follow arcface_torch's ``backbones/mobilefacenet.py`` so its state_dicts load unchanged:
``layers.<i>`` is a ModuleList of stages; a conv unit is ``<unit>.layers.{0: conv, 1: BN, 2: PReLU}``
(linear units stop after the BN); a depthwise unit is ``layers.{0: 1x1 expand, 1: kxk depthwise,
2: 1x1 linear project}``; a residual stage is ``layers.<k>`` of depthwise units; ``conv_sep`` is the 1x1
conv to 512 channels; ``features.layers`` = ``{0: 7x7 depthwise linear unit (GDC), 2: Linear(512, D,
no bias), 3: BatchNorm1d(D)}`` (index 1 is the parameter-free flatten).

Rule: 112x112 input; stem 3x3/2 to 64*scale, then stride-2 depthwise units at 56, 28 and 14 pixels, so the
GDC sees a 512x7x7 map.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from facebench.models.backbones import kaiming_init

Pair = tuple[int, int]


class ConvUnit(nn.Module):
    """Conv (no bias) -> BatchNorm -> PReLU, or conv -> BatchNorm when ``linear``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Pair = (1, 1),
        stride: Pair = (1, 1),
        padding: Pair = (0, 0),
        groups: int = 1,
        linear: bool = False,
    ) -> None:
        super().__init__()
        parts: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if not linear:
            parts.append(nn.PReLU(out_channels))
        self.layers = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DepthWiseUnit(nn.Module):
    """1x1 expand to ``hidden`` -> kxk depthwise -> 1x1 linear projection; plus the input when ``residual``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        residual: bool = False,
        stride: Pair = (2, 2),
    ) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvUnit(in_channels, hidden),
            ConvUnit(hidden, hidden, (3, 3), stride, (1, 1), groups=hidden),
            ConvUnit(hidden, out_channels, linear=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.residual else out


class ResidualStage(nn.Module):
    """``count`` residual depthwise units of constant width."""

    def __init__(self, channels: int, count: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *[DepthWiseUnit(channels, channels, hidden, residual=True, stride=(1, 1)) for _ in range(count)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GDCHead(nn.Module):
    """Global depthwise conv 7x7 (linear), flatten, Linear(512, D, no bias), BatchNorm1d(D)."""

    def __init__(self, num_features: int, channels: int = 512) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            ConvUnit(channels, channels, (7, 7), groups=channels, linear=True),
            nn.Flatten(1),
            nn.Linear(channels, num_features, bias=False),
            nn.BatchNorm1d(num_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MobileFaceNet(nn.Module):
    """arcface_torch's MobileFaceNet; ``forward`` returns the (un-normalised) ``num_features`` embedding."""

    def __init__(self, num_features: int = 512, blocks: Sequence[int] = (1, 4, 6, 2), scale: int = 2) -> None:
        super().__init__()
        if len(blocks) != 4 or any(int(b) < 1 for b in blocks) or int(scale) < 1:
            raise ValueError(f"MobileFaceNet needs 4 block counts >= 1 and scale >= 1, got {blocks}, {scale}")
        c1, c2 = 64 * scale, 128 * scale
        self.layers = nn.ModuleList()
        self.layers.append(ConvUnit(3, c1, (3, 3), (2, 2), (1, 1)))
        if blocks[0] == 1:
            self.layers.append(ConvUnit(c1, c1, (3, 3), (1, 1), (1, 1), groups=64))
        else:
            self.layers.append(ResidualStage(c1, blocks[0], hidden=128))
        self.layers.extend(
            [
                DepthWiseUnit(c1, c1, hidden=128),
                ResidualStage(c1, blocks[1], hidden=128),
                DepthWiseUnit(c1, c2, hidden=256),
                ResidualStage(c2, blocks[2], hidden=256),
                DepthWiseUnit(c2, c2, hidden=512),
                ResidualStage(c2, blocks[3], hidden=256),
            ]
        )
        self.conv_sep = ConvUnit(c2, 512)
        self.features = GDCHead(num_features)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.layers:
            x = stage(x)
        return self.features(self.conv_sep(x))


def mobilefacenet(num_features: int = 512) -> MobileFaceNet:
    """arcface_torch ``mbf``: blocks (1, 4, 6, 2), scale 2, 112x112 in, ``num_features`` out."""
    return MobileFaceNet(num_features, blocks=(1, 4, 6, 2), scale=2)


def mobilefacenet_large(num_features: int = 512) -> MobileFaceNet:
    """arcface_torch ``mbf_large``: blocks (2, 8, 12, 4), scale 4."""
    return MobileFaceNet(num_features, blocks=(2, 8, 12, 4), scale=4)


def mobilefacenet_small(num_features: int = 128) -> MobileFaceNet:
    """A CPU-sized MobileFaceNet (blocks (1, 2, 2, 1), scale 1, 128-d; 0.6M parameters): the demo checkpoint's
    backbone, fast enough to train and evaluate on two CPU cores."""
    return MobileFaceNet(num_features, blocks=(1, 2, 2, 1), scale=1)
