"""Verification and identification metrics: pure numpy/scipy/scikit-learn functions, arrays in, numbers out.

Nothing here imports the rest of facebench. Every function states its exact rule (threshold side, tie
handling, which reference implementation it reproduces) in its docstring, and every result names the
rule it used.

- :mod:`.operating`: the one threshold kernel at a target rate (comparison ``>=``/``>``), resolution.
- :mod:`.roc`: ROC curve, TAR@FAR read-off rules (``nearest``/``le``/``interp``), AUC, EER (ROC crossing and
  convex hull), DET points, FMR/FNMR at a threshold, FAR thresholds.
- :mod:`.kfold`: the 10-fold accuracy rules of insightface and FaceX-Zoo, VAL@FAR, fold balance.
- :mod:`.identification`: open-set 1:N (CMC, TPIR@FPIR by rule ``insightface``/``ge``/``best``, DIR-FPIR
  curve) and insightface's legacy 1:N numbers.
- :mod:`.stats`: cluster bootstrap, paired bootstrap, exact McNemar, Clopper-Pearson.
- :mod:`.alltoall`: TAR@FAR over every pair of N embeddings, streamed in tiles, thresholds found exactly.
- :mod:`.openset`: open-set searches streamed over gallery subjects (mate ranks, non-mated best scores).
- :mod:`.closedset`: image-level closed-set retrieval (TinyFace CMC and the protocol's mAP).
"""

from facebench.metrics.identification import (
    TPIR_RULES,
    cmc_curve,
    dir_fpir_curve,
    legacy_insightface_1n,
    open_set_identification,
    tpir_at_fpir,
    tpir_threshold,
)
from facebench.metrics.operating import RatePoint, allowed_count, operating_point, rate_threshold, resolvable
from facebench.metrics.kfold import (
    KFoldResult,
    ValFar,
    facexzoo_kfold,
    fold_balance,
    insightface_kfold,
    insightface_val_far,
    is_balanced,
    kfold_indices,
)
from facebench.metrics.roc import (
    DEFAULT_FAR_TARGETS,
    TAR_AT_FAR_RULES,
    OperatingPoint,
    RocCurve,
    auc,
    cos_to_sqeuclidean,
    det_curve,
    eer,
    eer_rocch,
    rates_at_threshold,
    roc_curve,
    sqeuclidean_to_cos,
    tar_at_far,
    threshold_at_far,
)
from facebench.metrics.stats import (
    BootstrapResult,
    McNemarResult,
    PairedBootstrapResult,
    bootstrap_ci,
    clopper_pearson,
    mcnemar,
    paired_bootstrap,
)

__all__ = [
    "DEFAULT_FAR_TARGETS",
    "TAR_AT_FAR_RULES",
    "TPIR_RULES",
    "RatePoint",
    "allowed_count",
    "det_curve",
    "dir_fpir_curve",
    "eer_rocch",
    "operating_point",
    "rate_threshold",
    "rates_at_threshold",
    "resolvable",
    "tpir_at_fpir",
    "tpir_threshold",
    "BootstrapResult",
    "KFoldResult",
    "McNemarResult",
    "OperatingPoint",
    "PairedBootstrapResult",
    "RocCurve",
    "ValFar",
    "auc",
    "bootstrap_ci",
    "clopper_pearson",
    "cmc_curve",
    "cos_to_sqeuclidean",
    "eer",
    "facexzoo_kfold",
    "fold_balance",
    "insightface_kfold",
    "insightface_val_far",
    "is_balanced",
    "kfold_indices",
    "legacy_insightface_1n",
    "mcnemar",
    "open_set_identification",
    "paired_bootstrap",
    "roc_curve",
    "sqeuclidean_to_cos",
    "tar_at_far",
    "threshold_at_far",
]
