"""All-to-all verification: the streamed TAR@FAR equals a written-out brute force, whatever the tiles,
the sample and the band limit; `--benchmark alltoall:PATH` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebench.cli import main
from facebench.metrics.alltoall import TILE_MEMORY, all_to_all_tar_at_far, tile_side, upper_blocks
from facebench.metrics.megaface import l2_normalise
from facebench.metrics.roc import roc_curve, tar_at_far
from tests._folders import make_folder
from facebench.results import read_results

TARGETS = [0.0, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.5, 0.99, 1.0]


def brute_force(scores: np.ndarray, labels: np.ndarray, targets: list[float]) -> dict[float, tuple[float, float, float]]:
    """(TAR, FAR, tau) per target by the definition, with loops over every pair i < j."""
    n = len(labels)
    genuine, impostor = [], []
    for i in range(n):
        for j in range(i + 1, n):
            (genuine if labels[i] == labels[j] else impostor).append(float(scores[i, j]))
    impostor.sort(reverse=True)
    out = {}
    for f in targets:
        k = 0
        while k < len(impostor) and (k + 1) / len(impostor) <= f:
            k += 1
        if k >= len(impostor):
            out[f] = (1.0, 1.0, float("-inf"))
            continue
        tau = impostor[k]
        out[f] = (
            sum(g > tau for g in genuine) / len(genuine),
            sum(v > tau for v in impostor) / len(impostor),
            tau,
        )
    return out


def exact_features(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of multiples of 1/8 in [-1/2, 1/2]: every dot product is exact in float32 (and ties abound)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, max(2, n // 4), n)
    centres = rng.integers(-3, 4, (labels.max() + 1, 8))
    x = np.clip(centres[labels] + rng.integers(-2, 3, (n, 8)), -4, 4) / 8
    return x.astype(np.float32), labels


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "block, sample, max_band",
    [(4096, (512, 8192), 1 << 24), (4096, (512, 8192), 40), (7, (3, 5), 40), (13, (2, 2), 3), (50, (40, 40), 1 << 24)],
)
def test_streamed_tar_at_far_equals_brute_force(seed: int, block: int, sample: tuple[int, int], max_band: int) -> None:
    emb, labels = exact_features(150 + 40 * seed, seed)
    result = all_to_all_tar_at_far(emb, labels, TARGETS, block=block, sample=sample, max_band=max_band)
    scores = emb.astype(np.float64) @ emb.astype(np.float64).T
    expected = brute_force(scores, labels, TARGETS)
    for f in TARGETS:
        point = result.points[f]
        assert (point.tar, point.far, point.threshold) == expected[f], f
    # the same TAR as the le rule on the full ROC
    iu = np.triu_indices(len(labels), 1)
    roc = roc_curve(labels[iu[0]] == labels[iu[1]], scores[iu], drop_intermediate=False)
    for f, point in tar_at_far(roc, TARGETS, "le").items():
        assert result.points[f].tar == point.tar
    # genuine pairs and their scores, kept
    same = labels[iu[0]] == labels[iu[1]]
    got = sorted(zip(result.genuine_i.tolist(), result.genuine_j.tolist(), result.genuine_scores.tolist()))
    want = sorted(zip(iu[0][same].tolist(), iu[1][same].tolist(), scores[iu][same].tolist()))
    assert got == want
    assert result.n_genuine == int(same.sum()) and result.n_impostor == int((~same).sum())
    if sample == (2, 2):
        assert result.passes > 1  # the fallback passes ran


@pytest.mark.parametrize("block, max_band", [(7, 1 << 24), (50, 1 << 24), (13, 40)])
def test_workers_and_tiles_give_the_brute_force_result(block: int, max_band: int) -> None:
    """Many tiles scanned by 1 or 3 threads, the lowest bracket (FAR 0.5) counted with masks (the sample,
    every row x every column, places it), scores tied at every threshold across tile boundaries: the
    brute-force values; one pass when the bands fit (a miscounted tile would cost a histogram pass), and
    the same passes whatever the number of threads (tiles merge in block order)."""
    emb, labels = exact_features(190, 1)
    scores = emb.astype(np.float64) @ emb.astype(np.float64).T
    expected = brute_force(scores, labels, TARGETS)
    iu = np.triu_indices(len(labels), 1)
    same = labels[iu[0]] == labels[iu[1]]
    want = sorted(zip(iu[0][same].tolist(), iu[1][same].tolist(), scores[iu][same].tolist()))
    passes = set()
    for workers in (1, 3):
        result = all_to_all_tar_at_far(emb, labels, TARGETS, block=block, max_band=max_band, workers=workers)
        assert {f: (p.tar, p.far, p.threshold) for f, p in result.points.items()} == expected
        got = sorted(zip(result.genuine_i.tolist(), result.genuine_j.tolist(), result.genuine_scores.tolist()))
        assert got == want
        passes.add(result.passes)
    assert len(passes) == 1 and (max_band < 1 << 24 or passes == {1})


def test_random_floats_match_the_float32_product() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(60), 5)
    emb = l2_normalise(rng.standard_normal((labels.size, 16)).astype(np.float32) + np.repeat(rng.standard_normal((60, 16)), 5, 0))
    result = all_to_all_tar_at_far(emb, labels, TARGETS, block=4096)  # one tile: the same product as below
    expected = brute_force(emb @ emb.T, labels, TARGETS)
    assert {f: (p.tar, p.far, p.threshold) for f, p in result.points.items()} == expected


def test_upper_blocks_cover_each_pair_once() -> None:
    n, block = 23, 5
    seen = np.zeros((n, n), dtype=int)
    for r0, r1, c0, c1 in upper_blocks(n, block):
        assert r0 <= c0
        seen[r0:r1, c0:c1] += 1
    assert np.array_equal(np.triu(seen, 1), np.triu(np.ones((n, n), dtype=int), 1))


def test_tile_side_keeps_the_workers_tiles_within_the_memory_bound() -> None:
    assert tile_side(4096, 2) == tile_side(4096, 8) == 4096 and tile_side(100, 64) == 100
    assert tile_side(4096, 100_000) == 256  # never below 256
    for workers in (16, 64, 1000):
        side = tile_side(4096, workers)
        assert side < 4096 and workers * side * side * 4 <= TILE_MEMORY
        assert workers * (side + 1) ** 2 * 4 > TILE_MEMORY  # the largest side that fits


def test_needs_both_kinds_of_pairs() -> None:
    with pytest.raises(ValueError, match="genuine and impostor"):
        all_to_all_tar_at_far(np.eye(3, dtype=np.float32), [0, 1, 2])
    with pytest.raises(ValueError, match="one entry per embedding"):
        all_to_all_tar_at_far(np.eye(3, dtype=np.float32), [0, 1])


def test_cli_on_a_list_and_a_folder(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces", [3, 4, 2, 5, 3], size=16)
    paths = sorted(root.glob("id_*/*.png"))
    (tmp_path / "list.txt").write_text("".join(f"faces/{p.parent.name}/{p.name} {p.parent.name}\n" for p in paths))
    rng = np.random.default_rng(0)
    labels = np.array([int(p.parent.name[3:]) for p in paths])
    feats = (rng.standard_normal((5, 8))[labels] + rng.standard_normal((len(paths), 8))).astype(np.float32)
    np.save(tmp_path / "feats.npy", feats)
    emb = l2_normalise(feats)
    expected = brute_force(emb @ emb.T, labels, [1e-2, 1e-1])
    for source, name in ((tmp_path / "list.txt", "alltoall_list.txt"), (root, "alltoall_faces")):
        out = tmp_path / f"out_{name}"
        status = main(["-q", "run", "-b", f"alltoall:{source}", "--features", str(tmp_path / "feats.npy"),
                       "--out", str(out), "--no-speed"])
        assert status == 0
        entry = read_results(out).benchmarks[name]
        assert entry.counts["n_genuine"] == sum(n * (n - 1) // 2 for n in [3, 4, 2, 5, 3])
        assert entry.counts["n_impostor"] == 17 * 16 // 2 - entry.counts["n_genuine"] == 113
        for far, key in ((1e-2, "1e-02"), (1e-1, "1e-01")):
            assert entry.value(f"tar_at_far.{key}") == expected[far][0]
            assert entry.extra["far"][key] == expected[far][1]
            assert entry.extra["thresholds"][key] == pytest.approx(expected[far][2], abs=1e-6)
        # 113 impostor pairs resolve FAR 1/113 only: 1e-3 (and below) null, with the reason
        assert entry.value("tar_at_far.1e-03") is None and entry.extra["far"]["1e-03"] is None
        assert any("tar_at_far.1e-03" in w and "113 impostor pairs" in w for w in entry.warnings)
        few = entry.metrics["tar_at_far.1e-02"].few_events  # at most one impostor accepted
        assert few is not None
        assert few.negatives_accepted == round(expected[0.01][1] * 113) <= 1 and few.n_negatives == 113
        assert entry.rules["tar_at_far"].startswith("le ") and "'>'" in entry.rules["pairs"]
    (tmp_path / "bad.txt").write_text("faces/id_00/img_0.png\n")
    status = main(["-q", "run", "-b", f"alltoall:{tmp_path / 'bad.txt'}", "--features", str(tmp_path / "feats.npy"),
                   "--out", str(tmp_path / "bad"), "--no-speed"])
    assert status == 1
    failed = read_results(tmp_path / "bad").failed
    assert "bad.txt line 1: expected 2 columns" in failed["alltoall_bad.txt"]
