"""The demo renderer draws byte for byte what the frozen reference renderer (commit 843f183,
``bench/_render_reference.py``) draws: every demo image, the committed demo report and the golden digest of
``test_demo_render.py`` rest on these pixels. The sample is drawn from the suite's own parameter streams
and chosen to cover every drawing path (each occluder kind, glasses on and off, each beard, hair style,
hairline and nose style, marks, clutter, downscale, blur, each branch of the light), at several sizes."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facebench.demo import render as current
from facebench.demo.params import BEARDS, GLASSES, HAIR_STYLES, HAIRLINES, NOSE_STYLES, OCCLUDERS, Nuisance
from facebench.demo.params import identity_params, image_nuisance
from facebench.demo.suite import DEMO_SEED

REFERENCE = Path(__file__).resolve().parents[1] / "bench" / "_render_reference.py"


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("facebench_render_reference_test", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


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


@pytest.mark.parametrize("size", [160, 112, 203])
def test_render_is_byte_identical_to_the_reference(reference, size):
    for k, (face, nz) in enumerate(SAMPLE):
        want = reference.render(face, nz, size)
        got = current.render(face, nz, size)
        assert got[0].dtype == want[0].dtype and got[0].shape == want[0].shape
        assert got[1].dtype == want[1].dtype and got[1].shape == want[1].shape
        assert _digest(*got) == _digest(*want), (k, size, _paths(face, nz))


def test_aligned_crops_and_landmarks_are_byte_identical_to_the_reference(reference):
    for face, nz in SAMPLE[::3]:
        assert _digest(current.render_aligned(face, nz)) == _digest(reference.render_aligned(face, nz))
        assert _digest(current.landmarks(face, nz)) == _digest(reference.landmarks(face, nz))
