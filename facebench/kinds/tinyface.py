"""Kind ``tinyface``: TinyFace closed-set identification with distractors, CMC rank 1/5/20 and mAP."""

from __future__ import annotations

from facebench.kinds.base import Kind

KIND = Kind(
    name="tinyface",
    title="TinyFace identification",
    evaluator="facebench.evaluate.tinyface:run_tinyface",
    readers=("tinyface",),
)
