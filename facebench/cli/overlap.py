"""`facebench overlap v1c-r|audit`: regenerate MS-Celeb-1M-v1c-R; audit a training set against benchmarks."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from facebench.errors import FacebenchError

WHITELIST_ENV = "FACEBENCH_WHITELIST_DIR"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "overlap",
        help="training/benchmark identity overlap: regenerate MS-Celeb-1M-v1c-R, audit a training set",
        description="Remove training identities that are also benchmark identities.",
    )
    sub = p.add_subparsers(dest="overlap_command", metavar="ACTION")
    sub.required = True
    _register_v1cr(sub)
    _register_audit(sub)


def _listing_kind(parser: argparse.ArgumentParser) -> None:
    from facebench.overlap.listing import LISTING_KINDS

    parser.add_argument(
        "--kind",
        choices=LISTING_KINDS,
        help="listing kind (default: detected: a folder is 'dir'; in a file the first line's field count: "
        "12 -> lmk (msra_lmk), 2 -> pathlabel, 1 -> mids)",
    )


def _register_v1cr(sub: argparse._SubParsersAction) -> None:
    from facebench.overlap.whitelists import V1C_IDENTITIES

    p = sub.add_parser(
        "v1c-r",
        help="MS-Celeb-1M-v1c listing -> v1c-R (72,690 identities): label map, train list, summary",
        description="Intersect a MS-Celeb-1M-v1c listing (DeepGlint msra_lmk, a folder per MID, a MID list or "
        "a 'path label' list) with the published v1c-R whitelist; check 86,876 / 72,690 / 14,186; write "
        "identities.txt, removed_identities.txt, label_map.tsv, train_list.txt and summary.json into --out, "
        "all or nothing.",
    )
    p.add_argument("--v1c", required=True, type=Path, metavar="LISTING", help="the v1c listing (file or folder)")
    _listing_kind(p)
    p.add_argument(
        "--whitelist",
        required=True,
        metavar="FILE|NAME",
        help="the whitelist file, or a known list name: deepglint (= svx, 72,690 MIDs) or facexzoo (72,778), "
        f"found by its upstream file name in --whitelist-dir or ${WHITELIST_ENV}",
    )
    p.add_argument(
        "--whitelist-dir",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help=f"folder holding the named list (itself or one level down); repeatable; then ${WHITELIST_ENV} "
        "(os.pathsep-separated)",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--allow-mismatch", action="store_true", help="write the intersection even when a count check fails")
    p.add_argument(
        "--expect-identities",
        type=int,
        default=V1C_IDENTITIES,
        help=f"identities the v1c listing must have (default {V1C_IDENTITIES:,})",
    )
    p.add_argument("--rec", type=Path, metavar="PACK_DIR", help="insightface pack of the same v1c set (train.rec/.idx)")
    p.add_argument(
        "--out-rec",
        action="store_true",
        help="with --rec: write the filtered pack (train.rec, train.idx, property; new labels) into --out",
    )
    p.set_defaults(func=handle_v1cr)


def _search_dirs(args: argparse.Namespace) -> list[Path]:
    env = os.environ.get(WHITELIST_ENV, "")
    return list(args.whitelist_dir) + [Path(d) for d in env.split(os.pathsep) if d]


def handle_v1cr(args: argparse.Namespace) -> int:
    from facebench.overlap.v1cr import regenerate_v1c_r
    from facebench.overlap.whitelists import resolve_whitelist

    if args.out_rec and args.rec is None:
        raise FacebenchError("--out-rec needs --rec PACK_DIR (the v1c pack to filter)")
    if args.rec is not None and not args.out_rec:
        raise FacebenchError("--rec PACK_DIR is read only to write the filtered pack: add --out-rec")
    whitelist = resolve_whitelist(args.whitelist, _search_dirs(args))
    summary = regenerate_v1c_r(
        args.v1c,
        whitelist,
        args.out,
        kind=args.kind,
        allow_mismatch=args.allow_mismatch,
        expect_identities=args.expect_identities,
        rec_dir=args.rec,
    )
    c = summary["counts"]
    status = "checks passed" if summary["checks_passed"] else "CHECKS FAILED (--allow-mismatch)"
    print(
        f"v1c-R ({summary['whitelist']['name']} list): {c['identities_in']:,} identities in, {c['kept']:,} kept, "
        f"{c['removed']:,} removed; {status}; written to {args.out}"
    )
    if "train_images" in summary:
        print(f"train_list.txt: {summary['train_images']:,} images")
    if "rec" in summary:
        print(f"train.rec: {summary['rec']['images_kept']:,} images of {summary['rec']['classes']:,} classes")
    return 0


def _pairs(items: list[str], flag: str) -> dict[str, Path]:
    from facebench.cli.run import parse_assignments

    return {k: Path(v) for k, v in parse_assignments(items, flag, "NAME=PATH (e.g. lfw=/data/lfw-names.txt)").items()}


def _register_audit(sub: argparse._SubParsersAction) -> None:
    from facebench.cli.run import add_model_arguments
    from facebench.overlap.audit import REMOVE_ON
    from facebench.overlap.centres import DEFAULT_THRESHOLD
    from facebench.overlap.names import NAME_RULES

    p = sub.add_parser(
        "audit",
        help="find training identities that are benchmark identities (names and/or centre similarity)",
        description="Audit a training set against benchmark identities: name matching (given a training "
        "identity -> name map) and identity-centre cosine similarity (given features, or a checkpoint and "
        "the images). Writes overlaps.tsv/.md (ranked, with evidence), kept_identities.txt, "
        "removed_identities.txt and audit.json into --out.",
    )
    p.add_argument("--train", required=True, type=Path, metavar="LISTING", help="training listing (file or folder)")
    _listing_kind(p)
    p.add_argument(
        "--benchmark",
        action="append",
        default=[],
        required=True,
        metavar="NAME=PATH",
        help="benchmark identities: LFW names file or image folder, MegaFace devkit facescrub JSON, or a "
        "names list (one per line); repeatable",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    g = p.add_argument_group("name evidence")
    g.add_argument("--names", type=Path, metavar="FILE", help="training identity -> name map (id<TAB>name, id name, CSV)")
    g.add_argument("--name-langs", help="with '\"name\"@lang' maps: languages to use, comma separated (default all)")
    g.add_argument(
        "--name-rule",
        choices=NAME_RULES,
        default="initials",
        help="weakest name rule that counts (default initials = all rules, happynear's)",
    )
    g = p.add_argument_group("similarity evidence")
    g.add_argument("--features", type=Path, metavar="FILE.npy", help="training features, one row per listing row")
    g.add_argument(
        "--benchmark-features",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="a benchmark's features in its image order; repeatable",
    )
    g.add_argument("--checkpoint", type=Path, help="extract the features with this model instead")
    g.add_argument("--images-root", type=Path, metavar="DIR", help="where the training listing's paths are (default: its folder)")
    g.add_argument(
        "--benchmark-images",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="where a benchmark's image paths are (an image-folder benchmark is its own root); repeatable",
    )
    g.add_argument("--per-identity", type=int, default=0, metavar="K", help="with --checkpoint: first K images per training identity (0 = all)")
    g.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"suspect pairs with centre cosine strictly above this (default {DEFAULT_THRESHOLD}, insightface's MegaFace rule)",
    )
    g.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    g.add_argument("--cache-dir", type=Path, help="feature cache root (default $FACEBENCH_CACHE or ~/.cache/facebench)")
    g.add_argument("--no-progress", action="store_true", help="no progress line")
    p.add_argument("--remove-on", choices=REMOVE_ON, default="any", help="evidence that removes an identity (default any)")
    add_model_arguments(p)
    p.set_defaults(func=handle_audit)


def handle_audit(args: argparse.Namespace) -> int:
    from facebench.overlap.audit import AuditRules
    from facebench.overlap.run_audit import AuditInputs, ModelSettings, run_audit

    if args.per_identity < 0:
        raise FacebenchError(f"--per-identity must be >= 0, got {args.per_identity}")
    rules = AuditRules(name_rule=args.name_rule, threshold=args.threshold, remove_on=args.remove_on)
    langs = {x.strip().lower() for x in args.name_langs.split(",") if x.strip()} if args.name_langs else None
    inputs = AuditInputs(
        train=args.train,
        benchmarks=_pairs(args.benchmark, "--benchmark"),
        out=args.out,
        kind=args.kind,
        names=args.names,
        name_langs=langs,
        features=args.features,
        images_root=args.images_root,
        per_identity=args.per_identity,
        benchmark_features=_pairs(args.benchmark_features, "--benchmark-features"),
        benchmark_images=_pairs(args.benchmark_images, "--benchmark-images"),
    )
    model = None
    if args.checkpoint is not None:
        model = ModelSettings(
            checkpoint=args.checkpoint,
            arch=args.arch,
            profile=args.profile,
            flip=args.flip,
            batch_size=args.batch_size,
            workers=args.workers,
            device=args.device,
            half=args.half,
            cache=not args.no_cache,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            trust_checkpoint_code=args.trust_checkpoint_code,
        )
    elif any(getattr(args, k) for k in ("arch", "profile", "flip", "half")):
        raise FacebenchError("--arch/--profile/--flip/--half apply to --checkpoint")
    doc = run_audit(inputs, rules, model)
    c = doc["counts"]
    print(
        f"audit: {c['suspected_pairs']:,} suspected pair(s); {c['removed']:,} of {c['train_identities']:,} "
        f"training identities removed, {c['kept']:,} kept; written to {args.out}"
    )
    for name, counts in c["per_benchmark"].items():
        print(
            f"  {name}: {counts['name_pairs']:,} by name, {counts['similar_pairs']:,} by similarity, "
            f"{counts['both']:,} both; {counts['train_identities_removed']:,} training identities removed"
        )
    return 0
