"""Kind ``ijb_1to1``: IJB-B / IJB-C template verification, TAR@FAR (``rules.tar_at_far``).

Intervals: a template bootstrap of the saved per-pair scores (``--save-pair-scores``), else the run's
Clopper-Pearson interval; paired test: a paired template bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

from facebench.kinds.base import Kind, common


@dataclass(frozen=True)
class IjbOptions:
    """``prefix``: the file prefix of the meta files (``ijbb`` | ``ijbc``; default: the benchmark name up to
    its first ``_``, checked by the evaluator against the files)."""

    prefix: str | None = None


KIND = Kind(
    name="ijb_1to1",
    title="IJB 1:1 template verification",
    evaluator="facebench.evaluate.ijb:run_ijb_1to1",
    readers=("ijb_meta",),
    options=IjbOptions,
    metrics=(common("tar_at_far", interval="tar_bootstrap", paired_test="tar_paired_bootstrap"),),
    published_metrics=("tar_at_far",),
    published_rule_keys=("tar_at_far",),
)
