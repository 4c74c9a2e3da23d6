"""`facebench cache list|clear`: inspect and clear the feature cache."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cache", help="list or clear cached features")
    p.add_argument("action", choices=("list", "clear"))
    p.add_argument("key", nargs="?", help="clear only entries whose key starts with this prefix")
    p.add_argument("--cache-dir", type=Path, help="cache root (default $FACEBENCH_CACHE or ~/.cache/facebench/features)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.extraction.cache import clear_entries, default_cache_root, list_entries

    root = args.cache_dir or default_cache_root()
    if args.action == "clear":
        n = clear_entries(root, args.key)
        print(f"removed {n} cache entr{'y' if n == 1 else 'ies'} from {root}")
        return 0
    entries = list_entries(root)
    if not entries:
        print(f"no cached features in {root}")
        return 0
    for e in entries:
        done = f"{e['chunks']}/{e['chunks_total']}" if e["chunks_total"] else str(e["chunks"])
        ckpt = (e["fields"].get("checkpoint_sha256") or "?")[:12]
        print(f"{e['key'][:16]}  images={e['n_images']}  chunks={done}  {e['bytes'] / 2**20:.1f} MiB  "
              f"checkpoint={ckpt}  created={e['created']}")
    return 0
