"""TPIR@FPIR on IJB-C-shaped synthetic sets: two disjoint galleries (G1, G2) searched by one mixed probe set,
each rule of PROTOCOLS 3 equal to a written-out loop of it, per gallery and for the mean."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.metrics.identification import TPIR_RULES, dir_fpir_curve, open_set_identification, tpir_at_fpir

FPIRS = (1e-2, 1e-1)


def _ijbc_shaped(seed: int, decimals: int | None):
    """G1 and G2 of 120 subjects each (disjoint, one template per subject, as IJB-C's 1,772 / 1,759), 1,500
    mixed probes: 600 of G1's subjects, 600 of G2's, 300 enrolled in neither."""
    rng = np.random.default_rng(seed)
    g1, g2 = np.arange(120), 1000 + np.arange(120)
    probes = np.r_[rng.choice(g1, 600), rng.choice(g2, 600), 5000 + np.arange(300)]
    dim = 16
    centres = {s: rng.standard_normal(dim) for s in np.r_[g1, g2, probes]}
    def feats(subjects, noise):
        x = np.array([centres[s] + noise * rng.standard_normal(dim) for s in subjects])
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    p = feats(probes, 1.1)
    galleries = {"G1": (g1, feats(g1, 0.6)), "G2": (g2, feats(g2, 0.6))}
    scores = {name: p @ f.T for name, (_, f) in galleries.items()}
    if decimals is not None:
        scores = {k: np.round(v, decimals) for k, v in scores.items()}
    return probes, {name: (s, scores[name]) for name, (s, _) in galleries.items()}


def _loop(scores, probes, gallery, rule, fpir):
    """The rule written out, one probe at a time (PROTOCOLS 3)."""
    mates, rank1, nonmated = [], [], []
    for i, subject in enumerate(probes):
        row = scores[i]
        if subject in set(gallery.tolist()):
            j = int(np.flatnonzero(gallery == subject)[0])
            mate = row[j]
            others = np.delete(row, j)
            mates.append(mate)
            rank1.append(bool(np.all(others < mate)))  # strictly above every non-mate
        else:
            nonmated.append(row.max())
    n = len(nonmated)
    if rule == "insightface":
        k = max(int(n * fpir), 1)
        t = sorted(nonmated, reverse=True)[k - 1]
        hits = sum(1 for m, r in zip(mates, rank1) if r and m > t)
    elif rule == "ge":
        t = None
        for v in sorted(set(nonmated)):
            if sum(x >= v for x in nonmated) / n <= fpir:
                t = v
                break
        t = np.nextafter(max(nonmated), np.inf) if t is None else t
        hits = sum(1 for m, r in zip(mates, rank1) if r and m >= t)
    else:
        hits = 0
        for v in sorted(set(nonmated) | set(mates)) + [np.inf]:
            if sum(x >= v for x in nonmated) / n <= fpir:
                hits = max(hits, sum(1 for m, r in zip(mates, rank1) if r and m >= v))
    return hits / len(mates)


@pytest.mark.parametrize("decimals", [None, 2])
@pytest.mark.parametrize("rule", TPIR_RULES)
def test_each_rule_equals_its_loop_per_gallery_and_mean(rule, decimals) -> None:
    probes, galleries = _ijbc_shaped(3, decimals)
    per = {}
    for name, (subjects, scores) in galleries.items():
        r = open_set_identification(scores, probes, subjects, ranks=(1,), fpirs=FPIRS, tpir_rule=rule)
        assert r["n_nonmated"] == 900
        per[name] = r["tpir"]
        for f in FPIRS:
            assert r["tpir"][f] == _loop(scores, probes, subjects, rule, f), (name, f)
    for f in FPIRS:
        loops = [_loop(s, probes, g, rule, f) for g, s in galleries.values()]
        assert (per["G1"][f] + per["G2"][f]) / 2 == sum(loops) / 2


def test_rules_differ_where_mates_sit_at_or_between_the_thresholds() -> None:
    """Ten non-mated best scores 0.9, 0.8, ..., 0.0 and FPIR 0.2 (c = k = 2): insightface accepts > 0.8,
    ge >= 0.8, best > 0.7; mates at 0.95, 0.8 and 0.75 (all rank 1) tell the three apart."""
    nonmated = np.round(np.arange(9, -1, -1) / 10, 1)
    mates = np.array([0.95, 0.8, 0.75])
    got = {rule: tpir_at_fpir(mates, np.ones(3, int), nonmated, 0.2, rule) for rule in TPIR_RULES}
    assert {r: p.positives_accepted for r, p in got.items()} == {"insightface": 1, "ge": 2, "best": 3}
    assert {r: (p.threshold, p.comparison) for r, p in got.items()} == {
        "insightface": (0.8, ">"), "ge": (0.8, ">="), "best": (0.7, ">")
    }
    assert {r: p.negatives_accepted for r, p in got.items()} == {"insightface": 1, "ge": 2, "best": 2}


def test_dir_fpir_curve_brute_force_and_the_best_rule_reads_it() -> None:
    rng = np.random.default_rng(8)
    mates = np.round(rng.normal(0.6, 0.2, 200), 2)
    ranks = np.where(rng.random(200) < 0.85, 1, 2)
    nonmated = np.round(rng.normal(0.3, 0.15, 300), 2)
    curve = dir_fpir_curve(mates, ranks, nonmated)
    values = sorted(set(nonmated.tolist()), reverse=True) + [-np.inf]
    assert curve["thresholds"].tolist() == values
    for v, fpir, dir_ in zip(values, curve["fpir"], curve["dir"]):
        assert fpir == sum(x > v for x in nonmated) / 300
        assert dir_ == sum(1 for m, r in zip(mates, ranks) if r == 1 and m > v) / 200
    assert curve["fpir"][0] == 0 and curve["fpir"][-1] == 1 and curve["dir"][-1] == np.mean(ranks == 1)
    for f in (0.001, 0.01, 0.05, 0.1, 0.5):
        best = tpir_at_fpir(mates, ranks, nonmated, f, "best").positive_rate
        assert best == curve["dir"][curve["fpir"] <= f][-1]
