"""Built-in detection and large-face reduction on the shared real photos, against dlib's own outputs.

Reads ``../shared/reference/photos`` (dlib's boxes, landmarks and descriptors; not part of the repository)
and prints, in one process:

- detection: faces found by facebench's ``dlib-hog`` detector vs dlib's reference count, extra boxes, and
  seconds per photo (detector + 68-point landmarks);
- landmarks: mean distance of the ArcFace 5 points to dlib's reference ``arcface5``, in pixels;
- large faces: cosine of the dlib backend's descriptor to dlib's on dlib's own chip geometry
  (``chip_from_image`` of the reference), for a plain bilinear warp (baseline) and facebench's pyramid
  warp, over the faces that dlib shrinks by more than 2x; the ratio is 1 - cosine, pyramid / plain
  (lower is better).

    python bench/bench_detect.py [--photos ../shared/reference/photos]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from facebench.extraction.detection import DlibHogDetector
from facebench.extraction.images import pyramid_levels, read_image, warp_to_chip
from facebench.models.dlib import find_dlib_model
from facebench.models.loader import load_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/reference/photos")
    args = parser.parse_args()
    ref = json.loads((args.photos / "dlib_reference.json").read_text())
    desc = np.load(args.photos / "dlib_descriptors.npy")
    order = [line.split() for line in (args.photos / "dlib_descriptors.txt").read_text().splitlines()]
    row_of = {(p, int(f)): r for r, (p, f) in enumerate(order)}

    detector = DlibHogDetector()
    found = expected = extra = 0
    seconds, errors = [], []
    for im in ref["images"]:
        image = read_image(str(args.photos / "images" / im["path"]))
        start = time.perf_counter()
        faces = detector.detect(image)
        seconds.append(time.perf_counter() - start)
        expected += len(im["hog"])
        for face in im["hog"]:
            a5 = np.asarray(face["arcface5"])
            dist = [np.linalg.norm(f.landmarks - a5, axis=1).mean() for f in faces]
            if dist and min(dist) < 0.25 * np.linalg.norm(a5[0] - a5[1]):
                found += 1
                errors.append(min(dist))
        extra += max(0, len(faces) - len(im["hog"]))
    print(f"detection: {found}/{expected} reference faces found, {extra} extra boxes; "
          f"{np.median(seconds):.3f} s median, {max(seconds):.3f} s max per photo")
    print(f"landmarks: mean ArcFace-5 distance to dlib's reference {np.mean(errors):.2e} px (max {np.max(errors):.2e})")

    encoder = load_encoder(find_dlib_model())
    profile = encoder.default_profile
    plain, pyramid = [], []
    for im in ref["images"]:
        image = read_image(str(args.photos / "images" / im["path"]))
        for k, face in enumerate(im["hog"]):
            matrix = np.asarray(face["chip"]["chip_from_image"])
            if pyramid_levels(matrix) == 0:
                continue
            d = desc[row_of[(im["path"], k)]]
            for out, chip in (
                (plain, cv2.warpAffine(image, matrix, (150, 150), flags=cv2.INTER_LINEAR, borderValue=0.0)),
                (pyramid, warp_to_chip(image, matrix, 150)),
            ):
                e = np.asarray(encoder.embed(profile.normalise(chip[None])), dtype=np.float64)[0]
                out.append(1.0 - e @ d / np.linalg.norm(e) / np.linalg.norm(d))
    print(f"large faces ({len(plain)}): 1 - cosine to dlib, plain {np.mean(plain):.2e}, pyramid {np.mean(pyramid):.2e}, "
          f"ratio pyramid/plain {np.mean(pyramid) / np.mean(plain):.2f}")


if __name__ == "__main__":
    main()
