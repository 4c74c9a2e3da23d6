"""Original pair-list distributions: real protocol files, synthetic image trees, and the .bin equivalence.

For each set, a synthetic distribution is written in the official layout and a .bin pack is built from the same
JPEG bytes in the order insightface's packing walks that layout (computed here, independently of the readers);
both distributions must then give identical pairs, issame, folds and decoded images.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from _iodata import jpeg, write_file
from facebench.errors import FacebenchError
from facebench.extraction.images import arcface_chip
from facebench.io.binpack import read_bin, write_bin
from facebench.io.landmarks import read_landmarks
from facebench.io.pairlists import (
    PairList,
    contiguous_folds,
    read_agedb_mat,
    read_calfw_pairs,
    read_cfp,
    read_cplfw_pairs,
    read_lfw_pairs,
    read_pair_label_list,
)


def _images(files: dict[str, bytes], root: Path) -> None:
    for rel, data in files.items():
        write_file(root / rel, data)


def _assert_same_as_pack(pairs: PairList, expected: list[tuple[str, str, bool]], root: Path, tmp_path: Path,
                         files: dict[str, bytes]) -> None:
    """``pairs`` equals ``expected`` (relative paths, issame) and a .bin built in that order from the same bytes."""
    assert pairs.image_paths() == [str(root / p) for a, b, _ in expected for p in (a, b)]
    assert pairs.issame.tolist() == [s for _, _, s in expected]
    pack_path = tmp_path / "same_set.bin"
    write_bin(pack_path, [files[p] for a, b, _ in expected for p in (a, b)], [s for _, _, s in expected])
    pack = read_bin(pack_path)
    np.testing.assert_array_equal(pairs.issame, pack.issame)
    np.testing.assert_array_equal(pairs.folds, pack.folds)
    assert pairs.is_kfold_layout()
    chip = arcface_chip()
    from_files, from_pack = pairs.to_image_list(), pack.to_image_list()
    for i in range(len(from_files)):
        np.testing.assert_array_equal(from_files.load_chip(i, chip), from_pack.load_chip(i, chip))


# --- LFW -------------------------------------------------------------------------------------------------


def _lfw_set(root: Path, n: int = 3):
    """A 10-fold LFW distribution: pairs.txt text, expected pairs in file order, image bytes by relative path."""
    lines, expected, files = ["10\t%d" % n], [], {}

    def rel(name: str, i: int) -> str:
        path = f"{name}/{name}_{i:04d}.jpg"
        files.setdefault(path, jpeg(len(files)))
        return path

    for s in range(10):
        for m in range(n):
            name = f"Person_{s}_{m}"
            lines.append(f"{name}\t1\t{2 + m % 2}")
            expected.append((rel(name, 1), rel(name, 2 + m % 2), True))
        for m in range(n):
            a, b = f"Person_{s}_{m}", f"Person_{s}_{(m + 1) % n}"
            lines.append(f"{a}\t1\t{b}\t2")
            expected.append((rel(a, 1), rel(b, 2), False))
    return "\n".join(lines) + "\n", expected, files


def test_lfw_pairs_and_bin_agree(tmp_path):
    text, expected, files = _lfw_set(tmp_path)
    root = tmp_path / "lfw"
    _images(files, root)
    (tmp_path / "pairs.txt").write_text(text)
    pairs = read_lfw_pairs(tmp_path / "pairs.txt", root)
    assert pairs.n_pairs == 60 and pairs.n_folds == 10
    assert np.bincount(pairs.folds).tolist() == [6] * 10
    assert len(pairs.paths) == len(files)  # shared images are listed once
    _assert_same_as_pack(pairs, expected, root, tmp_path, files)


def _lfw_rel_paths(line: str) -> list[str]:
    f = line.split("\t")
    names = (f[0], f[0]) if len(f) == 3 else (f[0], f[2])
    nums = (f[1], f[2]) if len(f) == 3 else (f[1], f[3])
    return [f"{n}/{n}_{int(i):04d}.jpg" for n, i in zip(names, nums)]


def test_real_lfw_pairs_txt(protocol_files, tmp_path):
    pairs_txt = protocol_files / "lfw" / "pairs.txt"
    lines = pairs_txt.read_text().splitlines()
    root = tmp_path / "lfw"
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        for rel in _lfw_rel_paths(line):
            first_line.setdefault(rel, number)
    tiny = jpeg(0, size=(8, 8))
    _images({rel: tiny for rel in first_line}, root)

    pairs = read_lfw_pairs(pairs_txt, root)
    assert pairs.n_pairs == 6000
    assert np.bincount(pairs.folds).tolist() == [600] * 10 and pairs.is_kfold_layout()
    assert pairs.issame.tolist() == ([True] * 300 + [False] * 300) * 10
    names = {Path(p).parent.name for p in pairs.paths}
    independent = {t for line in lines[1:] for t in line.split("\t") if not t.isdigit()}
    assert names == independent and len(names) == 4281
    assert pairs.image_paths() == [str(root / rel) for line in lines[1:] for rel in _lfw_rel_paths(line)]
    assert pairs.inputs == {"pairs.txt": hashlib.sha256(pairs_txt.read_bytes()).hexdigest()}
    assert hashlib.md5(pairs_txt.read_bytes()).hexdigest() == "9f1ba174e4e1c508ff7cdf10ac338a7d"  # the official file

    # insightface's pairs_label.txt is the same 6,000 pairs in the same order
    label_list = read_pair_label_list(protocol_files / "lfw" / "insightface_pairs_label.txt", root)
    assert label_list.image_paths() == pairs.image_paths()
    np.testing.assert_array_equal(label_list.issame, pairs.issame)
    np.testing.assert_array_equal(label_list.folds, pairs.folds)

    # a missing image is reported with the first line that names it
    victim = _lfw_rel_paths(lines[1234])[1]
    (root / victim).unlink()
    with pytest.raises(FacebenchError) as err:
        read_lfw_pairs(pairs_txt, root)
    assert str(err.value).startswith(f"{pairs_txt} line {first_line[victim]}: image not found: {root / victim}")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ls: ls.__setitem__(9, "Abel_Pacheco\t1"),
         r"pairs\.txt line 10: expected 3 columns \(name i j of a matched pair in set 1\), got 2"),
        (lambda ls: ls.__setitem__(399, "Abel_Pacheco\t1\t4"),
         r"pairs\.txt line 400: expected 4 columns .*mismatched pair in set 1\), got 3"),
        (lambda ls: ls.__setitem__(4, "Akhmed_Zakayev\tone\t3"),
         r"pairs\.txt line 5: expected an integer image number, got 'one'"),
        (lambda ls: ls.__setitem__(0, "10 300 7"), r"pairs\.txt line 1: expected a header"),
        (lambda ls: ls.pop(), r"pairs\.txt: ends after 5999 pair lines"),
        (lambda ls: ls.append("Extra\t1\t2"), r"pairs\.txt line 6002: expected the end of the file"),
    ],
)
def test_lfw_malformed_lines(protocol_files, tmp_path, edit, message):
    lines = (protocol_files / "lfw" / "pairs.txt").read_text().splitlines()
    edit(lines)
    bad = tmp_path / "pairs.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(FacebenchError, match=message):
        read_lfw_pairs(bad, tmp_path, check_images=False)


def test_lfw_view1_header_and_crlf(tmp_path):
    # pairsDevTest.txt style: a single count (one set), Windows line endings
    (tmp_path / "dev.txt").write_bytes(b"2\r\nA\t1\t2\r\nB\t1\t3\r\nA\t1\tB\t2\r\nC\t4\tD\t1\r\n")
    pairs = read_lfw_pairs(tmp_path / "dev.txt", tmp_path / "r", check_images=False)
    assert pairs.issame.tolist() == [True, True, False, False]
    assert pairs.image_paths()[-1] == str(tmp_path / "r" / "D" / "D_0001.jpg")


def test_corrupt_image_in_tree_names_the_file(tmp_path):
    text, expected, files = _lfw_set(tmp_path, n=1)
    root = tmp_path / "lfw"
    _images(files, root)
    victim = root / expected[0][1]
    victim.write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "pairs.txt").write_text(text)
    images = read_lfw_pairs(tmp_path / "pairs.txt", root).to_image_list()
    with pytest.raises(FacebenchError, match=rf"{victim}.*cannot decode"):
        images.load_chip(1, arcface_chip())


# --- CALFW / CPLFW ---------------------------------------------------------------------------------------


def _xlfw_set(cplfw: bool, per_fold: int = 2):
    """A CALFW/CPLFW pair file (positives then negatives) and the insightface order of its pairs."""
    half = 10 * per_fold
    lines, pairs, files = [], [], {}
    for k in range(2 * half):
        same = k < half
        a, b = f"Name_{k}_1.jpg", f"Name_{k}_2.jpg" if same else f"Other_{k}_1.jpg"
        label = (1 if cplfw else 7 * (k + 1)) if same else 0
        lines += [f"{a} {label}", f"{b} {label}"]
        pairs.append((a, b, same))
        files[a], files[b] = jpeg(2 * k), jpeg(2 * k + 1)
    order = [pairs[i] for f in range(10) for start in (f * per_fold, half + f * per_fold)
             for i in range(start, start + per_fold)]
    return "\n".join(lines) + "\n", order, files


@pytest.mark.parametrize("cplfw", [False, True])
def test_calfw_cplfw_and_bin_agree(tmp_path, cplfw):
    text, order, files = _xlfw_set(cplfw)
    root = tmp_path / "images"
    _images(files, root)
    pair_file = tmp_path / ("pairs_CPLFW.txt" if cplfw else "pairs_CALFW.txt")
    pair_file.write_text(text)
    reader = read_cplfw_pairs if cplfw else read_calfw_pairs
    pairs = reader(pair_file, root)
    assert pairs.n_pairs == 40 and np.bincount(pairs.folds).tolist() == [4] * 10
    assert pairs.issame.tolist() == [True, True, False, False] * 10
    _assert_same_as_pack(pairs, order, root, tmp_path, files)


def test_calfw_fold_layout_at_full_size(tmp_path):
    # 6,000 pairs: fold k = positives [300k, 300k+300) then negatives [3000+300k, ...+300)
    lines = [f"p{k}_{s}.jpg {k + 1 if k < 3000 else 0}" for k in range(6000) for s in (1, 2)]
    (tmp_path / "pairs_CALFW.txt").write_text("\n".join(lines))
    pairs = read_calfw_pairs(tmp_path / "pairs_CALFW.txt", tmp_path, check_images=False)
    src = [int(Path(pairs.paths[a]).name.split("_")[0][1:]) for a, _ in pairs.pairs]
    assert src[:300] == list(range(300)) and src[300:600] == list(range(3000, 3300))
    assert src[5400:5700] == list(range(2700, 3000)) and src[5700:] == list(range(5700, 6000))
    np.testing.assert_array_equal(pairs.folds, contiguous_folds(6000))


@pytest.mark.parametrize(
    "lines, reader, message",
    [
        (["a.jpg 1", "b.jpg 1", "c.jpg 0"], read_cplfw_pairs, "odd number of lines"),
        (["a.jpg 1 x", "b.jpg 1"], read_cplfw_pairs, r"line 1: expected 2 columns \(image_name label\), got 3"),
        (["a.jpg 2", "b.jpg 2"], read_cplfw_pairs, "line 1: expected label 1 .* got 2"),
        (["a.jpg 5", "b.jpg 0"], read_calfw_pairs, "line 2: the two lines of pair 1 disagree"),
        (["a.jpg x", "b.jpg 0"], read_calfw_pairs, "line 1: expected an integer label, got 'x'"),
    ],
)
def test_xlfw_malformed(tmp_path, lines, reader, message):
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FacebenchError, match=rf"pairs\.txt.*{message}"):
        reader(path, tmp_path, check_images=False, n_folds=1)


def test_xlfw_layout_violation(tmp_path):
    text, _, _ = _xlfw_set(True, per_fold=1)
    lines = text.splitlines()
    lines[6], lines[7] = "Name_3_1.jpg 0", "Other_3_1.jpg 0"  # pair 4 negative among the positives
    (tmp_path / "p.txt").write_text("\n".join(lines))
    with pytest.raises(FacebenchError, match=r"p\.txt line 7: pair 4 is negative, but the layout has pairs 1-10 positive"):
        read_cplfw_pairs(tmp_path / "p.txt", tmp_path, check_images=False)


def test_xlfw_missing_image(tmp_path):
    text, order, files = _xlfw_set(False)
    _images(files, tmp_path / "img")
    (tmp_path / "img" / "Other_33_1.jpg").unlink()
    (tmp_path / "pairs_CALFW.txt").write_text(text)
    with pytest.raises(FacebenchError, match=r"pairs_CALFW\.txt line 68: image not found: .*Other_33_1\.jpg"):
        read_calfw_pairs(tmp_path / "pairs_CALFW.txt", tmp_path / "img")


# --- CFP -------------------------------------------------------------------------------------------------


def _cfp_expected(protocol_dir: Path, protocol: str, list_names=("image_list_F.txt", "image_list_P.txt")):
    """Independent reading of a CFP protocol: (relative-to-root paths a, b, same) in split order."""
    def table(name):
        out = {}
        for line in (protocol_dir / name).read_text().splitlines():
            if line.strip():
                i, p = line.split()
                out[int(i)] = p[3:] if p.startswith("../") else p
        return out

    frontal = table(list_names[0])
    second = table(list_names[1]) if protocol == "FP" else frontal
    expected = []
    for k in range(1, 11):
        for name, same in (("same.txt", True), ("diff.txt", False)):
            for line in (protocol_dir / "Split" / protocol / f"{k:02d}" / name).read_text().splitlines():
                if line.strip():
                    a, b = (int(x) for x in line.split(","))
                    expected.append((frontal[a], second[b], same))
    return expected


@pytest.mark.parametrize("protocol", ["FP", "FF"])
def test_real_cfp_splits(protocol_files, protocol):
    root = protocol_files / "cfp"
    pairs = read_cfp(root, protocol, check_images=False)
    assert pairs.n_pairs == 7000 and pairs.is_kfold_layout()
    assert np.bincount(pairs.folds).tolist() == [700] * 10
    assert pairs.issame.tolist() == ([True] * 350 + [False] * 350) * 10
    expected = _cfp_expected(root / "Protocol", protocol)
    assert pairs.image_paths() == [str(root / p) for a, b, _ in expected for p in (a, b)]
    assert "/frontal/" in pairs.image_paths()[0]
    assert ("/profile/" if protocol == "FP" else "/frontal/") in pairs.image_paths()[1]
    assert len(pairs.inputs) == (22 if protocol == "FP" else 21)


def test_real_cfp_against_an_image_tree(protocol_files, tmp_path):
    root = tmp_path / "cfp"
    shutil.copytree(protocol_files / "cfp" / "Protocol", root / "Protocol")
    expected = _cfp_expected(root / "Protocol", "FP")
    tiny = jpeg(0, size=(8, 8))
    _images({p: tiny for a, b, _ in expected for p in (a, b)}, root)
    assert read_cfp(root, "FP").n_pairs == 7000
    victim = expected[702][1]  # a profile image of split 02
    first = next(i for i, (a, b, _) in enumerate(expected) if victim in (a, b))
    fold, pos = divmod(first, 700)
    where = f"Split/FP/{fold + 1:02d}/" + (f"same.txt line {pos + 1}" if pos < 350 else f"diff.txt line {pos - 349}")
    (root / victim).unlink()
    with pytest.raises(FacebenchError) as err:
        read_cfp(root, "FP")
    assert str(err.value).startswith(f"{root / 'Protocol' / where}: image not found: {root / victim}")


def _synthetic_cfp(root: Path, official_names: bool):
    """A CFP tree: 6 identities x (3 frontal, 2 profile); 10 splits of 2 same + 2 diff; official or copy names."""
    files, f_list, p_list = {}, [], []
    for ident in range(1, 7):
        for pose, count, table in (("frontal", 3, f_list), ("profile", 2, p_list)):
            for n in range(1, count + 1):
                rel = f"Data/Images/{ident:03d}/{pose}/{n:02d}.jpg"
                files[rel] = jpeg(len(files))
                table.append(rel)
    prefix = "../" if official_names else ""
    names = ("Pair_list_F.txt", "Pair_list_P.txt") if official_names else ("image_list_F.txt", "image_list_P.txt")
    for name, table in zip(names, (f_list, p_list)):
        write_file(root / "Protocol" / name, "".join(f"{i} {prefix}{p}\n" for i, p in enumerate(table, 1)).encode())
    expected = []
    for k in range(10):
        same = [(3 * (k % 6) + 1, 2 * (k % 6) + 1), (3 * (k % 6) + 2, 2 * (k % 6) + 2)]
        diff = [(3 * (k % 6) + 1, 2 * ((k + 1) % 6) + 1), (3 * ((k + 2) % 6) + 3, 2 * (k % 6) + 2)]
        for name, rows, flag in (("same.txt", same, True), ("diff.txt", diff, False)):
            write_file(root / "Protocol" / "Split" / "FP" / f"{k + 1:02d}" / name,
                       "".join(f"{a},{b}\n" for a, b in rows).encode())
            expected += [(f_list[a - 1], p_list[b - 1], flag) for a, b in rows]
    return expected, files


@pytest.mark.parametrize("official_names", [True, False])
def test_cfp_and_bin_agree(tmp_path, official_names):
    root = tmp_path / "cfp"
    expected, files = _synthetic_cfp(root, official_names)
    _images(files, root)
    pairs = read_cfp(root, "fp")
    assert pairs.n_pairs == 40 and np.bincount(pairs.folds).tolist() == [4] * 10
    _assert_same_as_pack(pairs, expected, root, tmp_path, files)


def test_cfp_malformed(tmp_path):
    root = tmp_path / "cfp"
    _synthetic_cfp(root, True)
    split = root / "Protocol" / "Split" / "FP" / "03" / "diff.txt"
    good = split.read_text()
    split.write_text(good + "5\n")
    with pytest.raises(FacebenchError, match=r"03/diff\.txt line 3: expected 2 columns \(frontal index, profile index\), got 1"):
        read_cfp(root, "FP", check_images=False)
    split.write_text(good + "1,99\n")
    with pytest.raises(FacebenchError, match=r"03/diff\.txt line 3: image index 99 is not listed in .*Pair_list_P\.txt"):
        read_cfp(root, "FP", check_images=False)
    split.unlink()
    with pytest.raises(FacebenchError, match=r"03/diff\.txt: missing"):
        read_cfp(root, "FP", check_images=False)
    with pytest.raises(FacebenchError, match=r"unknown CFP protocol 'PF'; did you mean 'FP' or 'FF'\? "
                                              r"\(known: FP, FF\)"):
        read_cfp(root, "PF")
    with pytest.raises(FacebenchError, match="not a CFP folder"):
        read_cfp(tmp_path, "FP")


# --- AgeDB-30 --------------------------------------------------------------------------------------------


def _write_agedb_mat(path: Path, splits: list[list[tuple[str, str, int]]]) -> None:
    """The structure of 04_FINAL_protocol_30_years.mat: a cell array of 1x1 structs {pairs, labels}; pairs a
    2 x M cell array of 1x1 structs {name, age}; labels 1 x M of +1/-1."""
    cells = np.empty((len(splits), 1), dtype=object)
    for k, rows in enumerate(splits):
        cell = np.empty((2, len(rows)), dtype=object)
        for c, (a, b, _) in enumerate(rows):
            cell[0, c] = {"name": a, "age": 30.0 + c}
            cell[1, c] = {"name": b, "age": 60.0 - c}
        cells[k, 0] = {"pairs": cell, "labels": np.array([[float(lab) for _, _, lab in rows]])}
    scipy.io.savemat(str(path), {"splits": cells})


def _agedb_set(per_split: int = 4):
    splits, files = [], {}
    for k in range(10):
        rows = []
        for c in range(per_split):
            same = c < per_split // 2
            a = f"{k}{c}_PersonA{k}{c}_{20 + c}_m"
            b = f"{k}{c}_PersonA{k}{c}_{50 + c}_m" if same else f"{k}{c}_PersonB{k}{c}_{40 + c}_f"
            files[a + ".jpg"], files[b + ".jpg"] = jpeg(len(files)), jpeg(len(files) + 1)
            rows.append((a, b, 1 if same else -1))
        splits.append(rows)
    return splits, files


def test_agedb_mat_and_bin_agree(tmp_path):
    splits, files = _agedb_set()
    mat = tmp_path / "04_FINAL_protocol_30_years.mat"
    _write_agedb_mat(mat, splits)
    # the written file has the structure the public readers walk (insightface agedb2pack indexing)
    data = scipy.io.loadmat(str(mat))["splits"]
    assert str(data[3][0][0][0][0][1][2][0][0][0][0]) == splits[3][2][1]
    root = tmp_path / "03_Protocol_Images"
    _images(files, root)
    pairs = read_agedb_mat(mat, root)
    assert pairs.n_pairs == 40 and np.bincount(pairs.folds).tolist() == [4] * 10
    expected = [(a + ".jpg", b + ".jpg", lab == 1) for rows in splits for a, b, lab in rows]
    _assert_same_as_pack(pairs, expected, root, tmp_path, files)
    assert list(pairs.inputs) == [mat.name]


def test_agedb_full_size_counts(tmp_path):
    splits = [[(f"a{k}_{c}", f"b{k}_{c}", 1 if c % 2 else -1) for c in range(600)] for k in range(10)]
    mat = tmp_path / "agedb.mat"
    _write_agedb_mat(mat, splits)
    pairs = read_agedb_mat(mat, tmp_path, check_images=False)
    assert pairs.n_pairs == 6000 and pairs.is_kfold_layout()
    assert pairs.issame.sum() == 3000 and pairs.image_paths()[2] == str(tmp_path / "a0_1.jpg")


def test_agedb_malformed(tmp_path):
    splits, _ = _agedb_set()
    splits[1][2] = (splits[1][2][0], splits[1][2][1], 0)
    mat = tmp_path / "bad.mat"
    _write_agedb_mat(mat, splits)
    with pytest.raises(FacebenchError, match=r"bad\.mat split 2 pair 3: expected label \+1 \(same\) or -1"):
        read_agedb_mat(mat, tmp_path, check_images=False)
    scipy.io.savemat(str(mat), {"pairs": np.zeros(3)})
    with pytest.raises(FacebenchError, match=r"bad\.mat: expected a cell array 'splits', found variables \['pairs'\]"):
        read_agedb_mat(mat, tmp_path, check_images=False)
    mat.write_bytes(b"not a mat file at all")
    with pytest.raises(FacebenchError, match=r"bad\.mat: not a readable MATLAB"):
        read_agedb_mat(mat, tmp_path, check_images=False)


# --- landmarks -------------------------------------------------------------------------------------------


def test_landmarks_fill_raw_images(tmp_path):
    text, expected, files = _lfw_set(tmp_path, n=1)
    root = tmp_path / "lfw"
    raw = {rel: jpeg(i, size=(160, 140)) for i, rel in enumerate(files)}  # raw, not 112x112 crops
    _images(raw, root)
    (tmp_path / "pairs.txt").write_text(text)
    pairs = read_lfw_pairs(tmp_path / "pairs.txt", root)
    points = {rel: [50 + i, 60, 90 + i, 61, 70, 85, 55, 105, 88, 104] for i, rel in enumerate(sorted(raw))}
    listed = sorted(raw)[:-1]  # the last image has no landmarks
    lines = [f"{rel if i % 2 else root / rel} " + " ".join(str(v) for v in points[rel]) for i, rel in enumerate(listed)]
    (tmp_path / "lmk.txt").write_text("\n".join(lines) + "\n")
    landmarks = read_landmarks(tmp_path / "lmk.txt", root)
    assert len(landmarks) == len(listed)
    np.testing.assert_array_equal(landmarks[str(root / listed[0])], np.reshape(points[listed[0]], (5, 2)))
    images = pairs.to_image_list(landmarks)
    for i, path in enumerate(images.paths):
        rel = str(Path(path).relative_to(root))
        if rel in listed:
            np.testing.assert_array_equal(images.landmarks[i], np.reshape(points[rel], (5, 2)))
        else:
            assert np.isnan(images.landmarks[i]).all()
    i = next(i for i, p in enumerate(images.paths) if str(Path(p).relative_to(root)) in listed)
    assert images.load_chip(i, arcface_chip()).shape == (112, 112, 3)
    j = next(i for i, p in enumerate(images.paths) if str(Path(p).relative_to(root)) not in listed)
    with pytest.raises(FacebenchError, match="without landmarks"):
        images.load_chip(j, arcface_chip())
    relative = [f"{rel} " + " ".join(str(v) for v in points[rel]) for rel in listed]
    (tmp_path / "relative.txt").write_text("\n".join(relative) + "\n")
    # a landmark file made for another image root
    with pytest.raises(FacebenchError, match=r"lists none of its \d+ images \(an image is .*/lfw/.*, a landmark entry is .*/elsewhere/"):
        pairs.to_image_list(read_landmarks(tmp_path / "relative.txt", tmp_path / "elsewhere"))


@pytest.mark.parametrize(
    "line, message",
    [
        ("a.jpg 1 2 3 4 5 6 7 8 9", r"lmk\.txt line 2: expected 11 columns \(path x1 y1 \.\.\. x5 y5\), got 10"),
        ("a.jpg 1 2 3 4 5 abc 7 8 9 10", r"lmk\.txt line 2: expected a number for y3, got 'abc'"),
        ("a.jpg 1 2 3 4 5 nan 7 8 9 10", r"lmk\.txt line 2: expected a finite number for y3"),
        ("b.jpg 1 2 3 4 5 6 7 8 9 10", r"lmk\.txt line 2: b\.jpg repeats line 1"),
    ],
)
def test_landmark_file_errors(tmp_path, line, message):
    (tmp_path / "lmk.txt").write_text("b.jpg 1 2 3 4 5 6 7 8 9 10\n" + line + "\n")
    with pytest.raises(FacebenchError, match=message):
        read_landmarks(tmp_path / "lmk.txt", tmp_path)


def test_contiguous_folds_is_sklearn_kfold():
    from sklearn.model_selection import KFold

    for n in (20, 6000, 7000, 5003):
        folds = contiguous_folds(n)
        for k, (_, test) in enumerate(KFold(10, shuffle=False).split(np.arange(n))):
            np.testing.assert_array_equal(np.flatnonzero(folds == k), test)
