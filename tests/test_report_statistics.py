"""Intervals and paired tests of the report, on runs whose truth is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facebench.metrics.kfold import kfold_indices
from facebench.metrics.roc import roc_curve, tar_at_far
from facebench.report.comparison import compare
from facebench.report.runs import Run
from facebench.report.statistics import Interval, PairedTest, StatsSettings, Unavailable, intervals_for, paired_tests
from facebench.report.tables import NS_MARK
from tests._results import document

INPUTS = {"lfw.bin": "ab" * 32}


def pair_run(
    label: str, correct: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None, inputs: dict | None = None
) -> Run:
    """An in-memory run of a 10-fold pair benchmark: held-out decisions ``correct``, optional scores."""
    folds = kfold_indices(correct.size, 10)
    fold_acc = [np.count_nonzero(correct[f]) / f.size for f in folds]
    metrics = {"accuracy": float(np.mean(fold_acc)), "fold_accuracies": fold_acc}
    arrays = {"correct": correct, "labels": labels}
    if scores is not None:
        arrays["scores"] = scores
        points = tar_at_far(roc_curve(labels, scores), [1e-2, 1e-1], "nearest")
        metrics["tar_at_far"] = {"1e-02": points[1e-2].tar, "1e-01": points[1e-1].tar}
    entry = {
        "title": "LFW",
        "kind": "pairs",
        "metrics": metrics,
        "columns": {"accuracy": "LFW"},
        "rules": {"kfold": "insightface", "tar_at_far": "nearest", "n_folds": 10},
        "inputs": inputs or INPUTS,
    }
    return Run(label, Path("."), document({"lfw": entry}), {"lfw": arrays})


def test_accuracy_interval_covers_the_true_accuracy_at_the_stated_rate() -> None:
    """Held-out decisions right with probability 0.9 (the true accuracy), 600 pairs: 200 data sets, 95%
    intervals: coverage within 3.5 standard errors of 0.95."""
    rng = np.random.default_rng(11)
    labels = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    hits, reps = 0, 200
    for rep in range(reps):
        run = pair_run("a", rng.random(600) < 0.9, labels)
        interval = intervals_for(run, "lfw", ["accuracy"], StatsSettings(n_boot=150, seed=rep))["accuracy"]
        assert isinstance(interval, Interval)
        assert interval.estimate == run.document.benchmarks["lfw"].value("accuracy")
        hits += interval.low <= 0.9 <= interval.high
    coverage = hits / reps
    assert 0.95 - 3.5 * np.sqrt(0.95 * 0.05 / reps) <= coverage <= 0.995, coverage


def test_unequal_folds_still_reproduce_the_reported_mean() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(607) < 0.5
    run = pair_run("a", rng.random(607) < 0.8, labels)  # folds of 61 and 60 pairs
    interval = intervals_for(run, "lfw", ["accuracy"], StatsSettings(n_boot=50))["accuracy"]
    assert isinstance(interval, Interval) and "10-fold held-out decisions" in interval.method


def test_mcnemar_rejects_a_planted_difference_and_keeps_an_absent_one() -> None:
    rng = np.random.default_rng(5)
    labels = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    correct_a = rng.random(labels.size) < 0.95
    right = np.flatnonzero(correct_a)
    wrong = np.flatnonzero(~correct_a)
    planted = correct_a.copy()
    planted[rng.choice(right, 40, replace=False)] = False  # B is wrong on 40 pairs A gets right
    absent = correct_a.copy()
    absent[rng.choice(right, 12, replace=False)] = False  # 12 right -> wrong, 10 wrong -> right: B is 2 pairs
    absent[rng.choice(wrong, 10, replace=False)] = True  # behind, a difference the data cannot support
    a = pair_run("A", correct_a, labels)
    settings = StatsSettings(n_boot=50)
    t_planted = paired_tests(a, pair_run("B", planted, labels), "lfw", ["accuracy"], settings)["accuracy"]
    t_absent = paired_tests(a, pair_run("B", absent, labels), "lfw", ["accuracy"], settings)["accuracy"]
    assert isinstance(t_planted, PairedTest) and t_planted.significant and t_planted.p_value < 1e-6
    assert t_planted.statistic == "40 right only in A, 0 only in B"
    assert isinstance(t_absent, PairedTest) and not t_absent.significant and t_absent.p_value > 0.8
    # and in the table: only the absent difference is marked as not significant
    for runs, marked in (([a, pair_run("B", planted, labels)], False), ([a, pair_run("B", absent, labels)], True)):
        table = compare(runs, settings=settings, gallery=0).table
        assert (NS_MARK in table.rows[1].cells[0].marks) is marked
        assert NS_MARK not in table.rows[0].cells[0].marks


def test_mcnemar_size_under_no_difference() -> None:
    """Two classifiers of equal accuracy disagreeing at random: rejected at most at the nominal rate."""
    rng = np.random.default_rng(9)
    labels = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    rejections = 0
    for _ in range(300):
        truth = rng.random(labels.size) < 0.9
        a, b = truth.copy(), truth.copy()
        a[rng.random(labels.size) < 0.05] ^= True
        b[rng.random(labels.size) < 0.05] ^= True
        t = paired_tests(
            pair_run("A", a, labels), pair_run("B", b, labels), "lfw", ["accuracy"], StatsSettings(n_boot=1)
        )
        rejections += t["accuracy"].significant  # type: ignore[union-attr]
    assert rejections / 300 <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300)


def test_tar_intervals_and_tests_read_the_run_rule() -> None:
    rng = np.random.default_rng(2)
    labels = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    scores_a = np.where(labels, rng.normal(2.5, 1, labels.size), rng.normal(0, 1, labels.size))
    scores_b = scores_a - 0.8 * labels
    a = pair_run("A", np.ones(labels.size, bool), labels, scores_a)
    b = pair_run("B", np.ones(labels.size, bool), labels, scores_b)
    settings = StatsSettings(n_boot=200, seed=4)
    found = intervals_for(a, "lfw", ["tar_at_far.1e-02", "tar_at_far.1e-01"], settings)
    for metric in ("tar_at_far.1e-02", "tar_at_far.1e-01"):
        it = found[metric]
        assert isinstance(it, Interval) and it.low <= it.estimate <= it.high
        assert it.estimate == a.document.benchmarks["lfw"].value(metric)
        assert "pair bootstrap" in it.method and "rule nearest" in it.method
    test = paired_tests(a, b, "lfw", ["tar_at_far.1e-02"], settings)["tar_at_far.1e-02"]
    assert isinstance(test, PairedTest) and test.significant and test.low > 0
    # a run with another read-off rule is not tested against this one
    b.document.benchmarks["lfw"].rules["tar_at_far"] = "le"
    assert (
        "different TAR@FAR rules"
        in paired_tests(a, b, "lfw", ["tar_at_far.1e-02"], settings)["tar_at_far.1e-02"].reason
    )


def test_runs_of_different_inputs_are_never_paired() -> None:
    labels = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    a = pair_run("A", labels.copy(), labels)
    b = pair_run("B", labels.copy(), labels, inputs={"lfw.bin": "cd" * 32})
    result = paired_tests(a, b, "lfw", ["accuracy"], StatsSettings(n_boot=10))["accuracy"]
    assert isinstance(result, Unavailable) and "different input files" in result.reason


def test_missing_arrays_give_reasons_not_numbers() -> None:
    labels = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    run = pair_run("A", labels.copy(), labels)
    del run._arrays["lfw"]["correct"]
    found = intervals_for(run, "lfw", ["accuracy", "tar_at_far.1e-02"], StatsSettings(n_boot=10))
    assert "no held-out decisions" in found["accuracy"].reason
    assert "no per-pair scores" in found["tar_at_far.1e-02"].reason


def ijb_runs(seed: int = 0) -> tuple[Run, Run]:
    """Two IJB 1:1 + 1:N runs as the evaluators write them; the 1:1 arrays carry template ids."""
    rng = np.random.default_rng(seed)
    t1, t2 = rng.integers(0, 40, 4000), rng.integers(40, 200, 4000)
    subject = np.arange(200) % 23
    labels = subject[t1] == subject[t2]
    runs = []
    for k in range(2):
        scores = np.where(labels, rng.normal(2.0 + 0.5 * k, 1, labels.size), rng.normal(0, 1, labels.size))
        points = tar_at_far(roc_curve(labels, scores), [1e-3, 1e-2], "nearest")
        ijbc = {
            "title": "IJB-C 1:1",
            "kind": "ijb_1to1",
            "inputs": {"pairs.txt": "00" * 32},
            "rules": {"tar_at_far": "nearest"},
            "columns": {"tar_at_far.1e-03": "IJB-C TAR@1e-3"},
            "metrics": {"tar_at_far": {"1e-03": points[1e-3].tar, "1e-02": points[1e-2].tar}},
        }
        galleries, arrays_1n, rank1 = {}, {}, []
        for g in ("G1", "G2"):
            ranks = rng.integers(1, 4, 300) if k == 0 else np.where(rng.random(300) < 0.8, 1, 2)
            mates = rng.normal(0.6, 0.1, 300)
            non = rng.normal(0.2, 0.1, 500)
            # 800 probe templates: 0-299 mated in G1, 300-599 in G2, 600-799 in neither
            probe = np.arange(800)
            mated = (probe < 300) if g == "G1" else (probe >= 300) & (probe < 600)
            arrays_1n.update({f"{g}_mate_ranks": ranks, f"{g}_mate_scores": mates, f"{g}_nonmated_scores": non,
                              f"{g}_mated": mated})
            galleries[g] = {"rank1": float(np.mean(ranks == 1))}
            rank1.append(galleries[g]["rank1"])
        tpir = []
        for g in ("G1", "G2"):
            non = np.sort(arrays_1n[f"{g}_nonmated_scores"])
            from facebench.metrics.roc import threshold_at_far

            t = threshold_at_far(non, 1e-1)
            hit = (arrays_1n[f"{g}_mate_ranks"] == 1) & (arrays_1n[f"{g}_mate_scores"] >= t)
            tpir.append(float(np.count_nonzero(hit) / hit.size))
        ijbc_1n = {
            "title": "IJB-C 1:N",
            "kind": "ijb_1n",
            "inputs": {"g1.csv": "11" * 32},
            "rules": {"ijb_1n": "standard"},
            "columns": {"rank1": "IJB-C Rank-1"},
            "metrics": {
                "rank1": float(np.mean(rank1)),
                "tpir_at_fpir": {"1e-01": float(np.mean(tpir))},
                "per_gallery": galleries,
            },
        }
        runs.append(
            Run(
                f"ijb{k}",
                Path("."),
                document({"ijbc": ijbc, "ijbc_1n": ijbc_1n}),
                {"ijbc": {"scores": scores, "labels": labels, "template1": t1, "template2": t2}, "ijbc_1n": arrays_1n},
            )
        )
    return runs[0], runs[1]


def test_ijb_intervals_use_templates_and_searches() -> None:
    a, b = ijb_runs()
    settings = StatsSettings(n_boot=100, seed=1)
    tar = intervals_for(a, "ijbc", ["tar_at_far.1e-03"], settings)["tar_at_far.1e-03"]
    assert isinstance(tar, Interval) and tar.method.startswith("template bootstrap: 200 templates")
    found = intervals_for(a, "ijbc_1n", ["rank1", "tpir_at_fpir.1e-01"], settings)
    for metric in ("rank1", "tpir_at_fpir.1e-01"):
        assert isinstance(found[metric], Interval), found[metric]
        assert found[metric].low <= found[metric].estimate <= found[metric].high
    assert found["rank1"].method.startswith("probe-template bootstrap: 800 probe templates")
    # the joint draw, written out: one draw of the 800 probes per resample, each gallery's mated hits among them
    arrays = a._arrays["ijbc_1n"]
    rng = np.random.default_rng(settings.seed)
    samples = []
    for _ in range(settings.n_boot):
        drawn = rng.integers(0, 800, 800)
        rates = []
        for g in ("G1", "G2"):
            hits_by_probe = np.full(800, -1)
            hits_by_probe[arrays[f"{g}_mated"]] = arrays[f"{g}_mate_ranks"] == 1
            chosen = hits_by_probe[drawn]
            rates.append(np.mean(chosen[chosen >= 0]))
        samples.append(np.mean(rates))
    assert (found["rank1"].low, found["rank1"].high) == tuple(np.quantile(samples, [0.025, 0.975]))
    tests = paired_tests(a, b, "ijbc_1n", ["rank1", "tpir_at_fpir.1e-01"], settings)
    assert tests["rank1"].significant and "McNemar" in tests["rank1"].test  # 1/3 vs 0.8 rank-1
    assert isinstance(tests["tpir_at_fpir.1e-01"], PairedTest)
    tar_test = paired_tests(a, b, "ijbc", ["tar_at_far.1e-03"], settings)["tar_at_far.1e-03"]
    assert isinstance(tar_test, PairedTest) and "templates" in tar_test.test


def test_ijb_without_scores_shows_the_runs_clopper_pearson_interval() -> None:
    entry = {
        "kind": "ijb_1to1",
        "rules": {"tar_at_far": "nearest"},
        "metrics": {
            "tar_at_far": {"1e-04": 0.9},
            "operating_points": {"1e-04": {"tar": 0.9, "tar_ci95": [0.85, 0.94]}},
        },
    }
    run = Run("r", Path("."), document({"ijbc": entry}), {"ijbc": {}})
    it = intervals_for(run, "ijbc", ["tar_at_far.1e-04"], StatsSettings(n_boot=10))["tar_at_far.1e-04"]
    assert isinstance(it, Interval) and (it.low, it.high, it.level) == (0.85, 0.94, 0.95)
    assert it.method.startswith("Clopper-Pearson 95%") and it.n_boot == 0


@pytest.mark.parametrize("bad", [0, -3])
def test_settings_are_checked(bad: int) -> None:
    with pytest.raises(ValueError, match="n_boot"):
        StatsSettings(n_boot=bad)
    with pytest.raises(ValueError, match="alpha"):
        StatsSettings(alpha=1.5)


def megaface_run(label: str, hits: np.ndarray, identity: np.ndarray, rules: dict | None = None,
                 accepted: np.ndarray | None = None, pair_identity: np.ndarray | None = None) -> Run:
    """A MegaFace run as the evaluator writes it: rank-1 hit of each trial at one size, trial identities,
    and (when given) each genuine pair's acceptance at the TAR@1e-6 threshold with the pair's identity."""
    entry = {
        "title": "MegaFace",
        "kind": "megaface",
        "inputs": {"facescrub_features_list.json": "22" * 32},
        "rules": rules or {"noise": "insightface", "tie_rule": ">="},
        "columns": {"rank1.1000000": "MegaFace Id@1M"},
        "metrics": {"rank1": {"1000000": float(hits.mean())}, "tar_at_far": {"1e-06": 0.5}},
    }
    arrays = {"sizes": np.array([1000000]), "rank1_hits": hits[None, :], "trial_identity": identity}
    if accepted is not None:
        entry["metrics"]["tar_at_far"]["1e-06"] = float(accepted.mean())
        arrays.update(genuine_accepted=accepted, genuine_identity=pair_identity)
    return Run(label, Path("."), document({"megaface": entry}), {"megaface": arrays})


def megaface_trials(rng: np.random.Generator, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """M(M-1) trials per identity (M = 4..12 images), each a rank-1 hit with the identity's probability."""
    images = rng.integers(4, 13, p.size)
    identity = np.repeat(np.arange(p.size), images * (images - 1)).astype(np.int32)
    return rng.random(identity.size) < p[identity], identity


def test_megaface_rank1_interval_resamples_identities_and_covers_the_truth() -> None:
    """Identities differ (hit probability ~ Beta with mean 0.9), trials of one identity share it: the identity
    bootstrap's 95% interval covers 0.9 at the stated rate over 200 data sets of 80 identities."""
    from facebench.metrics.stats import bootstrap_ci

    rng = np.random.default_rng(5)
    covered, covered_by_trials, reps = 0, 0, 200
    for rep in range(reps):
        hits, identity = megaface_trials(rng, rng.beta(9, 1, 80))
        run = megaface_run("a", hits, identity)
        it = intervals_for(run, "megaface", ["rank1.1000000"], StatsSettings(n_boot=150, seed=rep))["rank1.1000000"]
        assert isinstance(it, Interval) and it.estimate == hits.mean()
        covered += it.low <= 0.9 <= it.high
        # the same data resampled trial by trial (as if trials were independent)
        naive = bootstrap_ci(lambda idx: hits[idx].mean(), np.arange(hits.size), n_boot=150, seed=rep)
        covered_by_trials += naive.low <= 0.9 <= naive.high
    assert it.method.startswith("identity bootstrap: 80 FaceScrub identities")
    coverage = covered / reps
    assert 0.95 - 3.5 * np.sqrt(0.95 * 0.05 / reps) <= coverage <= 0.995, coverage
    assert covered_by_trials / reps < 0.6, covered_by_trials / reps  # far too narrow


def test_megaface_paired_test_rejects_a_planted_difference_and_keeps_an_absent_one() -> None:
    rng = np.random.default_rng(8)
    p = rng.beta(9, 1, 80)
    hits_a, identity = megaface_trials(rng, p)
    same = rng.random(identity.size) < p[identity]  # the same model, other draws
    worse = rng.random(identity.size) < np.clip(p[identity] - 0.1, 0, 1)
    settings = StatsSettings(n_boot=400, seed=2)
    a = megaface_run("a", hits_a, identity)
    absent = paired_tests(a, megaface_run("same", same, identity), "megaface", ["rank1.1000000"], settings)
    planted = paired_tests(a, megaface_run("worse", worse, identity), "megaface", ["rank1.1000000"], settings)
    assert isinstance(absent["rank1.1000000"], PairedTest) and not absent["rank1.1000000"].significant
    test = planted["rank1.1000000"]
    assert isinstance(test, PairedTest) and test.significant and "identities" in test.test
    assert test.low <= test.difference <= test.high
    # other trials, or another noise rule: never paired
    other = megaface_run("other", hits_a, np.roll(identity, 1))
    assert "trials differ" in paired_tests(a, other, "megaface", ["rank1.1000000"], settings)["rank1.1000000"].reason
    facexzoo = megaface_run("fx", same, identity, {"noise": "facexzoo", "tie_rule": ">="})
    assert "noise" in paired_tests(a, facexzoo, "megaface", ["rank1.1000000"], settings)["rank1.1000000"].reason
    # a run saved without per-item outcomes says so
    tar = intervals_for(a, "megaface", ["tar_at_far.1e-06"], settings)["tar_at_far.1e-06"]
    assert isinstance(tar, Unavailable) and "no per-pair verification outcomes" in tar.reason


def test_megaface_tar_interval_resamples_identities_at_the_runs_threshold() -> None:
    rng = np.random.default_rng(9)
    hits, trial_identity = megaface_trials(rng, rng.beta(9, 1, 80))
    accepted, identity = megaface_trials(rng, rng.beta(18, 2, 80))
    run = megaface_run("a", hits, trial_identity, accepted=accepted, pair_identity=identity)
    it = intervals_for(run, "megaface", ["tar_at_far.1e-06"], StatsSettings(n_boot=300, seed=4))["tar_at_far.1e-06"]
    assert isinstance(it, Interval) and it.estimate == accepted.mean() and it.low < it.estimate < it.high
    assert it.method.startswith("identity bootstrap: 80 FaceScrub identities") and "threshold fixed" in it.method
    # exactly the cluster bootstrap of the acceptances by identity
    from facebench.metrics.stats import bootstrap_ci

    direct = bootstrap_ci(lambda idx: accepted[idx].mean(), identity, n_boot=300, seed=4)
    assert (it.low, it.high) == (direct.low, direct.high)
