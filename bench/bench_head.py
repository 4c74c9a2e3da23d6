"""Training throughput of the MV-Softmax head + loss against plain ``nn.Linear`` + cross-entropy.

Both run the same training step on the same backbone features (a fixed (B, 512) batch standing in for the
backbone output, with gradient): forward, loss, backward to the features and the class weights, and an SGD
step (momentum 0.9, weight decay 5e-4) on the class weights. Steps alternate between the two (AB, BA,
AB, ...) in one process, so both see the same machine load; the overhead is the median of the per-pair
time ratios. Goal: an overhead <= 15% at 72,690 classes (MS-Celeb-1M-v1c-R).

    python bench/bench_head.py                      # MV-AM, 72,690 classes, batch 128, CPU
    python bench/bench_head.py --head arc --batch 256 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from facebench.train import make_head, make_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="mv-am", help="head name (default mv-am)")
    parser.add_argument("--loss", default="cross-entropy", help="loss name (default cross-entropy)")
    parser.add_argument("--classes", type=int, default=72_690)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed step pairs (each: one step of each)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(args.batch, args.dim, generator=gen).to(device)
    labels = torch.randint(0, args.classes, (args.batch,), generator=gen).to(device)

    head = make_head(args.head, args.dim, args.classes).to(device)
    loss_fn = make_loss(args.loss)
    linear = torch.nn.Linear(args.dim, args.classes, bias=False).to(device)
    with torch.no_grad():
        linear.weight.copy_(head.weight)

    def make_step(module: torch.nn.Module, forward):
        opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

        def step() -> None:
            x = features.clone().requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            loss = forward(x)
            loss.backward()
            opt.step()

        return step

    runs = {
        "nn.Linear + cross-entropy": make_step(linear, lambda x: F.cross_entropy(linear(x), labels)),
        f"{args.head} + {args.loss}": make_step(head, lambda x: loss_fn(head(x, labels), labels)),
    }
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    ratios: list[float] = []
    for step in runs.values():  # warm-up (allocator, momentum buffers)
        step()
    for i in range(args.steps):
        pair = {}
        for name in (names if i % 2 == 0 else names[::-1]):  # AB, BA, AB, ...: both see the same load
            _sync(device)
            start = time.perf_counter()
            runs[name]()
            _sync(device)
            pair[name] = time.perf_counter() - start
            times[name].append(pair[name])
        ratios.append(pair[names[1]] / pair[names[0]])

    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, dim {args.dim}, "
          f"classes {args.classes:,}, {args.steps} interleaved step pairs")
    for name in names:
        med = statistics.median(times[name])
        print(f"  {name:32s} {med * 1e3:9.1f} ms/step  {args.batch / med:9.1f} samples/s (median)")
    overhead = statistics.median(ratios) - 1.0
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [min(ratios), 0, max(ratios)]
    print(f"overhead of {names[1]} over {names[0]}: {overhead * 100:+.1f}% (median of per-pair ratios; "
          f"quartiles {100 * (q[0] - 1):+.1f}% .. {100 * (q[2] - 1):+.1f}%; goal <= +15%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
