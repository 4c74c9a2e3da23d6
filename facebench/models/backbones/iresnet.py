"""Improved ResNets (IResNet) as trained by insightface's arcface_torch.

The module tree and parameter names follow arcface_torch's ``backbones/iresnet.py`` exactly, so its
published state_dicts (``backbone.pth``) load unchanged: ``conv1``, ``bn1``, ``prelu``, ``layer1..4``
(each block: ``bn1, conv1, bn2, prelu, conv2, bn3`` and, on the first block of a stage,
``downsample.0`` = 1x1 conv and ``downsample.1`` = batch norm), then ``bn2``, ``fc`` and the feature
batch norm ``features``.

Rule: 112x112 input; a 3x3 stem conv (stride 1) and four stages of widths 64, 128, 256, 512, each halving
the resolution in its first block's second 3x3 conv, so the last map is 512x7x7; flatten, ``fc`` to
``num_features`` (512), then BatchNorm1d with a fixed unit scale. Depths (blocks per stage):
18 = (2,2,2,2), 34 = (3,4,6,3), 50 = (3,4,14,3), 100 = (3,13,30,3), 200 = (6,26,60,6).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}

STAGE_WIDTHS = (64, 128, 256, 512)
BN_EPS = 1e-5


class IBasicBlock(nn.Module):
    """Pre-activation-style block: BN, 3x3 conv, BN, PReLU, 3x3 conv (stride here), BN, plus the shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=BN_EPS)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels, eps=BN_EPS),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """IResNet for 112x112 faces; ``forward`` returns the (un-normalised) ``num_features`` embedding."""

    def __init__(self, depths: Sequence[int], num_features: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        if len(depths) != 4 or any(int(d) < 1 for d in depths):
            raise ValueError(f"IResNet needs 4 stage depths >= 1, got {tuple(depths)}")
        self.conv1 = nn.Conv2d(3, STAGE_WIDTHS[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0], eps=BN_EPS)
        self.prelu = nn.PReLU(STAGE_WIDTHS[0])
        in_channels = STAGE_WIDTHS[0]
        for index, (width, depth) in enumerate(zip(STAGE_WIDTHS, depths), start=1):
            blocks = [IBasicBlock(in_channels, width, stride=2)]
            blocks += [IBasicBlock(width, width) for _ in range(int(depth) - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
            in_channels = width
        self.bn2 = nn.BatchNorm2d(in_channels, eps=BN_EPS)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(in_channels * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=BN_EPS)
        self._init_weights()

    def _init_weights(self) -> None:
        """arcface_torch's initialisation: conv N(0, 0.1), BN (1, 0), feature BN scale fixed at 1."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.ones_(self.features.weight)
        self.features.weight.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(self.dropout(x)))


def _factory(name: str):
    def build(num_features: int = 512, dropout: float = 0.0) -> IResNet:
        return IResNet(DEPTHS[name], num_features=num_features, dropout=dropout)

    build.__name__ = name
    build.__doc__ = f"{name}: IResNet with stage depths {DEPTHS[name]}, 112x112 in, ``num_features`` out."
    return build


iresnet18 = _factory("iresnet18")
iresnet34 = _factory("iresnet34")
iresnet50 = _factory("iresnet50")
iresnet100 = _factory("iresnet100")
iresnet200 = _factory("iresnet200")
