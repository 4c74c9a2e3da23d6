"""Peak memory of a full `facebench run` on a 12,000-image pair pack (issue: stay under 600 MB).

Builds a 6,000-pair insightface-style pack of 112x112 JPEG crops rendered by the demo renderer, exports a
random-weight backbone to ONNX, then runs `facebench run` in a child process (2 decode workers, flip add,
no cache) and prints the peak resident memory of the main process and of the largest worker (from
getrusage), next to the pack's size and the size the decoded float images would take at once.

    python bench/bench_pairs_memory.py [--pairs 6000] [--arch mobilefacenet_small]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from facebench.demo.suite import DEMO_SEED, aligned_jpeg, parallel_map
from facebench.io.binpack import write_bin
from facebench.models.export import write_onnx
from facebench.models.loader import load_encoder
from facebench.models.registry import create_backbone

CHILD = """
import resource, sys, json
from facebench.cli import main
status = main(sys.argv[1:])
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"status": status, "main_mb": self_kb / 1024, "largest_worker_mb": child_kb / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--arch", default="mobilefacenet_small")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = [(DEMO_SEED, 3_000_000 + i // 2, i % 2, 0.6) for i in range(2 * args.pairs)]
        blobs = parallel_map(aligned_jpeg, jobs, 2)
        issame = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], args.pairs // 600 + 1)[: args.pairs]
        write_bin(root / "lfw.bin", blobs, issame)
        torch.manual_seed(0)
        torch.save(create_backbone(args.arch).eval().state_dict(), root / "m.pt")
        write_onnx(load_encoder(root / "m.pt", arch=args.arch, device="cpu"), root / "m.onnx")
        cmd = [sys.executable, "-c", CHILD, "-q", "run", str(root / "m.onnx"), "-b", "lfw", "--data-root", str(root),
               "--out", str(root / "out"), "--no-cache", "--workers", "2", "--no-speed"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        pack_mb = (root / "lfw.bin").stat().st_size / 2**20
        decoded_mb = 2 * args.pairs * 2 * 3 * 112 * 112 * 4 / 2**20
        print(f"{2 * args.pairs} images, pack {pack_mb:.0f} MB; all decoded float32 images and flips at once would be "
              f"{decoded_mb:.0f} MB")
        print(f"facebench run peak RSS: main process {info['main_mb']:.0f} MB, largest decode worker "
              f"{info['largest_worker_mb']:.0f} MB (goal: main < 600 MB); exit status {info['status']}")
        print(f"this process's own peak (building the pack): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
