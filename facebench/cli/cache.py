"""`facebench cache list|clear`: inspect and clear the feature cache and the parsed protocol lists kept in
its ``tables/`` (:mod:`facebench.io.tablecache`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cache", help="list or clear cached features and parsed protocol lists")
    p.add_argument("action", choices=("list", "clear"))
    p.add_argument("key", nargs="?", help="clear only entries whose key starts with this prefix")
    p.add_argument("--cache-dir", type=Path, help="cache root (default $FACEBENCH_CACHE or ~/.cache/facebench/features)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.extraction.cache import clear_entries, default_cache_root, list_entries
    from facebench.io.tablecache import clear_tables, table_entries

    root = args.cache_dir or default_cache_root()
    tables = root / "tables"
    if args.action == "clear":
        n = clear_entries(root, args.key)
        t = clear_tables(tables, args.key)
        print(f"removed {n} cache entr{'y' if n == 1 else 'ies'} from {root} and {t} parsed "
              f"list{'' if t == 1 else 's'} from {tables}")
        return 0
    entries = list_entries(root)
    if not entries:
        print(f"no cached features in {root}")
    for e in entries:
        done = f"{e['chunks']}/{e['chunks_total']}" if e["chunks_total"] else str(e["chunks"])
        ckpt = (e["fields"].get("checkpoint_sha256") or "?")[:12]
        print(f"{e['key'][:16]}  images={e['n_images']}  chunks={done}  {e['bytes'] / 2**20:.1f} MiB  "
              f"checkpoint={ckpt}  created={e['created']}")
    for t in table_entries(tables):
        print(f"{str(t['key'])[:16]}  parsed list  rows={t['rows']}  {int(t['bytes']) / 2**20:.1f} MiB  "  # type: ignore[call-overload]
              f"file sha256={str(t['sha256'])[:12]}")
    return 0
