"""MegaFace metrics against brute-force references: streamed top scores, CMC with both tie rules, TAR@FAR."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.metrics import megaface as mmf
from facebench.metrics.operating import allowed_count


def _split_points(rng, n):
    cuts = sorted(set(rng.integers(0, n + 1, rng.integers(0, 6)).tolist()))
    return list(zip([0] + cuts, cuts + [n]))


@pytest.mark.parametrize("seed", range(6))
def test_top_scores_equal_a_full_sort(seed) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(15):
        n_probes, n, k, m = int(rng.integers(1, 30)), int(rng.integers(0, 400)), int(rng.integers(1, 12)), int(rng.integers(0, 60))
        scores = rng.integers(-6, 6, (n_probes, n)).astype(np.float32)  # many ties
        scores[rng.random((n_probes, n)) < 0.1] = -np.inf  # excluded distractors
        top = mmf.TopScores(n_probes, k, m)
        for a, b in _split_points(rng, n):
            top.update(scores[:, a:b].T)
        expected = np.full((n_probes, k), -np.inf, dtype=np.float32)
        for p in range(n_probes):
            row = sorted(scores[p], reverse=True)[:k]
            expected[p, : len(row)] = row
        np.testing.assert_array_equal(top.per_probe, expected)
        finite = sorted(scores[np.isfinite(scores)].tolist(), reverse=True)
        np.testing.assert_array_equal(top.overall, np.asarray(finite[:m], dtype=np.float32))


def _expected_tops(scores: np.ndarray, k: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each probe's k largest and the m largest finite scores of a (probes, distractors) matrix, by sorting."""
    per_probe = np.full((scores.shape[0], k), -np.inf, dtype=np.float32)
    for p, row in enumerate(scores):
        best = np.sort(row[np.isfinite(row)])[::-1][:k]
        per_probe[p, : best.size] = best
    finite = np.sort(scores[np.isfinite(scores)])[::-1][:m]
    return per_probe, finite.astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_top_scores_over_long_streams_take_the_sparse_path_exactly(seed, monkeypatch) -> None:
    """Thousands of distractors in blocks of uneven length (not multiples of the group), so the floors rise
    and most blocks read only the (group, probe) cells whose maximum passes; ties on a coarse grid."""
    rng = np.random.default_rng(100 + seed)
    n_probes, n, k, m = 60, 6000, 10, 250
    scores = (np.round(rng.standard_normal((n_probes, n)) * 40) / 40).astype(np.float32)
    scores[:, rng.random(n) < 0.02] = -np.inf  # excluded distractors
    folded = {"cells": 0, "dense": 0}
    for name in folded:
        method = getattr(mmf.TopScores, f"_fold_{name}")
        monkeypatch.setattr(mmf.TopScores, f"_fold_{name}",
                            lambda self, *a, _m=method, _n=name: (folded.__setitem__(_n, folded[_n] + 1), _m(self, *a))[1])
    given, computed = mmf.TopScores(n_probes, k, m), mmf.TopScores(n_probes, k, m)
    cuts = np.unique(np.concatenate([[0, n], rng.integers(0, n, 12)]))
    for a, b in zip(cuts[:-1], cuts[1:]):
        block = np.ascontiguousarray(scores[:, a:b].T)
        given.update(block, mmf.group_maxima(block))
        computed.update(block)
    per_probe, overall = _expected_tops(scores, k, m)
    for top in (given, computed):
        np.testing.assert_array_equal(top.per_probe, per_probe)
        np.testing.assert_array_equal(top.overall, overall)
    assert folded["cells"] > 0 and folded["dense"] > 0


def test_group_maxima_and_their_upper_bounds() -> None:
    rng = np.random.default_rng(4)
    block = rng.standard_normal((100, 7)).astype(np.float32)  # groups of 32, 32, 32 and 4 rows
    maxima = mmf.group_maxima(block)
    assert maxima.shape == (4, 7)
    for g, (a, b) in enumerate([(0, 32), (32, 64), (64, 96), (96, 100)]):
        np.testing.assert_array_equal(maxima[g], block[a:b].max(axis=0))
    assert mmf.group_maxima(block[:0]).shape == (0, 7)
    block[[5, 40, 41, 97]] = -np.inf  # the maxima of before are upper bounds now: the result is the same
    for k, m in ((3, 0), (3, 20), (1, 400)):
        with_bounds, fresh = mmf.TopScores(7, k, m), mmf.TopScores(7, k, m)
        with_bounds.update(block, maxima)
        fresh.update(block)
        per_probe, overall = _expected_tops(block.T, k, m)
        for top in (with_bounds, fresh):
            np.testing.assert_array_equal(top.per_probe, per_probe)
            np.testing.assert_array_equal(top.overall, overall)
    with pytest.raises(ValueError, match="group maxima"):
        mmf.TopScores(7, 3).update(block, maxima[:3])


def _brute_cmc(genuine, probe, scores, tie_rule, k):
    """Rank of each trial counted directly from every distractor score of its probe."""
    hits = np.zeros(k)
    for s, p in zip(genuine, probe):
        beating = np.sum(scores[p] > s) if tie_rule == ">=" else np.sum(scores[p] >= s)
        for r in range(1, k + 1):
            hits[r - 1] += beating < r
    return hits / len(genuine)


@pytest.mark.parametrize("tie_rule", [">=", ">"])
def test_identification_rates_match_direct_counting(tie_rule) -> None:
    rng = np.random.default_rng(1)
    n_probes, n, k = 40, 25, 10
    scores = rng.integers(-5, 6, (n_probes, n)).astype(np.float32)
    scores[:3, 5:] = -np.inf  # three probes with only 5 distractors: the missing ranks are always beaten
    probe = rng.integers(0, n_probes, 500)
    genuine = rng.integers(-5, 7, 500).astype(np.float32)
    top = mmf.TopScores(n_probes, k)
    top.update(scores.T)
    got = mmf.identification_rates(genuine, probe, top.per_probe, tie_rule)
    np.testing.assert_array_equal(got, _brute_cmc(genuine, probe, scores, tie_rule, k))
    assert np.all(np.diff(got) >= 0)


def test_tie_rules_differ_exactly_on_ties() -> None:
    top = np.array([[3.0, 2.0, 2.0]], dtype=np.float32)
    genuine = np.array([3.0, 2.0, 2.5], dtype=np.float32)
    probe = np.zeros(3, dtype=np.int64)
    np.testing.assert_array_equal(mmf.identification_rates(genuine, probe, top, ">="), [1 / 3, 1, 1])
    np.testing.assert_array_equal(mmf.identification_rates(genuine, probe, top, ">"), [0, 2 / 3, 2 / 3])
    with pytest.raises(ValueError, match="unknown tie rule"):
        mmf.identification_rates(genuine, probe, top, "=>")


def _brute_tar(genuine, impostors, far):
    """The best TAR over every threshold (each distinct score and +inf) whose FAR is <= far."""
    best = 0.0
    for t in np.unique(np.concatenate([genuine, impostors, [np.inf]])):
        if np.sum(impostors >= t) / impostors.size <= far:
            best = max(best, np.sum(genuine >= t) / genuine.size)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_tar_at_far_is_the_best_tar_with_far_at_most_the_target(seed) -> None:
    rng = np.random.default_rng(seed)
    genuine = rng.integers(0, 30, 200).astype(np.float32)
    impostors = rng.integers(-20, 25, 3000).astype(np.float32)
    for far in (0.0, 1 / 3000, 0.001, 0.0031, 0.01, 0.2, 1.0):
        need = mmf.impostors_needed(impostors.size, far)
        top = np.sort(impostors)[::-1][:need]
        point = mmf.tar_at_far(genuine, top, impostors.size, far)
        assert point.tar == _brute_tar(genuine, impostors, far), far
        assert point.far <= far
        curve = mmf.verification_curve(genuine, top, impostors.size)
        assert curve.fpr[-1] <= need / impostors.size  # the curve reaches only as far as the kept scores
        for fpr, tpr, v in zip(curve.fpr, curve.tpr, curve.thresholds):
            assert fpr == np.sum(impostors > v) / impostors.size and tpr == np.sum(genuine > v) / genuine.size
        # the read-off is the last corner of the curve with FAR <= target
        assert point.tar == curve.tpr[curve.fpr <= far][-1]


def test_impostor_budget_at_megaface_scale() -> None:
    n = 3530 * 1_000_000
    assert allowed_count(n, 1e-6) == 3530
    assert mmf.impostors_needed(n, 1e-6) == 3531
    assert mmf.impostors_needed(3530 * 10, 1e-6) == 1
    assert mmf.impostors_needed(5, 1.0) == 5


def test_trials_and_pairs_follow_the_protocol() -> None:
    labels = np.array([0, 1, 0, 0, 1, 2])
    p, g = mmf.megaface_trials(labels)
    pairs = set(zip(p.tolist(), g.tolist()))
    assert len(pairs) == p.size == 3 * 2 + 2 * 1  # sum M(M-1); identity 2 has one image: no trial
    assert all(labels[a] == labels[b] and a != b for a, b in pairs)
    i, j = mmf.genuine_pairs(labels)
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 2), (0, 3), (1, 4), (2, 3)]


def test_noisy_probes_become_their_identity_centre() -> None:
    rng = np.random.default_rng(3)
    emb = mmf.l2_normalise(rng.standard_normal((7, 5)))
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    noisy = np.array([True, False, False, False, True, True, True])
    out, orphans = mmf.identity_centres_for_noise(emb, labels, noisy)
    centre0 = emb[1].astype(np.float64) + emb[2]
    np.testing.assert_array_equal(out[0], (centre0 / np.linalg.norm(centre0)).astype(np.float32))
    np.testing.assert_array_equal(out[4], emb[3])  # the only clean image of identity 1 (already unit)
    np.testing.assert_array_equal(out[[1, 2, 3, 5, 6]], emb[[1, 2, 3, 5, 6]])
    assert orphans == [2]


def test_l2_normalise_keeps_zero_rows() -> None:
    out = mmf.l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[0.6, 0.8], [0.0, 0.0]], dtype=np.float32))


def test_merging_accumulators_of_split_streams_is_exact() -> None:
    rng = np.random.default_rng(9)
    scores = rng.integers(-8, 8, (300, 25)).astype(np.float32)  # (distractors, probes)
    whole, first, second = mmf.TopScores(25, 10, 40), mmf.TopScores(25, 10, 40), mmf.TopScores(25, 10, 40)
    whole.update(scores)
    first.update(scores[:70])
    first.update(scores[200:])
    second.update(scores[70:200])
    first.merge(second)
    np.testing.assert_array_equal(first.per_probe, whole.per_probe)
    np.testing.assert_array_equal(first.overall, whole.overall)
