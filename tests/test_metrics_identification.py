"""Open-set 1:N identification and insightface's legacy 1:N rule against per-probe loop references."""

from __future__ import annotations

import doctest

import heapq
import math

import numpy as np
import pytest

from facebench.metrics import identification as identification_mod
from facebench.metrics.identification import cmc_curve, legacy_insightface_1n, open_set_identification

FPIRS = (0.0, 0.005, 0.01, 0.05, 0.1, 0.3, 1.0)


def _search(seed: int, coarse: bool = False, dtype=np.float32):
    """40 gallery subjects (some with 2-3 templates), 200 mated and 100 non-mated probes."""
    rng = np.random.default_rng(seed)
    gallery = np.r_[np.arange(40), rng.choice(40, 20)]
    probes = np.r_[rng.choice(40, 200), 1000 + np.arange(100)]
    scores = rng.normal(0.1, 0.15, (probes.size, gallery.size))
    scores += 0.45 * (probes[:, None] == gallery[None, :]) * rng.random((probes.size, 1))
    if coarse:
        scores = np.round(scores, 2)
    return scores.astype(dtype), probes, gallery


def _open_set_reference(scores, probes, gallery, fpirs):
    ranks, mate_scores, nonmated = [], [], []
    for i, subject in enumerate(probes):
        best = {}
        for j, g in enumerate(gallery):
            best[g] = max(best.get(g, -np.inf), scores[i, j])
        if subject in best:
            mate = best[subject]
            ranks.append(1 + sum(1 for g, v in best.items() if g != subject and v >= mate))
            mate_scores.append(mate)
        else:
            nonmated.append(max(scores[i]))
    ranks, mate_scores, nonmated = np.array(ranks), np.array(mate_scores), np.array(nonmated, dtype=scores.dtype)
    thresholds, tpir, fpir = {}, {}, {}
    for target in fpirs:
        t = None
        for v in sorted(set(nonmated.tolist())):
            if np.sum(nonmated >= v) / nonmated.size <= target:
                t = v
                break
        if t is None:
            t = float(np.nextafter(nonmated.max(), np.inf))
        thresholds[target] = t
        fpir[target] = np.sum(nonmated >= t) / nonmated.size
        tpir[target] = np.sum((ranks == 1) & (mate_scores >= t)) / ranks.size
    return ranks, thresholds, tpir, fpir


@pytest.mark.parametrize("coarse", [False, True])
def test_open_set_equals_loop_reference(coarse):
    scores, probes, gallery = _search(1, coarse)
    result = open_set_identification(scores, probes, gallery, ranks=(1, 2, 5, 10), fpirs=FPIRS, tpir_rule="ge")
    ranks, thresholds, tpir, fpir = _open_set_reference(scores, probes, gallery, FPIRS)
    assert np.array_equal(result["mate_ranks"], ranks)
    assert result["rank_rates"] == {k: np.sum(ranks <= k) / ranks.size for k in (1, 2, 5, 10)}
    assert result["thresholds"] == thresholds and result["tpir"] == tpir and result["fpir"] == fpir
    assert (result["n_mated"], result["n_nonmated"]) == (200, 100)
    assert all(result["fpir"][t] <= t for t in FPIRS)
    assert result["fpir"][0.0] == 0.0  # threshold above the float32 maximum really accepts none


def test_open_set_hand_case_with_ties_and_several_templates():
    gallery = ["a", "b", "b", "c"]
    scores = [
        [0.5, 0.7, 0.6, 0.4],  # mate a at 0.5; subject b (best 0.7) above: rank 2, not 3
        [0.2, 0.9, 0.1, 0.3],  # mate b at 0.9 (best of its two templates): rank 1
        [0.6, 0.2, 0.3, 0.6],  # mate c at 0.6 tied with a: ties count against the mate -> rank 2
        [0.3, 0.8, 0.2, 0.1],  # non-mated (subject d), best 0.8
        [0.4, 0.1, 0.2, 0.35],  # non-mated, best 0.4
    ]
    r = open_set_identification(scores, ["a", "b", "c", "d", "e"], gallery, ranks=(1, 2), fpirs=(0.5, 0.0), tpir_rule="ge")
    assert r["mate_ranks"].tolist() == [2, 1, 2]
    assert r["rank_rates"] == {1: 1 / 3, 2: 1.0}
    assert r["mated"].tolist() == [True, True, True, False, False]
    # FPIR 0.5: lowest non-mated best score with share(>= t) <= 0.5 is 0.8 -> the rank-1 mate 0.9 passes
    assert r["thresholds"][0.5] == 0.8 and r["fpir"][0.5] == 0.5 and r["tpir"][0.5] == 1 / 3
    assert r["thresholds"][0.0] == np.nextafter(0.8, 1) and r["fpir"][0.0] == 0.0 and r["tpir"][0.0] == 1 / 3


def test_open_set_invariant_to_probe_and_gallery_order():
    scores, probes, gallery = _search(2, coarse=True)
    rng = np.random.default_rng(0)
    rows, cols = rng.permutation(probes.size), rng.permutation(gallery.size)
    a = open_set_identification(scores, probes, gallery, fpirs=FPIRS)
    b = open_set_identification(scores[rows][:, cols], probes[rows], gallery[cols], fpirs=FPIRS)
    for key in ("rank_rates", "tpir", "fpir", "thresholds", "n_mated", "n_nonmated"):
        assert a[key] == b[key]
    mated_rows = rows[a["mated"][rows]]  # mated probes in the permuted order
    position = np.cumsum(a["mated"]) - 1
    assert np.array_equal(b["mate_ranks"], a["mate_ranks"][position[mated_rows]])


def test_open_set_large_matrix_is_processed_in_chunks_identically():
    rng = np.random.default_rng(3)
    gallery = np.arange(3000)
    probes = np.r_[rng.choice(3000, 1500), -1 - np.arange(500)]
    scores = rng.normal(0, 1, (probes.size, gallery.size)).astype(np.float32)  # 6M cells: several chunks
    result = open_set_identification(scores, probes, gallery)
    mated = probes >= 0
    mate = scores[np.flatnonzero(mated), probes[mated]]
    expected_ranks = np.sum(scores[mated] >= mate[:, None], axis=1)
    assert np.array_equal(result["mate_ranks"], expected_ranks)
    assert np.array_equal(result["nonmated_scores"], scores[~mated].max(axis=1))


def test_open_set_degenerate_inputs():
    with pytest.raises(ValueError, match="no probe subject is enrolled in the gallery"):
        open_set_identification([[0.1, 0.2]], [9], [1, 2])
    with pytest.raises(ValueError, match="pass fpirs=\\(\\) for a closed-set evaluation"):
        open_set_identification([[0.1, 0.2]], [1], [1, 2])
    closed = open_set_identification([[0.1, 0.2]], [1], [1, 2], fpirs=())
    assert closed["rank_rates"] == {1: 0.0, 5: 1.0, 10: 1.0} and closed["tpir"] == {}
    with pytest.raises(ValueError, match=r"scores has shape \(1, 2\) but there are 1 probes and 3 gallery"):
        open_set_identification([[0.1, 0.2]], [1], [1, 2, 3])
    with pytest.raises(ValueError, match="must both be numbers or both be strings"):
        open_set_identification([[0.1, 0.2]], ["1"], [1, 2])
    with pytest.raises(ValueError, match="ranks must be integers >= 1; got 0"):
        open_set_identification([[0.1, 0.2]], [1], [1, 2], ranks=(0,), fpirs=())
    with pytest.raises(ValueError, match="1 NaN or infinite values"):
        open_set_identification([[0.1, np.nan]], [1], [1, 2], fpirs=())


def test_cmc_curve_equals_counting():
    ranks = np.random.default_rng(4).integers(1, 30, 500)
    curve = cmc_curve(ranks, 20)
    assert curve.tolist() == [sum(1 for r in ranks if r <= k) / 500 for k in range(1, 21)]
    assert cmc_curve([1, 3, 1, 2], 3).tolist() == [0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="mate_ranks must be integers >= 1"):
        cmc_curve([0, 1], 3)


# --- legacy insightface 1:N --------------------------------------------------------------------------------


def _legacy_reference(similarity, probes, gallery, fars, ranks):
    """The script's steps: argsort rows, top-k membership, heap of the largest non-mate scores."""
    mask = [list(gallery).index(p) for p in probes]
    n = len(probes)
    top = np.argsort(-similarity)
    rank_rates = {k: sum(1 for i in range(n) if mask[i] in top[i, :k]) / n for k in ranks}
    sims = similarity.copy()
    pos = np.array([sims[i, mask[i]] for i in range(n)])
    for i in range(n):
        sims[i, mask[i]] = -2.0
    required = [math.ceil(n * far) for far in fars]
    neg = heapq.nlargest(max(required), sims[np.where(sims > -2.0)])
    thresholds = {far: neg[k - 1] for far, k in zip(fars, required)}
    tpir = {far: np.sum(pos > thresholds[far]) / n for far in fars}
    return rank_rates, thresholds, tpir


def test_legacy_equals_script_steps_on_tie_free_scores():
    rng = np.random.default_rng(5)
    gallery = rng.permutation(300)
    probes = rng.choice(300, 400)
    similarity = rng.normal(0, 0.2, (400, 300))
    similarity[np.arange(400), np.argsort(gallery)[probes]] += rng.random(400) * 0.8
    similarity = np.clip(similarity, -1, 1)
    fars = (0.01, 0.1, 0.5)
    result = legacy_insightface_1n(similarity, probes, gallery, ranks=(1, 5, 10), fars=fars)
    rank_rates, thresholds, tpir = _legacy_reference(similarity, probes, gallery, fars, (1, 5, 10))
    assert result["rank_rates"] == rank_rates
    assert result["thresholds"] == thresholds and result["tpir"] == tpir
    assert result["k"] == {0.01: 4, 0.1: 40, 0.5: 200}


def test_legacy_hand_case():
    scores = [[0.9, 0.1, 0.2], [0.3, 0.8, 0.5], [0.4, 0.6, 0.5]]
    r = legacy_insightface_1n(scores, ["a", "b", "c"], ["a", "b", "c"], ranks=(1, 2), fars=(0.34, 1.0))
    assert r["rank_rates"] == {1: 2 / 3, 2: 1.0}  # the third mate (0.5) has the non-mate 0.6 above it
    # FAR 0.34 over 3 probes -> k = ceil(1.02) = 2 -> 2nd largest non-mate score 0.5 (row 2's 0.6 first)
    assert r["k"][0.34] == 2 and r["thresholds"][0.34] == 0.5
    assert r["tpir"][0.34] == 2 / 3  # 0.9, 0.8 > 0.5; the mate 0.5 is not (strict)
    assert r["false_alarms"][0.34] == 1 / 3  # only 0.6 lies above
    assert r["k"][1.0] == 3 and r["thresholds"][1.0] == 0.4 and r["tpir"][1.0] == 1.0
    # tie with a non-mate: the mate stays in the top 1 (only strictly greater scores push it down)
    assert legacy_insightface_1n([[0.5, 0.5]], [1], [1, 2], ranks=(1,), fars=())["rank_rates"] == {1: 1.0}


def test_legacy_requires_one_gallery_template_per_probe_subject_and_enough_scores():
    with pytest.raises(ValueError, match="probe 1 \\(subject 7\\) matches 0 gallery templates"):
        legacy_insightface_1n([[0.1, 0.2], [0.3, 0.4]], [1, 7], [1, 2])
    with pytest.raises(ValueError, match="probe 0 \\(subject 1\\) matches 2 gallery templates"):
        legacy_insightface_1n([[0.1, 0.2]], [1], [1, 1])
    # scores at or below -2.0 are the script's sentinel and never count as non-mate scores
    with pytest.raises(ValueError, match="asks for the 1-th largest non-mate score, but there are 0"):
        legacy_insightface_1n([[0.9, -3.0], [-2.0, 0.8]], [1, 2], [1, 2], fars=(0.5,))


def test_docstring_examples_hold():
    failures, tried = doctest.testmod(identification_mod, raise_on_error=False, verbose=False)
    assert tried > 0 and failures == 0
