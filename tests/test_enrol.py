"""Enrolment of raw photos: face choice, failure-to-enrol policies, centre crop, pyramid warp, skipped pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.extraction.detection import Detection, arcface5_from_68, choose_face
from facebench.extraction.enrol import EnrolOptions, centre_crop_landmarks, detection_row, enrol
from facebench.errors import FacebenchError
from facebench.evaluate.pairs import verification_metrics
from facebench.extraction.images import (
    ARCFACE_TEMPLATE,
    ImageList,
    align,
    arcface_chip,
    pyramid_levels,
    to_arcface_crop,
    umeyama_similarity,
    warp_to_chip,
)
from tests._results import document

REPO = Path(__file__).resolve().parents[1]


def _det(box: tuple[float, float, float, float]) -> Detection:
    return Detection(box, 1.0, np.zeros((5, 2)))


def test_largest_face_is_chosen_and_ties_go_to_the_centre() -> None:
    faces = [_det((0, 0, 9, 9)), _det((50, 50, 79, 79)), _det((10, 10, 29, 29))]
    assert choose_face(faces, 100, 100) == 1
    # equal areas: the box whose centre is nearest the image centre (49.5, 49.5)
    tied = [_det((0, 0, 19, 19)), _det((40, 45, 59, 64)), _det((80, 80, 99, 99))]
    assert choose_face(tied, 100, 100) == 1
    with pytest.raises(ValueError):
        choose_face([], 10, 10)


def test_detection_row_keeps_the_chosen_face() -> None:
    small = Detection((0, 0, 9, 9), 0.5, np.arange(10.0).reshape(5, 2))
    big = Detection((20, 20, 59, 59), 2.0, np.arange(10.0, 20.0).reshape(5, 2))
    row = detection_row([small, big], 100, 100)
    assert row[0] == 2 and row[1] == 2.0 and list(row[2:6]) == [20, 20, 59, 59]
    assert list(row[6:]) == list(range(10, 20))
    empty = detection_row([], 100, 100)
    assert empty[0] == 0 and np.isnan(empty[1:]).all()


def test_arcface5_from_68_points() -> None:
    pts = np.arange(136, dtype=np.float64).reshape(68, 2)
    got = arcface5_from_68(pts)
    expected = [[sum(pts[i, c] for i in range(36, 42)) / 6 for c in (0, 1)],
                [sum(pts[i, c] for i in range(42, 48)) / 6 for c in (0, 1)], pts[30], pts[48], pts[54]]
    assert np.allclose(got, expected)


@pytest.mark.parametrize("size", [(200, 150), (150, 200), (113, 300), (640, 480), (1001, 333)])
def test_centre_crop_landmarks_reproduce_the_crop_rule(size: tuple[int, int]) -> None:
    # to_arcface_crop: cv2.resize to (nw, nh) (pixel x -> (x + 0.5) * nw / w - 0.5), then cut at (left, top)
    w, h = size
    scale = 112 / min(w, h)
    nh, nw = max(112, round(h * scale)), max(112, round(w * scale))
    top, left = (nh - 112) // 2, (nw - 112) // 2
    crop_matrix = np.array([[nw / w, 0, 0.5 * nw / w - 0.5 - left], [0, nh / h, 0.5 * nh / h - 0.5 - top]])
    points = centre_crop_landmarks(w, h)
    assert np.allclose(points @ crop_matrix[:, :2].T + crop_matrix[:, 2], ARCFACE_TEMPLATE, atol=1e-9)
    # the similarity fitted on them is the crop up to the sides' rounding (nw / w vs nh / h)
    fitted = umeyama_similarity(points, ARCFACE_TEMPLATE)
    assert np.allclose(fitted[:, :2], np.diag([nw / w, nh / h]), atol=abs(nw / w - nh / h) + 1e-5)
    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    if min(w, h) <= 224:  # no pyramid level: the same pixels up to the warp's fixed-point rounding
        got = align(image, centre_crop_landmarks(w, h), arcface_chip())
        assert np.abs(got.astype(int) - to_arcface_crop(image).astype(int)).mean() < 1.0


def test_pyramid_levels_rule() -> None:
    for shrink, expected in [(0.5, 0), (1.0, 0), (2.0, 0), (2.01, 1), (4.0, 1), (4.5, 2), (8.0, 2), (17.0, 4)]:
        matrix = np.array([[1 / shrink, 0, 0], [0, 1 / shrink, 0]])
        brute = next(k for k in range(10) if shrink / 2**k <= 2)
        assert pyramid_levels(matrix) == brute == expected


def test_large_face_is_reduced_without_aliasing() -> None:
    # a 1-pixel checkerboard shrunk 8x: a plain bilinear warp samples it (aliasing: values near 0 or 255),
    # the pyramid averages it to grey like an area average does
    board = ((np.indices((896, 896)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = np.repeat(board[..., None], 3, axis=2)
    matrix = np.array([[1 / 8, 0, 0], [0, 1 / 8, 0]])
    chip = warp_to_chip(image, matrix, 112)
    area = cv2.resize(image, (112, 112), interpolation=cv2.INTER_AREA)
    assert np.abs(chip[8:-8, 8:-8].astype(int) - area[8:-8, 8:-8].astype(int)).max() <= 2
    plain = cv2.warpAffine(image, matrix, (112, 112), flags=cv2.INTER_LINEAR)
    assert np.abs(plain[8:-8, 8:-8].astype(int) - 127).mean() > 60


def test_pairs_with_an_unenrolled_image_are_left_out() -> None:
    rng = np.random.default_rng(1)
    n = 40
    issame = np.tile([True, False], n // 2)
    feats = rng.normal(size=(2 * n, 8))
    feats[1::2][issame] = feats[0::2][issame] + 0.3 * rng.normal(size=(int(issame.sum()), 8))
    holed = feats.copy()
    holed[[2, 9, 30]] = np.nan  # pairs 1, 4 and 15
    kept = np.ones(n, dtype=bool)
    kept[[1, 4, 15]] = False
    m_hole, a_hole = verification_metrics(holed, issame, n_folds=5)
    m_sub, a_sub = verification_metrics(feats[np.repeat(kept, 2)], issame[kept], n_folds=5)
    assert m_hole["pairs_left_out"] == 3 and np.array_equal(a_hole["pairs_kept"], kept)
    assert m_hole["accuracy"] == m_sub["accuracy"] and np.array_equal(a_hole["scores"], a_sub["scores"])


def test_a_missing_detector_names_the_extra(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib raises ImportError
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((200, 150, 3), np.uint8))
    with pytest.raises(FacebenchError, match=r"pip install 'facebench\[detect\]'"):
        enrol(ImageList("mine", paths=[str(photo)], crops=False), EnrolOptions())


dlib = pytest.importorskip("dlib", reason="face detection needs facebench[detect]")


def _no_face_images(tmp_path: Path) -> list[str]:
    paths = []
    for k, (w, h) in enumerate([(160, 120), (90, 200)]):
        p = tmp_path / f"blank{k}.png"
        cv2.imwrite(str(p), np.full((h, w, 3), 40 + 60 * k, dtype=np.uint8))
        paths.append(str(p))
    chip = tmp_path / "chip.png"
    cv2.imwrite(str(chip), np.full((112, 112, 3), 90, dtype=np.uint8))
    return paths + [str(chip)]


def test_no_face_policy_error_lists_the_files(tmp_path: Path) -> None:
    paths = _no_face_images(tmp_path)
    with pytest.raises(FacebenchError, match=r"no face found in 2 of 2 images .*blank0.png, .*blank1.png"):
        enrol(ImageList("mine", paths=paths, crops=False), EnrolOptions(on_no_face="error"))


def test_no_face_policy_center_crop_and_skip(tmp_path: Path) -> None:
    paths = _no_face_images(tmp_path)
    images = ImageList("mine", paths=paths, crops=False)
    crop = enrol(images, EnrolOptions(on_no_face="center-crop"))
    assert crop.report.detected == 2 and crop.report.no_face == paths[:2] and crop.report.rate == 1.0
    assert np.allclose(crop.images.landmarks[0], centre_crop_landmarks(160, 120))
    assert np.allclose(crop.images.landmarks[1], centre_crop_landmarks(90, 200))
    assert np.isnan(crop.images.landmarks[2]).all()  # the 112x112 chip is not detected
    assert not crop.unenrolled.any()
    skip = enrol(images, EnrolOptions(on_no_face="skip"))
    assert list(skip.unenrolled) == [True, True, False]
    assert skip.report.to_dict()["on_no_face"] == "skip"
    # the detector's identity and the policy enter the list fingerprint (the feature-cache key)
    assert crop.images.fingerprint() != skip.images.fingerprint() != images.fingerprint()


@pytest.mark.slow
def test_align_command_writes_chips_landmarks_and_report(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    (src / "a").mkdir(parents=True)
    for p in _no_face_images(tmp_path):
        Path(p).rename(src / "a" / Path(p).name)
    out = tmp_path / "aligned"
    cmd = [sys.executable, "-m", "facebench", "align", str(src), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    failed = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert failed.returncode == 2 and "no face found in 2 of 2 images" in failed.stderr
    done = subprocess.run(cmd + ["--on-no-face", "skip"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "3 images, 2 detected, 2 without a face" in done.stdout
    assert sorted(p.name for p in (out / "a").iterdir()) == ["chip.png.png"]
    report = json.loads((out / "enrolment.json").read_text())
    assert report["no_face_files"] == ["a/blank0.png", "a/blank1.png"] and report["failure_to_enrol_rate"] == 1.0
    assert (out / "landmarks.txt").read_text() == ""
    again = subprocess.run(cmd + ["--on-no-face", "center-crop"], capture_output=True, text=True, cwd=REPO)
    assert again.returncode == 0, again.stderr
    lines = (out / "landmarks.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["a/blank0.png", "a/blank1.png"]
    assert np.allclose([float(v) for v in lines[0].split()[1:]], centre_crop_landmarks(160, 120).reshape(-1), atol=1e-4)
    assert (out / "a" / "blank0.png.png").is_file()


@pytest.mark.slow
def test_detection_in_worker_processes_equals_inline(tmp_path: Path) -> None:
    from facebench.extraction.detection import get_detector
    from facebench.extraction.enrol import DETECT_CHUNK, detect_files

    blanks = _no_face_images(tmp_path)[:2]
    paths = (blanks * (DETECT_CHUNK + 1))[: DETECT_CHUNK + 3]  # two chunks
    detector = get_detector("dlib-hog")
    inline = detect_files(paths, detector, tmp_path / "c1", False, "t", workers=0)
    pooled = detect_files(paths, detector, tmp_path / "c2", False, "t", workers=2)
    assert inline.shape == (DETECT_CHUNK + 3, 16) and np.array_equal(inline, pooled, equal_nan=True)
    again = detect_files(paths, detector, tmp_path / "c2", False, "t", workers=2)  # from the cache
    assert np.array_equal(again, pooled, equal_nan=True) and (inline[:, 0] == 0).all()


def test_failure_gallery_maps_pairs_past_the_left_out_ones(tmp_path: Path) -> None:
    from facebench.report.gallery import failure_gallery
    from facebench.report.runs import Run

    lfw = tmp_path / "lfw"
    colours = {"Ann_A": [(200, 0, 0), (0, 200, 0)], "Bob_B": [(0, 0, 200), (200, 200, 0)]}
    for name, cs in colours.items():
        (lfw / name).mkdir(parents=True)
        for k, c in enumerate(cs, 1):
            cv2.imwrite(str(lfw / name / f"{name}_{k:04d}.jpg"), np.full((112, 112, 3), c[::-1], dtype=np.uint8))
    # 10 sets of one matched and one mismatched pair: pair 2s = Ann 1-2, pair 2s+1 = Ann 1 vs Bob 2
    (lfw / "pairs.txt").write_text("10\t1\n" + "Ann_A\t1\t2\nAnn_A\t1\tBob_B\t2\n" * 10)
    kept = np.ones(20, dtype=bool)
    kept[0] = False  # pair 0 left out: array position 0 is pair 1 (a mismatched pair)
    correct = np.ones(19, dtype=bool)
    correct[0] = False
    labels = np.tile([True, False], 10)[kept]
    entry = {"kind": "pairs", "rules": {"n_folds": 10},
             "extra": {"reader": "lfw_pairs", "images": {"pairs": str(lfw / "pairs.txt"), "images": str(lfw)}}}
    run = Run("r", tmp_path, document({"lfw": entry}, settings={"cache_dir": str(tmp_path / "cache"), "options": {}}))
    run._arrays["lfw"] = {"scores": np.linspace(0.9, 0.1, 19), "labels": labels, "correct": correct, "pairs_kept": kept}
    gallery = failure_gallery(run, "lfw", 3)
    (pair,) = gallery.false_accepts
    assert pair.index == 1 and not pair.genuine
    second = cv2.imdecode(np.frombuffer(pair.images[1], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.abs(second.astype(int) - (200, 200, 0)).max() < 12  # Bob_B_0002, the second image of pair 1
