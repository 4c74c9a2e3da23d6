"""`facebench train`: train a backbone with the bundled MV-Softmax trainer from a TOML config."""

from __future__ import annotations

import argparse
from pathlib import Path

from facebench.cli.run import add_protocols_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a backbone with the MV-Softmax head family (TOML config)",
        description="Train a backbone from a TOML config (see docs/training.md and examples/*.toml). Running the "
        "same command again resumes from the latest checkpoint in [run] output. Multi-GPU: "
        "torchrun --nproc-per-node N -m facebench train --config FILE.toml",
    )
    p.add_argument("--config", type=Path, required=True, help="training config (TOML)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override one config value (TOML syntax; strings may be bare), e.g. --set optim.lr=0.05")
    p.add_argument("--stop-at", type=int, metavar="STEP",
                   help="stop after this many steps in all and save a checkpoint (resume by running again)")
    p.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                   help="resume from this checkpoint instead of the latest one in [run] output")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the config and the data, print the plan, train nothing")
    add_protocols_argument(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.errors import FacebenchError
    from facebench.optional import require_torch

    require_torch("facebench train")
    from facebench.train.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.stop_at is not None and args.stop_at < 1:
        raise FacebenchError(f"--stop-at must be >= 1, got {args.stop_at}")
    if args.dry_run:
        from facebench.train.loop import plan

        for key, value in plan(cfg).items():
            print(f"{key:18s} {value}")
        return 0
    from facebench.train.loop import train

    outcome = train(cfg, stop_at=args.stop_at, resume_from=args.resume)
    if outcome.status == "stopped":
        print(f"stopped at step {outcome.step} of {outcome.total_steps}; checkpoint "
              f"{outcome.files.get('checkpoint', '(saved earlier)')}; run the same command to resume")
        return 0
    print(f"finished {outcome.total_steps} steps in {outcome.output}")
    for name, path in outcome.files.items():
        print(f"  {name}: {path}")
    if outcome.last:
        print(f"  last loss {outcome.last['loss']:.4f}")
    return 0
