"""`facebench extract`: a checkpoint's features of benchmarks' images into an embedding store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facebench.cli.run import add_model_arguments, parse_overrides
from facebench.errors import FacebenchError


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
    p.add_argument("--engine", choices=("process", "ray"), default="process",
                   help="who computes the shards: this process (default) or Ray Data, one task per shard on model "
                   "replicas (needs facebench[ray]; docs/store.md)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --engine ray: the Ray cluster to join (auto, ray://HOST:10001); default: start Ray "
                   "on this machine")
    p.add_argument("--ray-workers", type=int, metavar="N",
                   help="with --engine ray: model replicas (default: one per GPU of the cluster, else one per CPU)")
    add_model_arguments(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    if args.engine != "ray" and (args.ray_address or args.ray_workers is not None):
        raise FacebenchError("--ray-address and --ray-workers apply to --engine ray")
    if args.engine == "ray":  # checked before the model loads
        from facebench.extraction.ray_engine import RayOptions
        from facebench.optional import require_ray

        RayOptions(args.ray_address, args.ray_workers)
        require_ray("facebench extract --engine ray")
    from facebench.evaluate.common import RunSettings
    from facebench.rundir import Replace
    from facebench.pipeline import run

    settings = RunSettings(
        benchmarks=args.source, data_root=args.data_root, out=args.out / "run", checkpoint=args.checkpoint,
        arch=args.arch, device=args.device, half=args.half, batch_size=args.batch_size, workers=args.workers,
        cache=not args.no_cache, file_overrides=parse_overrides(args.file), chunk_size=args.shard_rows,
        options={"store": str(args.out), "measure_speed": False, "engine": args.engine,
                 "ray_address": args.ray_address, "ray_workers": args.ray_workers}, progress=sys.stderr.isatty(),
    )
    # resuming an extraction re-evaluates: STORE/run/ is the store's own report, replaced when complete
    doc, status = run(settings, profile_name=args.profile, flip=args.flip, replace=Replace.ALWAYS)
    print(f"store: {args.out} ({', '.join(doc.benchmarks)})")
    for name, message in doc.failed.items():
        print(f"{name}: FAILED: {message}", file=sys.stderr)
    return status
