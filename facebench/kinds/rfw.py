"""Kind ``rfw``: RFW, four pair sets (African, Asian, Caucasian, Indian) reported as papers do (mean, std,
SER of the 10-fold accuracies) and with one global threshold (per-race FMR/FNMR, FDR, IR, GARBE)."""

from __future__ import annotations

from facebench.kinds.base import Kind

KIND = Kind(
    name="rfw",
    title="RFW racial-bias pair verification",
    evaluator="facebench.evaluate.rfw:run_rfw",
    readers=("rfw_lists", "rfw_packs"),
)
