"""TinyFace: image-level closed-set CMC and the protocol's AP against written-out loops; the official layout
end to end; the low-resolution recipe's geometry and failure-to-enrol list."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.cli import main
from facebench.errors import FacebenchError
from facebench.evaluate.tinyface import retrieval
from facebench.io.tinyface import read_tinyface
from facebench.lowres import lowres_landmarks, square_and_upscale
from facebench.metrics.megaface import l2_normalise


def compute_ap(good: set[int], index: list[int]) -> tuple[float, int]:
    """TinyFace's compute_AP.m written out: the ranked gallery ``index``, the mates ``good``; also the
    1-based position of the first mate."""
    old_recall, old_precision, ap, hits, first = 0.0, 1.0, 0.0, 0, 0
    for j, g in enumerate(index):
        if g in good:
            hits += 1
            first = first or j + 1
        recall, precision = hits / len(good), hits / (j + 1)
        ap += (recall - old_recall) * ((old_precision + precision) / 2)
        old_recall, old_precision = recall, precision
        if hits == len(good):
            break
    return ap, first


def brute_force(probe, probe_labels, match, match_labels, distractor, ranks=(1, 5, 20)):
    gallery = np.concatenate([match, distractor]).astype(np.float64)
    labels = np.concatenate([match_labels, np.full(len(distractor), -1)])
    aps, firsts = [], []
    for p, label in zip(probe.astype(np.float64), probe_labels):
        scores = gallery @ p
        # highest first; among equal scores the non-mates first (ties against the mate)
        order = sorted(range(len(scores)), key=lambda g: (-scores[g], labels[g] == label))
        ap, first = compute_ap({g for g in range(len(labels)) if labels[g] == label}, order)
        aps.append(ap)
        firsts.append(first)
    return {k: sum(f <= k for f in firsts) / len(firsts) for k in ranks}, sum(aps) / len(aps), firsts


@pytest.mark.parametrize("seed", [0, 1])
def test_retrieval_equals_the_protocol_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 15, 60)
    match_labels = np.repeat(np.arange(15), rng.integers(1, 4, 15))
    probe = (rng.integers(-3, 4, (60, 6)) / 8).astype(np.float32)  # exact products, many ties
    match = (rng.integers(-3, 4, (match_labels.size, 6)) / 8).astype(np.float32)
    distractor = (rng.integers(-3, 4, (200, 6)) / 8).astype(np.float32)
    result = retrieval(probe, ids, match, match_labels, distractor, block=37)
    rates, mean_ap, firsts = brute_force(probe, ids, match, match_labels, distractor)
    assert result["ranks"].tolist() == firsts
    assert result["rank_rates"] == rates
    assert result["mean_average_precision"] == pytest.approx(mean_ap, abs=1e-15)
    assert result["average_precision"].tolist() == pytest.approx(
        [compute_ap(*_order(p, l, match, match_labels, distractor))[0] for p, l in zip(probe, ids)], abs=0
    )


def _order(p, label, match, match_labels, distractor):
    gallery = np.concatenate([match, distractor]).astype(np.float64)
    labels = np.concatenate([match_labels, np.full(len(distractor), -1)])
    scores = gallery @ p.astype(np.float64)
    order = sorted(range(len(scores)), key=lambda g: (-scores[g], labels[g] == label))
    return {g for g in range(len(labels)) if labels[g] == label}, order


def make_tinyface(root: Path, probe_ids: list[int], match_ids: list[int], n_distractors: int) -> Path:
    ts = root / "tinyface" / "Testing_Set"
    rng = np.random.default_rng(0)
    for part, names in (
        ("Probe", [f"{i}_{k}.jpg" for k, i in enumerate(probe_ids)]),
        ("Gallery_Match", [f"{i}_{k}.jpg" for k, i in enumerate(match_ids)]),
        ("Gallery_Distractor", [f"{k}.jpg" for k in range(n_distractors)]),
    ):
        (ts / part).mkdir(parents=True)
        for name in names:
            cv2.imwrite(str(ts / part / name), rng.integers(0, 255, (20, 16, 3)).astype(np.uint8))
    return root


def test_official_layout_end_to_end(tmp_path: Path) -> None:
    probe_ids = [3, 3, 7, 12, 12, 12, 40, 5]
    match_ids = [3, 7, 7, 12, 40, 41]
    root = make_tinyface(tmp_path / "data", probe_ids, match_ids, 25)
    data = read_tinyface(root / "tinyface" / "Testing_Set")
    assert data.probe_labels.tolist() == [12, 12, 12, 3, 3, 40, 5, 7]  # sorted file names
    rng = np.random.default_rng(1)
    feats = tmp_path / "feats"
    feats.mkdir()
    arrays = {
        "probe": rng.standard_normal((len(data.probe), 8)).astype(np.float32),
        "gallery_match": rng.standard_normal((len(data.match), 8)).astype(np.float32),
        "gallery_distractor": rng.standard_normal((len(data.distractor), 8)).astype(np.float32),
    }
    for name, a in arrays.items():
        np.save(feats / f"tinyface_{name}.npy", a)
    status = main(["-q", "run", "-b", "tinyface", "--data-root", str(tmp_path / "data"), "--features", str(feats),
                   "--out", str(tmp_path / "out"), "--no-speed"])
    assert status == 0
    entry = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["tinyface"]
    assert (entry["n_probes"], entry["n_gallery_match"], entry["n_distractors"]) == (8, 6, 25)
    assert any("153,428" in w for w in entry["warnings"]) and any("no Gallery_Match" in w for w in entry["warnings"])
    keep = np.isin(data.probe_labels, data.match_labels)  # probe of identity 5 has no match
    emb = {k: l2_normalise(v) for k, v in arrays.items()}
    rates, mean_ap, _ = brute_force(emb["probe"][keep], data.probe_labels[keep], emb["gallery_match"],
                                    data.match_labels, emb["gallery_distractor"])
    assert entry["metrics"]["rank"] == {str(k): v for k, v in rates.items()}
    assert entry["metrics"]["map"] == pytest.approx(mean_ap, abs=1e-12)
    (root / "tinyface" / "Testing_Set" / "Probe" / "x_1.jpg").write_bytes(b"")
    with pytest.raises(FacebenchError, match="x_1.jpg: file name does not start with an integer"):
        read_tinyface(root / "tinyface" / "Testing_Set")


def test_lowres_recipe_maps_detections_back_and_lists_failures(tmp_path: Path) -> None:
    # a ready 112x112 chip shrunk to a 21x28 (w x h) tiny face: its 5 points are known in the tiny image
    from facebench.images import ARCFACE_TEMPLATE

    points = ARCFACE_TEMPLATE * np.array([21 / 112, 28 / 112])

    def detector(image: np.ndarray) -> np.ndarray | None:
        """Sees the 5 marks as bright blobs: their centroids in template order (eyes, nose, mouth corners)."""
        n, _, _, centres = cv2.connectedComponentsWithStats((image[..., 0] > 60).astype(np.uint8))
        if n - 1 != 5:
            return None
        c = centres[1:][np.argsort(centres[1:, 1])]  # by height: eyes, nose, mouth
        return np.concatenate([c[:2][np.argsort(c[:2, 0])], c[2:3], c[3:][np.argsort(c[3:, 0])]])

    tiny = np.zeros((28, 21, 3), np.uint8)
    for px, py in np.round(points).astype(int):
        tiny[py, px] = 255
    sq = square_and_upscale(tiny)
    assert sq.image.shape[:2] == (224, 224)
    images = {"a.png": tiny, "b.png": np.zeros_like(tiny)}
    for name, image in images.items():
        cv2.imwrite(str(tmp_path / name), image)
    landmarks, failed = lowres_landmarks([str(tmp_path / n) for n in images], detector,
                                         lambda p: cv2.imread(p)[..., ::-1])
    assert failed == [str(tmp_path / "b.png")] and np.isnan(landmarks[1]).all()
    assert np.abs(landmarks[0] - np.round(points)).max() < 0.6  # back on the marked pixels
