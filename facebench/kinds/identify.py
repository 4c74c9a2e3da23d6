"""Kind ``identify``: 1:N on your own gallery and probe lists or identity folder (``--benchmark
identify:PATH``): ranks, TPIR@FPIR (``rules.tpir_rule``), mAP."""

from __future__ import annotations

from facebench.kinds.base import Kind

KIND = Kind(
    name="identify",
    title="own 1:N identification",
    evaluator="facebench.evaluate.identify:run_identify",
    readers=("identify",),
)
