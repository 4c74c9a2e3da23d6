"""Two gloo processes with the class-sharded head give the single-process loss and gradients."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from facebench.train.criterion import build_criterion
from facebench.train.distributed import DistEnv, clip_grad_norm, wrap_backbone

CLASSES, IN_DIM, EMB_DIM, GLOBAL_BATCH = 37, 20, 8, 12
CASES = [
    ("mv-arc", {}, "cross-entropy"),
    ("mv-am", {"mode": "fixed"}, "focal"),
    ("am", {}, "hard-mining"),
    ("mv-am", {"variant": "facexzoo"}, "cross-entropy"),
]


def _backbone() -> nn.Module:
    torch.manual_seed(11)
    return nn.Sequential(nn.Linear(IN_DIM, 16), nn.PReLU(), nn.Linear(16, EMB_DIM)).double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(GLOBAL_BATCH, IN_DIM, dtype=torch.float64, generator=gen)
    y = torch.randint(0, CLASSES, (GLOBAL_BATCH,), generator=gen)
    y[:3] = torch.tensor([0, CLASSES - 1, CLASSES // 2])  # targets on both shards and at their edges
    return x, y


def _step(rank: int, world: int, group) -> list[dict[str, torch.Tensor]]:
    """One forward/backward per case on this rank's part of the global batch."""
    x, y = _batch()
    per = GLOBAL_BATCH // world
    xs, ys = x[rank * per : (rank + 1) * per], y[rank * per : (rank + 1) * per]
    env = DistEnv(rank=rank, world_size=world, group=group)
    results = []
    for head, kw, loss in CASES:
        backbone = wrap_backbone(_backbone(), env)
        crit = build_criterion(head, EMB_DIM, CLASSES, head_kwargs=kw, loss_name=loss, loss_kwargs={},
                               rank=rank, world_size=world, group=group, seed=3)
        crit.head.double()
        out = crit(backbone(xs), ys, accuracy=True)
        out.loss.backward()
        params = list(backbone.parameters())
        norm = clip_grad_norm(params, [crit.head.weight], 1e9, group, torch.device("cpu"))
        start, stop = crit.head.class_range
        results.append({
            "loss": out.loss.detach(),
            "correct": torch.tensor(out.correct),
            "norm": torch.tensor(norm),
            "start": torch.tensor(start),
            "stop": torch.tensor(stop),
            "head_grad": crit.head.weight.grad.detach().clone(),
            **{f"bb{i}": p.grad.detach().clone() for i, p in enumerate(params)},
        })
    return results


def _worker(rank: int, world: int, store: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.save(_step(rank, world, dist.group.WORLD), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_sharded_head_two_ranks_equals_one_process(tmp_path: Path):
    torch.set_num_threads(1)
    mp.start_processes(_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = _step(0, 1, None)
    for case, ref in enumerate(single):
        r0, r1 = ranks[0][case], ranks[1][case]
        assert int(r0["stop"]) == int(r1["start"]) and int(r1["stop"]) == CLASSES  # really sharded
        for r in (r0, r1):
            assert abs(float(r["loss"]) - float(ref["loss"])) < 1e-9, CASES[case]
            assert int(r["correct"]) == int(ref["correct"])
            assert abs(float(r["norm"]) - float(ref["norm"])) < 1e-9
            for key in ref:
                if key.startswith("bb"):  # replicated backbone: the summed DDP gradient
                    assert torch.allclose(r[key], ref[key], atol=1e-9, rtol=0), (CASES[case], key)
        full = torch.cat([r0["head_grad"], r1["head_grad"]])
        assert torch.allclose(full, ref["head_grad"], atol=1e-9, rtol=0), CASES[case]
        assert float(ref["head_grad"].abs().sum()) > 0
