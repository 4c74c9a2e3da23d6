"""IJB 1:1 and 1:N end to end (`facebench run --features`) on synthetic sets in the exact meta formats,
against independent straightforward code: template loops, per-pair dot products, sklearn's ROC with the
insightface read-off, per-probe open-set loops."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from facebench.benchmarks import load_benchmarks
from facebench.cli import main as cli_main
from facebench.extraction.extractor import FeatureExtractor, ModelSettings
from facebench.errors import FacebenchError
from facebench.evaluate.common import RunContext, RunSettings
from facebench.evaluate.ijb import insightface_mode, run_ijb_1to1
from facebench.extraction.images import ARCFACE_TEMPLATE, align, arcface_chip, read_image
from facebench.io import ijb
from facebench.extraction.preprocess import resolve_profile
from tests._ijbworld import World, build_world, run_cli
from tests._results import group
from tests.fakes import LinearEncoder

FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


# ----------------------------------------------------------------------------- independent reference


def reference_templates(world: World, per_image_l2: bool = False, detector: bool = True) -> dict[int, np.ndarray]:
    """Template features the obvious way: for each template, for each media, the mean; sum; normalise."""
    lines = (world.root / "IJBC/meta/ijbc_name_5pts_score.txt").read_text().splitlines()
    file_scores = [float(line.split(" ")[-1]) for line in lines]  # the detector score as the file gives it
    out = {}
    for t in set(world.templates.tolist()):
        total = np.zeros(world.feats.shape[1])
        rows = [i for i in range(len(world.names)) if world.templates[i] == t]
        for m in sorted({int(world.medias[i]) for i in rows}):
            media_rows = [i for i in rows if world.medias[i] == m]
            acc = np.zeros(world.feats.shape[1])
            for i in media_rows:
                x = world.feats[i].astype(np.float64)
                if per_image_l2:
                    x = x / math.sqrt(float(np.dot(x, x)))
                if detector:
                    x = x * file_scores[i]
                acc += x
            total += acc / len(media_rows)
        out[t] = total / math.sqrt(float(np.dot(total, total)))
    return out


def reference_scores(world: World, feats: dict[int, np.ndarray]) -> np.ndarray:
    return np.array([sum(feats[a][k] * feats[b][k] for k in range(len(feats[a]))) for a, b in zip(world.t1, world.t2)])


def insightface_tar(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ijb_11.py: sklearn roc_curve, arrays reversed, the point of nearest FPR (first in reversed order)."""
    fpr, tpr, _ = sklearn.metrics.roc_curve(labels, scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    out = {}
    for target in FARS:
        _, index = min(zip(abs(fpr - target), range(len(fpr))))
        out[f"{target:.0e}"] = float(tpr[index])
    return measurable_only(out, int(np.sum(~labels)))


def measurable_only(rates: dict[str, float], n_negatives: int) -> dict[str, float | None]:
    """None at every target below 1 / n_negatives (what the evaluator reports there)."""
    return {k: (v if float(k) * n_negatives >= 1 else None) for k, v in rates.items()}


def le_tar(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Highest TPR over every threshold (each distinct score) whose FPR is <= the target."""
    genuine, impostor = scores[labels], scores[~labels]
    out = {}
    for target in FARS:
        best = 0.0
        for t in np.unique(scores):
            if np.mean(impostor >= t) <= target:
                best = max(best, float(np.mean(genuine >= t)))
        out[f"{target:.0e}"] = best
    return measurable_only(out, int(np.sum(~labels)))


def open_set_reference(feats, probes, gallery, rule="insightface"):
    """Per-probe loops: rank of the mate, best non-mated score, then rank rates and TPIR at FPIR by ``rule``
    (PROTOCOLS 3, written out; None at an FPIR below 1 / non-mated searches)."""
    subjects = {s for _, s in gallery}
    mate_ranks, mate_scores, nonmated = [], [], []
    for p, ps in probes:
        scores = {s: float(np.dot(feats[p], feats[g])) for g, s in gallery}
        if ps in subjects:
            mate = scores[ps]
            mate_scores.append(mate)
            mate_ranks.append(1 + sum(1 for s, v in scores.items() if s != ps and v >= mate))
        else:
            nonmated.append(max(scores.values()))
    out = {f"rank{k}": sum(r <= k for r in mate_ranks) / len(mate_ranks) for k in (1, 5, 10)}
    out["tpir_at_fpir"] = {}
    n = len(nonmated)
    for target in (1e-2, 1e-1):
        if target * n < 1:
            out["tpir_at_fpir"][f"{target:.0e}"] = None
            continue
        if rule == "insightface":  # evaluation_1N: t = sorted-descending[max(int(N*f) - 1, 0)], both strict
            t = sorted(nonmated, reverse=True)[max(int(n * target) - 1, 0)]
            hits = sum(1 for r, v in zip(mate_ranks, mate_scores) if r == 1 and v > t)
        elif rule == "ge":  # the lowest non-mated value whose share >= it is <= f; mates >= t
            candidates = [c for c in sorted(set(nonmated)) if sum(v >= c for v in nonmated) / n <= target]
            t = candidates[0] if candidates else np.nextafter(max(nonmated), np.inf)
            hits = sum(1 for r, v in zip(mate_ranks, mate_scores) if r == 1 and v >= t)
        else:  # best: the most rank-1 mates over every threshold (accept >= v) whose FPIR <= f
            hits = 0
            for v in sorted(set(nonmated + mate_scores)) + [np.inf]:
                if sum(x >= v for x in nonmated) / n <= target:
                    hits = max(hits, sum(1 for r, m in zip(mate_ranks, mate_scores) if r == 1 and m >= v))
        out["tpir_at_fpir"][f"{target:.0e}"] = hits / len(mate_ranks)
    return out


# ----------------------------------------------------------------------------------------- helpers


def linear_embedder(encoder: LinearEncoder) -> FeatureExtractor:
    model = ModelSettings(Path("linear.pt"), batch_size=4, workers=0, cache=False, progress=False)
    return FeatureExtractor(model, encoder, resolve_profile(None), sha256="0" * 64)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("ijb"))


# ------------------------------------------------------------------------------------------- tests


def test_1to1_end_to_end_matches_reference(world: World, tmp_path: Path) -> None:
    status, doc = run_cli(world, "ijbc", tmp_path / "out")
    assert status == 0, doc.failed
    entry = doc.benchmarks["ijbc"]
    feats = reference_templates(world)
    scores = reference_scores(world, feats)
    labels = world.label.astype(bool)
    want = insightface_tar(labels, scores)
    assert group(entry, "tar_at_far") == want
    assert entry.value("tar_at_far.1e-04") == want["1e-04"]
    assert entry.value("auc") == pytest.approx(sklearn.metrics.roc_auc_score(labels, scores), abs=1e-12)
    # the saved ROC: same points as sklearn on the reference scores; thresholds are pair scores (<= 1e-6 apart)
    arrays = np.load(tmp_path / "out" / "ijbc.npz")
    fpr, tpr, thr = sklearn.metrics.roc_curve(labels, scores)
    assert np.array_equal(arrays["roc_fpr"], fpr) and np.array_equal(arrays["roc_tpr"], tpr)
    assert np.max(np.abs(arrays["roc_thresholds"][1:] - thr[1:])) <= 1e-6
    # operating points: counts at the threshold and exact Clopper-Pearson intervals
    n_gen = int(labels.sum())
    for key, point in entry.details["operating_points"].items():
        t = point["threshold"]
        t = np.inf if t is None else t
        assert point["genuine_accepted"] == int(np.sum(scores[labels] >= t - 1e-12))
        assert point["impostors_accepted"] == int(np.sum(scores[~labels] >= t - 1e-12))
        k = point["genuine_accepted"]
        low = 0.0 if k == 0 else scipy.stats.beta.ppf(0.025, k, n_gen - k + 1)
        high = 1.0 if k == n_gen else scipy.stats.beta.ppf(0.975, k + 1, n_gen - k)
        assert point["tar_ci95"] == pytest.approx([low, high], abs=1e-12)
        assert point["tar"] == entry.value(f"tar_at_far.{key}")
        assert entry.metrics[f"tar_at_far.{key}"].interval == tuple(point["tar_ci95"])
    assert entry.counts["n_pairs"] == len(world.label) and entry.counts["n_genuine"] == n_gen
    assert entry.counts["n_images"] == len(world.names)
    assert entry.counts["n_templates"] == len(set(world.templates.tolist()))
    assert entry.rules["tar_at_far"] == "nearest" and entry.rules["test_mode"] == "N1D1F?"
    assert any("not the official set" in w and "n_pairs" in w for w in entry.warnings)
    assert set(entry.inputs) == {"ijbc_face_tid_mid.txt", "ijbc_name_5pts_score.txt", "ijbc_template_pair_label.txt"}


def test_1to1_flags_and_le_rule(world: World, tmp_path: Path) -> None:
    status, doc = run_cli(world, "ijbc", tmp_path / "out", "--per-image-l2", "--no-detector-weight", "--tar-rule", "le")
    assert status == 0, doc.failed
    entry = doc.benchmarks["ijbc"]
    scores = reference_scores(world, reference_templates(world, per_image_l2=True, detector=False))
    labels = world.label.astype(bool)
    assert group(entry, "tar_at_far") == le_tar(labels, scores)
    assert entry.value("auc") == pytest.approx(sklearn.metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert entry.rules["per_image_l2"] is True and entry.rules["detector_weight"] is False
    assert entry.rules["test_mode"] == "N0D0F?" and entry.rules["tar_at_far"] == "le"


@pytest.mark.parametrize("rule", ["insightface", "ge", "best"])
def test_1n_standard_per_gallery_and_mean(world: World, tmp_path: Path, rule: str) -> None:
    fdir = tmp_path / "feats"
    fdir.mkdir()
    (fdir / "ijbc.npy").write_bytes(world.features.read_bytes())  # 1:1 and 1:N share DIR/ijbc.npy
    extra = () if rule == "insightface" else ("--tpir-rule", rule)
    status, doc = run_cli(world, "ijbc,ijbc_1n", tmp_path / "out", *extra, features=fdir)
    assert status == 0, doc.failed
    entry = doc.benchmarks["ijbc_1n"]
    feats = reference_templates(world)
    per = {name: open_set_reference(feats, world.probes, members, rule) for name, members in world.galleries.items()}
    for name in ("G1", "G2"):
        got = entry.details["per_gallery"][name]
        for k in ("rank1", "rank5", "rank10"):
            assert got[k] == per[name][k]
        assert got["tpir_at_fpir"] == per[name]["tpir_at_fpir"]
        assert got["n_mated"] == 2 * len(world.galleries[name])
        assert got["n_nonmated"] == len(world.probes) - got["n_mated"]
    for k in ("rank1", "rank5", "rank10"):
        assert entry.value(k) == pytest.approx((per["G1"][k] + per["G2"][k]) / 2, abs=1e-15)
    for f in ("1e-02", "1e-01"):
        values = [per["G1"]["tpir_at_fpir"][f], per["G2"]["tpir_at_fpir"][f]]
        if None in values:
            assert entry.value(f"tpir_at_fpir.{f}") is None and entry.metrics[f"tpir_at_fpir.{f}"].unmeasurable
        else:
            assert entry.value(f"tpir_at_fpir.{f}") == pytest.approx(sum(values) / 2, abs=1e-15)
            accepted = [entry.details["per_gallery"][g]["nonmated_accepted"][f] for g in ("G1", "G2")]
            if min(accepted) < 10:  # few events: the mean column carries the pooled counts' intervals
                few = entry.metrics[f"tpir_at_fpir.{f}"].few_events
                assert few is not None and few.negatives_accepted == sum(accepted)
    assert entry.rules["tpir_rule"].startswith(f"{rule}: ")
    assert any("not measurable" in w for w in entry.warnings) == any(
        v is None for g in per.values() for v in g["tpir_at_fpir"].values()
    )
    assert entry.rules["ijb_1n"] == "standard" and entry.counts["n_probe_templates"] == len(world.probes)
    assert entry.counts["n_gallery1_templates"] == 15 and entry.counts["n_gallery2_templates"] == 15
    arrays = np.load(tmp_path / "out" / "ijbc_1n.npz")
    assert arrays["G1_cmc"][0] == pytest.approx(per["G1"]["rank1"], abs=1e-15)
    table = (tmp_path / "out" / "table.md").read_text()
    assert "IJB-C Rank-1 [standard]" in table and "[nearest]" in table
    assert f"[standard, TPIR {rule}]" in table


def test_1n_legacy_rule(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w", seed=5, n_unknown=0)
    status, doc = run_cli(world, "ijbc_1n", tmp_path / "out", "--ijb-1n-rule", "legacy")
    assert status == 0, doc.failed
    entry = doc.benchmarks["ijbc_1n"]
    feats = reference_templates(world)
    gallery = world.galleries["G1"] + world.galleries["G2"]
    ranks, mates, nonmates = [], [], []
    for p, ps in world.probes:
        scores = {s: float(np.dot(feats[p], feats[g])) for g, s in gallery}
        ranks.append(1 + sum(1 for s, v in scores.items() if s != ps and v > scores[ps]))
        mates.append(scores[ps])
        nonmates += [v for s, v in scores.items() if s != ps]
    n = len(world.probes)
    assert entry.value("rank1") == sum(r == 1 for r in ranks) / n
    for far in (1e-2, 1e-1):
        threshold = sorted(nonmates, reverse=True)[math.ceil(n * far) - 1]
        assert entry.value(f"tpir_at_fpir.{far:.0e}") == sum(m > threshold for m in mates) / n
    assert entry.rules["ijb_1n"] == "legacy" and "legacy" in entry.rules["identification"]
    assert entry.details["per_gallery"] == {}
    assert any("legacy" in w for w in entry.warnings)
    assert "IJB-C Rank-1 [legacy]" in (tmp_path / "out" / "table.md").read_text()


def test_legacy_rule_refuses_unenrolled_probes(world: World, tmp_path: Path) -> None:
    status, doc = run_cli(world, "ijbc_1n", tmp_path / "out", "--ijb-1n-rule", "legacy")
    assert status == 1 and "exactly once in the merged gallery" in doc.failed["ijbc_1n"]


def _copy_world(world: World, root: Path) -> Path:
    for path in world.root.rglob("*"):
        if path.is_file():
            target = root / path.relative_to(world.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return root


def _moved(world: World, root: Path) -> World:
    return dataclasses.replace(world, root=root)


def test_pair_naming_an_unknown_template(world: World, tmp_path: Path) -> None:
    root = _copy_world(world, tmp_path / "copy")
    pairs = root / "IJBC/meta/ijbc_template_pair_label.txt"
    lines = pairs.read_text().splitlines()
    lines[6] = "424242 " + lines[6].split(" ", 1)[1]
    pairs.write_text("\n".join(lines) + "\n")
    status, doc = run_cli(_moved(world, root), "ijbc", tmp_path / "out")
    assert status == 1
    message = doc.failed["ijbc"]
    assert "ijbc_template_pair_label.txt line 7: template 424242 is not in" in message
    assert "ijbc_face_tid_mid.txt" in message


def test_mangled_pair_labels_warn_with_the_likely_causes(world: World, tmp_path: Path) -> None:
    """Labels shuffled against the template ids (the reference scripts once shipped such a list): the run
    completes, and warns that AUC ~0.5 is implausible, naming the pair list and doctor."""
    status, doc = run_cli(world, "ijbc", tmp_path / "good")
    assert status == 0 and doc.benchmarks["ijbc"].value("auc") > 0.9
    assert not any("implausibly low" in w for w in doc.benchmarks["ijbc"].warnings)
    root = _copy_world(world, tmp_path / "copy")
    pairs = root / "IJBC/meta/ijbc_template_pair_label.txt"
    rows = [line.split(" ") for line in pairs.read_text().splitlines()]
    labels = np.random.default_rng(0).permutation([r[2] for r in rows])
    pairs.write_text("".join(f"{a} {b} {c}\n" for (a, b, _), c in zip(rows, labels)))
    status, doc = run_cli(_moved(world, root), "ijbc", tmp_path / "out")
    assert status == 0
    entry = doc.benchmarks["ijbc"]
    assert entry.value("auc") < 0.7
    (warning,) = [w for w in entry.warnings if "implausibly low" in w]
    assert warning.startswith(f"ijbc: AUC {entry.value('auc'):.4f} is implausibly low for this benchmark")
    assert "ijbc_template_pair_label.txt" in warning and "mangled" in warning
    assert "facebench doctor CHECKPOINT" in warning  # features given: how to check their extraction


def test_malformed_meta_line_fails_the_benchmark(world: World, tmp_path: Path) -> None:
    root = _copy_world(world, tmp_path / "copy")
    tid = root / "IJBC/meta/ijbc_face_tid_mid.txt"
    lines = tid.read_text().splitlines()
    lines[11] = lines[11].rsplit(" ", 1)[0]
    tid.write_text("\n".join(lines) + "\n")
    status, doc = run_cli(_moved(world, root), "ijbc", tmp_path / "out")
    assert status == 1
    assert "ijbc_face_tid_mid.txt line 12: expected 3 columns" in doc.failed["ijbc"]


def test_features_with_the_wrong_row_count(world: World, tmp_path: Path) -> None:
    bad = tmp_path / "short.npy"
    np.save(bad, world.feats[:-3])
    status, doc = run_cli(world, "ijbc", tmp_path / "out", features=bad)
    assert status == 1
    message = doc.failed["ijbc"]
    assert str(bad) in message and f"has {len(world.names) - 3} rows" in message
    assert f"{len(world.names)} images" in message


def test_images_needed_without_features(world: World, tmp_path: Path) -> None:
    root = _copy_world(world, tmp_path / "copy")
    assert not (root / "IJBC/loose_crop").exists()  # the copy holds the meta files only
    settings = RunSettings("ijbc", root, tmp_path / "out", progress=False, cache=False)
    ctx = RunContext(settings, linear_embedder(LinearEncoder(dim=8)), resolve_profile(None))
    with pytest.raises(FacebenchError, match=r"ijbc: the image directory .*IJBC/loose_crop is missing"):
        run_ijb_1to1(load_benchmarks()["ijbc"], ctx)


def test_extraction_aligns_flips_and_weights(tmp_path: Path) -> None:
    """From loose crops: 5-point alignment with the meta landmarks, f(x) + f(flip(x)), detector weight."""
    rng = np.random.default_rng(2)
    n = 14
    names = [f"{i + 1}.png" for i in range(n)]
    templates = np.array([11, 11, 11, 22, 22, 33, 33, 33, 44, 44, 55, 55, 66, 66])
    medias = np.array([1, 1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 10, 10])
    scores = rng.integers(300000, 1000000, n) / 1e6
    crops, landmarks = {}, []
    for i in range(n):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        image = cv2.resize(small, (160, 120), interpolation=cv2.INTER_CUBIC)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        crops[names[i]] = buf.tobytes()
        landmarks.append(ARCFACE_TEMPLATE * 1.1 + rng.uniform(5, 30, 2) + rng.normal(0, 1, (5, 2)))
    landmarks = np.array(landmarks)
    meta = ijb.MetaImages(np.array(names, dtype=object), templates, medias, landmarks, scores)
    t1 = np.array([11, 11, 22, 22, 33, 44, 55, 66, 11, 33])
    t2 = np.array([22, 33, 33, 44, 55, 66, 66, 11, 55, 44])
    label = np.array([1, 0, 0, 1, 0, 0, 1, 0, 0, 1], dtype=bool)
    written = ijb.write_ijb(tmp_path, "ijbc", meta, ijb.TemplatePairs(t1, t2, label), crops=crops,
                            decimals=4)
    encoder = LinearEncoder(dim=8, seed=3)
    profile = resolve_profile(None)
    settings = RunSettings("ijbc", tmp_path, tmp_path / "out", progress=False, cache=False, workers=0, batch_size=4)
    result = run_ijb_1to1(load_benchmarks()["ijbc"], RunContext(settings, linear_embedder(encoder), profile))

    read_back = ijb.read_meta_images(written["tid_mid"], written["landmarks"])
    chip = arcface_chip()
    feats = []
    for i, name in enumerate(names):
        aligned = align(read_image(str(tmp_path / "IJBC/loose_crop" / name)), read_back.landmarks[i], chip)
        views = [aligned[None], np.ascontiguousarray(aligned[None, :, ::-1])]
        feats.append(sum(encoder.embed(profile.normalise(v))[0].astype(np.float64) for v in views))
    world = World(tmp_path, tmp_path, names, templates, medias, scores, t1, t2, label, {}, [], np.array(feats))
    expected = reference_scores(world, reference_templates(world))
    fpr, tpr, thr = sklearn.metrics.roc_curve(label, expected)
    assert np.array_equal(result.arrays["roc_fpr"], fpr) and np.array_equal(result.arrays["roc_tpr"], tpr)
    assert np.max(np.abs(result.arrays["roc_thresholds"][1:] - thr[1:])) <= 1e-5  # float32 model outputs
    assert result.rules["test_mode"] == insightface_mode("add", False, True) == "N1D1F2"
    assert result.rules["flip"] == "add"


def test_interp_rule_reads_between_roc_points() -> None:
    from facebench.evaluate.ijb import verification_metrics

    rng = np.random.default_rng(9)
    labels = rng.random(3000) < 0.1
    scores = rng.normal(0, 1, 3000) + 2.5 * labels
    metrics, arrays = verification_metrics(scores, labels, "interp")
    fpr, tpr, _ = sklearn.metrics.roc_curve(labels, scores)
    for target in FARS:
        if target * np.sum(~labels) < 1:
            assert metrics["tar_at_far"][f"{target:.0e}"] is None
            assert f"tar_at_far.{target:.0e}" in metrics["unmeasurable"]
            continue
        i = max(k for k in range(len(fpr)) if fpr[k] <= target)
        if fpr[i] == target or i == len(fpr) - 1:
            want = tpr[i]
        else:
            want = tpr[i] + (target - fpr[i]) / (fpr[i + 1] - fpr[i]) * (tpr[i + 1] - tpr[i])
        assert metrics["tar_at_far"][f"{target:.0e}"] == pytest.approx(want, abs=1e-15)
        point = metrics["operating_points"][f"{target:.0e}"]
        assert ("genuine_accepted" in point) == (not math.isnan(point["threshold"]))


def test_search_file_naming_an_unknown_template(world: World, tmp_path: Path) -> None:
    root = _copy_world(world, tmp_path / "copy")
    probes = root / "IJBC/meta/ijbc_1N_probe_mixed.csv"
    lines = probes.read_text().splitlines()
    lines[4] = "31337," + lines[4].split(",", 1)[1]
    probes.write_text("\n".join(lines) + "\n")
    status, doc = run_cli(_moved(world, root), "ijbc_1n", tmp_path / "out")
    assert status == 1
    assert "ijbc_1N_probe_mixed.csv line 5: template 31337 has no images in" in doc.failed["ijbc_1n"]


def test_saved_pair_scores_give_template_bootstrap_and_paired_test(world: World, tmp_path: Path) -> None:
    """--save-pair-scores keeps every pair's score, label and template ids; report and compare then bootstrap
    templates (not Clopper-Pearson) and test a TAR difference between two runs of the same pairs."""
    import csv

    status, doc = run_cli(world, "ijbc", tmp_path / "a", "--save-pair-scores")
    assert status == 0, doc.failed
    assert doc.settings["options"]["save_pair_scores"] is True
    arrays = np.load(tmp_path / "a" / "ijbc.npz")
    want = reference_scores(world, reference_templates(world))
    assert np.max(np.abs(arrays["scores"] - want)) <= 1e-12
    assert np.array_equal(arrays["labels"], world.label.astype(bool))
    assert np.array_equal(arrays["template1"], world.t1) and np.array_equal(arrays["template2"], world.t2)
    # without the flag only the ROC is kept
    status, _ = run_cli(world, "ijbc", tmp_path / "plain")
    assert status == 0 and "scores" not in np.load(tmp_path / "plain" / "ijbc.npz")

    # 1,311 impostor pairs: TAR@1e-4 is not measurable (null), TAR@1e-3 is
    assert doc.benchmarks["ijbc"].value("tar_at_far.1e-04") is None
    column = ["--column", "ijbc:tar_at_far.1e-03"]
    assert cli_main(["report", str(tmp_path / "a"), "--n-boot", "200", *column]) == 0
    rows = {r["metric"]: r for r in csv.DictReader(open(tmp_path / "a" / "intervals.csv", encoding="utf-8"))}
    row = rows["tar_at_far.1e-03"]
    assert "template" in row["method"] and "Clopper" not in row["method"], row["method"]
    assert float(row["low"]) <= float(row["estimate"]) == doc.benchmarks["ijbc"].value("tar_at_far.1e-03")
    assert float(row["estimate"]) <= float(row["high"]) and row["n_boot"] == "200"

    # a second model: the same features with much noise, on the same pairs
    noisy = tmp_path / "noisy.npy"
    rng = np.random.default_rng(1)
    np.save(noisy, (world.feats + 40 * rng.standard_normal(world.feats.shape)).astype(np.float32))
    status, _ = run_cli(world, "ijbc", tmp_path / "b", "--save-pair-scores", features=noisy)
    assert status == 0
    out = tmp_path / "cmp"
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--n-boot", "200",
                     "--no-html", *column]) == 0
    tests = [t for t in csv.DictReader(open(out / "tests.csv", encoding="utf-8")) if t["metric"] == "tar_at_far.1e-03"]
    assert len(tests) == 1 and "bootstrap" in tests[0]["test"], tests
    assert float(tests[0]["p_value"]) < 0.05


def test_implausible_warning_points_ijb_users_at_a_verification_set() -> None:
    from facebench.evaluate.common import implausible_warning

    spec = load_benchmarks()["ijbc"]
    settings = RunSettings(benchmarks="ijbc", data_root=Path("/data"), out=Path("o"), checkpoint=Path("m.onnx"))
    text = implausible_warning(spec, RunContext(settings, None, resolve_profile(None)), "AUC 0.5012", "0.9", "a mangled list, and ")
    assert text.startswith("ijbc: AUC 0.5012 is implausibly low for this benchmark (expected >= 0.9); a mangled")
    assert text.endswith("run `facebench doctor m.onnx --benchmark lfw --data-root /data` to find the right profile")
    lfw = implausible_warning(load_benchmarks()["cplfw"], RunContext(settings, None, resolve_profile(None)), "accuracy 55.00%", "80%")
    assert "--benchmark cplfw --data-root /data" in lfw


def test_1n_cmc_tie_rules_on_untied_scores_agree_and_are_recorded(world: World, tmp_path: Path) -> None:
    """Continuous scores have no ties: the three CMC tie rules give the same ranks; each is named in rules."""
    feats = reference_templates(world)
    per = {name: open_set_reference(feats, world.probes, members) for name, members in world.galleries.items()}
    for ties in (">", "argsort"):
        status, doc = run_cli(world, "ijbc_1n", tmp_path / ties.replace(">", "gt"), "--cmc-ties", ties)
        assert status == 0, doc.failed
        entry = doc.benchmarks["ijbc_1n"]
        assert entry.rules["cmc_ties"] == ties
        for name in ("G1", "G2"):
            assert entry.details["per_gallery"][name]["rank5"] == per[name]["rank5"]
