"""The demo renderer draws byte for byte what the renderer of commit 843f183 drew: every demo image, the
committed demo report and the golden digest of ``test_demo_render.py`` rest on these pixels. The sample is
drawn from the suite's own parameter streams and chosen to cover every drawing path (each occluder kind,
glasses on and off, each beard, hair style, hairline and nose style, marks, clutter, downscale, blur, each
branch of the light), at several sizes. ``data/render_identity.txt`` holds the sha256 of each sample image's
bytes (and its landmarks' bytes) as commit 843f183's renderer drew them, one ``kind size position digest`` per
line; if the pixels are meant to change, the demo report is regenerated and the file rewritten with
``python3 tests/test_demo_render_identity.py --write``."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facebench.demo import render as current
from facebench.demo.params import BEARDS, GLASSES, HAIR_STYLES, HAIRLINES, NOSE_STYLES, OCCLUDERS, Nuisance
from facebench.demo.params import identity_params, image_nuisance
from facebench.demo.suite import DEMO_SEED

PINNED = Path(__file__).resolve().parent / "data" / "render_identity.txt"


def _paths(face, nz: Nuisance) -> set[str]:
    """The drawing paths one (identity, nuisance) takes."""
    keys = {f"occluder:{nz.occluder}", f"beard:{BEARDS[face.beard]}", f"hair:{HAIR_STYLES[face.hair_style]}",
            f"hairline:{HAIRLINES[face.hairline]}", f"nose:{NOSE_STYLES[face.nose_style]}",
            f"glasses:{GLASSES[face.glasses]}:{nz.glasses_on}"}
    flags = {"downscale": nz.downscale > 1.0, "blur": nz.blur > 0.05, "ramp": nz.light_strength > 0.0,
             "noise": nz.noise > 0.0, "clutter": nz.clutter > 0, "freckles": bool(face.freckles),
             "moles": bool(face.moles), "lashes": bool(face.lashes), "blush": face.blush > 0,
             "forehead": face.forehead_lines > 0, "open mouth": nz.mouth_open > 0, "squint": nz.squint > 0,
             "no light": (nz.gamma, nz.contrast, nz.brightness, *nz.cast, nz.light_strength, nz.noise)
             == (1.0,) * 6 + (0.0,) * 2,
             "table only": nz.light_strength == 0.0 and nz.noise == 0.0 and nz.gamma != 1.0,
             "noise, no ramp": nz.light_strength == 0.0 and nz.noise > 0.0}
    return keys | {name for name, on in flags.items() if on}


def _every_path() -> set[str]:
    return ({f"occluder:{k}" for k in OCCLUDERS} | {f"beard:{k}" for k in BEARDS} | {f"hair:{k}" for k in HAIR_STYLES}
            | {f"hairline:{k}" for k in HAIRLINES} | {f"nose:{k}" for k in NOSE_STYLES}
            | {f"glasses:{k}:{on}" for k in GLASSES for on in (True, False)} - {"glasses:none:False"}
            | {"downscale", "blur", "ramp", "noise", "clutter", "freckles", "moles", "lashes", "blush", "forehead",
               "open mouth", "squint", "no light", "table only", "noise, no ramp"})


def _sample() -> list[tuple[object, Nuisance]]:
    """Walk the suite's parameter streams (identities 0.., images 0..5, difficulties 0 to 2) and keep each
    (identity, nuisance) that takes a drawing path seen fewer than twice so far."""
    seen: dict[str, int] = {}
    out = []
    for identity in range(400):
        face = identity_params(DEMO_SEED, identity)
        for image, difficulty in enumerate((0.0, 0.6, 1.0, 1.5, 2.0, 0.3)):
            nz = image_nuisance(DEMO_SEED, identity, image, difficulty)
            if difficulty == 0.3:  # a light table with no ramp and no noise
                nz = replace(nz, light_strength=0.0, noise=0.0)
            if difficulty == 1.5 and identity % 3 == 0:  # noise without a ramp
                nz = replace(nz, light_strength=0.0)
            paths = _paths(face, nz)
            if any(seen.get(p, 0) < 2 for p in paths):
                out.append((face, nz))
                for p in paths:
                    seen[p] = seen.get(p, 0) + 1
    return out


SAMPLE = _sample()


def _digest(image: np.ndarray, points: np.ndarray | None = None) -> str:
    h = hashlib.sha256(image.tobytes())
    if points is not None:
        h.update(points.tobytes())
    return h.hexdigest()


def test_sample_covers_every_drawing_path():
    covered = set().union(*(_paths(face, nz) for face, nz in SAMPLE))
    assert _every_path() <= covered, _every_path() - covered
    assert len(SAMPLE) < 150


def current_digests() -> dict[tuple[str, int, int], str]:
    """``(kind, size, sample position) -> sha256`` of what the current renderer draws for the sample."""
    out = {}
    for size in SIZES:
        for k, (face, nz) in enumerate(SAMPLE):
            out[("render", size, k)] = _digest(*current.render(face, nz, size))
    for k, (face, nz) in enumerate(SAMPLE):
        if k % 3 == 0:
            out[("aligned", 112, k)] = _digest(current.render_aligned(face, nz))
            out[("landmarks", 0, k)] = _digest(current.landmarks(face, nz))
    return out


def pinned_digests() -> dict[tuple[str, int, int], str]:
    out = {}
    for line in PINNED.read_text().splitlines():
        kind, size, k, digest = line.split()
        out[(kind, int(size), int(k))] = digest
    return out


SIZES = (160, 112, 203)


@pytest.fixture(scope="module")
def pinned():
    return pinned_digests()


def test_pinned_file_covers_the_whole_sample(pinned):
    assert len(pinned) == len(SIZES) * len(SAMPLE) + 2 * len(SAMPLE[::3])
    assert {k for kind, _, k in pinned if kind == "render"} == set(range(len(SAMPLE)))


@pytest.mark.parametrize("size", SIZES)
def test_render_is_byte_identical_to_the_reference(pinned, size):
    for k, (face, nz) in enumerate(SAMPLE):
        image, points = current.render(face, nz, size)
        assert image.dtype == np.uint8 and image.shape == (size, size, 3)
        assert points.dtype == np.float32 and points.shape == (5, 2)
        assert _digest(image, points) == pinned[("render", size, k)], (k, size, _paths(face, nz))


def test_aligned_crops_and_landmarks_are_byte_identical_to_the_reference(pinned):
    for k, (face, nz) in enumerate(SAMPLE):
        if k % 3 == 0:
            assert _digest(current.render_aligned(face, nz)) == pinned[("aligned", 112, k)], k
            assert _digest(current.landmarks(face, nz)) == pinned[("landmarks", 0, k)], k


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    PINNED.write_text("".join(f"{kind} {size} {k} {d}\n" for (kind, size, k), d in current_digests().items()))
