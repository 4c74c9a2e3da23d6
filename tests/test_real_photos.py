"""Acceptance on real photos (../shared/reference/photos, dlib's own outputs; skipped when absent): facebench's
detection + alignment + dlib backend, with no landmark file, agrees with dlib's pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib", reason="face detection needs facebench[detect]")
pytest.importorskip("face_recognition_models", reason="dlib's model files need facebench[dlib]")

from facebench.extraction.enrol import EnrolOptions, enrol  # noqa: E402
from facebench.extraction.images import ImageList  # noqa: E402
from facebench.models.dlib import find_dlib_model  # noqa: E402
from facebench.extraction.preprocess import chip_geometry  # noqa: E402
from facebench.results import read_results

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos(reference_dir: Path) -> Path:
    path = reference_dir / "photos"
    if not (path / "dlib_reference.json").is_file():
        pytest.skip("../shared/reference/photos is not present")
    return path


@pytest.fixture(scope="module")
def ours(photos: Path) -> dict:
    """Every image detected and enrolled by facebench, and the dlib backend's descriptor of each face."""
    from facebench.models.loader import load_encoder

    ref = json.loads((photos / "dlib_reference.json").read_text())
    paths = [str(photos / "images" / im["path"]) for im in ref["images"]]
    done = enrol(ImageList("photos", paths=paths, crops=False), EnrolOptions())
    encoder = load_encoder(find_dlib_model())
    profile = encoder.default_profile
    chip = chip_geometry(profile)
    chips = np.stack([done.images.load_chip(i, chip) for i in range(len(paths))])
    desc = np.asarray(encoder.embed(profile.normalise(chips)), dtype=np.float64)
    return {"ref": ref, "done": done, "photos": photos, "desc": {im["path"]: d for im, d in zip(ref["images"], desc)}}


def test_every_face_dlib_finds_is_found(ours: dict) -> None:
    rows = ours["done"].rows
    for im, row in zip(ours["ref"]["images"], rows):
        assert row[0] == len(im["hog"]), im["path"]
        largest = max(im["hog"], key=lambda f: (f["box"][2] - f["box"][0] + 1) * (f["box"][3] - f["box"][1] + 1))
        assert list(row[2:6]) == largest["box"], im["path"]
    several = [os.path.relpath(p, ours["photos"] / "images") for p in ours["done"].report.several_faces]
    assert several == ["multi_face/two_people.jpg"] and ours["done"].report.no_face == []


def _dlib_descriptors(photos: Path) -> dict[str, np.ndarray]:
    rows = [line.split() for line in (photos / "dlib_descriptors.txt").read_text().splitlines()]
    desc = np.load(photos / "dlib_descriptors.npy")
    ref = json.loads((photos / "dlib_reference.json").read_text())
    largest = {}
    for im in ref["images"]:
        areas = [(f["box"][2] - f["box"][0] + 1) * (f["box"][3] - f["box"][1] + 1) for f in im["hog"]]
        largest[im["path"]] = int(np.argmax(areas))
    return {p: desc[r] for r, (p, face) in enumerate(rows) if int(face) == largest[p]}


def test_descriptors_agree_with_dlib(photos: Path, ours: dict) -> None:
    theirs = _dlib_descriptors(photos)
    cos = {p: float(ours["desc"][p] @ d / np.linalg.norm(ours["desc"][p]) / np.linalg.norm(d)) for p, d in theirs.items()}
    assert np.median(list(cos.values())) >= 0.99
    assert min(cos.values()) >= 0.98
    ladder = [cos[p] for p in cos if p.startswith("resolution/")]
    small = [cos[p] for p in cos if not p.startswith("resolution/")]
    assert len(ladder) == 4 and min(ladder) >= min(small)


def test_same_different_decisions_equal_dlibs(photos: Path, ours: dict) -> None:
    lines = (photos / "pairs.tsv").read_text().splitlines()[1:]
    assert len(lines) == 153
    for line in lines:
        a, b, label, dlib_l2, _ = line.split("\t")
        l2 = float(np.linalg.norm(ours["desc"][a] - ours["desc"][b]))
        assert (l2 < 0.6) == (float(dlib_l2) < 0.6) == (label == "1"), (a, b, l2, dlib_l2)


LFW_PEOPLE = {
    "Alex_Lacamoire": ["alex_lacamoire/alex-lacamoire.png", "alex_lacamoire/img1.jpg"],
    "Kit_Harington": ["kit_harington/john2.jpeg", "kit_harington/john1.jpeg"],
    "Barack_Obama": ["obama/obama_small.jpg", "resolution/obama-240p.jpg", "obama/obama2.jpg"],
    "Rose_Leslie": ["rose_leslie/img2.jpg", "rose_leslie/img1.jpg"],
}
MATCHED = [("Alex_Lacamoire", 1, 2), ("Kit_Harington", 1, 2), ("Barack_Obama", 1, 2), ("Rose_Leslie", 1, 2),
           ("Barack_Obama", 1, 3), ("Alex_Lacamoire", 2, 1), ("Barack_Obama", 2, 3), ("Kit_Harington", 2, 1),
           ("Rose_Leslie", 2, 1), ("Barack_Obama", 3, 1)]
MISMATCHED = [("Alex_Lacamoire", 1, "Kit_Harington", 1), ("Barack_Obama", 1, "Rose_Leslie", 1),
              ("Alex_Lacamoire", 2, "Barack_Obama", 3), ("Kit_Harington", 2, "Rose_Leslie", 2),
              ("Barack_Obama", 2, "Kit_Harington", 1), ("Rose_Leslie", 1, "Alex_Lacamoire", 1),
              ("Alex_Lacamoire", 1, "Barack_Obama", 2), ("Kit_Harington", 1, "Rose_Leslie", 2),
              ("Barack_Obama", 3, "Rose_Leslie", 1), ("Kit_Harington", 2, "Alex_Lacamoire", 2)]


@pytest.mark.slow
def test_lfw_original_layout_without_landmarks_runs_end_to_end(photos: Path, tmp_path: Path) -> None:
    lfw = tmp_path / "data" / "lfw"
    for name, files in LFW_PEOPLE.items():
        (lfw / name).mkdir(parents=True)
        for k, rel in enumerate(files, 1):  # LFW names every image .jpg; decoding reads the content
            os.symlink(photos / "images" / rel, lfw / name / f"{name}_{k:04d}.jpg")
    text = "10\t1\n" + "".join(
        f"{m[0]}\t{m[1]}\t{m[2]}\n{u[0]}\t{u[1]}\t{u[2]}\t{u[3]}\n" for m, u in zip(MATCHED, MISMATCHED)
    )
    (lfw / "pairs.txt").write_text(text)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "facebench", "run", str(find_dlib_model()), "-b", "lfw", "--data-root",
           str(tmp_path / "data"), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-speed",
           "--workers", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    entry = read_results(out).benchmarks["lfw"]
    enrolment = entry.enrolment["lfw"]
    assert enrolment["detected"] == 9 and enrolment["no_face"] == 0 and enrolment["failure_to_enrol_rate"] == 0.0
    assert enrolment["detector"]["detector"] == "dlib-hog"
    assert entry.value("accuracy") == 1.0 and entry.counts["n_pairs"] == 20
    # dlib's own threshold (0.6 Euclidean on its descriptors): every pair decided right
    own = [entry.details["at_model_threshold"]["metric"]] + [
        entry.value(f"at_model_threshold.{k}") for k in ("threshold", "accuracy", "far", "frr")
    ]
    assert own == ["euclidean", 0.6, 1.0, 0.0, 0.0]
    assert "lfw: at the model's own threshold (euclidean 0.6): accuracy 100.00%, FAR 0.00%, FRR 0.00%" in done.stdout
    assert "lfw: 9 images detected, 0 without a face (failure to enrol 0.00%" in done.stdout


@pytest.mark.parametrize("orientation", [6, 3])
def test_a_rotated_phone_photo_is_detected_upright(photos: Path, tmp_path: Path, orientation: int) -> None:
    from PIL import Image

    ref = json.loads((photos / "dlib_reference.json").read_text())
    entry = next(im for im in ref["images"] if im["path"] == "obama/obama_small.jpg")
    upright = Image.open(photos / "images" / entry["path"]).convert("RGB")
    # stored pixels turned so that applying the EXIF orientation gives the photo back, as a phone stores it
    undo = {6: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    upright.transpose(undo).save(path, "JPEG", quality=98, exif=exif.tobytes())
    done = enrol(ImageList("phone", paths=[str(path)], crops=False), EnrolOptions())
    assert done.report.no_face == []
    expected = np.asarray(entry["hog"][0]["arcface5"])
    assert np.abs(done.images.landmarks[0] - expected).max() <= 3.0  # re-encoding moves points by a pixel or two


@pytest.mark.slow
def test_mfr2_original_layout_without_landmarks_runs_with_the_detector(photos: Path, tmp_path: Path) -> None:
    """MFR2's layout (160x160 PNG crops, a header-less LFW-dialect pairs.txt, mfr2_labels.txt) with no
    landmark file: every crop is detected and the mask-type groups reach the fairness engine."""
    from PIL import Image

    ref = {im["path"]: im for im in json.loads((photos / "dlib_reference.json").read_text())["images"]}
    root = tmp_path / "data" / "mfr2"
    labels = []
    for name, files in LFW_PEOPLE.items():
        (root / name).mkdir(parents=True)
        for k, rel in enumerate(files, 1):  # a square crop 1.8x the dlib box around it, resized to 160x160
            left, top, right, bottom = ref[rel]["hog"][0]["box"]
            cx, cy, half = (left + right) / 2, (top + bottom) / 2, 0.9 * max(right - left, bottom - top)
            image = Image.open(photos / "images" / rel).convert("RGB")
            crop = image.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half))).resize((160, 160))
            crop.save(root / name / f"{name}_{k:04d}.png")
            labels.append(f"{name}, {k}, {'no-mask' if k == 1 else 'cloth'}\n")
    lines = [f"{m[0]}\t{m[1]}\t{m[2]}" for m in MATCHED] + [f"{u[0]}\t{u[1]}\t{u[2]}\t{u[3]}" for u in MISMATCHED]
    (root / "pairs.txt").write_text("\n".join(lines[i // 2 + (i % 2) * 10] for i in range(20)) + "\n")
    (root / "mfr2_labels.txt").write_text("".join(labels))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "facebench", "run", str(find_dlib_model()), "-b", "mfr2", "--data-root",
           str(tmp_path / "data"), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-speed",
           "--workers", "0", "--fairness-boot", "0", "--fairness-fmr", "0.1"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    entry = read_results(out).benchmarks["mfr2"]
    enrolment = next(iter(entry.enrolment.values()))
    assert enrolment["detected"] == 9 and enrolment["no_face"] == 0
    assert entry.rules["pair_list_dialect"] == "lfw_noheader" and entry.counts["n_pairs"] == 20
    assert entry.value("at_model_threshold.accuracy") == 1.0
    groups = entry.extra["fairness"]["masked"]["groups"]
    assert sum(g["n_genuine"] + g["n_impostor"] for g in groups.values()) == 20
