"""Kind ``pairs``: 10-fold pair verification (LFW, CFP-FP/FF, AgeDB-30, CALFW, CPLFW, VGG2-FP, the LFW family).

Accuracy by the 10-fold rule (``rules.kfold``), ROC, AUC, EER and TAR@FAR from the cosine scores of all
pairs (``rules.tar_at_far``). Intervals: a pair bootstrap of the held-out decisions (accuracy) and of the
scores (TAR@FAR); paired tests: exact McNemar (accuracy) and a paired bootstrap (TAR@FAR).
"""

from __future__ import annotations

from dataclasses import dataclass

from facebench.kinds.base import Kind, common
from facebench.schema import choice


@dataclass(frozen=True)
class PairOptions:
    """``dialect``: the pair list's dialect (reader ``pair_list``; ``auto`` detects it); ``ext``: the image
    file suffix (else probed)."""

    dialect: str = "auto"
    ext: str | None = None

    def check(self, where: str) -> None:
        choice(self.dialect, ("auto", *DIALECTS), f"{where} dialect")


#: The dialect names of `facebench.io.pairlists.PAIR_DIALECTS` (named here so that loading the specs does
#: not import the readers and numpy; a test keeps the two equal).
DIALECTS = ("lfw", "lfw_noheader", "consecutive", "path_path_label", "label_path_path")


#: The metrics of a 10-fold pair set, with their statistics (also those of ``folder``).
PAIR_METRICS = (
    common("accuracy", interval="kfold_accuracy", paired_test="kfold_mcnemar"),
    common("tar_at_far", interval="tar_bootstrap", paired_test="tar_paired_bootstrap"),
)

KIND = Kind(
    name="pairs",
    title="10-fold pair verification",
    evaluator="facebench.evaluate.pairs:run_benchmark",
    readers=("binpack", "lfw_pairs", "pair_list", "mfr2", "calfw_pairs", "cplfw_pairs", "cfp_fp", "cfp_ff",
             "agedb_mat"),
    options=PairOptions,
    metrics=PAIR_METRICS,
    figures=("roc", "det", "folds"),
    published_metrics=("accuracy", "tar_at_far"),
    published_rule_keys=("kfold",),
    pair_data="facebench.io.pairsets:read_pair_set",
    drops_unenrolled=True,
)
