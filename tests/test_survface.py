"""QMUL-SurvFace: the streamed watch-list searches equal open_set_identification on the full matrix and a
written-out computation; the official layout end to end."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.cli import main
from facebench.evaluate.survface import watch_list_searches
from facebench.metrics import openset
from facebench.metrics.identification import open_set_identification
from facebench.metrics.megaface import l2_normalise


def _exact(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.integers(-3, 4, (n, 6)) / 8).astype(np.float32)  # exact products, ties on purpose


@pytest.mark.parametrize("block", [1, 5, 1000])
def test_streamed_searches_equal_the_full_matrix(block: int) -> None:
    rng = np.random.default_rng(3)
    gallery_subjects = rng.integers(0, 12, 40)
    probe_subjects = np.concatenate([rng.integers(0, 12, 50), np.full(30, -1)])
    gallery, probes = _exact(rng, 40), _exact(rng, 80)
    s = watch_list_searches(gallery, gallery_subjects, probes, probe_subjects, block=block)
    targets = (0.3, 0.2, 0.1, 0.01)
    ref = open_set_identification(probes @ gallery.T, probe_subjects, gallery_subjects, ranks=(1,), fpirs=targets)
    assert np.array_equal(s.mated, ref["mated"])
    assert s.mate_ranks.tolist() == ref["mate_ranks"].tolist()
    assert s.mate_scores.tolist() == ref["mate_scores"].tolist()
    assert s.nonmated_scores.tolist() == ref["nonmated_scores"].tolist()
    for f, (tpir, fpir, t) in openset.tpir_at_fpir(s, targets).items():
        assert (tpir, fpir, t) == (ref["tpir"][f], ref["fpir"][f], ref["thresholds"][f])
    # written out: FPIR and FNIR at every threshold
    thresholds, fpir, fnir = openset.fpir_fnir_curve(s)
    for t, a, b in zip(thresholds, fpir, fnir):
        assert a == sum(v >= t for v in s.nonmated_scores) / s.nonmated_scores.size
        hits = sum(r == 1 and m >= t for r, m in zip(s.mate_ranks, s.mate_scores))
        assert b == 1 - hits / s.mate_scores.size


def test_official_layout_end_to_end(tmp_path: Path) -> None:
    test_set = tmp_path / "data" / "QMUL-SurvFace" / "Face_Identification_Test_Set"
    rng = np.random.default_rng(0)
    names = {
        "gallery": [f"{i}_{k}.jpg" for k, i in enumerate([1, 1, 2, 3, 3, 3, 4, 5])],
        "mated_probe": [f"{i}_{k}.jpg" for k, i in enumerate([1, 2, 2, 3, 4, 5, 5, 9])],
        "unmated_probe": [f"{k}.jpg" for k in range(12)],
    }
    for part, files in names.items():
        (test_set / part).mkdir(parents=True)
        for name in files:
            cv2.imwrite(str(test_set / part / name), rng.integers(0, 255, (24, 20, 3)).astype(np.uint8))
    feats = tmp_path / "feats"
    feats.mkdir()
    arrays = {part: rng.standard_normal((len(files), 8)).astype(np.float32) for part, files in names.items()}
    for part, a in arrays.items():
        np.save(feats / f"survface_{part}.npy", a)
    status = main(["-q", "run", "-b", "survface", "--data-root", str(tmp_path / "data"), "--features", str(feats),
                   "--out", str(tmp_path / "out"), "--no-speed"])
    assert status == 0
    entry = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["survface"]
    assert (entry["n_gallery_images"], entry["n_gallery_subjects"], entry["n_mated_probes"], entry["n_unmated_probes"]) == (8, 5, 8, 12)
    assert entry["n_mated"] == 7 and entry["n_nonmated"] == 13  # identity 9 is not enrolled
    # independent: the full matrix through open_set_identification (sorted file names give the row order)
    order = {p: sorted(range(len(f)), key=lambda k: f[k]) for p, f in names.items()}
    emb = {p: l2_normalise(arrays[p]) for p in names}
    label = {p: np.array([int(names[p][k].split("_")[0]) for k in order[p]]) for p in ("gallery", "mated_probe")}
    probes = np.concatenate([emb["mated_probe"], emb["unmated_probe"]])
    subjects = np.concatenate([label["mated_probe"], np.full(12, -1)])
    ref = open_set_identification(probes @ emb["gallery"].T, subjects, label["gallery"], ranks=(1, 5),
                                  fpirs=(0.3, 0.1))
    assert entry["metrics"]["rank"]["1"] == ref["rank_rates"][1] and entry["metrics"]["rank"]["5"] == ref["rank_rates"][5]
    assert entry["metrics"]["tpir_at_fpir"]["3e-01"] == ref["tpir"][0.3]
    assert entry["metrics"]["tpir_at_fpir"]["1e-01"] == ref["tpir"][0.1]
    with np.load(tmp_path / "out" / "survface.npz") as saved:
        assert saved["fpir"].shape == saved["fnir"].shape == saved["fpir_fnir_thresholds"].shape
