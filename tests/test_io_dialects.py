"""Pair-list dialect detection and reading, the real protocol lists, and the per-image side files."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.io.attributes import masked, match_images, read_groups, read_mfr2_labels, read_quality
from facebench.io.pairlists import detect_dialect, image_identity, layout_folds, read_lfw_pairs, read_pair_list


@pytest.mark.parametrize(
    "text, dialect",
    [
        ("10\t300\nA\t1\t2\n", "lfw"),
        ("A\t1\t2\nA\t1\tB\t2\n", "lfw_noheader"),
        ("A\t1\tB\t2\n", "lfw_noheader"),
        ("a/x.jpg\nb/y.jpg\n", "consecutive"),
        ("x_0001.jpg 5\ny_0002.jpg 5\n", "consecutive"),
        ("a.jpg\tb.jpg\t1\n", "path_path_label"),
        ("1 a.jpg b.jpg\n", "label_path_path"),
    ],
)
def test_detect_dialect(tmp_path, text, dialect):
    (tmp_path / "p.txt").write_text(text)
    assert detect_dialect(tmp_path / "p.txt") == dialect


def test_undetectable_and_malformed_lists_name_file_and_line(tmp_path):
    (tmp_path / "p.txt").write_text("a b c d e\n")
    with pytest.raises(FacebenchError, match=r"p\.txt line 1: cannot tell the pair-list dialect"):
        detect_dialect(tmp_path / "p.txt")
    (tmp_path / "q.txt").write_text("\n".join(["A\t1\t2"] * 10 + ["A\t1"]) + "\n")
    with pytest.raises(FacebenchError, match=r"q\.txt line 11: expected 'name i j' .* or 'name1 i name2 j'"):
        read_pair_list(tmp_path / "q.txt", tmp_path, check_images=False)
    (tmp_path / "r.txt").write_text("\n".join(["a b 1"] * 10 + ["a b 4"]) + "\n")
    with pytest.raises(FacebenchError, match=r"r\.txt line 11: expected label 1 \(same\) or 0 \(different\), got '4'"):
        read_pair_list(tmp_path / "r.txt", tmp_path, check_images=False)
    (tmp_path / "s.txt").write_text("a.jpg 1\nb.jpg\n")
    with pytest.raises(FacebenchError, match=r"s\.txt line 2: one line of pair 1 has a label"):
        read_pair_list(tmp_path / "s.txt", tmp_path, dialect="consecutive", check_images=False)


def test_real_lists_in_their_dialects(protocol_files, tmp_path):
    lfw = read_pair_list(protocol_files / "lfw" / "pairs.txt", tmp_path, check_images=False)
    assert (lfw.dialect, lfw.fold_rule) == ("lfw", "sets")
    label = read_pair_list(protocol_files / "lfw" / "insightface_pairs_label.txt", tmp_path, check_images=False)
    assert (label.dialect, label.fold_rule) == ("path_path_label", "kfold_stored_order")
    # the same 6,000 pairs and folds either way; identities agree and View 2's folds share none
    assert [a.split("/")[-1] for a in lfw.image_paths()] == [a.split("/")[-1] for a in label.image_paths()]
    np.testing.assert_array_equal(lfw.folds, label.folds)
    from facebench.metrics.kfold import identity_leaks

    ids = [lfw.identities[i] for i in lfw.pairs.reshape(-1)]
    assert identity_leaks(ids[0::2], ids[1::2], lfw.folds) == {}
    ids2 = [label.identities[i] for i in label.pairs.reshape(-1)]
    assert ids2 == ids
    # the same pairs written as MFR2/RFW do (no header), in the label-first and consecutive dialects
    lines = (protocol_files / "lfw" / "pairs.txt").read_text().splitlines()[1:]
    (tmp_path / "noheader.txt").write_text("\n".join(lines) + "\n")
    noheader = read_pair_list(tmp_path / "noheader.txt", tmp_path, check_images=False)
    assert noheader.dialect == "lfw_noheader" and noheader.image_paths() == lfw.image_paths()
    rel = [p[len(str(tmp_path)) + 1:] for p in lfw.image_paths()]
    (tmp_path / "first.txt").write_text("".join(f"{int(s)} {rel[2 * k]} {rel[2 * k + 1]}\n" for k, s in enumerate(lfw.issame)))
    first = read_pair_list(tmp_path / "first.txt", tmp_path, check_images=False)
    assert first.dialect == "label_path_path" and first.image_paths() == lfw.image_paths()
    (tmp_path / "two.txt").write_text("".join(f"{p}\n" for p in rel))
    two = read_pair_list(tmp_path / "two.txt", tmp_path, check_images=False)
    assert two.dialect == "consecutive" and two.issame.tolist() == lfw.issame.tolist()


def test_layout_folds_and_identity_rule():
    order, folds, rule = layout_folds(np.array([True] * 20 + [False] * 20), 10)
    assert rule == "halves" and order[:4].tolist() == [0, 1, 20, 21] and folds[:4].tolist() == [0, 0, 0, 0]
    order, folds, rule = layout_folds(np.array([True, False] * 20), 10)
    assert rule == "kfold_stored_order" and order.tolist() == list(range(40))
    assert image_identity("Name/Name_0001.jpg") == "Name"
    assert image_identity("Aaron_Peirsol_0001.jpg") == "Aaron_Peirsol"
    assert image_identity("plain.jpg") == "plain"


def test_png_suffix_probe(tmp_path):
    (tmp_path / "A").mkdir()
    for i in (1, 2):
        (tmp_path / "A" / f"A_{i:04d}.png").write_bytes(b"x")
    (tmp_path / "p.txt").write_text("\n".join(["A\t1\t2"] * 10) + "\n")
    pairs = read_pair_list(tmp_path / "p.txt", tmp_path)
    assert pairs.image_paths()[0].endswith("A/A_0001.png")
    with pytest.raises(FacebenchError, match=r"line 1: expected a header 'n_sets<TAB>n_pairs'"):
        read_lfw_pairs(tmp_path / "p.txt", tmp_path)  # LFW's own reader keeps requiring the header


def test_groups_quality_and_mfr2_files(tmp_path):
    (tmp_path / "g.csv").write_text("key,race,gender\nA,x,f\nB/B_0001.jpg,y,m\n")
    names, table = read_groups(tmp_path / "g.csv")
    assert names == ("race", "gender") and table["A"] == ("x", "f")
    values, by_identity = match_images(table, ["/d/A/A_0001.jpg", "/d/B/B_0001.jpg", "/d/B/B_0002.jpg"], ["A", "B", "B"], "g")
    assert values == [("x", "f"), ("y", "m"), None] and by_identity == 1
    (tmp_path / "bad.csv").write_text("key,race\nA,x,extra\n")
    with pytest.raises(FacebenchError, match=r"bad\.csv line 2: expected 2 columns"):
        read_groups(tmp_path / "bad.csv")
    (tmp_path / "nokey.csv").write_text("name,race\n")
    with pytest.raises(FacebenchError, match=r"nokey\.csv line 1: expected a header 'key"):
        read_groups(tmp_path / "nokey.csv")
    with pytest.raises(FacebenchError, match="no key matches"):
        match_images(table, ["/d/C/C_0001.jpg"], ["C"], "g.csv")
    (tmp_path / "q.txt").write_text("A/A_0001.jpg 0.5\nA/A_0002.jpg nan?\n")
    with pytest.raises(FacebenchError, match=r"q\.txt line 2: expected a number for quality score"):
        read_quality(tmp_path / "q.txt")
    (tmp_path / "mfr2_labels.txt").write_text("AdrianDunbar, 1, no-mask\nAdrianDunbar, 2, surgical_white\n")
    labels = read_mfr2_labels(tmp_path / "mfr2_labels.txt")
    assert labels == {"AdrianDunbar/AdrianDunbar_0001.png": "no-mask", "AdrianDunbar/AdrianDunbar_0002.png": "surgical_white"}
    assert [masked(v) for v in labels.values()] == ["unmasked", "masked"]
    assert masked("No Mask") == masked("without_mask") == "unmasked"
