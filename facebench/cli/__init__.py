"""The `facebench` command: parse arguments, call the library, print.

Each sub-command lives in its own module of this package and exposes
``register(subparsers: argparse._SubParsersAction) -> None``, which adds its parser and sets
``func`` (``Callable[[argparse.Namespace], int]``) as the handler. No logic lives here.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from typing import NoReturn, Sequence

from facebench import __version__
from facebench.cpu import avoid_slow_avx512_sort
from facebench.errors import FacebenchError
from facebench.registry import Registry

COMMANDS: Registry[str] = Registry("command", [(name, f"facebench.cli.{name}") for name in (
    "run", "demo", "benchmarks", "export", "cache", "train", "overlap", "report", "compare", "doctor", "pack",
    "score", "extract", "align",
)])
"""Sub-command name -> the module that registers it, in the order ``--help`` lists them."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every sub-command that is installed, or with just the command ``only``
    (what running it needs: registering a command imports its module, and some import a good deal)."""
    parser = argparse.ArgumentParser(
        prog="facebench",
        description="Face-recognition evaluation: the numbers papers report, computed as the field computes them.",
    )
    parser.add_argument("--version", action="version", version=f"facebench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (and of a failed benchmark)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(subparsers)
    return parser


def entry() -> NoReturn:
    """The ``facebench`` console script and ``python -m facebench``: :func:`main` on the command line, then
    exit with its status. Before numpy is imported, numpy's AVX-512 sorts are turned off on AMD Zen 4, where
    they are several times slower than the AVX2 ones (:mod:`facebench.cpu`). What is left at exit is frozen
    out of the interpreter's final garbage collection (``gc.freeze``): Python promises no finalisers at exit
    anyway (every file facebench writes is closed and renamed into place before), and collecting a run's
    object graph (numpy, scipy, matplotlib, pyarrow) took 0.2 s of a 4.5 s IJB-C run."""
    avoid_slow_avx512_sort(os.environ)
    status = main()
    gc.freeze()
    raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit status: 0 ok; 1 failed checks or benchmarks, a file-system error
    (``OSError``: a full disk, a read-only file) or an unexpected error; 2 an input or usage error
    (``FacebenchError``); 130 interrupted. Each error is one line on stderr; ``--debug`` shows the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    named = next((token for token in argv if not token.startswith("-")), None)
    if named is not None and named not in COMMANDS:  # the top-level options take no value: this names a command
        try:
            COMMANDS.check(named)
        except FacebenchError as exc:
            print(f"facebench: error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser(named)
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose or args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from facebench.benchmarks import user_protocols

        with user_protocols(getattr(args, "protocols", None) or ()):
            return int(args.func(args) or 0)
    except FacebenchError as exc:
        if args.debug:
            raise
        print(f"facebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facebench: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if args.debug:
            raise
        print(f"facebench: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            raise
        print(f"facebench: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
