"""Kind ``survface``: QMUL-SurvFace open-set watch list, ranks and TPIR / FNIR at FPIR (``rules.tpir_rule``)."""

from __future__ import annotations

from facebench.kinds.base import Kind

KIND = Kind(
    name="survface",
    title="QMUL-SurvFace watch-list identification",
    evaluator="facebench.evaluate.survface:run_survface",
    readers=("survface",),
)
