"""Multi-process training under ``torchrun``: process group, batch gathering, class-sharded head helpers.

Layout (data parallel backbone, model parallel classifier): every rank runs the backbone on its part of
the global batch (``DistributedDataParallel``); the embeddings and labels of all ranks are gathered, so
each rank scores the whole global batch against its shard of the class weights; the loss is computed
across shards (``facebench.train.losses``) and is the single-process loss of the global batch.

Gradients: the gather's backward sums, over ranks, the gradient each rank's shard sends to every
embedding and keeps the local rows, so each rank holds d(loss)/d(its embeddings). The backbone is
replicated and the loss is one global mean, so the true parameter gradient is the *sum* of the ranks'
gradients: DDP is given a summing communication hook (its default averages).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from facebench.errors import FacebenchError
from facebench.registry import Registry

DEVICES: Registry[str] = Registry("device", [
    ("auto", "CUDA when available, else the CPU"),
    ("cpu", "the CPU"),
    ("cuda", "CUDA (an error when it is not available)"),
])
"""``[run] device`` -> where training runs."""


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: ``rank`` of ``world_size`` (``local_rank`` on its node), its device, and
    the process group (``None`` in a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    group: Any = None
    control_group: Any = None
    """A gloo group for small CPU-side agreements (stop requests) that must not wait on the GPU."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """Whether the environment of ``torchrun`` (``WORLD_SIZE`` > 1 with ``RANK``) is present."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistEnv:
    """Set up this process: a process group when launched by ``torchrun`` (NCCL on CUDA, gloo on CPU),
    else a single process. ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda``."""
    DEVICES.check(device)
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise FacebenchError("device 'cuda' was asked for but CUDA is not available")
    if not launched_by_torchrun():
        return DistEnv(device=torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu"))
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_s))
    control = dist.new_group(backend="gloo") if use_cuda else dist.group.WORLD
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=dev, group=dist.group.WORLD,
                   control_group=control)


def shutdown(env: DistEnv) -> None:
    """Leave the process group (no-op in a single process)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


class _GatherRows(torch.autograd.Function):
    """Concatenate equal-sized row blocks of every rank (rank order); backward: sum over ranks, keep own rows."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group, ctx.rank, ctx.rows = group, dist.get_rank(group), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows], None


def gather_rows(x: torch.Tensor, group: Any) -> torch.Tensor:
    """All ranks' ``x`` stacked in rank order (every rank passes the same shape); differentiable: the
    gradient of each rank's rows is the sum of the gradients all ranks computed for them."""
    if group is None:
        return x
    return _GatherRows.apply(x, group)


def gather_labels(labels: torch.Tensor, group: Any) -> torch.Tensor:
    """All ranks' labels stacked in rank order (no gradient)."""
    if group is None:
        return labels
    world = dist.get_world_size(group)
    parts = [torch.empty_like(labels) for _ in range(world)]
    dist.all_gather(parts, labels.contiguous(), group=group)
    return torch.cat(parts)


def _sum_allreduce_hook(group, bucket):
    """DDP communication hook: all-reduce SUM (no division by the world size)."""
    fut = dist.all_reduce(bucket.buffer(), group=group, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


def wrap_backbone(model: nn.Module, env: DistEnv) -> nn.Module:
    """The backbone for training: as is in one process; under torchrun a DDP module whose gradients are
    summed over ranks (the loss is already the global-batch mean)."""
    if not env.distributed:
        return model
    ddp = nn.parallel.DistributedDataParallel(
        model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    ddp.register_comm_hook(env.group, _sum_allreduce_hook)
    return ddp


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _sum_sq(tensors: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    if not tensors:
        return torch.zeros((), dtype=torch.float64, device=device)
    return torch.stack([torch.linalg.vector_norm(t.detach()).double() for t in tensors]).pow(2).sum()


def grad_norm(replicated: Iterable[nn.Parameter], sharded: Iterable[nn.Parameter], group: Any,
              device: torch.device) -> torch.Tensor:
    """Global L2 norm of all gradients: replicated parameters count once, sharded ones over all ranks."""
    rep = _sum_sq([p.grad for p in replicated if p.grad is not None], device)
    sha = _sum_sq([p.grad for p in sharded if p.grad is not None], device)
    if group is not None:
        dist.all_reduce(sha, group=group)
    return torch.sqrt(rep + sha)


def clip_grad_norm(replicated: list[nn.Parameter], sharded: list[nn.Parameter], max_norm: float,
                   group: Any, device: torch.device) -> float:
    """Scale all gradients by ``min(1, max_norm / (norm + 1e-6))`` (the ``clip_grad_norm_`` rule) with the
    global norm of :func:`grad_norm`; return the norm before clipping."""
    total = float(grad_norm(replicated, sharded, group, device))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in [*replicated, *sharded]:
            if p.grad is not None:
                p.grad.detach().mul_(coef)
    return total


def all_finite(tensors: list[torch.Tensor], group: Any, device: torch.device) -> bool:
    """Whether every tensor is finite on every rank (so that all ranks skip or take a step together)."""
    ok = torch.ones((), dtype=torch.int32, device=device)
    for t in tensors:
        ok = ok * torch.isfinite(t).all().to(torch.int32)
    if group is not None:
        dist.all_reduce(ok, op=dist.ReduceOp.MIN, group=group)
    return bool(ok.item())


def gather_shards(local: torch.Tensor, sizes: list[int], group: Any, dst: int = 0) -> torch.Tensor | None:
    """The full matrix from row shards of ``sizes`` (rank order) on rank ``dst`` (``None`` elsewhere);
    ranks pad to the largest shard so that the collective sees equal shapes."""
    if group is None:
        return local
    rows = max(sizes)
    padded = torch.zeros((rows, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded, group=group)
    if dist.get_rank(group) != dst:
        return None
    return torch.cat([p[:n] for p, n in zip(parts, sizes)]).cpu()


def barrier(env: DistEnv) -> None:
    """Wait for all ranks (no-op in a single process)."""
    if env.distributed:
        dist.barrier(group=env.group)


def any_rank(flag: bool, env: DistEnv) -> bool:
    """Whether ``flag`` is true on any rank (e.g. a stop request seen by one process), on every rank."""
    if not env.distributed:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=env.control_group or env.group)
    return bool(t.item())
