"""The `facebench` command: parse arguments, call the library, print.

Each sub-command lives in its own module of this package and exposes
``register(subparsers: argparse._SubParsersAction) -> None``, which adds its parser and sets
``func`` (``Callable[[argparse.Namespace], int]``) as the handler. No logic lives here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from facebench import __version__
from facebench.errors import FacebenchError

COMMANDS: tuple[str, ...] = (
    "run",
    "demo",
    "benchmarks",
    "export",
    "cache",
    "train",
    "overlap",
    "report",
    "compare",
    "doctor",
    "pack",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command that is installed."""
    parser = argparse.ArgumentParser(
        prog="facebench",
        description="Face-recognition evaluation: the numbers papers report, computed as the field computes them.",
    )
    parser.add_argument("--version", action="version", version=f"facebench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"facebench.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"facebench.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit status (0 ok, 1 failed checks, 2 input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from facebench.benchmarks import user_protocols

        with user_protocols(getattr(args, "protocols", None) or ()):
            return int(args.func(args) or 0)
    except FacebenchError as exc:
        print(f"facebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facebench: interrupted", file=sys.stderr)
        return 130
