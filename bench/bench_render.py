"""Demo-suite rendering on one core: the current renderer against the one of commit 843f183, byte for byte.

Renders a fixed sample of the demo suite's images (the first ``--per-part`` images of each part, as the
suite draws them: aligned 112x112 crops of ``demo_verify``, raw 160x160 shots with landmarks of
``demo_ijb``, aligned crops of the MegaFace probes and distractors) with the renderer of commit 843f183
(the baseline, read from this checkout's git history: ``git show 843f183:facebench/demo/render.py``) and with ``facebench.demo.render``, in
alternating rounds in this process; prints images/s of each (best round), their ratio (also without the
time both spend aligning the crops, a call outside the renderer), and checks that
every image and every landmark array is byte-identical (sha256) to the reference's. Identity and nuisance
parameters are drawn once, outside the timing.

    python3 bench/bench_render.py [--per-part 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

import cv2

from facebench.demo import render as current
from facebench.demo.params import FaceIdentity, Nuisance, identity_params, image_nuisance
from facebench.demo.splits import split_identities
from facebench.demo.suite import SuiteConfig, verification_pairs
from facebench.extraction.images import align, arcface_chip

BASELINE = "843f183"
ROOT = Path(__file__).resolve().parents[1]


def load_reference(commit: str = BASELINE) -> ModuleType:
    """``facebench/demo/render.py`` as it was at ``commit``, imported under its own name (it imports
    ``facebench.demo.params``, unchanged since)."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:facebench/demo/render.py"],
                                check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise SystemExit(f"bench_render needs the git history of {ROOT} down to commit {commit} "
                         f"(a full clone, not a shallow one or a source archive): {err}") from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "render_843f183.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("facebench_render_reference", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def suite_sample(per_part: int, config: SuiteConfig = SuiteConfig()) -> list[tuple[bool, FaceIdentity, Nuisance]]:
    """``(aligned, identity, nuisance)`` of the first ``per_part`` images of each demo part, in the suite's
    job order (see ``facebench.demo.suite``: write_verify_pack, write_ijb_set, write_megaface_set)."""
    pairs, _ = verification_pairs(split_identities("verify", 10 * (config.verify_pairs_per_fold // 2)),
                                  config.verify_pairs_per_fold)
    verify = [job for a, ia, b, ib in pairs for job in ((a, ia), (b, ib))]
    per_subject = sum(config.ijb_gallery_media) + sum(config.ijb_probe_media)
    ijb = [(int(s), k) for s in split_identities("ijb", config.ijb_subjects) for k in range(per_subject)]
    probes = [(int(i), k) for i in split_identities("megaface_probe", config.megaface_identities)
              for k in range(config.megaface_images_per_identity)]
    distractors = [(int(i), 0) for i in split_identities("megaface_distractor", max(config.megaface_sizes))]
    parts = ((True, verify, config.verify_difficulty), (False, ijb, config.ijb_difficulty),
             (True, probes, config.megaface_difficulty), (True, distractors, config.megaface_difficulty))
    return [(aligned, identity_params(config.seed, i), image_nuisance(config.seed, i, k, difficulty))
            for aligned, jobs, difficulty in parts for i, k in jobs[:per_part]]


def digests(module: ModuleType, sample) -> list[str]:
    """sha256 of each sample image's bytes (and, for raw shots, its landmarks' bytes) under ``module``."""
    out = []
    for aligned, face, nz in sample:
        h = hashlib.sha256()
        if aligned:
            h.update(module.render_aligned(face, nz).tobytes())
        else:
            image, points = module.render(face, nz)
            h.update(image.tobytes())
            h.update(points.tobytes())
        out.append(h.hexdigest())
    return out


def align_seconds(sample) -> float:
    """Seconds of ``facebench.extraction.images.align`` alone over the sample's aligned crops (the same
    call, outside ``facebench/demo``, in both renderers' ``render_aligned``)."""
    shots = [current.render(face, nz) for aligned, face, nz in sample if aligned]
    chip = arcface_chip()
    return _seconds(lambda: [align(image, points, chip) for image, points in shots])


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-part", type=int, default=60, help="images of each of the 4 demo parts")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    reference = load_reference()
    sample = suite_sample(args.per_part)
    expected, got = digests(reference, sample), digests(current, sample)  # also the warm-up
    differ = [k for k, (a, b) in enumerate(zip(expected, got)) if a != b]
    best = {"reference": float("inf"), "current": float("inf")}
    for _ in range(args.rounds):
        best["reference"] = min(best["reference"], _seconds(lambda: digests(reference, sample)))
        best["current"] = min(best["current"], _seconds(lambda: digests(current, sample)))
    aligning = min(align_seconds(sample) for _ in range(args.rounds))
    n = len(sample)
    for name, seconds in best.items():
        print(f"{name:9s} renderer: {n / seconds:7.1f} images/s ({seconds:.3f} s for {n} images, best of "
              f"{args.rounds})")
    print(f"ratio current / reference: {best['reference'] / best['current']:.2f}x; without the {aligning:.3f} s "
          f"both spend in align(): {(best['reference'] - aligning) / (best['current'] - aligning):.2f}x")
    print(f"byte-identical: {n - len(differ)}/{n} images (sha256 of image and landmark bytes)")
    if differ:
        raise SystemExit(f"images differ from the reference at sample positions {differ[:20]}")


if __name__ == "__main__":
    main()
