"""Operating points: thresholds at target FARs estimated on one set transfer to another; both threshold forms;
`facebench run --calibrate-on` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from facebench.cli import main
from facebench.evaluate.thresholds import has_verification_scores, operating_points
from facebench.io.binpack import write_bin
from facebench.metrics.stats import clopper_pearson
from tests.fakes import jpeg_bytes, random_images
from facebench.results import read_results


def _brute_threshold(impostors: np.ndarray, far: float) -> float:
    """The lowest impostor value v with #(impostors >= v) / n <= far, by trying every value."""
    n = impostors.size
    ok = [v for v in np.unique(impostors) if np.count_nonzero(impostors >= v) / n <= far]
    return float(min(ok)) if ok else float(np.nextafter(impostors.max(), np.inf))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_estimated_on_one_set_holds_its_far_on_another(seed: int) -> None:
    """Impostor scores N(0, 1), genuine N(3, 1): the threshold estimated on 2M calibration impostors gives, on
    100k fresh impostors, a FAR whose exact 99.9% binomial interval contains the target, and the true FAR of
    that threshold (the normal tail) lies in the same interval."""
    rng = np.random.default_rng(seed)
    cal_labels = np.r_[np.ones(20_000, bool), np.zeros(2_000_000, bool)]
    cal = (np.r_[rng.normal(3, 1, 20_000), rng.normal(0, 1, 2_000_000)], cal_labels)
    scores = np.r_[rng.normal(3, 1, 10_000), rng.normal(0, 1, 100_000)]
    labels = np.r_[np.ones(10_000, bool), np.zeros(100_000, bool)]
    targets = (1e-4, 1e-3, 1e-2, 1e-1)
    ops = operating_points(scores, labels, cal, "cal", targets, alpha=0.001)
    assert ops["calibrated_on"] == "cal" and not ops["in_sample"]
    assert ops["n_calibration_impostors"] == 2_000_000 and ops["n_impostors"] == 100_000
    for target in targets:
        p = ops["points"][f"{target:.0e}"]
        t = p["cosine"]
        assert p["resolvable"] and p["target_in_far_ci"], (target, p)
        lo, hi = clopper_pearson(p["accepted_impostors"], 100_000, 0.001)
        assert p["far_ci"] == [lo, hi] and lo <= scipy.stats.norm.sf(t) <= hi
        held_out = scores[~labels]
        assert p["far"] == np.count_nonzero(held_out >= t) / held_out.size
        assert p["tar"] == np.count_nonzero(scores[labels] >= t) / labels.sum()
        assert p["calibration_far"] <= target
        assert p["squared_l2"] == 2 - 2 * t


def test_threshold_rule_exact_on_a_small_set() -> None:
    impostors = np.array([0.1, 0.2, 0.3, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    genuine = np.array([0.25, 0.35, 0.85, 0.95])
    scores, labels = np.r_[genuine, impostors], np.r_[np.ones(4, bool), np.zeros(10, bool)]
    ops = operating_points(scores, labels, targets=(0.05, 0.1, 0.3, 0.4))
    assert ops["calibrated_on"] is None and ops["in_sample"]
    for key, target in (("5e-02", 0.05), ("1e-01", 0.1), ("3e-01", 0.3), ("4e-01", 0.4)):
        p = ops["points"][key]
        assert p["cosine"] == _brute_threshold(impostors, target)
        assert p["resolvable"] == (target * 10 >= 1)
    assert ops["points"]["1e-01"]["cosine"] == 0.9 and ops["points"]["1e-01"]["far"] == 0.1
    assert ops["points"]["1e-01"]["tar"] == 0.25
    # 0.3 allows 3 impostors: 0.7, 0.8, 0.9; 0.4 allows 4 (0.6 and up)
    assert ops["points"]["3e-01"]["cosine"] == 0.7 and ops["points"]["4e-01"]["cosine"] == 0.6
    assert ops["points"]["5e-02"]["far"] == 0.0 and ops["points"]["5e-02"]["cosine"] > 0.9


def test_squared_l2_form_accepts_the_same_pairs() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5000, 16))
    b = a + rng.standard_normal((5000, 16)) * np.r_[np.full(2500, 0.5), np.full(2500, 3.0)][:, None]
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    cos, dist = (a * b).sum(1), ((a - b) ** 2).sum(1)
    labels = np.r_[np.ones(2500, bool), np.zeros(2500, bool)]
    for p in operating_points(cos, labels, targets=(1e-3, 1e-2, 1e-1))["points"].values():
        far_from_boundary = np.abs(cos - p["cosine"]) > 1e-12
        by_cosine, by_distance = cos >= p["cosine"], dist <= p["squared_l2"]
        np.testing.assert_array_equal(by_cosine[far_from_boundary], by_distance[far_from_boundary])


def _pack(root: Path, name: str, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A .bin pack of n_pairs (10 balanced folds) and matching synthetic features; returns (feats, issame)."""
    rng = np.random.default_rng(seed)
    issame = np.tile(np.r_[np.ones(n_pairs // 20, bool), np.zeros(n_pairs // 20, bool)], 10)
    ids = rng.standard_normal((n_pairs, 24))
    first = ids + 0.8 * rng.standard_normal(ids.shape)
    other = np.where(issame[:, None], ids, rng.standard_normal(ids.shape)) + 0.8 * rng.standard_normal(ids.shape)
    feats = np.stack([first, other], axis=1).reshape(2 * n_pairs, 24).astype(np.float32)
    write_bin(root / f"{name}.bin", [jpeg_bytes(im) for im in random_images(2 * n_pairs, size=16, seed=seed)], issame)
    return feats, issame


def _cos(feats: np.ndarray) -> np.ndarray:
    e = feats.astype(np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return (e[0::2] * e[1::2]).sum(1)


def test_run_calibrates_on_one_benchmark_and_checks_on_another(tmp_path: Path) -> None:
    data, feats_dir, out = tmp_path / "data", tmp_path / "feats", tmp_path / "out"
    data.mkdir(), feats_dir.mkdir()
    lfw, lfw_same = _pack(data, "lfw", 2000, 1)
    cplfw, cplfw_same = _pack(data, "cplfw", 1000, 2)
    np.save(feats_dir / "lfw.npy", lfw)
    np.save(feats_dir / "cplfw.npy", cplfw)
    args = ["-q", "run", "--features", str(feats_dir), "--data-root", str(data), "--out", str(out), "-b", "cplfw"]
    assert main([*args, "--calibrate-on", "lfw"]) == 0
    doc = read_results(out)
    assert list(doc.benchmarks) == ["lfw", "cplfw"]  # the calibration set runs first, added when not selected
    lfw_ops, ops = doc.benchmarks["lfw"].thresholds, doc.benchmarks["cplfw"].thresholds
    assert lfw_ops["calibrated_on"] is None and ops["calibrated_on"] == "lfw"
    cal_impostors, scores = _cos(lfw)[~lfw_same], _cos(cplfw)
    for key in ("1e-03", "1e-02", "1e-01"):
        target = float(key)
        t = _brute_threshold(cal_impostors, target)
        p = ops["points"][key]
        assert p["cosine"] == pytest.approx(t, abs=1e-12) and lfw_ops["points"][key]["cosine"] == p["cosine"]
        assert p["far"] == np.count_nonzero(scores[~cplfw_same] >= p["cosine"]) / 500
        assert p["tar"] == np.count_nonzero(scores[cplfw_same] >= p["cosine"]) / 500
    assert not ops["points"]["1e-04"]["resolvable"]  # 1000 calibration impostors cannot resolve 1e-4
    table = (out / "thresholds.md").read_text()
    assert "| cplfw | lfw | 1e-03 |" in table and "| lfw | itself (in-sample) | 1e-02 |" in table
    assert "1e-04" not in table
    assert (out / "thresholds.csv").read_text().count("\n") == 1 + 3 + 3

    # without --calibrate-on every set is its own calibration
    assert main([*args, "--out", str(tmp_path / "own")]) == 0
    own = read_results(tmp_path / "own")
    assert list(own.benchmarks) == ["cplfw"] and own.benchmarks["cplfw"].thresholds["in_sample"]


def test_calibrate_on_needs_a_pair_benchmark(tmp_path: Path, capsys) -> None:
    assert main(["-q", "run", "--features", str(tmp_path), "-b", "lfw", "--calibrate-on", "ijbc",
                 "--out", str(tmp_path / "o")]) == 2
    assert "--calibrate-on ijbc" in capsys.readouterr().err


def test_only_verification_arrays_get_operating_points() -> None:
    assert has_verification_scores({"scores": np.zeros(3), "labels": np.array([True, False, True])})
    assert not has_verification_scores({"scores": np.zeros(3), "labels": np.zeros(3)})
    assert not has_verification_scores({"roc_fpr": np.zeros(3)})
