"""`facebench benchmarks`: list the benchmarks, their file layouts and what each contributes to tables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from facebench.cli.run import add_protocols_argument

if TYPE_CHECKING:
    from facebench.benchmarks import Benchmark


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("benchmarks", help="list benchmarks and the files each one reads")
    p.add_argument("name", nargs="?", help="show one benchmark (or group) in detail")
    p.add_argument("--data-root", type=Path,
                   help="also say, per benchmark, which distribution is found under this folder or what is missing")
    p.add_argument("--file", action="append", default=[], metavar="NAME.ROLE=PATH", help="override one input file")
    add_protocols_argument(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.benchmarks import check_overrides, load_benchmarks, select
    from facebench.cli.run import parse_overrides
    from facebench.errors import FacebenchError

    specs = load_benchmarks()
    overrides = parse_overrides(args.file)
    check_overrides(overrides, specs.values())
    if args.data_root is not None and not args.data_root.is_dir():
        what = "does not exist" if not args.data_root.exists() else "is not a directory"
        raise FacebenchError(f"--data-root {args.data_root}: {what}")
    if args.name:
        for spec in select(args.name, specs, args.data_root, overrides):
            print(f"{spec.name} (v{spec.version}, {spec.kind}): {spec.title}")
            print(f"  {spec.citation}")
            if spec.description:
                print(f"  {spec.description}")
            for key, value in spec.counts.items():
                print(f"  {key}: {value:,}")
            for i, src in enumerate(spec.sources, 1):
                files = ", ".join(f"{role}=<data-root>/{rel}{' (optional)' if role in src.optional else ''}"
                                  for role, rel in src.files.items())
                print(f"  source {i}: {src.reader}: {files}")
                if src.note:
                    print(f"    {src.note}")
            print(f"  columns: {', '.join(f'{k} -> {v}' for k, v in spec.columns.items())}")
            if args.data_root is not None:
                print(f"  under {args.data_root}: {_status(spec, args.data_root, overrides)}")
        return 0
    width = max(len(n) for n in specs)
    for spec in specs.values():
        groups = f" [{', '.join(spec.groups)}]" if spec.groups else ""
        print(f"{spec.name:<{width}}  {spec.kind:<9} {spec.title}{groups}")
        if args.data_root is not None:
            print(f"{'':<{width}}  {_status(spec, args.data_root, overrides)}")
    return 0


def _status(spec: Benchmark, data_root: Path, overrides: dict[str, str]) -> str:
    """``found: <reader> (files)`` or ``missing: <what each distribution lacks>``."""
    from facebench.benchmarks import locate, spec_overrides

    located = locate(spec, data_root, spec_overrides(spec.name, overrides))
    if isinstance(located, list):
        return "missing: " + "; ".join(located)
    source, paths = located
    return f"found: {source.reader} ({', '.join(str(p) for p in paths.values())})"
