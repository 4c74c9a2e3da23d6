"""The embedding-store path (`facebench extract`: content keys, shard by shard extraction through the
embedder, atomic shard and manifest writes, read back) against the bare model, in one process.

A pack of N JPEG crops (the demo renderer) and a random-weight backbone exported to ONNX. Timed, alternately:
  store: RunContext.features_for with a store (what `facebench extract` runs), 2 decode workers, flip add,
         into a fresh store directory each time;
  bare:  the encoder alone on the same images preloaded as normalised float32 tensors (both views).
Prints model-images/s of each and the ratio store/bare (goal >= 0.9).

    python bench/bench_store.py [--images 512] [--arch mobilefacenet] [--shard-rows 256] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from facebench.demo.suite import DEMO_SEED, aligned_jpeg
from facebench.extraction.extractor import FeatureExtractor, ModelSettings
from facebench.evaluate.common import RunContext, RunSettings
from facebench.extraction.images import ImageList, arcface_chip
from facebench.models.export import write_onnx
from facebench.models.loader import load_encoder
from facebench.models.registry import create_backbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--arch", default="mobilefacenet")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-rows", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    blobs = [aligned_jpeg((DEMO_SEED, 2_000_000 + i // 4, i % 4, 0.6)) for i in range(args.images)]
    images = ImageList("bench", blobs=blobs)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        module = create_backbone(args.arch).eval()
        torch.save(module.state_dict(), Path(tmp) / "m.pt")
        write_onnx(load_encoder(Path(tmp) / "m.pt", arch=args.arch, device="cpu"), Path(tmp) / "m.onnx")
        embedder = FeatureExtractor.load(ModelSettings(checkpoint=Path(tmp) / "m.onnx", batch_size=args.batch_size,
                                               workers=args.workers, cache=False, progress=False))
        profile = embedder.profile
        chips = np.stack([images.load_chip(i, arcface_chip()) for i in range(len(images))])
        views = [profile.normalise(chips), profile.normalise(np.ascontiguousarray(chips[:, :, ::-1]))]
        tensors = [v[s : s + args.batch_size] for v in views for s in range(0, len(v), args.batch_size)]
        embedder.encoder.embed(tensors[0])  # warm-up
        calls = 2 * args.images
        store_rates, bare_rates = [], []
        for r in range(args.repeats):
            settings = RunSettings(benchmarks="bench", data_root=Path(tmp), out=Path(tmp) / "run",
                                   chunk_size=args.shard_rows, options={"store": str(Path(tmp) / f"store{r}")})
            ctx = RunContext(settings, embedder, profile)
            start = time.perf_counter()
            feats = ctx.features_for(None, images, label="bench")  # type: ignore[arg-type]
            store_rates.append(calls / (time.perf_counter() - start))
            start = time.perf_counter()
            for batch in tensors:
                embedder.encoder.embed(batch)
            bare_rates.append(calls / (time.perf_counter() - start))
        assert feats.shape[0] == args.images
        best_store, best_bare = max(store_rates), max(bare_rates)
        print(f"{args.arch}: store {best_store:.1f} model-images/s, bare {best_bare:.1f} model-images/s, "
              f"ratio {best_store / best_bare:.3f} ({args.images} images, shards of {args.shard_rows})")


if __name__ == "__main__":
    main()
