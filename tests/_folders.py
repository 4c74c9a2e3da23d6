"""Identity folders of synthetic face-sized images for tests that run the folder, pack, identify and
all-to-all paths."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facebench.evaluate.folder import list_folder


def make_folder(root: Path, sizes: list[int], seed: int = 0, size: int = 112) -> Path:
    """``root/id_XX/img_Y.png``: per identity a smooth random face-sized pattern, per image added noise."""
    rng = np.random.default_rng(seed)
    for k, n in enumerate(sizes):
        folder = root / f"id_{k:02d}"
        folder.mkdir(parents=True)
        base = cv2.resize(rng.integers(0, 256, (6, 6, 3)).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
        for j in range(n):
            noise = rng.integers(-25, 26, base.shape)
            cv2.imwrite(str(folder / f"img_{j}.png"), np.clip(base + noise, 0, 255).astype(np.uint8))
    return root


def folder_features(root: Path, seed: int = 0) -> np.ndarray:
    """Synthetic features, one row per listed image: identity centre plus noise."""
    listing = list_folder(root)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(listing.identities), 32))
    return (centres[listing.labels] + 0.7 * rng.standard_normal((len(listing.paths), 32))).astype(np.float32)
