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
from facebench.extraction.lowres import lowres_landmarks, square_and_upscale
from facebench.metrics.megaface import l2_normalise
from tests._openset_loops import brute_force, compute_ap, ranked_gallery
from facebench.results import read_results
from tests._results import group


@pytest.mark.parametrize("ties", [">=", ">"])
@pytest.mark.parametrize("seed", [0, 1])
def test_retrieval_equals_the_protocol_loops(seed: int, ties: str) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 15, 60)
    match_labels = np.repeat(np.arange(15), rng.integers(1, 4, 15))
    probe = (rng.integers(-3, 4, (60, 6)) / 8).astype(np.float32)  # exact products, many ties
    match = (rng.integers(-3, 4, (match_labels.size, 6)) / 8).astype(np.float32)
    distractor = (rng.integers(-3, 4, (200, 6)) / 8).astype(np.float32)
    result = retrieval(probe, ids, match, match_labels, distractor, block=37, ties=ties)
    rates, mean_ap, firsts = brute_force(probe, ids, match, match_labels, distractor, ties=ties)
    assert result["ranks"].tolist() == firsts
    assert result["rank_rates"] == rates
    assert result["mean_average_precision"] == pytest.approx(mean_ap, abs=1e-15)
    assert result["average_precision"].tolist() == pytest.approx(
        [compute_ap(*ranked_gallery(p, l, match, match_labels, distractor, ties))[0] for p, l in zip(probe, ids)], abs=0
    )
    if ties == ">":  # ties decide: the mate-favouring rule ranks some probes higher than the protocol's
        protocol = brute_force(probe, ids, match, match_labels, distractor)[2]
        assert all(a <= b for a, b in zip(firsts, protocol)) and firsts != protocol
    with pytest.raises(ValueError, match="unknown tie rule 'argsort'"):
        retrieval(probe, ids, match, match_labels, distractor, ties="argsort")


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
    entry = read_results(tmp_path / "out").benchmarks["tinyface"]
    assert (entry.counts["n_probes"], entry.counts["n_gallery_match"], entry.counts["n_distractors"]) == (8, 6, 25)
    assert any("153,428" in w for w in entry.warnings) and any("no Gallery_Match" in w for w in entry.warnings)
    keep = np.isin(data.probe_labels, data.match_labels)  # probe of identity 5 has no match
    emb = {k: l2_normalise(v) for k, v in arrays.items()}
    rates, mean_ap, _ = brute_force(emb["probe"][keep], data.probe_labels[keep], emb["gallery_match"],
                                    data.match_labels, emb["gallery_distractor"])
    assert group(entry, "rank") == {str(k): v for k, v in rates.items()}
    assert entry.value("map") == pytest.approx(mean_ap, abs=1e-12)
    assert entry.rules["cmc_ties"] == ">="
    # --cmc-ties: > recorded; argsort (full rows) refused with the reason
    base = ["-q", "run", "-b", "tinyface", "--data-root", str(tmp_path / "data"), "--features", str(feats), "--no-speed"]
    assert main([*base, "--out", str(tmp_path / "gt"), "--cmc-ties", ">"]) == 0
    gt = read_results(tmp_path / "gt").benchmarks["tinyface"]
    assert gt.rules["cmc_ties"] == ">" and group(gt, "rank") == {str(k): v for k, v in brute_force(
        emb["probe"][keep], data.probe_labels[keep], emb["gallery_match"], data.match_labels,
        emb["gallery_distractor"], ties=">")[0].items()}
    assert main([*base, "--out", str(tmp_path / "argsort"), "--cmc-ties", "argsort"]) != 0
    failed = read_results(tmp_path / "argsort").failed["tinyface"]
    assert "--cmc-ties argsort needs each search's full row" in failed
    (root / "tinyface" / "Testing_Set" / "Probe" / "x_1.jpg").write_bytes(b"")
    with pytest.raises(FacebenchError, match="x_1.jpg: file name does not start with an integer"):
        read_tinyface(root / "tinyface" / "Testing_Set")


def test_lowres_recipe_maps_detections_back_and_lists_failures(tmp_path: Path) -> None:
    # a ready 112x112 chip shrunk to a 21x28 (w x h) tiny face: its 5 points are known in the tiny image
    from facebench.extraction.images import ARCFACE_TEMPLATE

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

