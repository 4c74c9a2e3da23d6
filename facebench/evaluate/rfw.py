"""RFW (Racial Faces in-the-Wild): four pair sets, African, Asian, Caucasian and Indian (kind ``rfw``).

Read per subset from the original lists ``{Race}_pairs.txt`` (tab-separated LFW dialect without header,
``id i j`` / ``id1 i id2 j``; images ``<images>/<id>/<id>_%04d.jpg``; 10 folds by the list's layout,
`facebench.io.pairlists.layout_folds`) or from insightface-style packs ``{Race}_test.bin``.

Reported two ways:

- **As papers do** (TFace and the RFW paper): the 10-fold accuracy of each subset under ``--kfold-rule``
  (``subset_accuracy.<Race>``); ``accuracy`` = their mean, ``accuracy_std`` = their standard deviation with
  ddof=1 (TFace's ``np.std(..., ddof=1)``; the ddof is named in ``rules.subset_std``), ``ser_kfold`` =
  max error / min error over the four subsets (error = 1 - 10-fold accuracy).
- **As biometrics standards recommend**: the fairness engine (`facebench.evaluate.analyses`) with the
  built-in attribute ``race`` (the subset of each pair): one global threshold at ``--fairness-fmr`` over the
  impostor pairs of all four subsets, per-race FMR and FNMR at it, SER/STD/FDR/IR/GARBE, intervals by
  identity. RFW has no cross-race pairs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facebench.benchmarks import Benchmark
from facebench.errors import FacebenchError
from facebench.evaluate.analyses import pair_analyses
from facebench.evaluate.common import BenchmarkResult, RunContext
from facebench.evaluate.pairs import pair_set_checks, verification_metrics
from facebench.io.pairsets import PairData, list_data, pack_data
from facebench.io.pairlists import read_pair_list
from facebench.metrics.fairness import skewed_error_ratio

log = logging.getLogger(__name__)

RACES = ("African", "Asian", "Caucasian", "Indian")
SUBSET_STD_DDOF = 1


def read_subset(reader: str, files: dict[str, Path], race: str) -> PairData:
    """One subset's pairs: reader ``rfw_lists`` (roles ``<Race>_pairs``, ``<Race>_images``) or ``rfw_packs``
    (role ``<Race>``)."""
    if reader == "rfw_packs":
        return pack_data(files[race])
    if reader == "rfw_lists":
        pairs = read_pair_list(files[f"{race}_pairs"], files[f"{race}_images"], dialect="lfw_noheader")
        return list_data(pairs, {}, files[f"{race}_images"], "rfw_lists")
    raise FacebenchError(f"unknown RFW reader {reader!r}; known: rfw_lists, rfw_packs")


def run_rfw(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """Read the four subsets, embed each, 10-fold accuracy per subset, then the fairness engine over all."""
    reader, files = ctx.files(spec)
    warnings: list[str] = []
    inputs = ctx.hash_inputs(spec, files, warnings)
    n_folds = int(spec.counts.get("n_folds", 10))
    expected = spec.counts.get("n_pairs_per_subset")
    subsets: dict[str, Any] = {}
    features_all, issame_all, paths_all, ids_all, race_all = [], [], [], [], []
    arrays: dict[str, np.ndarray] = {}
    for race in RACES:
        data = read_subset(reader, files, race)
        inputs.update({f"{race}/{k}": v for k, v in data.inputs.items()})
        n = int(data.issame.size)
        if expected and n != expected:
            warnings.append(f"{spec.name} {race}: read {n} pairs, the official subset has {expected}")
        warnings += pair_set_checks(f"{spec.name} {race}", data, n_folds)
        features = ctx.features_for(spec, data.images, part=race)
        metrics, sub_arrays = verification_metrics(
            features, data.issame, ctx.settings.kfold_rule, ctx.settings.tar_rule, n_folds
        )
        subsets[race] = {"n_pairs": n, **metrics}
        arrays[f"{race}_scores"] = sub_arrays["scores"]
        arrays[f"{race}_labels"] = sub_arrays["labels"]
        arrays[f"{race}_correct"] = sub_arrays["correct"]
        features_all.append(np.asarray(features, dtype=np.float64))
        issame_all.append(data.issame)
        paths_all += list(data.images.paths) if data.images.paths is not None else [""] * len(data.images)
        ids_all += data.identities if data.identities is not None else [f"{race}#{i // 2}" for i in range(2 * n)]
        race_all += [race] * (2 * n)
    for w in warnings:
        log.warning(w)
    accs = np.array([subsets[r]["accuracy"] for r in RACES])
    features = np.concatenate(features_all)
    issame = np.concatenate(issame_all)
    analyses = pair_analyses(
        spec.name, ctx.settings.options, ctx.settings.tar_rule, features, issame, paths_all, ids_all,
        {"race": race_all},
    )
    arrays.update(scores=np.concatenate([arrays[f"{r}_scores"] for r in RACES]), labels=issame, **analyses.arrays)
    metrics: dict[str, Any] = {
        "accuracy": float(accs.mean()),
        "accuracy_std": float(np.std(accs, ddof=SUBSET_STD_DDOF)),
        "ser_kfold": skewed_error_ratio(1.0 - accs),
        "subset_accuracy": {r: float(subsets[r]["accuracy"]) for r in RACES},
        "subset_accuracy_std": {r: float(subsets[r]["accuracy_std"]) for r in RACES},
        **analyses.metrics,
    }
    rules = {
        "kfold": ctx.settings.kfold_rule,
        "tar_at_far": ctx.settings.tar_rule,
        "flip": ctx.profile.flip,
        "score": "cosine",
        "n_folds": n_folds,
        "subset_std": f"np.std over the 4 subset accuracies, ddof={SUBSET_STD_DDOF} (TFace)",
        "ser_kfold": "max(1 - accuracy) / min(1 - accuracy) over the 4 subsets' 10-fold accuracies",
        **analyses.rules,
    }
    for w in analyses.warnings:
        log.warning(w)
    columns = {f"subset_accuracy.{r}": f"RFW {r}" for r in RACES}
    columns.update({"accuracy": "RFW mean", "accuracy_std": "RFW std"})
    if "race" in analyses.extra.get("fairness", {}):
        fmr = analyses.extra["fairness"]["race"]["fmr_target"]
        columns.update({f"group_fnmr.race/{r}": f"RFW FNMR@{fmr:.0e} {r}" for r in RACES})
    columns.update(analyses.columns)
    return BenchmarkResult(
        metrics=metrics,
        rules=rules,
        inputs=inputs,
        counts={"n_pairs": int(issame.size), "subsets": {r: subsets[r]["n_pairs"] for r in RACES}},
        warnings=warnings + analyses.warnings,
        arrays=arrays,
        extra={"reader": reader, "subsets": subsets, **analyses.extra},
        columns=columns,
    )
