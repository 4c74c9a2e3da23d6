"""`facebench pack`: an identity folder plus its pairs as an insightface-style ``.bin`` verification pack."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pack",
        help="write an identity folder and its pairs as an insightface .bin pack",
        description="Write FOLDER (one sub-folder per identity; 112x112 crops, or raw images with 5-point "
        "landmarks) and its pairs as an insightface-style .bin pack that facebench and other tools read. The "
        "pairs come from a list (--pairs LIST, lines 'path_a path_b label' relative to FOLDER) or are generated "
        "(--generate) by the same seeded, fold-balanced rule as `facebench run --benchmark folder:FOLDER`.",
    )
    p.add_argument("folder", type=Path, help="the identity folder")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", type=Path, metavar="LIST",
                        help="pair list: path_a path_b label (1 same, 0 different)")
    source.add_argument("--generate", action="store_true", help="generate seeded fold-balanced pairs")
    p.add_argument("--out", type=Path, required=True, help="the .bin file to write")
    p.add_argument("--landmarks", type=Path, help="5-point landmark file (default FOLDER/landmarks.txt if present)")
    p.add_argument("--seed", type=int, default=0, help="--generate: seed (default 0, as `run --folder-seed`)")
    p.add_argument("--max-pairs", type=int, default=6000, help="--generate: most pairs (default 6000)")
    p.add_argument("--write-list", type=Path, metavar="FILE", help="also write the pairs as a pair list")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.errors import FacebenchError
    from facebench.evaluate.folder import pack_folder
    from facebench.rundir import check_writable_target

    if not args.folder.is_dir():
        raise FacebenchError(f"{args.folder}: not a folder")
    for flag, target in (("--out", args.out), ("--write-list", args.write_list)):
        if target is not None:
            check_writable_target(target, flag, directory=False)
    files: dict[str, Path] = {"images": args.folder}
    landmarks = args.landmarks or (args.folder / "landmarks.txt")
    if args.landmarks is not None or landmarks.is_file():
        files["landmarks"] = landmarks
    if args.pairs is not None:
        files["pairs"] = args.pairs
    summary = pack_folder(files, args.out, seed=args.seed, max_pairs=args.max_pairs, list_out=args.write_list)
    folds = summary["fold_balance"]
    print(
        f"wrote {summary['out']}: {summary['n_pairs']} pairs ({summary['n_genuine']} same), 10 folds of "
        f"{'/'.join(str(s + d) for s, d in folds)} pairs, {summary['distinct_images']} distinct images "
        f"({summary['aligned']} aligned from landmarks); sha256 {summary['sha256']}"
    )
    if args.write_list:
        print(f"pair list: {args.write_list}")
    return 0
