"""`facebench demo`: render the demo suite (if missing) and evaluate the shipped demo checkpoint on it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "demo" / "assets" / "demo_mobilefacenet_small.onnx"


def default_suite_root() -> Path:
    """``$FACEBENCH_DEMO`` or ``~/.cache/facebench/demo-suite``."""
    env = os.environ.get("FACEBENCH_DEMO")
    return Path(env) if env else Path.home() / ".cache" / "facebench" / "demo-suite"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="render the demo benchmarks and evaluate the shipped demo checkpoint (offline, ~1 minute)",
        description="Render the procedural demo suite (insightface .bin pack, IJB and MegaFace layouts) if it "
        "is missing, then run `facebench run` with the shipped demo checkpoint on every demo benchmark.",
    )
    p.add_argument("--data-root", type=Path, help="where the suite is rendered (default ~/.cache/facebench/demo-suite)")
    p.add_argument("--out", type=Path, default=Path("reports/demo"), help="report directory (default reports/demo)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out even when it is not a facebench run (a previous run is always replaced)")
    p.add_argument("--checkpoint", type=Path, default=DEMO_CHECKPOINT, help="evaluate another checkpoint on the suite")
    p.add_argument("--force", action="store_true", help="render the suite again even if it is intact")
    p.add_argument("--workers", type=int, default=2, help="decode/render worker processes (default 2)")
    p.add_argument("--render-only", action="store_true", help="render the suite (and --training-set) and stop")
    p.add_argument("--training-set", type=Path, metavar="DIR",
                   help="also render the demo checkpoint's training images (split train: 1,000 identities x 12 "
                        "images, difficulty 0.5) into DIR, one folder per identity, and the demo_val pack its "
                        "training validates on (examples/demo_train.toml)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.cli.run import print_summary
    from facebench.demo.suite import DEMO_PARTS, TRAINING_SET, build_suite, write_training_folder
    from facebench.errors import FacebenchError
    from facebench.evaluate.common import RunSettings
    from facebench.rundir import OutputDir, Replace, replace_policy
    from facebench.pipeline import run

    if not args.render_only:  # before rendering: a bad --out is reported at once
        OutputDir(args.out, replace_policy(args.overwrite, Replace.RUNS)).check()
    parts = DEMO_PARTS + (("val",) if args.training_set else ())  # demo_val: the trainer's validation pack
    root = build_suite(args.data_root or default_suite_root(), force=args.force, processes=max(1, args.workers),
                       parts=parts)
    print(f"demo suite: {root}")
    if args.training_set:
        write_training_folder(args.training_set, **TRAINING_SET, processes=max(1, args.workers))
        print(f"demo training set: {args.training_set}")
    if args.render_only:
        return 0
    if not args.checkpoint.is_file():
        raise FacebenchError(
            f"demo checkpoint not found: {args.checkpoint}; regenerate it with "
            "`facebench train --config examples/demo_train.toml` (see README)"
        )
    settings = RunSettings(
        benchmarks="all-demo",
        data_root=root,
        out=args.out,
        checkpoint=_as_given(args.checkpoint),
        workers=args.workers,
        batch_size=32,
        progress=True,
    )
    doc, status = run(settings, replace=replace_policy(args.overwrite, Replace.RUNS), page=True)
    print_summary(doc)
    print(f"report: {args.out / 'report.html'} (open it in a browser); beside it results.json, table.md, "
          "table.csv, table.tex, roc.png")
    return status


def _as_given(checkpoint: Path) -> Path:
    """The shipped checkpoint relative to the current directory when it lies under it (a checkout), so that
    results.json carries no machine path; any other checkpoint as the user gave it."""
    here = Path.cwd().resolve()
    if checkpoint == DEMO_CHECKPOINT and checkpoint.is_relative_to(here):
        return checkpoint.relative_to(here)
    return checkpoint
