"""What the bounds on untrusted input cost: the restricted unpickler and the image header check.

1. A 12,000-item pack of 15-kB blobs (the size of LFW's) pickled with protocols 2, 4 and 5: load time of
   ``facebench.io.safe_pickle.load_stream`` (pure-Python unpickler with the allow-list, the BUILD/REDUCE gates
   and the size budget) against ``pickle.loads`` (C, unrestricted: the baseline, unsafe).
2. 2,000 112x112 JPEG crops: ``images.check_image_size`` (header read, run before every decode) against
   ``cv2.imdecode`` of the same bytes.

Prints the times and their ratios, measured in this process.

    python bench/bench_untrusted_inputs.py [--items 12000]
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import time

import cv2
import numpy as np

from facebench.io import safe_pickle
from facebench.extraction.images import check_image_size


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12000)
    args = parser.parse_args()
    blobs = [os.urandom(15000) for _ in range(args.items)]
    print(f"pack: {args.items} items of 15 kB")
    for protocol in (2, 4, 5):
        data = pickle.dumps((blobs, [True] * (args.items // 2)), protocol=protocol)
        base = best_of(lambda: pickle.loads(data))
        safe = best_of(lambda: safe_pickle.load_stream(io.BytesIO(data), "bench"))
        print(f"  protocol {protocol}: {len(data) / 2**20:6.0f} MB  pickle.loads {base:.3f} s  "
              f"safe_pickle {safe:.3f} s  ratio {safe / base:.2f}")
    rng = np.random.default_rng(0)
    jpegs = []
    for _ in range(2000):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        ok, buf = cv2.imencode(".jpg", cv2.resize(small, (112, 112), interpolation=cv2.INTER_CUBIC))
        jpegs.append(np.frombuffer(buf.tobytes(), np.uint8))
    decode = best_of(lambda: [cv2.imdecode(j, cv2.IMREAD_COLOR) for j in jpegs])
    header = best_of(lambda: [check_image_size(j, "bench") for j in jpegs])
    print(f"images: 2000 JPEG crops  cv2.imdecode {decode * 1e3:.1f} ms  header check {header * 1e3:.1f} ms  "
          f"ratio {header / decode:.3f}")


if __name__ == "__main__":
    main()
