"""Kind ``ijb_1n``: IJB-B / IJB-C open-set 1:N per gallery and their mean; every number carries the 1:N rule
(``rules.ijb_1n``: standard | legacy), TPIR/FNIR also ``rules.tpir_rule``.

Intervals and paired tests (standard rule): a bootstrap of the probe templates (rank-1, TPIR@FPIR) and an
exact McNemar test of the pooled rank-1 hits.
"""

from __future__ import annotations

from dataclasses import dataclass

from facebench.kinds.base import Kind, Metric, common


@dataclass(frozen=True)
class Ijb1nOptions:
    """``prefix`` as ``ijb_1to1``; ``features_label``: the features' label when the 1:1 benchmark's image list
    is shared (``DIR/<label>.npy``)."""

    prefix: str | None = None
    features_label: str | None = None


RULE = ("ijb_1n",)

KIND = Kind(
    name="ijb_1n",
    title="IJB open-set 1:N identification",
    evaluator="facebench.evaluate.ijb:run_ijb_1n",
    readers=("ijb_1n",),
    options=Ijb1nOptions,
    metrics=(
        Metric("rank1", "rank-1 identification rate, mean over galleries", rule_keys=RULE,
               interval="ijb_rank1", paired_test="ijb_rank1_mcnemar"),
        Metric("rank5", "rank-5 identification rate", rule_keys=RULE),
        Metric("rank10", "rank-10 identification rate", rule_keys=RULE),
        common("tpir_at_fpir", rule_keys=(*RULE, "tpir_rule"), interval="ijb_tpir", paired_test="ijb_tpir_paired"),
        common("fnir_at_fpir", rule_keys=(*RULE, "tpir_rule")),
        Metric("per_gallery", "the same per gallery", key="field", rule_keys=RULE),
    ),
    other_rule_keys=RULE,
    figures=("roc", "det_galleries", "cmc_galleries"),
    published_metrics=("rank1", "rank5", "rank10", "tpir_at_fpir"),
    published_rule_keys=("ijb_1n", "tpir_rule"),
)
