"""IJB meta files (insightface testsuite layout): exact bytes written, read back, and every malformed line
reported with its file and line."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.metrics.pooling import lookup_rows
from facebench.io import ijb


def small_meta(n: int = 7, seed: int = 0) -> ijb.MetaImages:
    rng = np.random.default_rng(seed)
    # values n/1000 + 0.0001 and m/1e6 + 1e-7 keep away from rounding ties, so "%.3f"/"%.6f" is unambiguous
    landmarks = rng.integers(-5000, 120000, (n, 5, 2)) / 1000 + 0.0001
    scores = rng.integers(0, 10**6, n) / 1e6 + 1e-7
    return ijb.MetaImages(
        names=np.array([f"{i + 1}.jpg" for i in range(n)], dtype=object),
        templates=rng.integers(1, 4, n) * 1000,
        medias=rng.integers(1, 9, n) + 70000,
        landmarks=landmarks,
        scores=scores,
    )


def test_layout_paths_for_both_sets(tmp_path: Path) -> None:
    c = ijb.layout(tmp_path, "ijbc")
    assert c["tid_mid"] == tmp_path / "IJBC/meta/ijbc_face_tid_mid.txt"
    assert c["landmarks"] == tmp_path / "IJBC/meta/ijbc_name_5pts_score.txt"
    assert c["pairs"] == tmp_path / "IJBC/meta/ijbc_template_pair_label.txt"
    assert c["gallery1"] == tmp_path / "IJBC/meta/ijbc_1N_gallery_G1.csv"
    assert c["gallery2"] == tmp_path / "IJBC/meta/ijbc_1N_gallery_G2.csv"
    assert c["probes"] == tmp_path / "IJBC/meta/ijbc_1N_probe_mixed.csv"
    assert c["images"] == tmp_path / "IJBC/loose_crop"
    b = ijb.layout(tmp_path, "ijbb")
    assert b["gallery1"] == tmp_path / "IJBB/meta/ijbb_1N_gallery_S1.csv"
    assert b["gallery2"] == tmp_path / "IJBB/meta/ijbb_1N_gallery_S2.csv"
    with pytest.raises(FacebenchError, match="unknown IJB prefix"):
        ijb.layout(tmp_path, "ijba")


def test_write_ijb_is_byte_exact(tmp_path: Path) -> None:
    meta = small_meta()
    pairs = ijb.TemplatePairs(np.array([1000, 2000, 3000]), np.array([2000, 3000, 1000]), np.array([1, 0, 0], bool))
    filenames = np.array(["img/5.jpg", "frames/9.png", "img/1.jpg"])
    gallery = ijb.SearchSet(np.array([1000, 1000, 2000]), np.array([7, 7, 8]), filenames)
    written = ijb.write_ijb(tmp_path, "ijbc", meta, pairs, {"gallery1": gallery}, crops={"1.jpg": b"\xff\xd8abc"})

    expected_tid = "".join(f"{n} {t} {m}\n" for n, t, m in zip(meta.names, meta.templates, meta.medias))
    assert written["tid_mid"].read_bytes() == expected_tid.encode()
    lines = []
    for name, points, score in zip(meta.names, meta.landmarks, meta.scores):
        numbers = " ".join("%.3f" % v for v in points.ravel())
        lines.append(f"{name} {numbers} {'%.6f' % score}\n")
    assert written["landmarks"].read_bytes() == "".join(lines).encode()
    assert written["pairs"].read_bytes() == b"1000 2000 1\n2000 3000 0\n3000 1000 0\n"
    assert written["gallery1"].read_bytes() == (
        b"TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT\n"
        b"1000,7,img/5.jpg,1000,0,0,0,0\n1000,7,frames/9.png,1000,0,0,0,0\n2000,8,img/1.jpg,2000,0,0,0,0\n"
    )
    assert (tmp_path / "IJBC/loose_crop/1.jpg").read_bytes() == b"\xff\xd8abc"
    assert set(written) == {"tid_mid", "landmarks", "pairs", "gallery1", "images"}


def test_negative_and_wide_numbers_are_written_plainly(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    ijb.write_template_pairs(path, np.array([-12, 0, 1234567890123]), np.array([5, -7, 9]), np.array([0, 1, 1]))
    assert path.read_bytes() == b"-12 5 0\n0 -7 1\n1234567890123 9 1\n"
    with pytest.raises(ValueError, match="whitespace"):
        ijb.write_face_tid_mid(tmp_path / "t.txt", ["a b.jpg"], np.array([1]), np.array([1]))


def test_round_trip(tmp_path: Path) -> None:
    meta = small_meta(50, seed=3)
    pairs = ijb.TemplatePairs(np.array([1000, 3000]), np.array([2000, 2000]), np.array([0, 1], bool))
    written = ijb.write_ijb(tmp_path, "ijbb", meta, pairs)
    back = ijb.read_meta_images(written["tid_mid"], written["landmarks"])
    assert back.names.tolist() == meta.names.tolist()
    assert np.array_equal(back.templates, meta.templates) and np.array_equal(back.medias, meta.medias)
    # the file holds 3 (landmarks) and 6 (scores) decimals: read values are those decimals exactly
    as_written = [[float("%.3f" % v) for v in p.ravel()] for p in meta.landmarks]
    assert np.array_equal(back.landmarks, np.array(as_written).reshape(-1, 5, 2))
    assert np.array_equal(back.scores, np.array([float("%.6f" % s) for s in meta.scores]))
    assert set(back.inputs) == {"ijbb_face_tid_mid.txt", "ijbb_name_5pts_score.txt"}
    p = ijb.read_template_pairs(written["pairs"])
    assert p.t1.tolist() == [1000, 3000] and p.t2.tolist() == [2000, 2000] and p.label.tolist() == [False, True]
    images = back.image_list(tmp_path / "IJBB/loose_crop", "x")
    assert images.paths[3] == str(tmp_path / "IJBB/loose_crop/4.jpg")
    assert np.array_equal(images.landmarks, back.landmarks) and np.array_equal(images.scores, back.scores)


def test_blank_lines_and_crlf_are_accepted_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "ijbc_template_pair_label.txt"
    path.write_bytes(b"1 2 1\r\n\r\n3 4 0\r\n  \n5 6 0\n")
    p = ijb.read_template_pairs(path)
    assert p.t1.tolist() == [1, 3, 5] and p.label.tolist() == [True, False, False]
    path.write_bytes(b"1 2 1\n\n3 4 0\n\n5 6 2\n")
    with pytest.raises(FacebenchError, match=r"ijbc_template_pair_label.txt line 5: label must be 0 or 1, got 2"):
        ijb.read_template_pairs(path)
    assert ijb.line_of_row(path, 1) == 3


@pytest.mark.parametrize("piece_bytes", [7, 1 << 25])
def test_fast_reader_equals_the_fallback_reader_in_any_number_of_pieces(tmp_path, monkeypatch, piece_bytes):
    monkeypatch.setattr(ijb, "_PIECE_BYTES", piece_bytes)
    meta = small_meta(300, seed=5)
    rng = np.random.default_rng(5)
    pairs = ijb.TemplatePairs(rng.integers(1, 10**6, 500), rng.integers(1, 4, 500) * 1000, rng.random(500) < 0.3)
    written = ijb.write_ijb(tmp_path, "ijbc", meta, pairs)
    fast = (ijb.read_meta_images(written["tid_mid"], written["landmarks"]), ijb.read_template_pairs(written["pairs"]))
    for role, columns in (("tid_mid", [("n", "str"), ("t", "int"), ("m", "int")]), ("pairs", [("a", "int32")] * 3)):
        assert ijb._parse_arrow(written[role].read_bytes(), columns, {}) is not None  # the fast path was taken
    monkeypatch.setattr(ijb, "_parse_arrow", lambda data, columns, convert, sink=None: None)  # pandas, then the line scan
    slow = (ijb.read_meta_images(written["tid_mid"], written["landmarks"]), ijb.read_template_pairs(written["pairs"]))
    for a, b in zip(fast, slow):
        for name in ("names", "templates", "medias", "landmarks", "scores", "t1", "t2", "label"):
            if hasattr(a, name):
                x, y = getattr(a, name), getattr(b, name)
                assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert fast[1].t1.dtype == np.int32 and fast[1].label.dtype == bool
    assert fast[0].inputs == slow[0].inputs and fast[1].sha256 == slow[1].sha256


@pytest.mark.parametrize("piece_bytes", [7, 1 << 25])
@pytest.mark.parametrize("spacing", [" ", "  "])  # single spaces: the fast reader; more: the fallback
def test_pairs_mapped_to_template_rows_while_read(tmp_path, monkeypatch, piece_bytes, spacing):
    monkeypatch.setattr(ijb, "_PIECE_BYTES", piece_bytes)
    ids = np.array([10, 20, 35, 400_000])
    rng = np.random.default_rng(2)
    t1, t2, label = rng.choice(ids, 300), rng.choice(ids, 300), rng.integers(0, 2, 300)
    path = tmp_path / "ijbc_template_pair_label.txt"
    path.write_text("".join(f"{a}{spacing}{b}{spacing}{c}\n" for a, b, c in zip(t1, t2, label)))
    pairs = ijb.read_template_pairs(path, to_rows=partial(lookup_rows, ids), image_list="tid.txt")
    assert pairs.rows and pairs.t1.dtype == np.int16 and pairs.t2.dtype == np.int16
    assert np.array_equal(pairs.t1, np.searchsorted(ids, t1)) and np.array_equal(pairs.t2, np.searchsorted(ids, t2))
    assert np.array_equal(pairs.label, label == 1)
    plain = ijb.read_template_pairs(path)
    assert not plain.rows and np.array_equal(plain.t1, t1) and np.array_equal(plain.t2, t2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # the first column's first unknown id is reported first, then the second column's
        (b"10 20 1\n\n35 20 0\n10 99 0\n77 20 1\n", r"line 5: template 77 is not in tid\.txt \(no image belongs"),
        (b"10 20 1\n\n35 20 0\n10 99 0\n", r"line 4: template 99 is not in tid\.txt"),
        (b"10\t20 1\n10 99 0\n", r"line 2: template 99 is not in tid\.txt"),
    ],
)
def test_pair_naming_an_unknown_template_is_reported_with_its_line(tmp_path, content, message):
    path = tmp_path / "ijbc_template_pair_label.txt"
    path.write_bytes(content)
    with pytest.raises(FacebenchError, match=message) as info:
        ijb.read_template_pairs(path, to_rows=partial(lookup_rows, np.array([10, 20, 35])), image_list="tid.txt")
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"1 2 1\n3 4\n", r"line 2: expected 3 columns \(template_id_1 template_id_2 label\), got 2"),
        (b"1 2 1\n3 4 0 9\n", r"line 2: expected 3 columns"),
        (b"1 2 1 7\n3 4 0\n", r"line 1: expected 3 columns"),
        (b"1 2 1\n3 x 0\n", r"line 2: expected an integer template_id_2, got 'x'"),
        (b"1 2 1\n3 4 0.5\n", r"line 2: expected an integer label, got '0.5'"),
        (b"1 2 1\n3 99999999999999999999 0\n", r"line 2: template_id_2 99999999999999999999 is out of range"),
        (b"", r"empty file"),
        (b"\n \n", r"empty file"),
    ],
)
def test_malformed_pair_lines(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "ijbc_template_pair_label.txt"
    path.write_bytes(content)
    with pytest.raises(FacebenchError, match=message) as info:
        ijb.read_template_pairs(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"1.jpg 5 9\n2.jpg 5\n", r"ijbc_face_tid_mid.txt line 2: expected 3 columns"),
        (b"1.jpg 5 9\n2.jpg five 9\n", r"ijbc_face_tid_mid.txt line 2: expected an integer template_id, got 'five'"),
        (b"1.jpg 5 9\n\n2.jpg 5 9x\n", r"ijbc_face_tid_mid.txt line 3: expected an integer media_id, got '9x'"),
    ],
)
def test_malformed_tid_mid_lines(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "ijbc_face_tid_mid.txt"
    path.write_bytes(content)
    with pytest.raises(FacebenchError, match=message):
        ijb.read_face_tid_mid(path)


def _five_points_line(name: str, score: str = "0.9") -> str:
    return f"{name} 1 2 3 4 5 6 7 8 9 10 {score}\n"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([_five_points_line("1.jpg"), "2.jpg 1 2 3 4 5 6 7 8 9 0.9\n"], r"line 2: expected 12 columns"),
        ([_five_points_line("1.jpg"), _five_points_line("2.jpg", "high")], r"line 2: expected a number for detector"),
        ([_five_points_line("1.jpg"), _five_points_line("2.jpg", "inf")], r"line 2: expected a finite number for det"),
        ([_five_points_line("1.jpg", "nan"), _five_points_line("2.jpg")], r"line 1: expected a finite number for det"),
        (["1.jpg 1 2 3 4 5 6 7 8 9 ten 0.5\n"], r"line 1: expected a number for y5, got 'ten'"),
    ],
)
def test_malformed_landmark_lines(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "ijbc_name_5pts_score.txt"
    path.write_text("".join(lines))
    with pytest.raises(FacebenchError, match=message):
        ijb.read_name_5pts_score(path)


def test_landmarks_are_in_point_order(tmp_path: Path) -> None:
    path = tmp_path / "ijbc_name_5pts_score.txt"
    path.write_text("a.jpg 1 2 3 4 5 6 7 8 9 10 0.25\n")
    names, points, scores, _ = ijb.read_name_5pts_score(path)
    assert names.tolist() == ["a.jpg"] and scores.tolist() == [0.25]
    assert points[0].tolist() == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]


def test_image_files_must_agree(tmp_path: Path) -> None:
    tid = tmp_path / "ijbc_face_tid_mid.txt"
    pts = tmp_path / "ijbc_name_5pts_score.txt"
    tid.write_text("1.jpg 5 9\n2.jpg 5 9\n3.jpg 6 10\n")
    pts.write_text(_five_points_line("1.jpg") + _five_points_line("2.jpg"))
    with pytest.raises(FacebenchError, match="has 2 images but .* has 3"):
        ijb.read_meta_images(tid, pts)
    pts.write_text(_five_points_line("1.jpg") + "\n" + _five_points_line("3.jpg") + _five_points_line("2.jpg"))
    message = r"ijbc_name_5pts_score.txt line 3: image '3.jpg', but .*ijbc_face_tid_mid.txt line 2 has '2.jpg'"
    with pytest.raises(FacebenchError, match=message):
        ijb.read_meta_images(tid, pts)


def test_search_set_reading_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "ijbc_1N_gallery_G1.csv"
    path.write_text("TEMPLATE_ID,SUBJECT_ID,FILENAME\n10,1,img/1.jpg\n\n10,1,img/2.jpg\n4,2,frames/3.png\n")
    s = ijb.read_search_set(path)
    assert s.templates.tolist() == [10, 10, 4] and s.subjects.tolist() == [1, 1, 2]
    assert s.lines.tolist() == [2, 4, 5] and s.filenames.tolist() == ["img/1.jpg", "img/2.jpg", "frames/3.png"]
    ids, subjects = s.template_subjects()
    assert ids.tolist() == [4, 10] and subjects.tolist() == [2, 1]

    path.write_text("\ufeffSUBJECT_ID,template_id\n1,10\n")  # BOM, other order, lower case
    s = ijb.read_search_set(path)
    assert s.templates.tolist() == [10] and s.subjects.tolist() == [1] and s.filenames is None

    cases = [
        ("TEMPLATE_ID,FILENAME\n1,a\n", r"G1.csv line 1: the header has no SUBJECT_ID column"),
        ("TEMPLATE_ID,SUBJECT_ID,FILENAME\n1,2,a\n1,2\n", r"G1.csv line 3: expected 3 fields"),
        ("TEMPLATE_ID,SUBJECT_ID\n1,2\nx,2\n", r"G1.csv line 3: expected an integer TEMPLATE_ID, got 'x'"),
        ("TEMPLATE_ID,SUBJECT_ID\n", r"a header but no rows"),
        ("", r"empty file"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(FacebenchError, match=message):
            ijb.read_search_set(path)
    path.write_text("TEMPLATE_ID,SUBJECT_ID\n5,1\n6,2\n5,3\n")
    with pytest.raises(FacebenchError, match=r"G1.csv line 4: template 5 has subject 3, but line 2 gives it subject 1"):
        ijb.read_search_set(path).template_subjects()


def test_fixed_point_columns_match_printf_and_bad_strings_are_refused(tmp_path: Path) -> None:
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    points = np.array([[-0.0004, 0.0005, 0.0015, -12.3456, 1e6 + 0.25, 111.9999, -0.5, 7, 0.125, 2.675]] * 4)
    points[1] *= -1
    scores = np.array([0.5, -0.0000004, 0.9999995, 1e-7])
    path = tmp_path / "l.txt"
    ijb.write_name_5pts_score(path, names, points, scores)
    expected = "".join(f"{n} " + " ".join("%.3f" % (0.0 if round(v, 3) == 0 else v) for v in row) + " %.6f\n" % (0.0 if round(s, 6) == 0 else s)
                       for n, row, s in zip(names, points, scores))
    assert path.read_text() == expected
    with pytest.raises(ValueError, match="NaN or infinite"):
        ijb.write_name_5pts_score(path, names[:1], np.full((1, 10), np.nan), np.zeros(1))
    with pytest.raises(ValueError, match=r"'img/a,b.jpg' \(row 1\)"):
        ijb.write_search_set(tmp_path / "s.csv", np.array([1, 2]), np.array([1, 1]), ["img/1.jpg", "img/a,b.jpg"])
    with pytest.raises(ValueError, match=r"'' \(row 0\) is empty"):
        ijb.write_face_tid_mid(tmp_path / "t.txt", [""], np.array([1]), np.array([1]))
    ijb.write_template_pairs(tmp_path / "empty.txt", np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert (tmp_path / "empty.txt").read_bytes() == b""
