"""`facebench pack`: a folder plus pairs as an insightface .bin that reproduces the folder run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from facebench.cli import main
from facebench.demo.params import identity_params, image_nuisance
from facebench.demo.render import render
from facebench.extraction.images import align, arcface_chip, decode_image
from facebench.io.binpack import read_bin
from facebench.metrics.kfold import fold_balance
from tests.fakes import tiny_onnx
from tests._folders import make_folder
from facebench.results import read_results


def test_pack_generate_stores_the_crops_byte_for_byte_and_reproduces_the_folder_run(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "faces", [3, 4, 2, 3] * 5)
    out, listing = tmp_path / "faces.bin", tmp_path / "pairs.txt"
    assert main(["pack", str(root), "--generate", "--seed", "5", "--out", str(out), "--write-list", str(listing)]) == 0
    assert "sha256" in capsys.readouterr().out
    pack = read_bin(out)
    lines = [line.split() for line in listing.read_text().splitlines()]
    assert len(lines) == pack.n_pairs and pack.n_pairs % 20 == 0
    per_fold = pack.n_pairs // 20
    assert fold_balance(pack.issame, 10).tolist() == [[per_fold, per_fold]] * 10
    for k, (a, b, label) in enumerate(lines):
        assert pack.blobs[2 * k] == (root / a).read_bytes() and pack.blobs[2 * k + 1] == (root / b).read_bytes()
        assert bool(int(label)) == pack.issame[k] == (a.split("/")[0] == b.split("/")[0])

    # the same pairs through the folder evaluator and through the pack reader give the same numbers
    model = tiny_onnx(tmp_path / "m.onnx")
    common = ["--no-cache", "--workers", "0", "--no-speed", "--folder-seed", "5"]
    assert main(["-q", "run", str(model), "-b", f"folder:{root}", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["-q", "run", str(model), "-b", "lfw", "--file", f"lfw.pack={out}", "--out", str(tmp_path / "b"),
                 *common]) == 0
    folder = read_results(tmp_path / "a").benchmarks["folder_faces"]
    packed = read_results(tmp_path / "b").benchmarks["lfw"]
    fars = [p for p in folder.metrics if p.startswith("tar_at_far.")]
    for key in ("accuracy", "accuracy_std", "auc", "eer", *fars):
        assert folder.metrics[key] == packed.metrics[key], key
    assert fars and folder.details["fold_accuracies"] == packed.details["fold_accuracies"]

    # and the written list is a pair list the folder evaluator reads back to the same pairs
    assert main(["pack", str(root), "--pairs", str(listing), "--out", str(tmp_path / "again.bin")]) == 0
    assert read_bin(tmp_path / "again.bin").blobs == pack.blobs


def test_pack_aligns_raw_images_with_their_landmarks(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    lines, raws = [], {}
    for identity in range(4):
        (root / f"p{identity}").mkdir(parents=True)
        for k in range(4):
            image, points = render(identity_params(3, identity), image_nuisance(3, identity, k, 0.3))
            rel = f"p{identity}/{k}.png"
            cv2.imwrite(str(root / rel), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            lines.append(rel + " " + " ".join(f"{v:.3f}" for v in points.reshape(-1)))
            raws[rel] = (image, np.round(points.astype(np.float64), 3))
    (root / "landmarks.txt").write_text("\n".join(lines) + "\n")
    out, listing = tmp_path / "raw.bin", tmp_path / "pairs.txt"
    assert main(["pack", str(root), "--generate", "--out", str(out), "--write-list", str(listing)]) == 0
    pack = read_bin(out)
    first = listing.read_text().split()[0]
    chip = decode_image(pack.blobs[0], "pack item 0")
    expected = align(*raws[first], arcface_chip())
    assert chip.shape == (112, 112, 3)
    assert np.abs(chip.astype(int) - expected.astype(int)).mean() < 3  # only JPEG (quality 95) loss


def test_pack_refuses_raw_images_without_landmarks(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "big", [3, 3, 3, 3], size=150)
    assert main(["pack", str(root), "--generate", "--out", str(tmp_path / "x.bin")]) == 2
    err = capsys.readouterr().err
    assert "150x150 image without landmarks" in err and "big/id_0" in err
    assert not (tmp_path / "x.bin").exists()
