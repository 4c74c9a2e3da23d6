"""`facebench compare`: one comparison of runs and published results (Markdown, LaTeX, CSV, HTML)."""

from __future__ import annotations

import argparse
from pathlib import Path

from facebench.cli.report import add_statistics_arguments, stats_settings
from facebench.cli.run import add_protocols_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare runs with each other and with published results",
        description="Build one comparison of run directories and published reference results: table.md, "
        "table.tex (booktabs, best value bold), table.csv (exact values), intervals.csv, tests.csv, the plots "
        "as PNG and a self-contained report.html. Every column names its rule; a cell computed under another "
        "rule is marked; differences that are not significant are marked.",
    )
    p.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR", help="run directories (holding results.json)")
    p.add_argument("--out", type=Path, help="output directory (required unless --list-published)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    p.add_argument(
        "--published",
        action="append",
        default=[],
        metavar="NAME",
        help="a published source (all its rows) or SOURCE/ROW; repeat for more (see --list-published)",
    )
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME",
        help="row name of each run, in order (give one per run, or none)",
    )
    p.add_argument("--list-published", action="store_true", help="list the published sources and their rows, then exit")
    add_statistics_arguments(p)
    add_protocols_argument(p)
    p.set_defaults(func=handle)


def list_published() -> None:
    """Print every published source with its citation, rules and rows."""
    from facebench.report.published import load_sources

    for source in load_sources().values():
        print(f"{source.name}: {source.title}")
        print(f"  {source.citation}")
        if source.url:
            print(f"  {source.url}")
        rules = "; ".join(
            f"{scope}: " + ", ".join(f"{k}={v}" for k, v in r.items()) for scope, r in source.rules.items()
        )
        print(f"  rules: {rules or 'not stated'}")
        for row in source.rows:
            metrics = ", ".join(f"{b}.{m}" for b, ms in row.values.items() for m in ms)
            print(f"    {row.key}: {row.label} ({metrics})")


def handle(args: argparse.Namespace) -> int:
    from facebench.errors import FacebenchError
    from facebench.rundir import OutputDir, replace_policy

    if args.list_published:
        list_published()
        return 0
    if args.out is None:
        raise FacebenchError("give --out DIR (where the comparison is written)")
    if not args.runs and not args.published:
        raise FacebenchError("nothing to compare: give RUN_DIR... and/or --published NAME")
    output = OutputDir(args.out, replace_policy(args.overwrite))
    output.check()  # before the slow imports
    from facebench.report.comparison import build_comparison
    from facebench.report.output import write_comparison
    from facebench.report.tables import to_markdown

    settings = stats_settings(args)
    with output as staging:
        comparison = build_comparison(
            args.runs,
            labels=args.label,
            published=args.published,
            settings=settings,
            statistics=not args.no_stats,
            gallery=max(0, args.gallery),
            columns=args.column,
        )
        written = write_comparison(comparison, staging, html=not args.no_html)
    print(to_markdown(comparison.table), end="")
    for path in written:
        print(f"wrote {args.out / path.relative_to(staging)}")
    return 0
