"""The megaface evaluator on the real devkit lists (FaceScrub probes, distractor lists 10 ... 100,000) with
synthetic features, against independent straightforward computations.

The features are exact lattice points: 32 integers with squared norm 32 * 32, divided by 32, so every
feature is a unit vector exactly and every float32 dot product is exactly ``integer / 1024`` whatever the
summation order. Scores therefore tie often (both tie rules are exercised) and the expected numbers can be
counted in integers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facebench.benchmarks import load_benchmarks
from facebench.errors import FacebenchError
from facebench.evaluate.common import RunContext, RunSettings
from facebench.evaluate.megaface import run_benchmark, union_paths
from facebench.io import megaface as mfio
from facebench.extraction.preprocess import resolve_profile
from facebench.results import read_results

Q = 32
SIZES = (10, 100, 1000, 10000, 100000)


def _four_squares(limit: int) -> np.ndarray:
    """For each r <= limit, four non-negative integers whose squares sum to r (Lagrange)."""
    table = np.full((limit + 1, 4), -1, dtype=np.int64)
    top = int(np.sqrt(limit)) + 1
    for a in range(top):
        for b in range(a, top):
            for c in range(b, top):
                for d in range(c, top):
                    s = a * a + b * b + c * c + d * d
                    if s <= limit and table[s, 0] < 0:
                        table[s] = (d, c, b, a)
    assert (table >= 0).all()
    return table


FOUR = _four_squares(Q * Q)


def lattice(signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integer vectors (28 signal + 4 slack dims) with squared norm exactly Q*Q, following ``signal``."""
    x = signal / np.linalg.norm(signal, axis=1, keepdims=True) * 29.0
    w = np.rint(x).astype(np.int64)
    rest = Q * Q - (w * w).sum(axis=1)
    slack = FOUR[rest] * rng.choice([-1, 1], size=(len(w), 4))
    return np.concatenate([w, slack], axis=1)


@dataclass
class World:
    root: Path
    files: dict[str, str]
    probes: mfio.ProbeList
    labels: np.ndarray
    lists: dict[int, list[str]]
    union: list[str]
    probe_int: np.ndarray
    distractor_int: np.ndarray  # rows follow ``union``
    features: Path
    fs_noisy: np.ndarray
    mf_noisy: np.ndarray  # over ``union``


@pytest.fixture(scope="module")
def world(protocol_files, tmp_path_factory) -> World:
    mf = protocol_files / "megaface"
    devkit = mf / "devkit_templatelists"
    files = {"megaface.facescrub_list": str(devkit / mfio.PROBE_LIST_NAME)}
    files.update({f"megaface.list_{s}": str(devkit / mfio.distractor_list_name(s)) for s in SIZES})
    files["megaface.facescrub_noises"] = str(mf / "facescrub_noises.txt")
    files["megaface.megaface_noises"] = str(mf / "megaface_noises.txt")
    probes = mfio.read_probe_list(devkit / mfio.PROBE_LIST_NAME)
    names, labels = probes.identity_index()
    lists = {s: mfio.read_distractor_list(devkit / mfio.distractor_list_name(s)) for s in SIZES}
    union = union_paths(lists)
    fs_names = mfio.read_facescrub_noises(mf / "facescrub_noises.txt")
    mf_names = mfio.read_megaface_noises(mf / "megaface_noises.txt")
    fs_noisy = np.array([mfio.facescrub_noise_key(p) in fs_names for p in probes.paths])
    mf_noisy = np.array([p in mf_names for p in union])
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((len(names), 28))
    spread = rng.uniform(0.3, 0.9, len(names))
    spread[:4] = 4.0  # a few identities with near-zero and negative mate scores (zero vectors then rank)
    signal = centres[labels] + spread[labels, None] * rng.standard_normal((len(labels), 28))
    signal[fs_noisy] = rng.standard_normal((int(fs_noisy.sum()), 28))  # noisy probes: someone else
    probe_int = lattice(signal, rng)
    distractor_int = lattice(rng.standard_normal((len(union), 28)), rng)
    # noisy distractors are near-copies of probes, so the noise rule visibly matters
    distractor_int[mf_noisy] = probe_int[rng.integers(0, len(labels), int(mf_noisy.sum()))]
    root = tmp_path_factory.mktemp("megaface")
    features = root / "features"
    mfio.write_features_dir(features, probe_int / Q, distractor_int / Q, union)
    return World(root, files, probes, labels, lists, union, probe_int, distractor_int, features, fs_noisy, mf_noisy)


def evaluate(world: World, out: Path, noise="none", tie=">=", sizes="", features=None, suffix="", extra_files=None,
             save=None, data_root=None, cache_dir=None, cache=True):
    settings = RunSettings(
        cache_dir=cache_dir,
        cache=cache,
        benchmarks="megaface",
        data_root=data_root or world.root / "no-data-root",
        out=out,
        features=features if features is not None else (world.features if not suffix else None),
        file_overrides={**world.files, **(extra_files or {})},
        save_features=save,
        options={"noise": noise, "tie_rule": tie, "feature_suffix": suffix, "megaface_sizes": sizes},
        progress=False,
    )
    ctx = RunContext(settings, None, resolve_profile(None))
    return run_benchmark(load_benchmarks()["megaface"], ctx)


# ------------------------------------------------------------------ independent computations (exact)


def expected_from_integers(world: World, size: int) -> dict[str, object]:
    """CMC rank 1..10 (both tie rules) and TAR@1e-6 counted directly in integer scores ``1024 * cos``:
    each probe's scores against every distractor of the list, sorted, and every trial's count of
    distractors scoring above (or at least) its mate score read off by binary search."""
    row = {p: i for i, p in enumerate(world.union)}
    distractors = world.distractor_int[[row[p] for p in world.lists[size]]].astype(np.float32).T.copy()
    probes = world.probe_int.astype(np.float32)  # integer products and sums stay exact in float32
    genuine = world.probe_int @ world.probe_int.T
    n = distractors.shape[1]
    k = probes.shape[0] * n // 10**6  # at most k impostors may be accepted at FAR 1e-6
    groups = [np.flatnonzero(world.labels == label) for label in np.unique(world.labels)]
    trial_probe, trial_mate = [], []
    for idx in groups:  # every ordered pair (probe p, mate g) of distinct images of one identity
        p, g = np.meshgrid(idx, idx, indexing="ij")
        trial_probe.append(p[p != g])
        trial_mate.append(genuine[p[p != g], g[p != g]])
    trial_probe, trial_mate = np.concatenate(trial_probe), np.concatenate(trial_mate)
    above = np.empty(trial_probe.size, np.int64)  # #(distractor score > mate score)
    at_least = np.empty(trial_probe.size, np.int64)  # #(distractor score >= mate score)
    tops = []
    span = 2 * Q * Q + 1
    for start in range(0, probes.shape[0], 256):
        scores = (np.rint(probes[start : start + 256] @ distractors) + Q * Q).astype(np.int16)
        scores.sort(axis=1, kind="stable")  # a radix sort for 16-bit integers
        scores = scores.astype(np.int64)
        tops.append(scores[:, n - min(k + 1, n) :] - Q * Q)
        # rows laid end to end with disjoint value ranges: one sorted array, one binary search
        local = np.arange(scores.shape[0])[:, None]
        flat = (scores + local * span).ravel()
        mine = np.flatnonzero((trial_probe >= start) & (trial_probe < start + scores.shape[0]))
        r = trial_probe[mine] - start
        query = r * span + trial_mate[mine] + Q * Q
        above[mine] = (r + 1) * n - np.searchsorted(flat, query, side="right")
        at_least[mine] = (r + 1) * n - np.searchsorted(flat, query, side="left")
    ranks = np.arange(1, 11)
    tau = np.sort(np.concatenate([t.ravel() for t in tops]))[::-1][k]  # the (k+1)-th largest impostor
    pairs = np.concatenate([genuine[np.ix_(idx, idx)][np.triu_indices(idx.size, k=1)] for idx in groups])
    return {
        ">=": [int(h) / trial_probe.size for h in (above[:, None] < ranks).sum(axis=0)],
        ">": [int(h) / trial_probe.size for h in (at_least[:, None] < ranks).sum(axis=0)],
        "tar": int(np.count_nonzero(pairs > tau)) / pairs.size,
        # rank-1 hits and trials per identity (the per-trial arrays the report resamples by identity)
        "rank1_by_identity": {
            ">=": np.bincount(world.labels[trial_probe], weights=above == 0).astype(np.int64),
            ">": np.bincount(world.labels[trial_probe], weights=at_least == 0).astype(np.int64),
        },
        "trials_by_identity": np.bincount(world.labels[trial_probe]),
    }


@pytest.fixture(scope="module")
def integer_expectations(world):
    return {size: expected_from_integers(world, size) for size in SIZES}


@pytest.mark.slow
@pytest.mark.parametrize("tie", [">=", ">"])
def test_cmc_and_tar_match_integer_counting_on_the_real_lists(world, integer_expectations, tmp_path, tie) -> None:
    result = evaluate(world, tmp_path, noise="none", tie=tie)
    for size in SIZES:
        expected = integer_expectations[size]
        assert result.metrics["cmc"][str(size)] == expected[tie], size
        assert result.metrics["rank1"][str(size)] == expected[tie][0]
        # TAR@1e-6 needs 10^6 impostor pairs (probes x distractors); below that it is null, with the reason
        measurable = result.counts["n_probes"] * size >= 10**6
        assert result.metrics["tar_at_far_by_size"][str(size)]["1e-06"] == (expected["tar"] if measurable else None)
        assert (f"tar_at_far_by_size.{size}.1e-06" in result.metrics["unmeasurable"]) == (not measurable)
    assert result.metrics["tar_at_far"] == {"1e-06": integer_expectations[100000]["tar"]}
    identity = result.arrays["trial_identity"]
    for row, size in enumerate(result.arrays["sizes"].tolist()):
        expected = integer_expectations[size]
        hits = result.arrays["rank1_hits"][row]
        np.testing.assert_array_equal(np.bincount(identity, weights=hits).astype(np.int64),
                                      expected["rank1_by_identity"][tie])
        np.testing.assert_array_equal(np.bincount(identity), expected["trials_by_identity"])
    # the genuine pairs accepted at the largest list's threshold: as many as the integer TAR counts
    accepted = result.arrays["genuine_accepted"]
    assert accepted.size == 76817 and int(accepted.sum()) == round(integer_expectations[100000]["tar"] * 76817)
    assert np.array_equal(np.bincount(result.arrays["genuine_identity"]),
                          np.bincount(world.labels) * (np.bincount(world.labels) - 1) // 2)
    assert integer_expectations[100000][">="][0] > integer_expectations[100000][">"][0]  # ties exist
    assert result.counts["n_trials"] == 153634 and result.counts["n_genuine_pairs"] == 76817
    assert result.rules["tie_rule"] == tie and result.rules["noise"] == "none"
    assert result.rules["verification_size"] == 100000


# ------------------------------------------------------------------ noise rules (float reference)


def reference_with_noise(world: World, size: int, noise: str, tie: str, mf_noisy=None) -> tuple[list[float], float]:
    """The noise rule applied by its definition, then a full score matrix and direct counting."""
    mf_noisy = world.mf_noisy if mf_noisy is None else mf_noisy
    probes = (world.probe_int / Q).astype(np.float32)
    if noise != "none":
        for label in np.unique(world.labels[world.fs_noisy]):
            members = world.labels == label
            centre = probes[members & ~world.fs_noisy].astype(np.float64).sum(axis=0)
            probes[members & world.fs_noisy] = (centre / np.linalg.norm(centre)).astype(np.float32)
    row = {p: i for i, p in enumerate(world.union)}
    rows = np.array([row[p] for p in world.lists[size]])
    distractors = (world.distractor_int[rows] / Q).astype(np.float32)
    noisy = mf_noisy[rows]
    if noise == "insightface":
        distractors = distractors[~noisy]
    elif noise == "facexzoo":
        distractors[noisy] = 0.0
    scores = probes @ distractors.T
    genuine = probes @ probes.T
    hits, n_trials, pairs = np.zeros(10), 0, []
    for label in np.unique(world.labels):
        idx = np.flatnonzero(world.labels == label)
        for g in idx:
            for p in idx[idx != g]:
                s = genuine[p, g]
                beating = np.count_nonzero(scores[p] > s) if tie == ">=" else np.count_nonzero(scores[p] >= s)
                hits += beating < np.arange(1, 11)
                n_trials += 1
        i, j = np.triu_indices(idx.size, k=1)
        pairs.append(genuine[idx[i], idx[j]])
    impostors = np.sort(scores.ravel())[::-1]
    tau = impostors[impostors.size // 10**6]
    pairs = np.concatenate(pairs)
    return [h / n_trials for h in hits], int(np.count_nonzero(pairs > tau)) / pairs.size


@pytest.mark.parametrize("noise,tie", [("insightface", ">="), ("facexzoo", ">")])
def test_noise_rules_match_their_definitions(world, tmp_path, noise, tie) -> None:
    sizes = (10000,)
    result = evaluate(world, tmp_path, noise=noise, tie=tie, sizes="10000")
    cmc, tar = reference_with_noise(world, 10000, noise, tie)
    assert result.metrics["cmc"]["10000"] == cmc
    assert result.metrics["tar_at_far"]["1e-06"] == tar
    assert result.counts["n_facescrub_noisy"] == 24
    assert result.counts["n_megaface_noisy"] == {"10000": 7}
    assert result.counts["n_distractors_used"] == {"10000": 10000 - 7 if noise == "insightface" else 10000}
    assert result.rules["noise"] == noise and list(result.metrics["rank1"]) == [str(s) for s in sizes]


def test_zero_vectors_and_exclusion_differ_where_mate_scores_are_negative(world, tmp_path) -> None:
    noisy_paths = world.lists[10][2:5]
    noise_file = tmp_path / "mf_noises.txt"
    mfio.write_noise_list(noise_file, noisy_paths)
    mf_noisy = np.isin(np.array(world.union, dtype=object), np.array(noisy_paths, dtype=object))
    cmc = {}
    for noise in ("insightface", "facexzoo", "none"):
        result = evaluate(world, tmp_path / noise, noise=noise, sizes="10",
                          extra_files={"megaface.megaface_noises": str(noise_file)})
        cmc[noise] = result.metrics["cmc"]["10"]
        assert cmc[noise] == reference_with_noise(world, 10, noise, ">=", mf_noisy)[0]
        assert result.metrics["tar_at_far"]["1e-06"] is None  # 3,530 x 10 impostor pairs cannot resolve 1e-6
    assert cmc["insightface"] != cmc["facexzoo"] != cmc["none"] != cmc["insightface"]


# ------------------------------------------------------------------ results, CLI, sources


def test_cli_run_writes_results_and_devkit_cmc_files(world, tmp_path) -> None:
    from facebench.cli import main

    out = tmp_path / "run"
    argv = ["run", "--features", str(world.features), "-b", "megaface", "--data-root", str(tmp_path), "--out", str(out),
            "--megaface-sizes", "10,1000", "--no-progress", "-q"] if False else [
        "-q", "run", "--features", str(world.features), "-b", "megaface", "--data-root", str(tmp_path),
        "--out", str(out), "--megaface-sizes", "10,1000", "--no-progress"]
    for key, value in world.files.items():
        argv += ["--file", f"{key}={value}"]
    assert main(argv) == 0
    doc = read_results(out)
    entry = doc.benchmarks["megaface"]
    assert [p for p in entry.metrics if p.startswith("rank1.")] == ["rank1.10", "rank1.1000"]
    assert set(entry.details["cmc"]) == {"10", "1000"} and len(entry.details["cmc"]["10"]) == 10
    assert [p for p in entry.metrics if p.startswith("tar_at_far.")] == ["tar_at_far.1e-06"]
    assert entry.rules["noise"] == "insightface" and entry.rules["tie_rule"] == ">="
    assert entry.columns == {"rank1.1000000": "MegaFace Id", "tar_at_far.1e-06": "MegaFace Ver"}
    for size in ("10", "1000"):
        devkit = json.loads((out / f"cmc_facescrub_megaface_facebench_{size}_1.json").read_text())
        assert devkit["cmc"] == [list(range(10)), entry.details["cmc"][size]]
        fpr, tpr = devkit["roc"]
        assert fpr[0] == 0.0 and fpr == sorted(fpr) and tpr == sorted(tpr)
    with np.load(out / "megaface.npz") as arrays:
        assert arrays["sizes"].tolist() == [10, 1000]
        np.testing.assert_array_equal(arrays["cmc"][1], entry.details["cmc"]["1000"])


@pytest.mark.slow
def test_matio_files_give_the_same_numbers_and_convert(world, tmp_path) -> None:
    sizes = "10,100,1000"
    small = union_paths({s: world.lists[s] for s in (10, 100, 1000)})
    row = {p: i for i, p in enumerate(world.union)}
    fs_root, mf_root = tmp_path / "fs", tmp_path / "mf"
    mfio.write_matio_features(fs_root, world.probes.paths, world.probe_int / Q, "_x.bin")
    mfio.write_matio_features(mf_root, small, world.distractor_int[[row[p] for p in small]] / Q, "_x.bin")
    roots = {"megaface.facescrub_features": str(fs_root), "megaface.megaface_features": str(mf_root)}
    reference = evaluate(world, tmp_path / "a", sizes=sizes)
    converted = tmp_path / "converted"
    result = evaluate(world, tmp_path / "b", sizes=sizes, suffix="_x.bin", extra_files=roots, save=converted)
    assert result.metrics == reference.metrics and result.rules["features"] == "matio"
    assert (tmp_path / "b" / "cmc_facescrub_megaface_x_1000_1.json").is_file()
    again = evaluate(world, tmp_path / "c", sizes=sizes, features=converted)
    assert again.metrics == reference.metrics
    # and back: --features DIR + --feature-suffix + --save-features writes the devkit's matio trees
    evaluate(world, tmp_path / "d", sizes="10", suffix="_y.bin", features=world.features, save=tmp_path / "export")
    p = world.lists[10][3]
    np.testing.assert_array_equal(
        mfio.read_matio(tmp_path / "export" / "MegaFace_Features" / f"{p}_y.bin"), world.distractor_int[row[p]] / Q
    )
    (mf_root / f"{small[5]}_x.bin").unlink()
    with pytest.raises(FacebenchError, match=rf"{small[5]}_x\.bin: feature file not found \(list entry 5"):
        evaluate(world, tmp_path / "e", sizes=sizes, suffix="_x.bin", extra_files=roots)


def test_feature_errors_name_the_first_offending_path(world, tmp_path) -> None:
    bad = tmp_path / "bad"
    keep = world.lists[100]
    drop = keep[17]
    rows = [i for i, p in enumerate(world.union) if p != drop]
    mfio.write_features_dir(bad, world.probe_int / Q, world.distractor_int[rows] / Q, [world.union[i] for i in rows])
    with pytest.raises(FacebenchError, match=rf"megaface_features_list\.json_100_1: path\[17\] {drop} has no feature row"):
        evaluate(world, tmp_path / "o", sizes="10,100", features=bad)
    mfio.write_features_dir(bad, world.probe_int[:-1] / Q, world.distractor_int / Q, world.union)
    with pytest.raises(FacebenchError, match=r"facescrub\.npy: has 3529 rows but the probe list has 3530 images"):
        evaluate(world, tmp_path / "o", sizes="10", features=bad)
    np.save(bad / "facescrub.npy", (world.probe_int / Q)[:, :16])
    with pytest.raises(FacebenchError, match=r"megaface\.npy: 32-dim features but .*facescrub\.npy has 16-dim"):
        evaluate(world, tmp_path / "o", sizes="10", features=bad)
    nan = (world.distractor_int / Q).astype(np.float32)
    nan[world.union.index(world.lists[10][2])] = np.nan
    mfio.write_features_dir(bad, world.probe_int / Q, nan, world.union)
    with pytest.raises(FacebenchError, match=rf"megaface\.npy: row \d+ \({world.lists[10][2]}\) contains NaN"):
        evaluate(world, tmp_path / "o", sizes="10", features=bad)


def test_a_repeated_list_path_is_an_error_naming_the_list(world, tmp_path) -> None:
    """The evaluator reads the lists without the reader's own repeat check and finds a repeat from the feature
    rows: the error is the reader's, naming the list file, the repeat and its first occurrence."""
    repeated = list(world.lists[100])
    repeated[40] = repeated[3]
    bad = tmp_path / mfio.distractor_list_name(100)
    mfio.write_distractor_list(bad, repeated)
    files = {**world.files, "megaface.list_100": str(bad)}
    message = rf"{bad.name}: path\[40\] '{repeated[3]}' repeats path\[3\]"
    with pytest.raises(FacebenchError, match=message):
        evaluate(world, tmp_path / "o", sizes="10,100", extra_files=files)
    with pytest.raises(FacebenchError, match=message):
        mfio.read_distractor_list(bad)


def test_missing_inputs_are_clear_errors(world, tmp_path) -> None:
    files = {k: v for k, v in world.files.items() if k != "megaface.list_1000000"}
    with pytest.raises(FacebenchError, match=r"no distractor list of size 1000000 at .*megaface_features_list\.json_1000000_1"):
        evaluate(world, tmp_path, sizes="1000000", extra_files=files)
    no_noise = {**world.files, "megaface.megaface_noises": str(tmp_path / "absent.txt")}
    settings = RunSettings("megaface", tmp_path, tmp_path, features=world.features, file_overrides=no_noise,
                           options={"noise": "insightface", "megaface_sizes": "10"}, progress=False)
    with pytest.raises(FacebenchError, match=r"--noise insightface needs .*absent\.txt .* or use --noise none"):
        run_benchmark(load_benchmarks()["megaface"], RunContext(settings, None, resolve_profile(None)))
    with pytest.raises(FacebenchError, match="not a devkit list size"):
        evaluate(world, tmp_path, sizes="5000")


def test_default_layout_under_the_data_root(world, tmp_path) -> None:
    root = tmp_path / "data"
    lists = root / "megaface" / "devkit" / "templatelists"
    paths = list(world.probes.paths[:60])
    ids = list(world.probes.ids[:60])
    mfio.write_probe_list(lists / mfio.PROBE_LIST_NAME, paths, ids)
    mfio.write_distractor_list(lists / mfio.distractor_list_name(10), world.lists[10])
    mfio.write_noise_list(root / "megaface" / "facescrub_noises.txt", [])
    mfio.write_noise_list(root / "megaface" / "megaface_noises.txt", [])
    feats = tmp_path / "f"
    mfio.write_features_dir(feats, world.probe_int[:60] / Q, world.distractor_int / Q, world.union)
    settings = RunSettings("megaface", root, tmp_path / "out", features=feats, progress=False)
    result = run_benchmark(load_benchmarks()["megaface"], RunContext(settings, None, resolve_profile(None)))
    assert list(result.metrics["rank1"]) == ["10"] and result.counts["n_probes"] == 60
    assert any("n_probes is 60, the official list has 3530" in w for w in result.warnings)
    assert any("not the known official" in w for w in result.warnings)  # a different probe list file


# ------------------------------------------------------------------ extraction from images


def test_extraction_from_images_matches_given_features_and_saves_both_layouts(tmp_path) -> None:
    from threadpoolctl import threadpool_limits

    # the test encoder's tiny products stall in multi-threaded BLAS on a busy machine
    with threadpool_limits(1, user_api="blas"):
        _extraction_from_images(tmp_path)


def _extraction_from_images(tmp_path) -> None:
    import cv2
    from fakes import LinearEncoder, png_bytes, random_images

    from facebench.extraction.extractor import FeatureExtractor, ModelSettings
    from facebench.extraction.extract import ExtractOptions, extract_embeddings
    from facebench.extraction.images import ImageList

    root = tmp_path / "data"
    lists = root / "megaface" / "devkit" / "templatelists"
    probe_paths = [f"P_{i}/P_{i}_{j}.png" for i in range(3) for j in range(3)]
    probe_ids = [p.split("/")[0] for p in probe_paths]
    distractor_paths = [f"10{i}/{i}@N00/{i}_0.jpg" for i in range(10)]
    mfio.write_probe_list(lists / mfio.PROBE_LIST_NAME, probe_paths, probe_ids)
    mfio.write_distractor_list(lists / mfio.distractor_list_name(10), distractor_paths)
    mfio.write_noise_list(root / "megaface" / "facescrub_noises.txt", ["P_1_2.png"])
    mfio.write_noise_list(root / "megaface" / "megaface_noises.txt", [])
    images = random_images(len(probe_paths) + len(distractor_paths), seed=3)
    for rel, image in zip(probe_paths, images):
        (root / "megaface" / "FaceScrub" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "megaface" / "FaceScrub" / rel).write_bytes(png_bytes(image))
    # one raw FaceScrub image with landmarks (FaceX-Zoo names the .jpg original of the devkit's .png)
    raw = cv2.resize(images[0], (150, 150))
    (root / "megaface" / "FaceScrub" / "P_0" / "P_0_0.jpg").write_bytes(png_bytes(raw))
    points = np.array([[51.0, 69.0], [99.0, 69.0], [75.0, 96.0], [56.0, 124.0], [95.0, 124.0]])
    (root / "megaface" / "facescrub_landmarks.txt").write_text(
        "P_0/P_0_0.jpg " + " ".join(f"{v:g}" for v in points.ravel()) + "\n"
    )
    for rel, image in zip(distractor_paths, images[len(probe_paths) :]):
        (root / "megaface" / "MegaFace" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "megaface" / "MegaFace" / rel).write_bytes(png_bytes(image))
    encoder = LinearEncoder(dim=16, seed=1)
    profile = resolve_profile(None)
    save = tmp_path / "saved"
    settings = RunSettings("megaface", root, tmp_path / "out", batch_size=4, workers=0, cache=False, save_features=save,
                           options={"noise": "insightface", "feature_suffix": "_lin.bin"}, progress=False)
    model = ModelSettings(Path("linear.pt"), batch_size=4, workers=0, cache=False, progress=False)
    embedder = FeatureExtractor(model, encoder, profile, sha256="0" * 64)
    result = run_benchmark(load_benchmarks()["megaface"], RunContext(settings, embedder, profile))
    assert result.rules["features"] == "extracted" and result.counts["n_facescrub_noisy"] == 1

    landmarks = np.full((len(probe_paths), 5, 2), np.nan)
    landmarks[0] = points
    fs_images = [str(root / "megaface" / "FaceScrub" / p) for p in probe_paths]
    fs_images[0] = str(root / "megaface" / "FaceScrub" / "P_0" / "P_0_0.jpg")
    options = ExtractOptions(batch_size=4, workers=0, progress=False)
    probes = extract_embeddings(encoder, ImageList("fs", paths=fs_images, landmarks=landmarks), profile, options)
    mf_images = ImageList("mf", paths=[str(root / "megaface" / "MegaFace" / p) for p in distractor_paths])
    distractors = extract_embeddings(encoder, mf_images, profile, options)
    np.testing.assert_array_equal(np.load(save / "facescrub.npy"), probes)
    np.testing.assert_array_equal(np.load(save / "megaface.npy"), distractors)
    assert mfio.read_path_list(save / "megaface.txt") == distractor_paths
    np.testing.assert_array_equal(
        mfio.read_matio(save / "MegaFace_Features" / f"{distractor_paths[4]}_lin.bin"),
        distractors[4] / np.float32(np.sqrt(np.sum(distractors[4].astype(np.float64) ** 2))),
    )
    given = tmp_path / "given"
    mfio.write_features_dir(given, probes, distractors, distractor_paths)
    settings = RunSettings("megaface", root, tmp_path / "out2", features=given, options={"noise": "insightface"},
                           progress=False)
    again = run_benchmark(load_benchmarks()["megaface"], RunContext(settings, None, profile))
    assert again.metrics == result.metrics


@pytest.mark.parametrize("chunk_rows, workers", [(100, 1), (700, 3), (2048, 2)])
def test_streamed_top_scores_equal_sorting_every_list(chunk_rows, workers) -> None:
    """Lists that are not nested (the largest misses rows that smaller ones use, so it takes the block with
    its other rows at -inf), excluded and zeroed distractors, blocks that are not whole groups."""
    from facebench.evaluate.megaface import ArrayRows, Distractors, stream_top_scores

    rng = np.random.default_rng(8)
    n, dim = 5000, 8
    probes = rng.standard_normal((30, dim)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    array = rng.standard_normal((n, dim)).astype(np.float32)
    members = {4900: np.zeros(n, bool), 300: np.zeros(n, bool), 40: np.zeros(n, bool)}
    for size, m in members.items():
        m[rng.choice(n, size, replace=False)] = True
    members[40][~members[4900]] = False
    members[40][np.flatnonzero(~members[4900])[:3]] = True  # 3 rows outside the largest list
    excluded = rng.random(n) < 0.03
    zeroed = (rng.random(n) < 0.02) & ~excluded
    d = Distractors(ArrayRows(array, "mem"), np.arange(n), [str(i) for i in range(n)], members)
    overall = {4900: 500, 300: 60, 40: 12}
    tops = stream_top_scores(probes, d, excluded, zeroed, 10, overall, chunk_rows=chunk_rows, workers=workers)
    unit = array / np.linalg.norm(array, axis=1, keepdims=True)
    unit[zeroed] = 0.0
    for size, m in members.items():
        scores = probes @ unit[m & ~excluded].T
        expected = np.full((30, 10), -np.inf, dtype=np.float32)
        expected[:, : min(10, scores.shape[1])] = -np.sort(-scores, axis=1)[:, :10]
        np.testing.assert_allclose(tops[size].per_probe, expected, rtol=0, atol=2e-6)
        overall_expected = np.sort(scores.ravel())[::-1][: overall[size]]
        np.testing.assert_allclose(tops[size].overall, overall_expected, rtol=0, atol=2e-6)
        assert tops[size].overall.size == min(overall[size], scores.size)


def test_worker_threads_give_the_sequential_result_and_the_first_error() -> None:
    from facebench.evaluate.megaface import ArrayRows, Distractors, stream_top_scores

    rng = np.random.default_rng(5)
    probes = rng.standard_normal((40, 8)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    array = rng.standard_normal((5000, 8)).astype(np.float32)
    paths = [f"{i}" for i in range(5000)]
    members = {5000: np.ones(5000, bool), 100: np.zeros(5000, bool)}
    members[100][rng.choice(5000, 100, replace=False)] = True
    excluded = np.zeros(5000, bool)
    excluded[::97] = True
    zeroed = np.zeros(5000, bool)
    zeroed[5::89] = True
    d = Distractors(ArrayRows(array, "mem"), np.arange(5000), paths, members)
    before = array.copy()
    one = stream_top_scores(probes, d, excluded, zeroed, 10, {5000: 300, 100: 20}, chunk_rows=128, workers=1)
    four = stream_top_scores(probes, d, excluded, zeroed, 10, {5000: 300, 100: 20}, chunk_rows=128, workers=4)
    np.testing.assert_array_equal(array, before)  # blocks are views of the array: normalised as copies
    for size in members:
        np.testing.assert_array_equal(one[size].per_probe, four[size].per_probe)
        np.testing.assert_array_equal(one[size].overall, four[size].overall)
    array[[4000, 700, 2500]] = np.nan
    for workers in (1, 4):
        with pytest.raises(FacebenchError, match=r"mem: row 700 \(700\) contains NaN"):
            stream_top_scores(probes, d, excluded, zeroed, 10, {5000: 300}, chunk_rows=128, workers=workers)


def test_the_list_to_row_mapping_is_kept_by_content(world, tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    tables = cache / "tables"
    first = evaluate(world, tmp_path / "a", noise="insightface", sizes="10,100,10000", cache_dir=cache)
    assert len(list(tables.glob("*/*/manifest.json"))) == 1
    import facebench.evaluate.common as common
    import facebench.evaluate.megaface as em

    hashed: list[Path] = []
    sha256_file = em.sha256_file
    with monkeypatch.context() as m:  # read back: neither megaface.txt nor a list file is parsed
        for name in ("read_path_list", "read_distractor_list"):
            m.setattr(mfio, name, lambda *a, **k: pytest.fail("parsed although the mapping is cached"))
        for module in (em, common):  # the table cache's key and the run's provenance
            m.setattr(module, "sha256_file", lambda path: (hashed.append(Path(path)), sha256_file(path))[1])
        again = evaluate(world, tmp_path / "b", noise="insightface", sizes="10,100,10000", cache_dir=cache)
    assert len(hashed) == len(set(hashed)) and len(hashed) >= 5  # each input read once for its sha256
    assert again.metrics == first.metrics and again.counts == first.counts
    np.testing.assert_array_equal(again.arrays["cmc"], first.arrays["cmc"])
    # a row's path is still named in an error (megaface.txt read when it is needed)
    bad = tmp_path / "bad"
    nan = (world.distractor_int / Q).astype(np.float32)
    nan[world.union.index(world.lists[100][5])] = np.nan
    mfio.write_features_dir(bad, world.probe_int / Q, nan, world.union)
    with pytest.raises(FacebenchError, match=rf"megaface\.npy: row \d+ \({world.lists[100][5]}\) contains NaN"):
        evaluate(world, tmp_path / "c", noise="insightface", sizes="10,100,10000", features=bad, cache_dir=cache)
    assert len(list(tables.glob("*/*/manifest.json"))) == 1  # same files, same rows: the same entry
    # another noise list (its content): another entry, and the numbers of that list
    noise = tmp_path / "noise.txt"
    kept = mfio.read_megaface_noises(world.files["megaface.megaface_noises"])
    mfio.write_noise_list(noise, sorted(kept - set(world.lists[10000])))
    other = evaluate(world, tmp_path / "d", noise="insightface", sizes="10,100,10000", cache_dir=cache,
                     extra_files={"megaface.megaface_noises": str(noise)})
    fresh = evaluate(world, tmp_path / "e", noise="insightface", sizes="10,100,10000", cache=False,
                     extra_files={"megaface.megaface_noises": str(noise)})
    assert len(list(tables.glob("*/*/manifest.json"))) == 2
    assert other.counts["n_megaface_noisy"]["10000"] == 0 != first.counts["n_megaface_noisy"]["10000"]
    assert other.metrics == fresh.metrics and other.counts == fresh.counts

