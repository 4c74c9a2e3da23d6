"""Identity splits of the demo renderer: disjoint id ranges, so no training identity is ever benchmarked.

Rule: split number ``k`` of :data:`SPLIT_NAMES` owns the identity ids ``[k * SPLIT_CAPACITY,
(k + 1) * SPLIT_CAPACITY)``. A split's identities are taken from the start of its range, so the first
``n`` identities of a split never change when ``n`` grows, and two splits never share an id (the demo is
open set, like the real benchmarks). New splits are only ever appended to :data:`SPLIT_NAMES`, which keeps
every existing id where it is.

Intended use: ``train`` for the demo checkpoint, ``val`` for its held-out monitoring, ``verify`` and
``verify_hard`` for the 1:1 verification packs (``.bin``), ``ijb`` for IJB-style template sets,
``megaface_probe`` / ``megaface_distractor`` for the MegaFace-style 1:N layout.
"""

from __future__ import annotations

import numpy as np

SPLIT_NAMES: tuple[str, ...] = (
    "train",
    "val",
    "verify",
    "verify_hard",
    "ijb",
    "megaface_probe",
    "megaface_distractor",
)
"""The demo's identity splits, in id order (append only)."""

SPLIT_CAPACITY = 1_000_000
"""Identity ids per split."""


def split_range(name: str) -> range:
    """All identity ids that belong to split ``name``: ``range(k * SPLIT_CAPACITY, (k + 1) * SPLIT_CAPACITY)``."""
    if name not in SPLIT_NAMES:
        raise ValueError(f"unknown demo split {name!r}; the splits are {', '.join(SPLIT_NAMES)}")
    k = SPLIT_NAMES.index(name)
    return range(k * SPLIT_CAPACITY, (k + 1) * SPLIT_CAPACITY)


def split_identities(name: str, count: int) -> np.ndarray:
    """The first ``count`` identity ids of split ``name`` (int64, ascending)."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 0 <= count <= SPLIT_CAPACITY:
        raise ValueError(f"count must be an integer in [0, {SPLIT_CAPACITY}], got {count!r}")
    start = split_range(name).start
    return np.arange(start, start + int(count), dtype=np.int64)


def split_of(identity_id: int) -> str:
    """The split that identity ``identity_id`` belongs to."""
    k = int(identity_id) // SPLIT_CAPACITY
    if identity_id < 0 or k >= len(SPLIT_NAMES):
        raise ValueError(
            f"identity id {identity_id} is outside every demo split [0, {len(SPLIT_NAMES) * SPLIT_CAPACITY})"
        )
    return SPLIT_NAMES[k]
