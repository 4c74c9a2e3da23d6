"""TinyFace's test layout (PROTOCOLS 7.4): ``tinyface/Testing_Set/{Probe,Gallery_Match,Gallery_Distractor}``.

Images are the files of each folder with an image suffix, in sorted name order. A probe's or a gallery
match's identity is the integer before the first ``_`` of its file name (``1_3.jpg`` is identity 1);
distractors are unlabelled. A Probe or Gallery_Match file name without that integer is an error naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import FacebenchError

PARTS = ("Probe", "Gallery_Match", "Gallery_Distractor")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: The published size of the distractor set.
KNOWN_DISTRACTORS = 153_428


@dataclass(frozen=True)
class TinyFaceSet:
    """Absolute image paths of the three parts and the identities of probes and matches."""

    probe: list[str]
    probe_labels: np.ndarray
    match: list[str]
    match_labels: np.ndarray
    distractor: list[str]


def list_images(folder: Path) -> list[str]:
    """The image files directly in ``folder``, sorted by name (absolute paths)."""
    if not folder.is_dir():
        raise FacebenchError(f"{folder}: missing folder (expected tinyface/Testing_Set/{{{','.join(PARTS)}}})")
    names = sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))
    return [str(folder.resolve() / n) for n in names]


def identity_of(path: str) -> int:
    """The integer before the first ``_`` of the file name."""
    head = os.path.basename(path).split("_", 1)[0]
    if not head.isdigit():
        raise FacebenchError(f"{path}: file name does not start with an integer identity followed by '_'")
    return int(head)


def read_tinyface(testing_set: str | Path) -> TinyFaceSet:
    """List ``Testing_Set`` (module rules)."""
    root = Path(testing_set)
    probe, match, distractor = (list_images(root / part) for part in PARTS)
    if not probe or not match:
        raise FacebenchError(f"{root}: Probe and Gallery_Match must hold images ({len(probe)} and {len(match)} found)")
    return TinyFaceSet(
        probe, np.array([identity_of(p) for p in probe], dtype=np.int64),
        match, np.array([identity_of(p) for p in match], dtype=np.int64),
        distractor,
    )
