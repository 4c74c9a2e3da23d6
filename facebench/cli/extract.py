"""`facebench extract`: a checkpoint's features of benchmarks' images into an embedding store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facebench.cli.run import add_model_arguments, parse_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extract",
        help="extract features into a sharded, resumable embedding store (docs/store.md)",
        description="Extract the features of the selected benchmarks' images (names, folder:PATH, alltoall:PATH, "
        "identify:PATH) into STORE, shard by shard; a killed extraction resumes; `run --features STORE` and every "
        "other command read it. The benchmarks are evaluated on the way (results in STORE/run/).",
    )
    p.add_argument("checkpoint", type=Path, help="model file")
    p.add_argument("source", help="what to extract: benchmark names or PREFIX:PATH, as run --benchmark")
    p.add_argument("--out", type=Path, required=True, metavar="STORE", help="the store directory")
    p.add_argument("--data-root", type=Path, default=Path("."), help="where the benchmark files are (default .)")
    p.add_argument("--file", action="append", default=[], metavar="NAME.ROLE=PATH", help="override one input file")
    p.add_argument("--shard-rows", type=int, default=4096, help="samples per shard (default 4096)")
    p.add_argument("--no-cache", action="store_true", help="do not also keep the feature cache")
    add_model_arguments(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.evaluate.common import RunSettings
    from facebench.rundir import Replace
    from facebench.pipeline import run

    settings = RunSettings(
        benchmarks=args.source, data_root=args.data_root, out=args.out / "run", checkpoint=args.checkpoint,
        arch=args.arch, device=args.device, half=args.half, batch_size=args.batch_size, workers=args.workers,
        cache=not args.no_cache, file_overrides=parse_overrides(args.file), chunk_size=args.shard_rows,
        options={"store": str(args.out), "measure_speed": False}, progress=sys.stderr.isatty(),
    )
    # resuming an extraction re-evaluates: STORE/run/ is the store's own report, replaced when complete
    doc, status = run(settings, profile_name=args.profile, flip=args.flip, replace=Replace.ALWAYS)
    print(f"store: {args.out} ({', '.join(doc['benchmarks'])})")
    for name, message in doc["failed"].items():
        print(f"{name}: FAILED: {message}", file=sys.stderr)
    return status
