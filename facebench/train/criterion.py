"""Embeddings of a (local) batch -> the training loss: gather over ranks, margin head, loss.

In one process this is ``loss(head(embeddings, labels), labels)``. Under ``torchrun`` the head holds this
rank's shard of the classes; the embeddings and labels of all ranks are gathered first (see
``facebench.train.distributed``), so the loss is the single-process loss of the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from facebench.train.distributed import gather_labels, gather_rows
from facebench.train.heads import ClassShard, MarginHead, make_head, shard_range
from facebench.train.losses import ClassificationLoss, make_loss


@dataclass
class StepOutput:
    """The loss (scalar tensor, the same on every rank) and, when asked for, the number of samples of the
    global batch whose largest logit is the target (margin logits, as the reference code logs)."""

    loss: torch.Tensor
    batch: int
    correct: int | None = None


class MarginCriterion(nn.Module):
    """Margin head + loss over the global batch; ``group`` is the process group (``None``: one process)."""

    def __init__(self, head: MarginHead, loss: ClassificationLoss, group: Any = None) -> None:
        super().__init__()
        self.head, self.loss, self.group = head, loss, group

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, accuracy: bool = False) -> StepOutput:
        with torch.autocast(embeddings.device.type, enabled=False):
            emb = gather_rows(embeddings.float() if embeddings.dtype != self.head.weight.dtype
                              else embeddings, self.group)
            lab = gather_labels(labels, self.group)
            logits = self.head(emb, lab)
            correct = self._correct(logits, lab) if accuracy else None
            loss = self.loss(logits, lab)
        return StepOutput(loss=loss, batch=int(lab.shape[0]), correct=correct)

    @torch.no_grad()
    def _correct(self, logits: torch.Tensor, labels: torch.Tensor) -> int:
        start, _ = self.head.class_range
        best, idx = logits.max(dim=1)
        idx = idx + start
        if self.group is not None:
            world = dist.get_world_size(self.group)
            bests = [torch.empty_like(best) for _ in range(world)]
            idxs = [torch.empty_like(idx) for _ in range(world)]
            dist.all_gather(bests, best.contiguous(), group=self.group)
            dist.all_gather(idxs, idx.contiguous(), group=self.group)
            which = torch.stack(bests).argmax(dim=0)  # first rank wins ties, as a global argmax would
            idx = torch.stack(idxs).gather(0, which.unsqueeze(0)).squeeze(0)
        return int((idx == labels).sum())


def build_criterion(head_name: str, dim: int, num_classes: int, *, head_kwargs: dict[str, Any],
                    loss_name: str, loss_kwargs: dict[str, Any], rank: int = 0, world_size: int = 1,
                    group: Any = None, seed: int = 0) -> MarginCriterion:
    """A criterion whose head holds all classes (one process) or this rank's shard of them."""
    shard = None
    if group is not None and world_size > 1:
        start, stop = shard_range(num_classes, rank, world_size)
        shard = ClassShard(start, stop, num_classes, group)
    head = make_head(head_name, dim, num_classes, shard=shard, seed=seed, **head_kwargs)
    loss = make_loss(loss_name, shard=shard, **loss_kwargs)
    return MarginCriterion(head, loss, group if shard is not None else None)
