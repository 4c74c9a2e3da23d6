"""Synthetic pair-verification features in 10 balanced folds."""

from __future__ import annotations

import numpy as np


def pair_features(n_pairs: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """2N features of a pack in 10 balanced folds: same pairs share an identity vector."""
    rng = np.random.default_rng(seed)
    per = n_pairs // 20
    issame = np.tile(np.r_[np.ones(per, bool), np.zeros(per, bool)], 10)
    ident, other = rng.standard_normal((n_pairs, 32)), rng.standard_normal((n_pairs, 32))
    feats = np.empty((2 * n_pairs, 32))
    feats[0::2] = ident + noise * rng.standard_normal((n_pairs, 32))
    feats[1::2] = np.where(issame[:, None], ident, other) + noise * rng.standard_normal((n_pairs, 32))
    return feats, issame
