"""`facebench doctor`: it finds the contract a model was built for, recognises in-graph normalisation, and its
verdict, sidecar and accuracy agree with `facebench run`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import scipy.linalg
import torch
from torch import nn

from facebench.benchmarks import load_benchmarks, select
from facebench.cli import main
from facebench.demo.splits import split_identities
from facebench.demo.suite import aligned_jpeg, verification_pairs
from facebench.doctor import ContractResult, candidate_contracts, contract_name, fold_balanced_subset, make_verdict
from facebench.extraction.images import decode_image
from facebench.io.binpack import write_bin
from facebench.extraction.preprocess import PROFILES, read_sidecar
from facebench.results import read_results

SEED, DIFFICULTY, N_IDS = 11, 0.6, 100


class ContractNet(nn.Module):
    """A face descriptor built for BGR ``(x-127.5)/128`` input: a fixed 1x1 convolution undoes exactly that
    normalisation (back to RGB pixels of every other row and column, clipped to 0..255), colour-opponent units
    tuned to true RGB values (R-B above 45, R-G and G-B above 20) are pooled, and a linear projection is fitted by LDA on other images
    of the same identities. Fed RGB, the warm-hue units see cool hues and go silent; fed 0..255 the pixels
    clip to white; fed x/255 the hue differences shrink below the offsets. With ``normalise_inside`` the
    graph takes RGB 0..255 pixels and applies (x-127.5)/128 and the channel swap itself."""

    def __init__(self, normalise_inside: bool = False, dim: int = 32) -> None:
        super().__init__()
        self.normalise_inside = normalise_inside
        self.inverse = nn.Conv2d(3, 3, 1, stride=2)  # every other pixel: 56x56, cheap
        self.opponent = nn.Conv2d(3, 3, 1)
        self.pool = nn.AvgPool2d(4)
        self.proj = nn.Linear(3 * 14 * 14, dim)
        with torch.no_grad():
            self.inverse.weight.zero_()
            for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
                self.inverse.weight[rgb, bgr] = 128.0
            self.inverse.bias.fill_(127.5)
            hues = torch.tensor([[1.0, 0.0, -1.0], [1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]) / 255
            self.opponent.weight.copy_(hues[:, :, None, None])
            self.opponent.bias.copy_(torch.tensor([-45.0, -20.0, -20.0]) / 255)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalise_inside:
            x = ((x - 127.5) / 128.0)[:, [2, 1, 0]]
        pixels = torch.clamp(self.inverse(x), 0.0, 255.0)
        return self.pool(torch.relu(self.opponent(pixels))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(x))


def _lda(features: np.ndarray, labels: np.ndarray, dim: int, ridge: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the ``dim`` leading generalised eigenvectors of (between, ridge-regularised within) scatter."""
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    within = centred.T @ centred / len(features)
    within += ridge * np.trace(within) / len(within) * np.eye(len(within))
    mu = features.mean(0)
    between = (means - mu).T @ (means - mu) / len(classes)
    n = len(within)
    _, vectors = scipy.linalg.eigh(between, within, subset_by_index=[n - dim, n - 1])
    return mu, vectors[:, ::-1]


def _export(model: nn.Module, path: Path) -> Path:
    torch.onnx.export(
        model.eval(), torch.zeros(1, 3, 112, 112), str(path), dynamo=False, input_names=["input"],
        output_names=["embedding"], dynamic_axes={"input": {0: "n"}, "embedding": {0: "n"}},
    )
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> dict[str, Path]:
    """A 200-pair demo_verify pack (10 folds, own identities per fold) and the two ContractNet exports,
    their projection fitted on images 4-6 of the pack's identities under the BGR (x-127.5)/128 contract."""
    root = tmp_path_factory.mktemp("doctor")
    ids = split_identities("verify", N_IDS)
    pairs, issame = verification_pairs(ids, 2 * N_IDS // 10)
    blobs = [aligned_jpeg((SEED, a, ia, DIFFICULTY)) for p in pairs for a, ia in ((p[0], p[1]), (p[2], p[3]))]
    write_bin(root / "demo_verify.bin", blobs, issame)
    train = np.stack(
        [decode_image(aligned_jpeg((SEED, int(i), k, DIFFICULTY)), "train") for i in ids for k in range(4, 7)]
    )
    net = ContractNet()
    with torch.no_grad():
        feats = net.features(torch.from_numpy(PROFILES["facexzoo"].normalise(train))).double().numpy()
    mu, vectors = _lda(feats, np.repeat(np.arange(N_IDS), 3), 32)
    with torch.no_grad():
        net.proj.weight.copy_(torch.from_numpy(np.ascontiguousarray(vectors.T)))
        net.proj.bias.copy_(torch.from_numpy(-(mu @ vectors)))
    inside = ContractNet(normalise_inside=True)
    inside.load_state_dict(net.state_dict())
    return {"root": root, "plain": _export(net, root / "plain.onnx"), "inside": _export(inside, root / "inside.onnx")}


def _doctor(lab: dict[str, Path], model: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "doctor.json"
    status = main(["-q", "doctor", str(model), "--data-root", str(lab["root"]), "--out", str(out), *extra])
    return status, json.loads(out.read_text())


@pytest.fixture(scope="module")
def plain(lab, tmp_path_factory) -> dict:
    """The doctor on a copy of the plain export, with --write-sidecar: status, findings, printed text, model."""
    tmp = tmp_path_factory.mktemp("plain")
    model = Path(shutil.copy(lab["plain"], tmp / "model.onnx"))
    out = tmp / "doctor.json"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["-q", "doctor", str(model), "--data-root", str(lab["root"]), "--out", str(out),
                       "--write-sidecar"])
    return {"status": status, "report": json.loads(out.read_text()), "printed": printed.getvalue(), "model": model}


def _row(report: dict, contract: str, flip: str) -> dict:
    return next(r for r in report["contracts"] if r["contract"] == contract and r["profile"]["flip"] == flip)


@pytest.mark.slow
def test_doctor_picks_the_contract_the_model_was_built_for(plain) -> None:
    status, report, printed = plain["status"], plain["report"], plain["printed"]
    assert status == 0
    assert report["checkpoint"]["normalizes_input"] is False
    assert report["checkpoint"]["format"] == "onnx" and report["checkpoint"]["embedding_dim"] == 32
    verdict = report["verdict"]
    assert verdict["status"] == "ok" and verdict["contract"] == "facexzoo"
    assert verdict["profile"] == {**PROFILES["facexzoo"].to_dict(), "flip": "add"}
    assert "use profile facexzoo" in printed and "--profile facexzoo" in printed
    best = _row(report, "facexzoo", "add")["accuracy"]
    assert best >= 0.8
    # the wrong colour order and the wrong pixel scales are far behind; run's default (insightface) is one of them
    for contract in ("insightface", "rgb-pm1_128", "rgb-unit", "raw", "bgr-pixels"):
        assert _row(report, contract, "none")["accuracy"] < best - 0.15
    assert _row(report, "rgb-pm1_128", "add")["status"] == "pruned"
    assert _row(report, "insightface", "add")["status"] == "ok"  # run's current contract is always shown in full
    assert verdict["current"]["profile"]["name"] == "insightface" and verdict["current"]["accuracy"] < 0.65
    # /127.5 and /128 cannot be told apart by accuracy: the named profile is the verdict either way
    assert abs(_row(report, "bgr-pm1", "add")["accuracy"] - best) <= 0.03
    assert report["benchmark"]["n_pairs"] == 200 and report["benchmark"]["fold_balance"] == [[10, 10]] * 10


def test_in_graph_normalisation_is_recognised(lab, plain, tmp_path) -> None:
    status, report = _doctor(lab, lab["inside"], tmp_path)
    assert status == 0
    assert report["checkpoint"]["normalizes_input"] is True
    assert report["checkpoint"]["run_profile"]["name"] == "raw"
    assert report["checkpoint"]["run_profile_source"] == "backend default"
    assert report["verdict"]["contract"] == "raw" and report["verdict"]["current_is_right"] is True
    assert report["verdict"]["profile"]["flip"] == "add"
    # the same descriptor, so the same accuracy as the plain export under its own contract
    assert report["verdict"]["accuracy"] == pytest.approx(plain["report"]["verdict"]["accuracy"], abs=1e-12)


def test_sidecar_makes_run_use_the_verdict_with_the_same_accuracy(lab, plain, tmp_path) -> None:
    model, report = plain["model"], plain["report"]
    assert f"sidecar: {model}.facebench.json (profile facexzoo)" in plain["printed"]
    sidecar = read_sidecar(model)
    assert sidecar is not None and sidecar.to_dict() == report["verdict"]["profile"]
    out = tmp_path / "run"
    assert main(["-q", "run", str(model), "-b", "demo_verify", "--data-root", str(lab["root"]), "--out", str(out),
                 "--no-cache", "--workers", "0"]) == 0
    doc = read_results(out)
    entry = doc.benchmarks["demo_verify"]
    assert doc.settings["profile"]["name"] == "facexzoo"
    assert entry.value("accuracy") == pytest.approx(report["verdict"]["accuracy"], abs=1e-12)
    assert not any("implausibly low" in w for w in entry.warnings)
    # item 4 of the issue: size, FLOPs (counted from the graph) and measured speed are in every result
    graph = onnx.load(str(model))
    model_info = doc.model
    assert model_info["parameters"] == sum(int(np.prod(t.dims)) for t in graph.graph.initializer) == 18872
    assert model_info["file_bytes"] == os.path.getsize(model)
    # two 1x1 convolutions 3->3 at 56x56 and the 588->32 projection, multiply-accumulates doubled
    assert model_info["flops"] == 2 * (2 * 56 * 56 * 3 * 3 + 588 * 32)
    assert model_info["speed"]["latency_ms"] > 0 and model_info["speed"]["throughput_images_per_s"] > 0


def test_run_under_the_wrong_contract_warns_and_names_the_doctor_command(lab, tmp_path) -> None:
    out = tmp_path / "run"
    main(["-q", "run", str(lab["plain"]), "-b", "demo_verify", "--data-root", str(lab["root"]), "--out", str(out),
          "--no-cache", "--workers", "0", "--no-speed"])
    warnings = read_results(out).benchmarks["demo_verify"].warnings
    [warning] = [w for w in warnings if "implausibly low" in w]
    assert f"facebench doctor {lab['plain']} --benchmark demo_verify --data-root {lab['root']}" in warning


def test_implausible_verdict_exits_1_and_writes_no_sidecar(lab, tmp_path, capsys) -> None:
    model = Path(shutil.copy(lab["plain"], tmp_path / "model.onnx"))
    status, report = _doctor(lab, model, tmp_path, "--min-accuracy", "0.99", "--write-sidecar", "--pairs", "100")
    assert status == 1
    assert report["verdict"]["status"] == "implausible" and report["verdict"]["profile"] is None
    assert "no contract reaches plausible accuracy" in capsys.readouterr().out
    assert read_sidecar(model) is None
    # nothing is within 10 points of the floor: only the best unflipped contract and run's current one get flips
    flipped = {r["contract"] for r in report["contracts"] if r["profile"]["flip"] == "add" and r["status"] == "ok"}
    assert len(flipped) == 2 and "insightface" in flipped


def test_fold_balanced_subset_takes_evenly_spaced_pairs_per_fold() -> None:
    issame = np.tile(np.r_[np.ones(60, bool), np.zeros(60, bool)], 10)
    subset = fold_balanced_subset(issame, 600)
    assert subset.size == 600 and np.all(np.diff(subset) > 0)
    for k in range(10):
        block = subset[60 * k : 60 * (k + 1)]
        assert np.all((block >= 120 * k) & (block < 120 * (k + 1)))
        assert issame[block[:30]].all() and not issame[block[30:]].any()
        assert block[:30].tolist() == list(range(120 * k, 120 * k + 60, 2))
    assert fold_balanced_subset(issame, 5000).tolist() == list(range(1200))
    uneven = issame.copy()
    uneven[:55] = False  # fold 1 keeps only 5 same pairs: all of them are taken
    short = fold_balanced_subset(uneven, 600)
    assert short.size == 575 and int(uneven[short[:35]].sum()) == 5 and short[35] == 120
    with pytest.raises(Exception, match="at least 20"):
        fold_balanced_subset(issame, 10)


def test_candidate_grid() -> None:
    grid = candidate_contracts(112)
    assert len(grid) == 8 and {p.chip for p in grid} == {"arcface"}
    assert {contract_name(p) for p in grid} >= {"insightface", "facexzoo", "raw"}
    wide = candidate_contracts(150, [PROFILES["dlib"]])
    assert len(wide) == 17 and {p.chip for p in wide} == {"arcface", "dlib"}
    assert "dlib" in {p.name for p in wide}


def _verdict_of(rows: list[tuple[str, str, list[int]]], size: int = 112) -> dict:
    """make_verdict on rows (named contract, flip, per-pair correctness); accuracy = mean correctness."""
    grid = {p.name: p for p in candidate_contracts(size, [PROFILES["dlib"]] if size == 150 else [])}
    results = []
    for name, flip, correct in rows:
        c = np.array(correct, bool)
        results.append(ContractResult(grid[name].with_flip(flip), accuracy=c.mean(), auc=c.mean(), correct=c))
    results.sort(key=ContractResult.sort_key)
    checkpoint = {"path": "m.onnx", "embedding_dim": 8, "normalizes_input": None, "run_profile_source": "default"}
    spec = select("demo_verify", load_benchmarks())[0]
    return make_verdict(results, 0.7, checkpoint, PROFILES["insightface"], spec, len(rows[0][2]))


def test_verdict_snaps_to_the_named_profile_only_within_noise() -> None:
    good = [1] * 90 + [0] * 10
    slightly = [1] * 89 + [0] * 11
    worse = [1] * 60 + [0] * 40
    verdict = _verdict_of([("bgr-pm1", "add", good), ("facexzoo", "add", slightly), ("facexzoo", "none", worse)])
    assert verdict["status"] == "ok" and verdict["contract"] == "facexzoo" and verdict["profile"]["flip"] == "add"
    assert "within noise and differ only" in verdict["message"]
    # a clearly better unnamed contract stays the verdict
    verdict = _verdict_of([("bgr-pm1", "add", good), ("facexzoo", "add", worse)])
    assert verdict["contract"] == "bgr-pm1" and "--write-sidecar" in verdict["message"]


def test_verdict_is_undetermined_when_pixel_scales_tie() -> None:
    good = [1] * 80 + [0] * 20
    verdict = _verdict_of([("raw", "add", good), ("insightface", "add", good), ("rgb-unit", "add", [0] + good[:-1])])
    assert verdict["status"] == "undetermined" and verdict["profile"] is None
    assert "cannot tell the input contract" in verdict["message"] and "x (0..255)" in verdict["message"]


def test_verdict_names_dlib_when_x_over_255_ties_with_it() -> None:
    # x/255 and dlib's (x - mean)/256 on dlib's chip: one pixel scale, so dlib's named contract is chosen
    good = [1] * 90 + [0] * 10
    slightly = [1] * 89 + [0] * 11
    verdict = _verdict_of([("rgb-unit-dlib150", "none", good), ("dlib", "none", slightly)], size=150)
    assert verdict["status"] == "ok" and verdict["contract"] == "dlib"
    assert "x (0..255)" not in verdict["message"]


def test_doctor_on_a_folder_embeds_each_image_once(tmp_path, capsys) -> None:
    from tests.fakes import tiny_onnx
    from tests._folders import make_folder

    root = make_folder(tmp_path / "team", [4, 3, 5, 4] * 6)
    out = tmp_path / "d.json"
    status = main(["-q", "doctor", str(tiny_onnx(tmp_path / "m.onnx")), "-b", f"folder:{root}", "--pairs", "200",
                   "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["benchmark"]["name"] == "folder_team" and report["benchmark"]["reader"] == "folder"
    pairs = report["benchmark"]["n_pairs"]
    assert pairs == 180 and report["benchmark"]["n_images"] == 96 < 2 * pairs  # 24 identities, 96 distinct images
    # a random network is indifferent to its input scale: no profile can be recommended
    assert status == 1 and report["verdict"]["status"] == "undetermined"
    assert "cannot tell the input contract" in capsys.readouterr().out


def test_screening_keeps_the_verdict_and_reuses_the_screened_images(lab, tmp_path, monkeypatch) -> None:
    import facebench.doctor as doctor

    status_full, full = _doctor(lab, lab["plain"], tmp_path, "--exhaustive")
    monkeypatch.setattr(doctor, "MIN_SCREEN_PAIRS", 60)  # the 200-pair lab pack then screens on 66 pairs
    status, screened = _doctor(lab, lab["plain"], tmp_path)
    assert status == status_full == 0
    assert screened["verdict"]["contract"] == full["verdict"]["contract"] == "facexzoo"
    # the survivors' rows on the whole subset are exactly the exhaustive ones (screening rows are reused)
    for flip in ("none", "add", "concat"):
        assert _row(screened, "facexzoo", flip)["accuracy"] == _row(full, "facexzoo", flip)["accuracy"]
    assert _row(screened, "raw", "none")["status"].startswith("screened")
    assert _row(screened, "bgr-pm1", "none")["status"].startswith("twin of facexzoo")
    assert _row(screened, "insightface", "add")["status"] == "ok"  # run's current contract always in full


def test_pixel_scale_families_ignore_the_offset() -> None:
    from facebench.doctor import _scale_family
    from facebench.extraction.preprocess import PROFILES, Profile

    unit = Profile("u", "rgb", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0))
    assert _scale_family(PROFILES["dlib"]) == _scale_family(unit)  # (x - mean)/256 vs x/255: span 1
    assert _scale_family(PROFILES["insightface"]) == _scale_family(PROFILES["facexzoo"])  # /127.5 vs /128
    assert len({_scale_family(p) for p in (unit, PROFILES["insightface"], PROFILES["raw"])}) == 3
    odd = Profile("o", "rgb", (0.0, 0.0, 0.0), (64.0, 64.0, 64.0))
    assert _scale_family(odd) not in {_scale_family(p) for p in PROFILES.values()}


def test_the_run_contract_is_read_from_the_feature_cache_when_run_left_it(lab, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    cold_status, cold = _doctor(lab, lab["plain"], tmp_path)  # nothing cached yet: every contract runs the model
    assert "are reused" not in capsys.readouterr().err
    assert main(["-q", "run", str(lab["plain"]), "-b", "demo_verify", "--data-root", str(lab["root"]),
                 "--out", str(tmp_path / "run"), "--workers", "0", "--no-speed"]) == 0
    capsys.readouterr()
    warm_status, warm = _doctor(lab, lab["plain"], tmp_path)
    assert "insightface: the features `facebench run` cached for demo_verify are reused (400 images, 2 view(s))" \
        in capsys.readouterr().err
    assert warm_status == cold_status == 0
    for key in ("status", "contract", "accuracy", "message"):
        assert warm["verdict"][key] == cold["verdict"][key], key
    for flip in ("none", "add", "concat"):  # the same embeddings: the same rows
        for key in ("status", "accuracy", "accuracy_std", "auc"):
            assert _row(warm, "insightface", flip)[key] == _row(cold, "insightface", flip)[key], (flip, key)
