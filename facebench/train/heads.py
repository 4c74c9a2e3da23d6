"""Classification heads of the MV-Softmax family: softmax, AM (CosFace), Arc (ArcFace), MV-AM, MV-Arc.

One parameterised head (:class:`MarginHead`), built by :func:`make_head`. The rule (PROTOCOLS 6, the
authors' ``fc_layers.py``):

- embeddings ``x`` and class weights ``w_c`` (rows of ``weight``, shaped like ``nn.Linear``) are
  L2-normalised; ``cos = clamp(x w^T, -1, 1)``; ``g`` = the target column of ``cos``.
- target logit: ``softmax``: ``g``; ``am``/``mv-am``: ``g - m``; ``arc``/``mv-arc``:
  ``cos(theta_y + m) = g cos m - sqrt(1 - g^2) sin m``. With ``easy_margin`` the target keeps ``g``
  when ``g <= 0`` (``reference``) or, for AM, when ``g <= m`` (``facexzoo``).
- MV heads only: a non-target class is mis-classified when ``cos_k > g - m`` (MV-AM) or
  ``cos_k > cos(theta_y + m)`` (MV-Arc), strict, always with the full margin (also under easy margin);
  its logit becomes ``(t + 1) cos_k + t`` (``mode="adaptive"``) or ``cos_k + t`` (``mode="fixed"``).
- every logit is multiplied by ``s``; the loss (``facebench.train.losses``) is applied to these logits.

Variants: ``reference`` (xiaoboCASIA/SV-X-Softmax; default ``t = 0.2``) and ``facexzoo``
(JDAI-CV/FaceX-Zoo ``MV_Softmax``): default ``t = 0.12`` (its ``mv_weight`` 1.12 = ``t + 1``), the AM
easy-margin test is ``g > m`` instead of ``g > 0``, and ``cos`` is not clamped.

Two deliberate departures, both only where the reference produces NaN: ``sqrt(1 - g^2)`` is taken of
``max(1 - g^2, 0)``, and its derivative divides by ``max(sqrt(1 - g^2), 1e-12)``.

For large class counts the weight matrix can be sharded over ranks (:class:`ClassShard`): each rank holds
the rows ``[start, stop)``, receives the global batch, and exchanges only the ``B`` target cosines; the
sharded cross-entropy in ``facebench.train.losses`` then gives exactly the single-process loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from facebench.errors import FacebenchError
from facebench.registry import Registry

HEADS: Registry[str] = Registry("head", [
    ("softmax", "g"),
    ("am", "g - m (CosFace)"),
    ("arc", "cos(theta_y + m) (ArcFace)"),
    ("mv-am", "g - m, mis-classified non-targets re-weighted (MV-AM)"),
    ("mv-arc", "cos(theta_y + m), mis-classified non-targets re-weighted (MV-Arc)"),
])
"""Head name -> its target logit (the rules of the module docstring)."""
MODES: Registry[str] = Registry("MV mode", [
    ("adaptive", "(t + 1) cos_k + t"),
    ("fixed", "cos_k + t"),
])
"""MV mode -> the logit of a mis-classified non-target class."""
VARIANTS: Registry[float] = Registry("head variant", [
    ("reference", 0.2),
    ("facexzoo", 0.12),
])
"""Variant -> its default ``t``."""
DEFAULT_S = 32.0
DEFAULT_M = 0.35
NORM_EPS = 1e-12
"""As ``F.normalize``: a vector is divided by ``max(||v||, 1e-12)``."""
INIT_CHUNK_ROWS = 8192
"""Class weights are initialised in fixed blocks of rows, each from its own seeded generator, so the
matrix is the same whatever the number of shards."""


@dataclass(frozen=True)
class HeadSpec:
    """The settings of one head; validated by :func:`make_head`."""

    kind: str
    s: float = DEFAULT_S
    m: float = DEFAULT_M
    t: float = VARIANTS["reference"]
    mode: str = "adaptive"
    easy_margin: bool = True
    variant: str = "reference"

    @property
    def margin(self) -> str | None:
        """``"am"``, ``"arc"`` or ``None`` (softmax)."""
        return None if self.kind == "softmax" else self.kind.removeprefix("mv-")

    @property
    def mv(self) -> bool:
        """Whether mis-classified non-target logits are re-weighted."""
        return self.kind.startswith("mv-")

    @property
    def clamp(self) -> bool:
        """Whether ``cos`` is clamped to ``[-1, 1]`` (the reference does, FaceX-Zoo does not)."""
        return self.variant == "reference"

    @property
    def easy_threshold(self) -> float:
        """With easy margin, the target keeps ``g`` unless ``g`` exceeds this value."""
        return self.m if (self.variant == "facexzoo" and self.margin == "am") else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (recorded in checkpoints and logs)."""
        return {"kind": self.kind, "s": self.s, "m": self.m, "t": self.t, "mode": self.mode,
                "easy_margin": self.easy_margin, "variant": self.variant}


@dataclass(frozen=True)
class ClassShard:
    """Rows ``[start, stop)`` of a ``num_classes``-row weight matrix held by this rank of ``group``."""

    start: int
    stop: int
    num_classes: int
    group: Any = None

    @property
    def size(self) -> int:
        return self.stop - self.start


def shard_range(num_classes: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s rows: ``[floor(r C / W), floor((r + 1) C / W))`` (sizes differ by at most one)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad rank {rank} of world size {world_size}")
    if num_classes < world_size:
        raise FacebenchError(f"cannot shard {num_classes} classes over {world_size} ranks")
    return num_classes * rank // world_size, num_classes * (rank + 1) // world_size


def init_class_weights(num_classes: int, dim: int, seed: int, start: int = 0, stop: int | None = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rows ``[start, stop)`` of the initial weight matrix: uniform(-1, 1) rows rescaled to unit norm (the
    reference's ``uniform_(-1, 1).renorm_(...)``), drawn block by block (``INIT_CHUNK_ROWS`` rows per
    block, block ``b`` from a generator seeded with ``seed * 1_000_003 + b``), so any shard of the matrix
    equals the same rows of the unsharded one."""
    stop = num_classes if stop is None else stop
    out = torch.empty(stop - start, dim, dtype=dtype)
    for block in range(start // INIT_CHUNK_ROWS, (stop - 1) // INIT_CHUNK_ROWS + 1 if stop > start else 0):
        lo, hi = block * INIT_CHUNK_ROWS, min((block + 1) * INIT_CHUNK_ROWS, num_classes)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + block)
        rows = torch.empty(hi - lo, dim, dtype=torch.float64).uniform_(-1.0, 1.0, generator=gen)
        rows /= torch.linalg.vector_norm(rows, dim=1, keepdim=True).clamp_min(NORM_EPS)
        a, b = max(lo, start), min(hi, stop)
        out[a - start : b - start] = rows[a - lo : b - lo].to(dtype)
    return out


def target_logit(g: torch.Tensor, spec: HeadSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The unscaled target logit for target cosines ``g`` and its derivative d(logit)/d(g), elementwise."""
    one = torch.ones_like(g)
    if spec.margin is None:
        return g.clone(), one
    if spec.margin == "am":
        final, deriv = g - spec.m, one
    else:
        sin = torch.sqrt(torch.clamp(1.0 - g * g, min=0.0))
        final = g * math.cos(spec.m) - sin * math.sin(spec.m)
        deriv = math.cos(spec.m) + g * math.sin(spec.m) / sin.clamp_min(NORM_EPS)
    if spec.easy_margin:
        keep = g <= spec.easy_threshold
        final = torch.where(keep, g, final)
        deriv = torch.where(keep, one, deriv)
    return final, deriv


def mv_threshold(g: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    """A non-target class with ``cos_k > threshold`` is mis-classified: ``g - m`` or ``cos(theta_y + m)``
    (always the full margin, whatever ``easy_margin`` says)."""
    if spec.margin == "am":
        return g - spec.m
    sin = torch.sqrt(torch.clamp(1.0 - g * g, min=0.0))
    return g * math.cos(spec.m) - sin * math.sin(spec.m)


class _MarginLogits(torch.autograd.Function):
    """Scaled margin logits from unit embeddings ``x`` (B, D) and raw class weights (C, D).

    Written as one function so that the (B, C) work is done in place on the matmul output: besides the
    output, the forward allocates one (B, C) multiplier (MV heads only), which the backward reuses for the
    gradient. The weight normalisation is folded into the logits (``cos = (x w^T) / ||w||``) and into the
    weight gradient (``dW_c = G_c - (w_c . G_c) w_c / ||w_c||^2`` with ``G = (dcos / ||w||)^T x``), so no
    normalised copy of the (C, D) matrix is made.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, spec: HeadSpec,
                shard: ClassShard | None) -> torch.Tensor:
        start = shard.start if shard is not None else 0
        ncls = weight.shape[0]
        norms = torch.linalg.vector_norm(weight, dim=1)
        inv_s = spec.s / norms.clamp_min(NORM_EPS)
        s = spec.s
        z = torch.mm(x, weight.t())
        z.mul_(inv_s)  # s * cos
        outside = None
        if spec.clamp:
            lo, hi = torch.aminmax(z)
            if bool(lo < -s) or bool(hi > s):
                outside = (z < -s) | (z > s)
                z.clamp_(-s, s)
        local = (labels >= start) & (labels < start + ncls)
        col = (labels - start).clamp(0, ncls - 1).unsqueeze(1)
        g_local = z.gather(1, col).squeeze(1) / s
        if shard is not None and shard.group is not None:
            g = torch.where(local, g_local, torch.zeros_like(g_local))
            dist.all_reduce(g, group=shard.group)
        else:
            g = g_local
        mult = None
        if spec.mv:
            mult = torch.empty_like(z)
            torch.gt(z, (mv_threshold(g, spec) * s).unsqueeze(1), out=mult)
            mult.mul_(spec.t)  # t * mask
            if spec.mode == "adaptive":
                z.addcmul_(z, mult)  # s cos (1 + t mask)
            z.add_(mult, alpha=s)  # + s t mask
            if spec.mode != "adaptive":
                mult = None
        rows = local.nonzero().squeeze(1)
        final, deriv = target_logit(g_local[rows], spec)
        cols = col[rows].squeeze(1)
        z[rows, cols] = final * s
        ctx.spec = spec
        ctx.consumed = False
        ctx.save_for_backward(x, weight, inv_s, norms, rows, cols, deriv, mult, outside)
        return z

    @staticmethod
    def backward(ctx: Any, grad_z: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.consumed:
            raise RuntimeError("the margin head's backward reuses its buffers and can run only once")
        ctx.consumed = True
        x, weight, inv_s, norms, rows, cols, deriv, mult, outside = ctx.saved_tensors
        grad_z = grad_z.contiguous()
        # d z / d (s cos) is 1 + t mask (adaptive MV) or 1; the target column is d final / d g
        gcos = mult.add_(1.0).mul_(grad_z) if mult is not None else grad_z.clone()
        if rows.numel():
            gcos[rows, cols] = grad_z[rows, cols] * deriv
        if outside is not None:
            gcos.masked_fill_(outside, 0.0)
        gcos.mul_(inv_s)  # now d loss / d (x w^T)
        grad_x = torch.mm(gcos, weight) if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = torch.mm(gcos.t(), x)
            inv = inv_s / ctx.spec.s
            coef = torch.einsum("cd,cd->c", weight, grad_w) * inv * inv
            coef = torch.where(norms > NORM_EPS, coef, torch.zeros_like(coef))
            grad_w.addcmul_(weight, coef.unsqueeze(1), value=-1.0)
        return grad_x, grad_w, None, None, None


class MarginHead(nn.Module):
    """Class weights (``num_classes`` x ``dim``, or this rank's shard of them) and the margin rule of
    ``spec``. ``forward(embeddings, labels)`` -> scaled logits ``(B, num_local_classes)``."""

    def __init__(self, spec: HeadSpec, dim: int, num_classes: int, shard: ClassShard | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        if shard is not None and (shard.num_classes != num_classes or not 0 <= shard.start < shard.stop
                                  <= num_classes):
            raise ValueError(f"shard {shard} does not fit {num_classes} classes")
        self.spec = spec
        self.dim = dim
        self.num_classes = num_classes
        self.shard = shard
        start, stop = (shard.start, shard.stop) if shard is not None else (0, num_classes)
        self.weight = nn.Parameter(init_class_weights(num_classes, dim, seed, start, stop))

    @property
    def class_range(self) -> tuple[int, int]:
        """The global class indices ``[start, stop)`` held here."""
        return (self.shard.start, self.shard.stop) if self.shard is not None else (0, self.num_classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"expected embeddings of shape (B, {self.dim}), got {tuple(embeddings.shape)}")
        if labels.shape != embeddings.shape[:1]:
            raise ValueError(f"expected {embeddings.shape[0]} labels, got shape {tuple(labels.shape)}")
        # checked for CPU labels only: on a GPU the check would stall the pipeline every step (the training
        # data layer guarantees the range)
        if labels.device.type == "cpu" and labels.numel() and (
                int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise FacebenchError(
                f"labels must lie in [0, {self.num_classes}), got {int(labels.min())}..{int(labels.max())}")
        x = F.normalize(embeddings.to(self.weight.dtype), dim=1, eps=NORM_EPS)
        return _MarginLogits.apply(x, self.weight, labels.long(), self.spec, self.shard)

    def extra_repr(self) -> str:
        start, stop = self.class_range
        spec = self.spec
        text = f"{spec.kind}, dim={self.dim}, classes={self.num_classes}, s={spec.s}"
        if spec.margin:
            text += f", m={spec.m}, easy_margin={spec.easy_margin}"
        if spec.mv:
            text += f", t={spec.t}, mode={spec.mode}"
        if self.shard is not None:
            text += f", shard=[{start}, {stop})"
        return text + f", variant={spec.variant}"


def make_spec(name: str, *, s: float | None = None, m: float | None = None, t: float | None = None,
              mode: str = "adaptive", easy_margin: bool = True, variant: str = "reference") -> HeadSpec:
    """Validated :class:`HeadSpec`; ``None`` means the default (``s=32``, ``m=0.35``, ``t`` by variant).
    A margin given to ``softmax``, or ``t``/a non-default ``mode`` given to a head without MV, is an error."""
    HEADS.check(name)
    default_t = VARIANTS.get(variant)
    MODES.check(mode)
    if name == "softmax" and m is not None:
        raise FacebenchError("head 'softmax' takes no margin m")
    if not name.startswith("mv-") and (t is not None or mode != "adaptive"):
        raise FacebenchError(f"head {name!r} takes no t or mode (they belong to mv-am and mv-arc)")
    spec = HeadSpec(
        kind=name,
        s=DEFAULT_S if s is None else float(s),
        m=DEFAULT_M if m is None else float(m),
        t=default_t if t is None else float(t),
        mode=mode,
        easy_margin=bool(easy_margin),
        variant=variant,
    )
    if not spec.s > 0:
        raise FacebenchError(f"head scale s must be > 0, got {spec.s}")
    if not 0 <= spec.m < math.pi / 2:
        raise FacebenchError(f"head margin m must lie in [0, pi/2), got {spec.m}")
    if not spec.t >= 0:
        raise FacebenchError(f"head t must be >= 0, got {spec.t}")
    return spec


def make_head(name: str, dim: int, num_classes: int, *, s: float | None = None, m: float | None = None,
              t: float | None = None, mode: str = "adaptive", easy_margin: bool = True,
              variant: str = "reference", shard: ClassShard | None = None, seed: int = 0) -> MarginHead:
    """A head of the MV-Softmax family: ``name`` in ``softmax``, ``am``, ``arc``, ``mv-am``, ``mv-arc``.

    ``s`` scale (32), ``m`` margin (0.35), ``t`` MV weight (0.2 reference, 0.12 facexzoo), ``mode``
    ``adaptive`` | ``fixed``, ``easy_margin`` (on), ``variant`` ``reference`` | ``facexzoo``; ``shard``
    holds only some classes on this rank; ``seed`` fixes the initial weights.

    >>> head = make_head("mv-am", 4, 3)
    >>> head(torch.ones(2, 4), torch.tensor([0, 2])).shape
    torch.Size([2, 3])
    """
    if dim < 1 or num_classes < 2:
        raise FacebenchError(f"a head needs dim >= 1 and at least 2 classes, got dim={dim}, classes={num_classes}")
    spec = make_spec(name, s=s, m=m, t=t, mode=mode, easy_margin=easy_margin, variant=variant)
    return MarginHead(spec, dim, num_classes, shard=shard, seed=seed)
