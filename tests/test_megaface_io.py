"""MegaFace files: devkit JSON lists (byte for byte), noise lists, matio, the --features layout, landmarks."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.io import megaface as mfio

SIZES = (10, 100, 1000, 10000, 100000)


@pytest.fixture(scope="module")
def devkit(protocol_files):
    return protocol_files / "megaface" / "devkit_templatelists"


def test_real_probe_list_counts_and_exact_rewrite(devkit, tmp_path) -> None:
    path = devkit / mfio.PROBE_LIST_NAME
    probes = mfio.read_probe_list(path)
    names, labels = probes.identity_index()
    assert len(probes) == 3530 and len(names) == 80
    counts = np.bincount(labels)
    assert counts.min() == 27 and counts.max() == 50
    assert int((counts * (counts - 1)).sum()) == 153634  # identification trials
    assert all(p.split("/")[0] == i for p, i in zip(probes.paths, probes.ids))
    out = tmp_path / "fs.json"
    mfio.write_probe_list(out, probes.paths, probes.ids)
    assert out.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("size", SIZES)
def test_real_distractor_lists_rewrite_byte_for_byte(devkit, tmp_path, size) -> None:
    path = devkit / mfio.distractor_list_name(size)
    paths = mfio.read_distractor_list(path)
    assert len(paths) == size and len(set(paths)) == size
    out = tmp_path / path.name
    mfio.write_distractor_list(out, paths)
    assert out.read_bytes() == path.read_bytes()


def test_real_lists_are_independent_samples(devkit) -> None:
    ten_k = set(mfio.read_distractor_list(devkit / mfio.distractor_list_name(10000)))
    hundred_k = set(mfio.read_distractor_list(devkit / mfio.distractor_list_name(100000)))
    assert len(ten_k & hundred_k) == 991


def test_list_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "fs.json"
    bad.write_text(json.dumps({"path": ["a/a_1.png", "a/a_2.png"], "id": ["a"]}))
    with pytest.raises(FacebenchError, match=r"fs\.json: 2 paths but 1 ids"):
        mfio.read_probe_list(bad)
    bad.write_text(json.dumps({"path": ["x/y/1.jpg", "x/y/2.jpg", "x/y/1.jpg"]}))
    with pytest.raises(FacebenchError, match=r"path\[2\] 'x/y/1.jpg' repeats path\[0\]"):
        mfio.read_distractor_list(bad)
    bad.write_text("{not json")
    with pytest.raises(FacebenchError, match="not a devkit JSON"):
        mfio.read_distractor_list(bad)
    with pytest.raises(FacebenchError, match="not found"):
        mfio.read_distractor_list(tmp_path / "missing.json")


def test_real_noise_lists(protocol_files, devkit) -> None:
    fs = mfio.read_facescrub_noises(protocol_files / "megaface" / "facescrub_noises.txt")
    mf = mfio.read_megaface_noises(protocol_files / "megaface" / "megaface_noises.txt")
    assert len(fs) == 605 and len(mf) == 707
    probes = mfio.read_probe_list(devkit / mfio.PROBE_LIST_NAME)
    assert sum(mfio.facescrub_noise_key(p) in fs for p in probes.paths) == 24
    in_100k = [p for p in mfio.read_distractor_list(devkit / mfio.distractor_list_name(100000)) if p in mf]
    assert len(in_100k) == 80


def test_noise_list_rules(tmp_path) -> None:
    path = tmp_path / "mf.txt"
    path.write_text("#comment\n1/2@N00/3_0.jpg\nid\t4/5@N00/6_1.jpg\n\n1/2@N00/3_0.jpg\n")
    assert mfio.read_megaface_noises(path) == {"1/2@N00/3_0.jpg", "4/5@N00/6_1.jpg"}
    assert mfio.megaface_noise_key("root/MegaFace/1/2@N00/3_0.jpg") == "1/2@N00/3_0.jpg"
    assert mfio.facescrub_noise_key("A_B/A_B_12.png") == "A_B_12.png"
    mfio.write_noise_list(path, ["x.png", "y.png"], comment="made here")
    assert path.read_text() == "#made here\nx.png\ny.png\n"
    assert mfio.read_facescrub_noises(path) == {"x.png", "y.png"}


def test_matio_bytes_and_roundtrip(tmp_path) -> None:
    vector = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    data = mfio.encode_matio(vector)
    assert data == struct.pack("<4i3f", 3, 1, 4, 5, 0.5, -1.25, 3.0)
    file = tmp_path / "a" / "b.jpg_r100.bin"
    mfio.write_matio(file, vector)
    assert file.read_bytes() == data
    np.testing.assert_array_equal(mfio.read_matio(file), vector)
    # a devkit file written by hand, as insightface's write_bin does
    (tmp_path / "c.jpg_x.bin").write_bytes(struct.pack("<4i", 2, 1, 4, 5) + struct.pack("<2f", 1.5, 2.5))
    np.testing.assert_array_equal(mfio.read_matio_features(tmp_path, ["c.jpg"], "_x.bin"), [[1.5, 2.5]])


def test_matio_errors_name_the_first_offending_file(tmp_path) -> None:
    paths = ["1/a@N00/1_0.jpg", "1/a@N00/2_0.jpg", "1/a@N00/3_0.jpg"]
    features = np.arange(12, dtype=np.float32).reshape(3, 4)
    mfio.write_matio_features(tmp_path, paths, features, "_m.bin")
    np.testing.assert_array_equal(mfio.read_matio_features(tmp_path, paths, "_m.bin"), features)
    (tmp_path / "1/a@N00/2_0.jpg_m.bin").unlink()
    (tmp_path / "1/a@N00/3_0.jpg_m.bin").unlink()
    with pytest.raises(FacebenchError, match=r"2_0\.jpg_m\.bin: feature file not found \(list entry 1: 1/a@N00/2_0\.jpg\)"):
        mfio.read_matio_features(tmp_path, paths, "_m.bin")
    mfio.write_matio(tmp_path / "1/a@N00/2_0.jpg_m.bin", np.zeros(5, np.float32))
    with pytest.raises(FacebenchError, match=r"2_0\.jpg_m\.bin: a 5-dim feature, but the others are 4-dim"):
        mfio.read_matio_features(tmp_path, paths, "_m.bin")
    with pytest.raises(FacebenchError, match=r"1_0\.jpg_m\.bin: a 4-dim feature, but the others are 8-dim"):
        mfio.read_matio_features(tmp_path, paths, "_m.bin", dim=8)
    (tmp_path / "t.bin").write_bytes(struct.pack("<4i", 4, 1, 4, 5) + b"\0" * 8)
    with pytest.raises(FacebenchError, match=r"t\.bin: 24 bytes, but a 4-dim float32 matio file has 32"):
        mfio.read_matio(tmp_path / "t.bin")
    (tmp_path / "u.bin").write_bytes(struct.pack("<4i", 1, 1, 8, 6) + b"\0" * 8)
    with pytest.raises(FacebenchError, match=r"u\.bin: matio type 6 with stride 8"):
        mfio.read_matio(tmp_path / "u.bin")


def test_features_dir_roundtrip_and_errors(tmp_path) -> None:
    rng = np.random.default_rng(0)
    probes = rng.standard_normal((5, 8)).astype(np.float32)
    distractors = rng.standard_normal((7, 8)).astype(np.float32)
    paths = [f"1/u@N00/{i}_0.jpg" for i in range(7)]
    mfio.write_features_dir(tmp_path, probes, distractors, paths)
    assert (tmp_path / "megaface.txt").read_text() == "".join(p + "\n" for p in paths)
    opened = mfio.open_features_dir(tmp_path, n_probes=5)
    np.testing.assert_array_equal(opened.facescrub, probes)
    np.testing.assert_array_equal(opened.megaface.load(), distractors)
    np.testing.assert_array_equal(opened.megaface.take(np.array([5, 1, 2])), distractors[[5, 1, 2]])
    np.testing.assert_array_equal(opened.megaface.read(2, 5), distractors[2:5])
    assert opened.megaface_paths == paths
    assert np.load(tmp_path / "megaface.npy").dtype == np.float32
    with pytest.raises(FacebenchError, match=r"facescrub\.npy: has 5 rows but the probe list has 6 images"):
        mfio.open_features_dir(tmp_path, n_probes=6)
    (tmp_path / "megaface.txt").write_text("".join(p + "\n" for p in paths[:6]))
    with pytest.raises(FacebenchError, match=r"megaface\.txt: 6 paths but .*megaface\.npy has 7 rows"):
        mfio.open_features_dir(tmp_path)
    (tmp_path / "megaface.txt").write_text("a\n\nb\n")
    with pytest.raises(FacebenchError, match=r"megaface\.txt line 2: empty line"):
        mfio.open_features_dir(tmp_path)
    np.save(tmp_path / "megaface.npy", distractors[:, :4])
    (tmp_path / "megaface.txt").write_text("".join(p + "\n" for p in paths))
    with pytest.raises(FacebenchError, match=r"megaface\.npy: 4-dim features but .*facescrub\.npy has 8-dim"):
        mfio.open_features_dir(tmp_path)
    (tmp_path / "facescrub.npy").unlink()
    with pytest.raises(FacebenchError, match=r"facescrub\.npy: features file not found"):
        mfio.open_features_dir(tmp_path)


def test_npy_row_writer_is_atomic(tmp_path) -> None:
    target = tmp_path / "m.npy"
    with pytest.raises(ValueError, match="2 of 3 rows written"):
        with mfio.NpyRowWriter(target, 3, 2) as writer:
            writer.write(np.ones((2, 2)))
            writer.close()
    assert not target.exists() and not list(tmp_path.iterdir())
    with mfio.NpyRowWriter(target, 3, 2) as writer:
        writer.write(np.ones((1, 2)))
        writer.write(np.arange(4).reshape(2, 2))
    np.testing.assert_array_equal(np.load(target), [[1, 1], [0, 1], [2, 3]])


def test_facexzoo_face_info_gives_the_five_arcface_points(protocol_files) -> None:
    path = protocol_files / "megaface" / "FaceX-Zoo" / "facescrub_face_info.txt"
    points = mfio.read_landmark_file(path)
    assert len(points) == 3530
    first = path.read_text().split("\n", 1)[0].split(" ")
    values = [float(v) for v in first[2].split(",")]
    expected = [[values[2 * (n - 1)], values[2 * (n - 1) + 1]] for n in (105, 106, 55, 85, 91)]
    np.testing.assert_array_equal(points[first[0]], expected)
    left_eye, right_eye, nose, mouth_left, mouth_right = points[first[0]]
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0] and left_eye[1] < nose[1] < mouth_left[1]


def test_landmarks_match_by_path_or_by_stem(tmp_path) -> None:
    path = tmp_path / "lm.txt"
    path.write_text("A/A_1.jpg 1 2 3 4 5 6 7 8 9 10\nB/B_2.png 0 0 1 1 2 2 3 3 4 4\n")
    images, points = mfio.match_landmarks(["A/A_1.png", "B/B_2.png", "C/C_3.png"], mfio.read_landmark_file(path), "x")
    assert images == ["A/A_1.jpg", "B/B_2.png", "C/C_3.png"]
    np.testing.assert_array_equal(points[0], np.arange(1, 11).reshape(5, 2))
    assert np.isnan(points[2]).all()
    with pytest.raises(FacebenchError, match="lists none of the 1 images"):
        mfio.match_landmarks(["Z/Z_1.png"], mfio.read_landmark_file(path), "x")
    path.write_text("A/A_1.jpg 1 2 3\n")
    with pytest.raises(FacebenchError, match=r"lm\.txt line 1: expected 11 columns"):
        mfio.read_landmark_file(path)
