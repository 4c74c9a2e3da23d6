"""Losses on the head's logits: cross-entropy, focal, hard-mining (the authors' ``loss.py``).

All three start from the per-sample cross-entropy ``l_i = logsumexp(z_i) - z_{i, y_i}``:

- ``cross-entropy``: ``mean_i l_i``.
- ``focal``: ``mean_i (1 - p_i)^gamma l_i`` with ``p_i = exp(-l_i)`` (not detached), ``gamma = 2``.
- ``hard-mining``: the mean of the ``floor(keep * B)`` largest ``l_i`` (``keep = 0.9``; at least one).

With a :class:`~facebench.train.heads.ClassShard` the logits are this rank's columns of the global-batch
logits; the per-sample cross-entropy is then computed across ranks (all-reduce of the row maxima, of the
sums of exponentials and of the target logits), equal on every rank to the single-process value, and its
backward gives each rank the gradient of its own columns.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from facebench.errors import FacebenchError
from facebench.registry import Registry
from facebench.train.heads import ClassShard



class _CrossEntropyPerSample(torch.autograd.Function):
    """Per-sample cross-entropy of (possibly column-sharded) logits; keeps only the softmax in memory."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, labels: torch.Tensor, start: int, group: Any) -> torch.Tensor:
        ncls = logits.shape[1]
        top = logits.max(dim=1).values
        if group is not None:
            dist.all_reduce(top, op=dist.ReduceOp.MAX, group=group)
        prob = torch.sub(logits, top.unsqueeze(1))
        prob.exp_()
        total = prob.sum(dim=1)
        local = (labels >= start) & (labels < start + ncls)
        rows = local.nonzero().squeeze(1)
        cols = labels[rows] - start
        target = torch.zeros_like(top)
        target[rows] = logits[rows, cols]
        if group is not None:
            dist.all_reduce(total, group=group)
            dist.all_reduce(target, group=group)
        loss = total.log() + top - target
        prob.div_(total.unsqueeze(1))
        ctx.consumed = False
        ctx.save_for_backward(prob, rows, cols)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.consumed:
            raise RuntimeError("the cross-entropy backward reuses its buffer and can run only once")
        ctx.consumed = True
        prob, rows, cols = ctx.saved_tensors
        grad = prob.mul_(grad_loss.unsqueeze(1))
        grad[rows, cols] -= grad_loss[rows]
        return grad, None, None, None


def cross_entropy_per_sample(logits: torch.Tensor, labels: torch.Tensor,
                             shard: ClassShard | None = None) -> torch.Tensor:
    """``l_i = logsumexp_k z_ik - z_{i y_i}`` for each row; over all ranks' columns when ``shard`` is set."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected (B, C) logits and (B,) labels, got {tuple(logits.shape)}, {tuple(labels.shape)}")
    start = shard.start if shard is not None else 0
    group = shard.group if shard is not None else None
    return _CrossEntropyPerSample.apply(logits, labels.long(), start, group)


def _cross_entropy(per_sample: torch.Tensor, gamma: float, keep: float) -> torch.Tensor:
    return per_sample.mean()


def _focal(per_sample: torch.Tensor, gamma: float, keep: float) -> torch.Tensor:
    return ((1.0 - torch.exp(-per_sample)) ** gamma * per_sample).mean()


def _hard_mining(per_sample: torch.Tensor, gamma: float, keep: float) -> torch.Tensor:
    k = max(1, int(keep * per_sample.shape[0]))
    return torch.topk(per_sample, k, sorted=False).values.mean()


LOSSES: Registry[Callable[[torch.Tensor, float, float], torch.Tensor]] = Registry("loss", [
    ("cross-entropy", _cross_entropy),
    ("focal", _focal),
    ("hard-mining", _hard_mining),
])
"""Loss name -> ``reduce(per_sample, gamma, keep)`` (the rules of the module docstring)."""


def reduce_loss(per_sample: torch.Tensor, kind: str, gamma: float = 2.0, keep: float = 0.9) -> torch.Tensor:
    """Combine per-sample cross-entropies into the training loss by ``kind`` (see the module docstring)."""
    return LOSSES.get(kind)(per_sample, gamma, keep)


class ClassificationLoss(nn.Module):
    """``forward(logits, labels)`` -> the scalar loss of ``kind`` (``gamma`` for focal, ``keep`` for
    hard-mining); ``shard`` as the head's when the logits are column-sharded."""

    def __init__(self, kind: str = "cross-entropy", gamma: float = 2.0, keep: float = 0.9,
                 shard: ClassShard | None = None) -> None:
        super().__init__()
        LOSSES.check(kind)
        if not gamma >= 0:
            raise FacebenchError(f"focal gamma must be >= 0, got {gamma}")
        if not 0 < keep <= 1:
            raise FacebenchError(f"hard-mining keep must lie in (0, 1], got {keep}")
        self.kind, self.gamma, self.keep, self.shard = kind, float(gamma), float(keep), shard

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return reduce_loss(cross_entropy_per_sample(logits, labels, self.shard), self.kind, self.gamma, self.keep)

    def extra_repr(self) -> str:
        extra = {"focal": f", gamma={self.gamma}", "hard-mining": f", keep={self.keep}"}.get(self.kind, "")
        return self.kind + extra


def make_loss(name: str = "cross-entropy", *, gamma: float = 2.0, keep: float = 0.9,
              shard: ClassShard | None = None) -> ClassificationLoss:
    """The loss ``name`` in ``cross-entropy``, ``focal`` (``gamma``), ``hard-mining`` (``keep``)."""
    return ClassificationLoss(name, gamma=gamma, keep=keep, shard=shard)
