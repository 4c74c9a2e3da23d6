"""Fairness summaries against written-out loops over a small hand-made score set."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from facebench.metrics import fairness as mf


def _data():
    rng = np.random.default_rng(3)
    groups_a, groups_b, scores, issame = [], [], [], []
    for g, shift in (("A", 0.0), ("B", 0.04), ("C", -0.03)):
        for _ in range(40):  # genuine within group
            groups_a.append(g), groups_b.append(g), issame.append(True)
            scores.append(round(float(rng.normal(0.4 + shift, 0.15)), 3))
        for _ in range(200):  # impostors within group
            groups_a.append(g), groups_b.append(g), issame.append(False)
            scores.append(round(float(rng.normal(0.1 + shift, 0.12)), 3))
    for _ in range(60):  # cross-group impostors
        a, b = rng.choice(["A", "B", "C"], 2, replace=False)
        groups_a.append(str(a)), groups_b.append(str(b)), issame.append(False)
        scores.append(round(float(rng.normal(0.05, 0.1)), 3))
    return np.array(scores), np.array(issame), groups_a, groups_b


def test_rates_and_summaries_equal_written_out_loops():
    scores, issame, ga, gb = _data()
    labels, cross = mf.pair_groups(ga, gb)
    t = mf.global_threshold(scores, issame, 0.05)
    # the threshold: the smallest impostor value whose accepted share is <= 5%
    imp = sorted(s for s, y in zip(scores, issame) if not y)
    expected_t = min(v for v in imp if sum(1 for x in imp if x >= v) / len(imp) <= 0.05)
    assert t == expected_t
    rows = {r.group: r for r in mf.group_rates(scores, issame, labels, cross, t)}
    assert [r for r in rows if "|" not in r] == ["A", "B", "C"]
    fmr, fnmr, acc = {}, {}, {}
    for g in "ABC":
        gen = [s for s, y, a, b in zip(scores, issame, ga, gb) if a == b == g and y]
        imp_g = [s for s, y, a, b in zip(scores, issame, ga, gb) if a == b == g and not y]
        fnmr[g] = sum(1 for s in gen if s < t) / len(gen)
        fmr[g] = sum(1 for s in imp_g if s >= t) / len(imp_g)
        acc[g] = (sum(1 for s in gen if s >= t) + sum(1 for s in imp_g if s < t)) / (len(gen) + len(imp_g))
        assert rows[g].fmr == fmr[g] and rows[g].fnmr == fnmr[g] and rows[g].accuracy == pytest.approx(acc[g], abs=0)
    cross_imp = [s for s, y, a, b in zip(scores, issame, ga, gb) if a != b]
    assert sum(r.n_impostor for r in rows.values() if r.cross) == len(cross_imp) == 60
    assert sum(r.false_matches for r in rows.values() if r.cross) == sum(1 for s in cross_imp if s >= t)
    # summaries, written out
    errs = [1 - acc[g] for g in "ABC"]
    ser = max(errs) / min(errs)
    mean = sum(acc.values()) / 3
    std = math.sqrt(sum((a - mean) ** 2 for a in acc.values()) / 2)
    big_a = max(abs(fmr[i] - fmr[j]) for i, j in itertools.combinations("ABC", 2))
    big_b = max(abs(fnmr[i] - fnmr[j]) for i, j in itertools.combinations("ABC", 2))
    fdr = 1 - (0.5 * big_a + 0.5 * big_b)
    ir = (max(fmr.values()) / min(fmr.values())) ** 0.5 * (max(fnmr.values()) / min(fnmr.values())) ** 0.5

    def gini(x):
        n = len(x)
        return n / (n - 1) * sum(abs(a - b) for a in x for b in x) / (2 * n * n * (sum(x) / n))

    garbe = 0.5 * gini(list(fmr.values())) + 0.5 * gini(list(fnmr.values()))
    got = mf.summaries(list(rows.values()), alpha=0.5, ddof=1)
    assert got["ser"] == pytest.approx(ser, rel=1e-12)
    assert got["std"] == pytest.approx(std, rel=1e-12)
    assert got["fdr"] == pytest.approx(fdr, rel=1e-12)
    assert got["ir"] == pytest.approx(ir, rel=1e-12)
    assert got["garbe"] == pytest.approx(garbe, rel=1e-12)


def test_edge_values():
    assert mf.skewed_error_ratio([0.0, 0.0]) == 1.0
    assert mf.skewed_error_ratio([0.0, 0.1]) == math.inf
    assert math.isnan(mf.skewed_error_ratio([0.1]))
    assert mf.gini([0.0, 0.0]) == 0.0
    assert mf.inequity_rate([0.0, 0.01], [0.1, 0.1]) == math.inf
    assert mf.fairness_discrepancy_rate([0.01, 0.01], [0.2, 0.2]) == 1.0
    labels, cross = mf.pair_groups(["b", "a"], ["a", "a"])
    assert labels.tolist() == ["a|b", "a"] and cross.tolist() == [True, False]


def test_within_group_tar_and_bootstrap():
    scores, issame, ga, gb = _data()
    labels, cross = mf.pair_groups(ga, gb)
    tar = mf.within_group_tar(scores, issame, labels, 0.1, rule="le")
    for g in "ABC":
        gen = [s for s, y, a, b in zip(scores, issame, ga, gb) if a == b == g and y]
        imp = [s for s, y, a, b in zip(scores, issame, ga, gb) if a == b == g and not y]
        # highest TAR among thresholds (score values) whose FAR <= 0.1
        best = max(sum(1 for s in gen if s >= v) / len(gen) for v in sorted(set(gen + imp)) + [math.inf]
                   if sum(1 for s in imp if s >= v) / len(imp) <= 0.1)
        assert tar[g] == best
    assert math.isnan(next(v for k, v in tar.items() if "|" in k))  # cross rows have no genuine pairs
    ids = np.arange(scores.size) // 4  # 4 pairs per identity
    boot = mf.fairness_bootstrap(scores, issame, labels, cross, ids, 0.05, n_boot=50, seed=1)
    assert boot.n_clusters == scores.size // 4 and boot.n_boot == 50
    lo, hi = boot.intervals["A.fnmr"]
    assert 0 <= lo <= hi <= 1
    again = mf.fairness_bootstrap(scores, issame, labels, cross, ids, 0.05, n_boot=50, seed=1)
    assert again.intervals == boot.intervals
