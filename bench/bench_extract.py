"""Full extraction pipeline (decode + align + normalise + model, worker processes) against the bare backend.

For each backbone (random weights, exported to ONNX): builds a pack of N JPEG crops and, in the same
process, times
  pipeline: facebench.extraction.extract.extract_raw over the pack (2 decode workers, flip add: 2 model calls per image)
  bare:     the encoder alone on the same images preloaded as normalised float32 tensors (both views), same
            batch size
and prints model-calls/s of each and the ratio pipeline/bare (goal >= 0.9). Runs alternate to share noise.

    python bench/bench_extract.py [--images 512] [--arch mobilefacenet iresnet18] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from facebench.extraction.extract import ExtractOptions, extract_raw
from facebench.extraction.images import ImageList, arcface_chip
from facebench.models.export import write_onnx
from facebench.models.loader import load_encoder
from facebench.models.registry import create_backbone
from facebench.extraction.preprocess import PROFILES
from facebench.demo.suite import aligned_jpeg, DEMO_SEED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--arch", nargs="+", default=["mobilefacenet", "iresnet18"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    blobs = [aligned_jpeg((DEMO_SEED, 2_000_000 + i // 4, i % 4, 0.6)) for i in range(args.images)]
    images = ImageList("bench", blobs=blobs)
    profile = PROFILES["insightface"]
    print(f"torch threads {torch.get_num_threads()}, {args.images} images, batch {args.batch_size}, "
          f"{args.workers} decode workers, flip add")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            torch.manual_seed(0)
            module = create_backbone(arch).eval()
            torch.save(module.state_dict(), Path(tmp) / f"{arch}.pt")
            torch_encoder = load_encoder(Path(tmp) / f"{arch}.pt", arch=arch, device="cpu")
            write_onnx(torch_encoder, Path(tmp) / f"{arch}.onnx")
            encoder = load_encoder(Path(tmp) / f"{arch}.onnx", batch_hint=args.batch_size)
            chips = np.stack([images.load_chip(i, arcface_chip()) for i in range(len(images))])
            views = [profile.normalise(chips), profile.normalise(np.ascontiguousarray(chips[:, :, ::-1]))]
            tensors = [v[s : s + args.batch_size] for v in views for s in range(0, len(v), args.batch_size)]
            calls = 2 * args.images
            options = ExtractOptions(batch_size=args.batch_size, workers=args.workers, progress=False)
            encoder.embed(tensors[0])  # warm-up
            pipe_rates, bare_rates = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                extract_raw(encoder, images, profile, options)
                pipe_rates.append(calls / (time.perf_counter() - start))
                start = time.perf_counter()
                for batch in tensors:
                    encoder.embed(batch)
                bare_rates.append(calls / (time.perf_counter() - start))
            pipe, bare = max(pipe_rates), max(bare_rates)
            print(f"{arch:>14}: pipeline {pipe:8.1f} model-images/s   bare {bare:8.1f} model-images/s   "
                  f"ratio {pipe / bare:.3f}")


if __name__ == "__main__":
    main()
