"""dlib's face-recognition ResNet as a torch module, built from a network read by :mod:`facebench.models.dlib`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facebench.errors import FacebenchError
from facebench.models.dlib import DlibLayer, DlibNetwork, read_dlib_network


class ChannelAffine(nn.Module):
    """dlib ``affine_`` in conv mode: ``gamma[c] * x + beta[c]`` (batch norm folded)."""

    def __init__(self, gamma: np.ndarray, beta: np.ndarray) -> None:
        super().__init__()
        c = gamma.size
        self.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(gamma)).reshape(1, c, 1, 1))
        self.bias = nn.Parameter(torch.from_numpy(np.ascontiguousarray(beta)).reshape(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


class GlobalAverage(nn.Module):
    """dlib ``avg_pool_everything``: the mean over all rows and columns, keeping a 1x1 map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class DlibFc(nn.Module):
    """dlib ``fc_``: flatten (k, nr, nc) row-major, then ``x W (+ b)`` with W stored inputs x outputs."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[0], weight.shape[1], bias=bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight.T)))
            if bias is not None:
                self.linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(x, 1))


@dataclass(frozen=True)
class _Step:
    """One node of the wired graph: ``op`` index into the module list (-1 for add), its input nodes,
    and for an add the zero padding of each operand ``(channels, bottom, right)``."""

    op: int
    inputs: tuple[int, ...]
    pads: tuple[tuple[int, int, int], ...] = ()


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


class DlibResNet(nn.Module):
    """The record sequence of a dlib network as a torch module; input normalised per the ``dlib`` profile,
    output the descriptor. Built for the file's fixed input size; every shape is resolved at build time."""

    def __init__(self, net: DlibNetwork) -> None:
        super().__init__()
        rows, cols = net.input["size"]
        if not rows or not cols:
            raise FacebenchError(f"{net.path}: the input layer has no fixed size; facebench needs a sized input")
        self.input_size = (int(rows), int(cols))
        self.mean = tuple(float(m) for m in net.input["mean"])
        self.ops = nn.ModuleList()
        shapes: list[tuple[int, int, int]] = [(3, rows, cols)]
        steps: list[_Step] = []
        node = 0  # index into shapes of the current output
        last_tag: int | None = None
        pending_tag: int | None = None
        layers = net.layers
        i = 0
        while i < len(layers):
            layer = layers[i]
            c, h, w = shapes[node]
            where = f"{net.path}: layer {i} ({layer.kind})"
            if layer.kind == "wrap":
                if i + 1 < len(layers) and layers[i + 1].kind == "wrap":
                    if i + 2 < len(layers) and layers[i + 2].kind == "wrap":
                        raise FacebenchError(f"{where}: three adjacent tag/skip wrappers; unknown wiring")
                    if last_tag is None:
                        raise FacebenchError(f"{where}: a skip with no earlier tag to jump to")
                    pending_tag, node = node, last_tag
                    i += 2
                    continue
                last_tag = node
                i += 1
                continue
            if layer.kind == "add_prev":
                other = pending_tag if pending_tag is not None else last_tag
                if other is None:
                    raise FacebenchError(f"{where}: add_prev with no tagged layer to add")
                a, b = shapes[node], shapes[other]
                out = (max(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]))
                pads = tuple((out[0] - s[0], out[1] - s[1], out[2] - s[2]) for s in (a, b))
                steps.append(_Step(-1, (node, other), pads))  # type: ignore[arg-type]
                shapes.append(out)
                pending_tag = None
                node = len(shapes) - 1
                i += 1
                continue
            module, shape = self._build(layer, (c, h, w), where)
            self.ops.append(module)
            steps.append(_Step(len(self.ops) - 1, (node,)))
            shapes.append(shape)
            node = len(shapes) - 1
            i += 1
        self._steps = tuple(steps)
        self.output_shape = shapes[node]
        self.embedding_dim = int(np.prod(self.output_shape))

    @staticmethod
    def _build(layer: DlibLayer, shape: tuple[int, int, int], where: str) -> tuple[nn.Module, tuple[int, int, int]]:
        c, h, w = shape
        a = layer.attrs
        if layer.kind == "con":
            weight = layer.weights["weight"]
            if weight.shape[1] != c:
                raise FacebenchError(f"{where}: filters expect {weight.shape[1]} channels, input has {c}")
            (kh, kw), (sy, sx), (py, px) = a["kernel"], a["stride"], a["padding"]
            bias = layer.weights.get("bias")
            conv = nn.Conv2d(c, a["filters"], (kh, kw), stride=(sy, sx), padding=(py, px), bias=bias is not None)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
                if bias is not None:
                    conv.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))
            return conv, (a["filters"], _conv_out(h, kh, sy, py), _conv_out(w, kw, sx, px))
        if layer.kind == "affine":
            if a["mode"] != "conv" or layer.weights["gamma"].size != c:
                raise FacebenchError(f"{where}: only per-channel (conv mode) affine layers are supported")
            return ChannelAffine(layer.weights["gamma"], layer.weights["beta"]), shape
        if layer.kind == "relu":
            return nn.ReLU(), shape
        if layer.kind in ("max_pool", "avg_pool"):
            (kh, kw), (sy, sx), (py, px) = a["kernel"], a["stride"], a["padding"]
            if kh == 0 and kw == 0:
                if layer.kind != "avg_pool":
                    raise FacebenchError(f"{where}: global max pooling is not supported")
                return GlobalAverage(), (c, 1, 1)
            kh, kw = kh or h, kw or w
            if layer.kind == "max_pool":
                pool: nn.Module = nn.MaxPool2d((kh, kw), (sy, sx), (py, px))
            else:
                pool = nn.AvgPool2d((kh, kw), (sy, sx), (py, px), count_include_pad=False)
            return pool, (c, _conv_out(h, kh, sy, py), _conv_out(w, kw, sx, px))
        if layer.kind == "fc":
            if a["inputs"] != c * h * w:
                raise FacebenchError(f"{where}: fc takes {a['inputs']} inputs, the previous layer gives {c * h * w}")
            return DlibFc(layer.weights["weight"], layer.weights.get("bias")), (a["outputs"], 1, 1)
        raise FacebenchError(f"{where}: unsupported layer kind")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for step in self._steps:
            if step.op >= 0:
                outputs.append(self.ops[step.op](outputs[step.inputs[0]]))
                continue
            total = None
            for index, (pc, pb, pr) in zip(step.inputs, step.pads):
                t = outputs[index]
                if pc or pb or pr:
                    t = F.pad(t, (0, pr, 0, pb, 0, pc))
                total = t if total is None else total + t
            outputs.append(total)
        return torch.flatten(outputs[-1], 1)


def build_dlib_model(path: str | Path) -> tuple[DlibResNet, DlibNetwork]:
    """Read a dlib ``.dat`` network and build its torch module (eval mode, float32; needs the torch extra)."""
    net = read_dlib_network(path)
    return DlibResNet(net).eval(), net

