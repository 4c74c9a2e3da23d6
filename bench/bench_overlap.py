"""Speed and memory of `facebench overlap v1c-r` on a full-size msra_lmk (about 3.9M lines, 86,876 MIDs).

Builds a synthetic DeepGlint ``msra_lmk`` (the real 72,690 whitelist MIDs from ../shared/protocol_files
when present, else synthetic ones, plus synthetic MIDs up to 86,876; 45 images each, shuffled identity
order) in a temporary folder, then runs, each in its own process:

- floor: a bare Python pass over the file (``for line in f: line.split()``), the least any line-by-line
  reader can cost;
- naive: the file read into memory (``readlines``), every path kept in a set for duplicates;
- facebench: ``facebench overlap v1c-r`` end to end (validation, checks, all outputs written).

Prints wall time and peak RSS of each and the ratios facebench/floor (time) and facebench/naive (memory).

    python bench/bench_overlap.py [--per-identity 45] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHITELIST = REPO.parent / "shared" / "protocol_files" / "ms-celeb-1m" / "SV-X-Softmax" / "deepglint_unoverlap_list.txt"
MID_ALPHABET = "0123456789bcdfghjklmnpqrstvwxyz_"
V1C = 86_876

FLOOR = """
import resource, sys, time
t = time.perf_counter(); n = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        line.split(); n += 1
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

NAIVE = """
import resource, sys, time
t = time.perf_counter()
lines = open(sys.argv[1], "rb").readlines()
paths = set(); mids = {}
for line in lines:
    parts = line.split(); paths.add(parts[0]); mids.setdefault(parts[0].split(b"/")[0], parts[1])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

TOOL = """
import resource, sys, time
from facebench.cli import main
t = time.perf_counter()
rc = main(["-q", "overlap", "v1c-r", "--v1c", sys.argv[1], "--whitelist", sys.argv[2], "--out", sys.argv[3]])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rc)
"""


def make_listing(folder: Path, per_identity: int, seed: int = 0) -> tuple[Path, Path, bool]:
    """Write msra_lmk and the whitelist used; return their paths and whether the real list was used."""
    rng = random.Random(seed)
    real = WHITELIST.is_file()
    if real:
        kept = WHITELIST.read_text().split()
        whitelist = WHITELIST
    else:
        kept = []
    taken = set(kept)

    def new_mid() -> str:
        while True:
            mid = "m.0" + "".join(rng.choice(MID_ALPHABET) for _ in range(rng.randint(4, 7)))
            if mid not in taken:
                taken.add(mid)
                return mid

    if not real:
        kept = [new_mid() for _ in range(72_690)]
        whitelist = folder / "whitelist.txt"
        whitelist.write_text("\n".join(kept))
    mids = kept + [new_mid() for _ in range(V1C - len(kept))]
    rng.shuffle(mids)
    listing = folder / "msra_lmk"
    with open(listing, "w", buffering=1 << 22) as handle:
        for label, mid in enumerate(mids):
            base = " ".join(f"{rng.uniform(30, 80):.3f}" for _ in range(10))
            for k in range(per_identity):
                handle.write(f"{mid}/{k}-FaceId-0.jpg {label} {base}\n")
    return listing, whitelist, real


def run(code: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, cwd=REPO)
    return out.stdout.strip().splitlines()[-1].split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-identity", type=int, default=45, help="images per identity (45 -> 3,909,420 lines)")
    parser.add_argument("--keep", type=Path, help="build the listing here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_overlap."))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        listing, whitelist, real = make_listing(folder, args.per_identity)
        lines = V1C * args.per_identity
        size = listing.stat().st_size
        print(f"listing: {lines:,} lines, {size / 2**20:.0f} MiB, built in {time.perf_counter() - t:.1f} s "
              f"({'real' if real else 'synthetic'} whitelist)")
        floor_s, floor_kb = map(float, run(FLOOR, str(listing)))
        naive_s, naive_kb = map(float, run(NAIVE, str(listing)))
        tool_s, tool_kb, rc = map(float, run(TOOL, str(listing), str(whitelist), str(folder / "out")))
        summary = json.loads((folder / "out" / "summary.json").read_text())
        c = summary["counts"]
        print(f"facebench v1c-r: rc {int(rc)}, {c['identities_in']:,} in / {c['kept']:,} kept / {c['removed']:,} removed, "
              f"{summary['train_images']:,} train lines")
        print(f"{'':10s} {'time s':>8s} {'peak RSS MiB':>13s}")
        for name, s, kb in (("floor", floor_s, floor_kb), ("naive", naive_s, naive_kb), ("facebench", tool_s, tool_kb)):
            print(f"{name:10s} {s:8.2f} {kb / 1024:13.0f}")
        print(f"time facebench/floor: {tool_s / floor_s:.2f}x; peak RSS facebench/naive: {tool_kb / naive_kb:.2f}x; "
              f"facebench RSS / file size: {tool_kb * 1024 / size:.2f}")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
