"""`--benchmark folder:PATH`: seeded fold-balanced pairs, the open-set split, the error cases, end to end."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from facebench.benchmarks import load_benchmarks, select
from facebench.cli import main
from facebench.errors import FacebenchError
from facebench.evaluate.folder import generate_pairs, identification_split, list_folder
from facebench.metrics.kfold import fold_balance
from tests._folders import folder_features as _features
from tests._folders import make_folder
from tests.fakes import tiny_onnx
from facebench.results import read_results


def _groups(sizes: list[int]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *sizes])
    return [np.arange(bounds[k], bounds[k + 1]) for k in range(len(sizes))]


def _check_pairs(groups: list[np.ndarray], pairs: np.ndarray, issame: np.ndarray, per_fold: int) -> list[set[int]]:
    """Folds of per_fold genuine then per_fold impostor pairs, correct labels, no pair twice; the identities
    of each fold."""
    owner = np.concatenate([np.full(len(g), k) for k, g in enumerate(groups)])
    assert pairs.shape == (20 * per_fold, 2)
    assert fold_balance(issame, 10).tolist() == [[per_fold, per_fold]] * 10
    assert np.array_equal(issame, np.tile(np.r_[np.ones(per_fold, bool), np.zeros(per_fold, bool)], 10))
    assert np.array_equal(owner[pairs[:, 0]] == owner[pairs[:, 1]], issame)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    assert len({(min(a, b), max(a, b)) for a, b in pairs.tolist()}) == len(pairs)
    return [set(owner[pairs[2 * per_fold * k : 2 * per_fold * (k + 1)]].ravel().tolist()) for k in range(10)]


def test_generated_pairs_are_seeded_balanced_and_fold_disjoint() -> None:
    sizes = [2, 3, 5, 8, 4] * 6  # 30 identities
    groups = _groups(sizes)
    g = generate_pairs(groups, seed=7, max_pairs=6000)
    assert g.fold_identities == "disjoint"
    # the poorest fold (identities of sizes summing to the fewest genuine pairs) caps the pairs per fold
    order = np.random.default_rng([7, 0]).permutation(30)
    caps = [sum(sizes[i] * (sizes[i] - 1) // 2 for i in order[k::10]) for k in range(10)]
    assert g.genuine_per_fold == min(caps)
    folds = _check_pairs(groups, g.pairs, g.issame, g.genuine_per_fold)
    assert all(a.isdisjoint(b) for a, b in combinations(folds, 2))
    again = generate_pairs(groups, seed=7, max_pairs=6000)
    assert np.array_equal(again.pairs, g.pairs)
    assert not np.array_equal(generate_pairs(groups, seed=8, max_pairs=6000).pairs, g.pairs)
    small = generate_pairs(groups, seed=7, max_pairs=40)
    assert small.genuine_per_fold == 2
    _check_pairs(groups, small.pairs, small.issame, 2)


def test_genuine_pairs_spread_over_identities() -> None:
    groups = _groups([40] + [3] * 19)  # one identity with 780 possible pairs, 19 with 3 each
    g = generate_pairs(groups, seed=0, max_pairs=120)
    counts = np.bincount(np.searchsorted(np.cumsum([40] + [3] * 19), g.pairs[g.issame, 0], side="right"), minlength=20)
    # two identities per fold; the big one takes turns with its partner instead of filling the fold alone
    assert g.genuine_per_fold == 6 and counts[0] == 3 and counts.max() == 3


def test_few_identities_share_folds_and_too_few_images_fail() -> None:
    groups = _groups([6, 5, 7, 4, 6])
    g = generate_pairs(groups, seed=1)
    assert g.fold_identities == "shared"
    _check_pairs(groups, g.pairs, g.issame, g.genuine_per_fold)
    assert g.genuine_per_fold == (15 + 10 + 21 + 6 + 15) // 10
    with pytest.raises(FacebenchError, match="too few images"):
        generate_pairs(_groups([2, 2, 3]), seed=0)
    with pytest.raises(FacebenchError, match="at least two identities"):
        generate_pairs(_groups([9]), seed=0)


def test_identification_split() -> None:
    groups = _groups([3, 2, 4, 5, 2, 3, 6, 2, 2, 3])
    s = identification_split(groups, seed=4)
    assert s.n_unenrolled == 2
    again = identification_split(groups, seed=4)
    assert np.array_equal(again.gallery, s.gallery) and np.array_equal(again.probes, s.probes)
    assert len(set(s.gallery_subjects.tolist())) == len(s.gallery) == 8  # one image per enrolled identity
    assert sorted(np.r_[s.gallery, s.probes].tolist()) == list(range(32))  # every image used once
    unenrolled = set(range(10)) - set(s.gallery_subjects.tolist())
    assert len(unenrolled) == 2 and all(k in s.probe_subjects for k in unenrolled)
    for k, images in enumerate(groups):
        assert set(s.probes[s.probe_subjects == k]) | set(s.gallery[s.gallery_subjects == k]) == set(images)


def test_listing_skips_single_image_identities_and_refuses_bad_folders(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", [3, 1, 2, 0])
    (root / "id_00" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    listing = list_folder(root)
    assert listing.identities == ("id_00", "id_02") and listing.skipped == ("id_01", "id_03")
    assert listing.ignored == 1 and len(listing.paths) == 5 and listing.labels.tolist() == [0, 0, 0, 1, 1]
    (root / "id_02" / "broken.jpg").write_bytes(b"this is no jpeg")
    (root / "id_00" / "empty.png").write_bytes(b"")
    with pytest.raises(FacebenchError, match=r"2 unreadable image file\(s\).*broken\.jpg"):
        list_folder(root)
    with pytest.raises(FacebenchError, match="needs at least two identities"):
        list_folder(make_folder(tmp_path / "one", [4, 1]))
    with pytest.raises(FacebenchError, match="not a folder"):
        list_folder(tmp_path / "missing")


def test_folder_spec_from_benchmark_flag(tmp_path: Path) -> None:
    specs = load_benchmarks()
    [spec] = select(f"folder:{tmp_path / 'my photos'}", specs)
    assert spec.name == "folder_my_photos" and spec.kind == "folder"
    assert dict(spec.sources[0].files)["images"] == str(tmp_path / "my photos")
    chosen = select(f"lfw,folder:{tmp_path / 'a'},folder:{tmp_path / 'a'}", specs)
    assert [s.name for s in chosen] == ["lfw", "folder_a"]
    with pytest.raises(FacebenchError, match="already taken"):
        select(f"folder:{tmp_path / 'x' / 'a'},folder:{tmp_path / 'a'}", specs)


def _run(root: Path, out: Path, *extra: str) -> tuple[int, dict]:
    status = main(["-q", "run", "-b", f"folder:{root}", "--out", str(out), "--no-speed", *extra])
    return status, read_results(out)


def test_run_on_a_folder_is_reproducible_and_its_identification_is_right(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces", [4, 3, 5, 4] * 6 + [1], size=16)  # 24 identities and a single image
    (root / "id_00" / "README.txt").write_text("ignored")
    feats = _features(root)
    np.save(tmp_path / "feats.npy", feats)
    status, doc = _run(root, tmp_path / "a", "--features", str(tmp_path / "feats.npy"), "--folder-seed", "3")
    assert status == 0
    entry = doc.benchmarks["folder_faces"]
    assert entry.kind == "folder" and entry.rules["fold_identities"] == "disjoint"
    counts = entry.counts
    assert counts["n_identities"] == 24 and counts["skipped_identities"] == 1 and counts["ignored_files"] == 1
    assert any("skipped 1 identity folder" in w and "id_24" in w for w in entry.warnings)
    with np.load(tmp_path / "a" / "folder_faces.npz") as arrays:
        pairs, labels, ranks = arrays["pair_images"], arrays["labels"], arrays["mate_ranks"]
    per_fold = entry.counts["pairs_per_fold"] // 2
    assert fold_balance(labels, 10).tolist() == [[per_fold, per_fold]] * 10
    listing = list_folder(root)
    assert np.array_equal(listing.labels[pairs[:, 0]] == listing.labels[pairs[:, 1]], labels)
    # identification checked by brute force on the seeded split
    split = identification_split(listing.groups, 3)
    emb = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    hits, mated_best, nonmated_best = 0, [], []
    for p, subject in zip(split.probes, split.probe_subjects):
        scores = [float(np.dot(emb[p].astype(np.float64), emb[g].astype(np.float64))) for g in split.gallery]
        best = int(np.argmax(scores))
        if subject in split.gallery_subjects:
            hits += split.gallery_subjects[best] == subject
            mated_best.append(scores[best] if split.gallery_subjects[best] == subject else -np.inf)
        else:
            nonmated_best.append(max(scores))
    assert entry.value("rank.1") == pytest.approx(hits / len(mated_best), abs=1e-12)
    assert entry.counts["n_mated"] == len(mated_best) == ranks.size and entry.counts["n_nonmated"] == len(nonmated_best)
    nonmated = np.array(nonmated_best)
    allowed = [v for v in nonmated if np.count_nonzero(nonmated >= v) / nonmated.size <= 0.1]
    t = min(allowed)  # the lowest threshold whose FPIR is still <= 0.1
    assert len(allowed) == int(0.1 * nonmated.size) >= 1
    assert entry.extra["identification"]["thresholds"]["1e-01"] == pytest.approx(t, abs=1e-6)
    assert entry.value("tpir_at_fpir.1e-01") == pytest.approx(
        sum(s >= t - 1e-6 for s in mated_best) / len(mated_best), abs=1e-12
    )
    assert entry.thresholds["in_sample"]
    # same seed: identical numbers; another seed: other pairs
    status, again = _run(root, tmp_path / "b", "--features", str(tmp_path / "feats.npy"), "--folder-seed", "3")
    assert again.benchmarks["folder_faces"].metrics == entry.metrics
    _, other = _run(root, tmp_path / "c", "--features", str(tmp_path / "feats.npy"), "--folder-seed", "4")
    with np.load(tmp_path / "c" / "folder_faces.npz") as arrays:
        assert not np.array_equal(arrays["pair_images"], pairs)


def test_run_on_a_folder_with_a_model_and_a_pair_list(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces", [3, 2, 2, 3])
    model = tiny_onnx(tmp_path / "m.onnx")
    lines = ["id_00/img_0.png id_00/img_1.png 1", "id_01/img_0.png id_02/img_0.png 0",
             "id_00/img_0.png id_00/img_2.png 1", "id_03/img_0.png id_01/img_1.png 0"]
    (root / "pairs.txt").write_text("\n".join(lines * 5) + "\n")
    status, doc = _run(root, tmp_path / "o", str(model), "--no-cache", "--workers", "0")
    assert status == 0
    entry = doc.benchmarks["folder_faces"]
    assert entry.counts["n_pairs"] == 20 and entry.rules["pairs"].startswith("pair list pairs.txt")
    assert "fold_identities" not in entry.rules and entry.counts["gallery_size"] == 3
    assert doc.extraction["folder_faces"]["images"] == 10  # every image embedded once


def test_run_reports_folder_errors_per_benchmark(tmp_path: Path) -> None:
    bad = make_folder(tmp_path / "bad", [3, 3])
    (bad / "id_01" / "img_9.jpg").write_bytes(b"\x00" * 50)
    feats = tmp_path / "f.npy"
    np.save(feats, np.zeros((6, 4), np.float32))
    status, doc = _run(bad, tmp_path / "o1", "--features", str(feats))
    assert status == 1 and "unreadable" in doc.failed["folder_bad"] and "img_9.jpg" in doc.failed["folder_bad"]
    lonely = make_folder(tmp_path / "lonely", [5, 1])
    status, doc = _run(lonely, tmp_path / "o2", "--features", str(feats))
    assert status == 1 and "at least two identities" in doc.failed["folder_lonely"]
    status, doc = _run(tmp_path / "nowhere", tmp_path / "o3", "--features", str(feats))
    assert status == 1 and "nowhere" in doc.failed["folder_nowhere"]
