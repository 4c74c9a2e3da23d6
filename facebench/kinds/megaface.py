"""Kind ``megaface``: MegaFace challenge 1, rank-1 identification per distractor list size
(``rank1.<size>``) and TAR@FAR=1e-6; every number carries the noise rule, rank-1 also a strict tie rule.

Intervals and paired tests: a bootstrap of the FaceScrub identities.
"""

from __future__ import annotations

from dataclasses import dataclass

from facebench.errors import FacebenchError
from facebench.kinds.base import Kind, Metric, common

#: The distractor list sizes of the challenge (the keys of ``rank1``).
SIZES = ("10", "100", "1000", "10000", "100000", "1000000")
IDENTIFICATION_RULE = ("noise", "tie_rule")


@dataclass(frozen=True)
class MegafaceOptions:
    """``max_rank``: CMC ranks kept; ``roc_max_far``: the lowest FAR of the stored ROC; ``chunk_rows``:
    distractor rows scored at a time."""

    max_rank: int = 10
    roc_max_far: float = 1e-5
    chunk_rows: int = 2048

    def check(self, where: str) -> None:
        if self.max_rank < 1 or self.chunk_rows < 1 or not 0 < self.roc_max_far <= 1:
            raise FacebenchError(f"{where}: need max_rank >= 1, chunk_rows >= 1, 0 < roc_max_far <= 1")


KIND = Kind(
    name="megaface",
    title="MegaFace challenge 1",
    evaluator="facebench.evaluate.megaface:run_benchmark",
    readers=("devkit",),
    options=MegafaceOptions,
    metrics=(
        Metric("rank1", "rank-1 identification rate at a distractor list size", key="size", key_values=SIZES,
               rule_keys=IDENTIFICATION_RULE, interval="megaface_identities", paired_test="megaface_identities"),
        Metric("cmc", "identification rate by rank", key="size", rule_keys=IDENTIFICATION_RULE),
        common("tar_at_far", rule_keys=("tar_at_far", "noise"), interval="megaface_identities",
               paired_test="megaface_identities"),
    ),
    other_rule_keys=("noise",),
    figures=("roc", "det", "cmc_distractors"),
    roc_caption="verification ROC at the largest distractor list (stored down to FAR 1e-5 only)",
    published_metrics=("rank1", "tar_at_far"),
    published_rule_keys=("noise", "tie_rule", "tar_at_far"),
)
