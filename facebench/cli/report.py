"""`facebench report`: regenerate the tables, plots, statistics and HTML page of one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from facebench.cli.run import add_protocols_argument


def add_statistics_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `report` and `compare`: bootstrap size, seed, alpha, gallery, HTML."""
    g = parser.add_argument_group("statistics and page")
    g.add_argument(
        "--n-boot", type=int, default=1000, help="bootstrap resamples for intervals and tests (default 1000)"
    )
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    g.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level per test; intervals are at level 1 - alpha (default 0.05)",
    )
    g.add_argument("--no-stats", action="store_true", help="no intervals and no paired tests")
    g.add_argument(
        "--gallery",
        type=int,
        default=6,
        metavar="K",
        help="hardest false accepts and false rejects shown per run and pair benchmark (0: none; default 6)",
    )
    g.add_argument("--no-html", action="store_true", help="do not write report.html")
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="BENCH:METRIC[=LABEL]",
        help="add a column, e.g. lfw:tar_at_far.1e-03 or ijbc:tar_at_far.1e-06=IJB-C@1e-6 (repeatable)",
    )


def stats_settings(args: argparse.Namespace):
    """The StatsSettings of parsed flags (a bad value is a clear error)."""
    from facebench.errors import FacebenchError
    from facebench.report.statistics import StatsSettings

    try:
        return StatsSettings(n_boot=args.n_boot, seed=args.seed, alpha=args.alpha)
    except ValueError as exc:
        raise FacebenchError(f"--n-boot/--alpha: {exc}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="regenerate the tables, plots, statistics and HTML page of a run",
        description="Rebuild a run's table.md/csv/tex, roc.png and plots from its results.json and saved arrays, "
        "with bootstrap confidence intervals (intervals.csv) and a self-contained report.html (plots embedded, "
        "failure gallery).",
    )
    p.add_argument("run", type=Path, help="run directory (holding results.json)")
    p.add_argument("--out", type=Path, help="write here instead of the run directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    p.add_argument("--label", help="the run's name in tables (default: the checkpoint file name)")
    add_statistics_arguments(p)
    add_protocols_argument(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.results import read_results
    from facebench.rundir import OutputDir, replace_policy

    document = read_results(args.run)
    if args.label:
        document.label = args.label
    run_dir = args.run if args.run.is_dir() else args.run.parent
    settings = stats_settings(args)
    # in place: the run directory is updated whole (staged from hard links to its files, then swapped)
    in_place = args.out is None or args.out.resolve() == run_dir.resolve()
    target = OutputDir(run_dir, seed=True) if in_place else OutputDir(args.out, replace_policy(args.overwrite))
    target.check()  # before the slow imports
    from facebench.report.run_report import write_run_report
    from facebench.report.tables import to_markdown

    with target as staging:
        written, table = write_run_report(
            run_dir,
            document,
            html=not args.no_html,
            statistics=not args.no_stats,
            settings=settings,
            gallery=max(0, args.gallery),
            out_dir=staging,
            columns=args.column,
            with_table=True,
        )
    print(to_markdown(table), end="")
    final = run_dir if in_place else args.out
    for path in written:
        print(f"wrote {final / path.relative_to(staging)}")
    return 0
