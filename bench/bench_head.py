"""Training throughput of the MV-Softmax head + loss against plain ``nn.Linear`` + cross-entropy.

Both run the same training step on the same backbone features (a fixed (B, 512) batch standing in for the
backbone output, with gradient): forward, loss, backward to the features and the class weights, and an SGD
step (momentum 0.9, weight decay 5e-4) on the class weights. Timings alternate between the two (ABAB...)
in one process and the median step time of each is reported; the goal is an overhead <= 15% at 72,690
classes (MS-Celeb-1M-v1c-R).

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
    parser.add_argument("--steps", type=int, default=6, help="timed steps per repetition")
    parser.add_argument("--reps", type=int, default=3, help="ABAB repetitions")
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
    times: dict[str, list[float]] = {name: [] for name in runs}
    for step in runs.values():  # warm-up (allocator, momentum buffers)
        step()
    for _ in range(args.reps):
        for name, step in runs.items():
            for _ in range(args.steps):
                _sync(device)
                start = time.perf_counter()
                step()
                _sync(device)
                times[name].append(time.perf_counter() - start)

    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, dim {args.dim}, "
          f"classes {args.classes:,}, {args.reps}x{args.steps} steps each")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    base_name, head_name = list(runs)
    for name, med in medians.items():
        print(f"  {name:32s} {med * 1e3:9.1f} ms/step  {args.batch / med:9.1f} samples/s")
    overhead = medians[head_name] / medians[base_name] - 1.0
    print(f"overhead of {head_name} over {base_name}: {overhead * 100:+.1f}% (goal <= +15%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
