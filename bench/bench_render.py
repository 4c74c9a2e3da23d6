"""Rendering throughput of the demo face renderer on one core.

Prints images/s for raw renders and for aligned 112x112 crops at a few difficulties, and the ratio of
each against the baseline measured in the same process: a bare ``cv2.warpAffine`` of a raw-sized image to
112x112 (the cheapest thing an image pipeline does per image). Goal: >= 400 aligned crops/s at
difficulty 1 (the demo renders ~3,000 images and must finish, evaluation included, in under 2 minutes).

    python bench/bench_render.py [--images N] [--size S]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from facebench.demo.render import DEFAULT_SIZE, identity_params, image_nuisance, render, render_aligned


def _rate(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    n_ids = max(1, args.images // 6)
    faces = [identity_params(0, i) for i in range(n_ids)]
    image = np.zeros((args.size, args.size, 3), np.uint8)
    matrix = np.array([[0.9, 0.05, 3.0], [-0.05, 0.9, 2.0]])
    base = _rate(lambda _: cv2.warpAffine(image, matrix, (112, 112)), range(args.images))
    print(f"baseline warpAffine {args.size}->112: {base:10.0f} images/s")
    ident = _rate(lambda i: identity_params(1, i), range(args.images))
    print(f"identity_params: {ident:10.0f} identities/s")
    start = time.perf_counter()
    jobs = {d: [(faces[k % n_ids], image_nuisance(0, k % n_ids, k, d)) for k in range(args.images)]
            for d in (0.0, 0.5, 1.0)}
    sample = (time.perf_counter() - start) / (3 * args.images)
    print(f"image_nuisance: {1 / sample:10.0f} images/s")
    for d, items in jobs.items():
        raw = _rate(lambda it: render(it[0], it[1], args.size), items)
        crop = _rate(lambda it: render_aligned(it[0], it[1], args.size), items)
        print(f"difficulty {d:.1f}: render {raw:6.0f} images/s, render_aligned {crop:6.0f} images/s "
              f"({crop / base:.3f} x baseline)")


if __name__ == "__main__":
    main()
