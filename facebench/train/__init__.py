"""The bundled MV-Softmax trainer: heads, losses, training data, the loop, distributed training, export.

Public entry points: :func:`make_head` (the MV-Softmax head family), :func:`make_loss`, and
``facebench train --config FILE.toml`` (:func:`facebench.train.loop.train`).
"""

from facebench.train.heads import (
    HEADS,
    ClassShard,
    HeadSpec,
    MarginHead,
    make_head,
    make_spec,
)
from facebench.train.losses import (
    LOSSES,
    ClassificationLoss,
    cross_entropy_per_sample,
    make_loss,
)

__all__ = [
    "HEADS",
    "LOSSES",
    "ClassShard",
    "ClassificationLoss",
    "HeadSpec",
    "MarginHead",
    "cross_entropy_per_sample",
    "make_head",
    "make_loss",
    "make_spec",
]
