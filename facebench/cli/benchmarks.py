"""`facebench benchmarks`: list the benchmarks, their file layouts and what each contributes to tables."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("benchmarks", help="list benchmarks and the files each one reads")
    p.add_argument("name", nargs="?", help="show one benchmark in detail")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.benchmarks import load_benchmarks, select

    specs = load_benchmarks()
    if args.name:
        for spec in select(args.name, specs):
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
        return 0
    width = max(len(n) for n in specs)
    for spec in specs.values():
        groups = f" [{', '.join(spec.groups)}]" if spec.groups else ""
        print(f"{spec.name:<{width}}  {spec.kind:<9} {spec.title}{groups}")
    return 0
