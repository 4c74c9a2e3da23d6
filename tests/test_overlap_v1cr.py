"""`facebench overlap v1c-r`: the real whitelist against synthetic v1c listings of every kind; counts, label
map and train list checked against expectations computed here; errors leave nothing written."""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from facebench.cli import main
from facebench.errors import FacebenchError
from facebench.overlap.listing import detect_kind, read_listing
from facebench.overlap.whitelists import WHITELISTS, known_whitelist, read_whitelist, resolve_whitelist

ALPHABET = "0123456789bcdfghjklmnpqrstvwxyz_"
SVX = "ms-celeb-1m/SV-X-Softmax/deepglint_unoverlap_list.txt"
FXZ = "ms-celeb-1m/FaceX-Zoo/MS-Celeb-1M-v1c-r_id_list.txt"


def fake_mids(n: int, avoid: set[str], rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        mid = "m.0" + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(4, 7)))
        if mid not in avoid:
            out.add(mid)
    return sorted(out)


def lmk_line(mid: str, k: int, label: int, rng: random.Random) -> str:
    return f"{mid}/{k}-FaceId-0.jpg {label} " + " ".join(f"{rng.uniform(30, 80):.3f}" for _ in range(10)) + "\n"


@pytest.fixture(scope="module")
def v1c(protocol_files: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A synthetic msra_lmk: the 72,690 real whitelist MIDs + 14,186 others, shuffled; 2 images for every
    tenth identity, 1 for the others."""
    rng = random.Random(7)
    whitelist = (protocol_files / SVX).read_text().split()
    facexzoo = set((protocol_files / FXZ).read_text().split())
    others = fake_mids(14_186, set(whitelist) | facexzoo, rng)
    mids = whitelist + others
    rng.shuffle(mids)
    labels = {mid: i for i, mid in enumerate(mids)}  # DeepGlint-style labels in listing order
    folder = tmp_path_factory.mktemp("v1c")
    lines = [lmk_line(mid, k, labels[mid], rng) for i, mid in enumerate(mids) for k in range(1 + (i % 10 == 0))]
    path = folder / "msra_lmk"
    path.write_text("".join(lines))
    return {"path": path, "lines": lines, "whitelist": whitelist, "others": others, "labels": labels,
            "facexzoo": facexzoo, "dir": protocol_files / "ms-celeb-1m"}


def run(*args: str) -> int:
    return main(["overlap", "v1c-r", *map(str, args)])


def test_real_whitelist_regenerates_exactly_v1c_r(v1c: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("--v1c", v1c["path"], "--whitelist", "deepglint", "--whitelist-dir", v1c["dir"], "--out", out) == 0
    kept = sorted(v1c["whitelist"])
    assert (out / "identities.txt").read_text().splitlines() == kept
    assert (out / "removed_identities.txt").read_text().splitlines() == sorted(v1c["others"])
    rows = [line.split("\t") for line in (out / "label_map.tsv").read_text().splitlines()]
    assert rows[0] == ["mid", "old_label", "new_label"]
    assert rows[1:] == [[mid, str(v1c["labels"][mid]), str(i)] for i, mid in enumerate(kept)]
    new = {mid: i for i, mid in enumerate(kept)}
    expected_train = [
        f"{line.split()[0]} {new[line.split('/')[0]]}" for line in v1c["lines"] if line.split("/")[0] in new
    ]
    assert (out / "train_list.txt").read_text().splitlines() == expected_train
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {
        "identities_in": 86_876, "kept": 72_690, "removed": 14_186, "whitelist_absent": 0,
        "expected_identities_in": 86_876, "expected_kept": 72_690, "expected_removed": 14_186,
    }
    assert summary["checks_passed"] and summary["whitelist_mids_absent"] == []
    assert summary["whitelist"]["sha256"] == "7b53892799338b175c77a97c4c7fa482f3c12a0429183ec5080b1cd7f209f529"
    assert summary["whitelist"]["name"] == "deepglint" and summary["whitelist"]["is_published"]
    assert summary["train_images"] == len(expected_train) > 72_690
    assert summary["listing"]["sha256"] == hashlib.sha256(v1c["path"].read_bytes()).hexdigest()
    assert summary["outputs"]["train_list.txt"] == hashlib.sha256((out / "train_list.txt").read_bytes()).hexdigest()


def test_published_checksums_are_the_files(protocol_files: Path) -> None:
    for known, rel in zip(WHITELISTS, (SVX, FXZ)):
        data = (protocol_files / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == known.sha256
        assert hashlib.md5(data).hexdigest() == known.md5
        wl = read_whitelist(protocol_files / rel)
        assert len(wl.mids) == known.count and wl.published and wl.expected is known
    assert known_whitelist("SVX") is known_whitelist("deepglint") and known_whitelist("nope") is None
    assert known_whitelist("facexzoo").removed == 86_876 - 72_778


def test_named_list_found_through_the_environment(v1c: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facebench.cli.overlap import _search_dirs

    monkeypatch.setenv("FACEBENCH_WHITELIST_DIR", f"{tmp_path / 'nothing-here'}:{v1c['dir']}")
    dirs = _search_dirs(argparse.Namespace(whitelist_dir=[tmp_path]))
    assert dirs == [tmp_path, tmp_path / "nothing-here", v1c["dir"]]
    for name in ("svx", "deepglint", "facexzoo"):
        wl = resolve_whitelist(name, dirs)
        assert wl.published and wl.expected is known_whitelist(name)
    assert resolve_whitelist("svx", dirs).path == v1c["dir"] / "SV-X-Softmax" / "deepglint_unoverlap_list.txt"


def test_facexzoo_list_mismatch_lists_the_absent_mids(v1c: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    absent = sorted(v1c["facexzoo"] - set(v1c["whitelist"]))
    assert len(absent) == 72_778 - 72_594
    rc = run("--v1c", v1c["path"], "--whitelist", "facexzoo", "--whitelist-dir", v1c["dir"], "--out", out)
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert f"{len(absent)} whitelist MID(s) are absent" in err and ", ".join(absent[:10]) in err
    assert "kept 72,594 (expected 72,778)" in err and "removed 14,282 (expected 14,098)" in err


def test_missing_mid_is_an_error_and_allow_mismatch_proceeds(v1c: dict, tmp_path: Path, capsys) -> None:
    gone = sorted(v1c["whitelist"])[100]
    listing = tmp_path / "msra_lmk"
    listing.write_text("".join(line for line in v1c["lines"] if not line.startswith(gone + "/")))
    out = tmp_path / "out"
    wl = v1c["dir"] / "SV-X-Softmax" / "deepglint_unoverlap_list.txt"
    assert run("--v1c", listing, "--whitelist", wl, "--out", out) == 2
    err = capsys.readouterr().err
    assert f"1 whitelist MID(s) are absent from {listing} (first, sorted: {gone})" in err
    assert "has 86,875 identities, expected 86,876" in err and not out.exists()
    assert "counts: in 86,875 (expected 86,876), kept 72,689 (expected 72,690), removed 14,186 (expected 14,186)" in err
    assert run("--v1c", listing, "--whitelist", wl, "--out", out, "--allow-mismatch") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["whitelist_mids_absent"] == [gone] and not summary["checks_passed"]
    assert summary["counts"]["kept"] == 72_689 and len(summary["problems"]) == 3
    labels = [int(r.split("\t")[2]) for r in (out / "label_map.tsv").read_text().splitlines()[1:]]
    assert labels == list(range(72_689))


# ---- small listings (custom whitelist, --expect-identities) for every kind and every error ----


@pytest.fixture()
def small(tmp_path: Path) -> dict:
    rng = random.Random(3)
    mids = fake_mids(12, set(), rng)
    rng.shuffle(mids)
    keep = sorted(mids[:8])
    wl = tmp_path / "wl.txt"
    wl.write_text("\n".join(keep))
    lines = [lmk_line(m, k, i, rng) for i, m in enumerate(mids) for k in range(3)]
    lmk = tmp_path / "lmk.txt"
    lmk.write_text("".join(lines))
    return {"mids": mids, "keep": keep, "wl": wl, "lines": lines, "lmk": lmk, "tmp": tmp_path}


def run_small(s: dict, listing: Path, out: Path, *extra: str) -> int:
    return run("--v1c", listing, "--whitelist", s["wl"], "--out", out, "--expect-identities", 12, *extra)


def test_custom_whitelist_warns_with_both_hashes(small: dict, caplog) -> None:
    out = small["tmp"] / "out"
    assert run_small(small, small["lmk"], out) == 0
    err = caplog.text
    sha = hashlib.sha256(small["wl"].read_bytes()).hexdigest()
    assert sha in err and WHITELISTS[0].sha256 in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["whitelist"]["name"] == "custom" and summary["whitelist"]["sha256"] == sha
    assert summary["warnings"] and sha in summary["warnings"][0]
    assert summary["counts"]["kept"] == 8 and summary["counts"]["removed"] == 4


def test_every_listing_kind_gives_the_same_identities(small: dict) -> None:
    tmp = small["tmp"]
    mids, keep = small["mids"], small["keep"]
    pathlabel = tmp / "pl.txt"
    pathlabel.write_text("".join(" ".join(line.split()[:2]) + "\n" for line in small["lines"]))
    plain = tmp / "mids.txt"
    plain.write_text("\n".join(mids) + "\n\n")
    tree = tmp / "tree"
    for m in mids:
        (tree / m).mkdir(parents=True)
        for k in (2, 0, 1):
            (tree / m / f"{k}-FaceId-0.jpg").write_bytes(b"")
        (tree / m / "notes.txt").write_text("not an image")
    (tree / "msra_lmk").write_text("ignored: a file beside the folders")
    kinds = {small["lmk"]: "lmk", pathlabel: "pathlabel", plain: "mids", tree: "dir"}
    for listing, kind in kinds.items():
        assert detect_kind(listing) == kind
        out = tmp / f"out_{kind}"
        assert run_small(small, listing, out) == 0
        assert (out / "identities.txt").read_text().splitlines() == keep
        rows = [r.split("\t") for r in (out / "label_map.tsv").read_text().splitlines()[1:]]
        old = [str(mids.index(m)) for m in keep] if kind in ("lmk", "pathlabel") else ["-"] * 8
        assert rows == [[m, o, str(i)] for i, (m, o) in enumerate(zip(keep, old))]
        if kind == "mids":
            assert not (out / "train_list.txt").exists()
            continue
        train = (out / "train_list.txt").read_text().splitlines()
        if kind == "dir":
            expected = [f"{m}/{k}-FaceId-0.jpg {keep.index(m)}" for m in sorted(mids) if m in keep for k in range(3)]
        else:
            expected = [f"{m}/{k}-FaceId-0.jpg {keep.index(m)}" for m in mids if m in keep for k in range(3)]
        assert train == expected


def test_duplicate_lines_are_left_out_with_a_warning(small: dict, caplog) -> None:
    lines = small["lines"][:5] + [small["lines"][1]] + small["lines"][5:] + ["\n", small["lines"][1]]
    listing = small["tmp"] / "dup.txt"
    listing.write_text("".join(lines))
    out = small["tmp"] / "out"
    assert run_small(small, listing, out) == 0
    err = caplog.text
    assert f"{listing}: 2 duplicate line(s) left out" in err and "first: line 6 repeats line 2" in err
    train = (out / "train_list.txt").read_text().splitlines()
    assert len(train) == 8 * 3 and len(set(train)) == len(train)
    assert json.loads((out / "summary.json").read_text())["listing"]["duplicate_lines_left_out"] == 2
    listing_obj = read_listing(listing, identity="mid")
    assert listing_obj.n_rows == 38 and listing_obj.dropped_lines == {6, 39}  # line 38 is blank


def _bad(small: dict, index: int, replacement: str) -> Path:
    lines = list(small["lines"])
    lines[index] = replacement
    path = small["tmp"] / "bad.txt"
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize(
    "index, make, message",
    [
        (4, lambda m: f"{m}/x.jpg 1 2 3\n", "line 5: expected 12 fields (<dir>/<file> <label> x1 y1 ... x5 y5), got 4"),
        (4, lambda m: f"{m}/x.jpg one 1 2 3 4 5 6 7 8 9 10\n", "line 5: label 'one' is not a non-negative integer"),
        (4, lambda m: f"{m}/x.jpg 1 1 2 3 4 5 6 7 8 9 1.2.3\n", "line 5 field 12: landmark '1.2.3' is not a number"),
        (4, lambda m: f"{m}/x.jpg 7 1 2 3 4 5 6 7 8 9 10\n", "has label 7 here but label 1 at line 4"),
        (4, lambda m: "photos/x.jpg 40 1 2 3 4 5 6 7 8 9 10\n", "identity 'photos' is not a Freebase MID"),
        (4, lambda m: "x.jpg 40 1 2 3 4 5 6 7 8 9 10\n", "has no identity folder"),
        (4, lambda m: "m.0zzzzz/x.jpg 0 1 2 3 4 5 6 7 8 9 10\n", "label 0 of m.0zzzzz is already the label of"),
        (6, lambda m: None, "was already listed at line 1 with other fields"),
    ],
)
def test_malformed_listings_are_errors_naming_the_line(small: dict, index, make, message, capsys) -> None:
    mid = small["mids"][1]
    text = make(mid)
    if text is None:  # same path as line 1, other landmarks
        first = small["lines"][0].split()
        text = " ".join(first[:2] + ["0"] * 10) + "\n"
    listing = _bad(small, index, text)
    out = small["tmp"] / "out"
    (out).mkdir()
    (out / "keep.me").write_text("earlier")
    assert run_small(small, listing, out) == 2
    err = capsys.readouterr().err
    assert str(listing) in err and message in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.me"]
    assert not [p for p in small["tmp"].iterdir() if p.name.endswith(".staging")]


def test_failed_run_keeps_the_previous_outputs_and_a_new_run_replaces_them(small: dict) -> None:
    out = small["tmp"] / "out"
    assert run_small(small, small["lmk"], out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = _bad(small, 0, "garbage\n")
    assert run_small(small, bad, out) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    plain = small["tmp"] / "mids.txt"
    plain.write_text("\n".join(small["mids"]))
    assert run_small(small, plain, out) == 0
    assert not (out / "train_list.txt").exists()  # the earlier run's list does not outlive it
    assert json.loads((out / "summary.json").read_text())["listing"]["kind"] == "mids"


def test_whitelist_errors(small: dict, capsys) -> None:
    tmp = small["tmp"]
    dup = tmp / "dup.txt"
    dup.write_text("m.0abc\nm.0bcd\n\nm.0abc")
    with pytest.raises(FacebenchError, match=r"dup.txt line 4: m.0abc is listed twice \(first at line 1\)"):
        read_whitelist(dup)
    bad = tmp / "bad.txt"
    bad.write_text("m.0abc\nMadonna\n")
    with pytest.raises(FacebenchError, match=r"bad.txt line 2: 'Madonna' is not a Freebase MID"):
        read_whitelist(bad)
    with pytest.raises(FacebenchError, match=r"--whitelist nolist \(no such file\): unknown published whitelist "
                                              r"'nolist' \(known: deepglint, svx, sv-x, "):
        resolve_whitelist("nolist")
    with pytest.raises(FacebenchError, match=r"'facexzoo': MS-Celeb-1M-v1c-r_id_list.txt .* not found in"):
        resolve_whitelist("facexzoo", [tmp])
    assert run("--v1c", small["lmk"], "--whitelist", small["wl"], "--out", tmp / "o", "--out-rec") == 2
    assert "--out-rec needs --rec" in capsys.readouterr().err


def test_kind_detection_and_forcing(small: dict) -> None:
    odd = small["tmp"] / "odd.txt"
    odd.write_text("\n\na b c\n")
    with pytest.raises(FacebenchError, match=r"odd.txt line 3: cannot tell the listing kind from 3 field\(s\)"):
        detect_kind(odd)
    with pytest.raises(FacebenchError, match=r"line 1: expected 2 fields \(<dir>/<file> <label>\), got 12"):
        read_listing(small["lmk"], "pathlabel")
    listing = read_listing(small["lmk"], "lmk", identity="mid", with_rows=True)
    assert listing.classes == small["mids"] and listing.labels == list(range(12))
    np.testing.assert_array_equal(listing.row_class, np.repeat(np.arange(12), 3))


def test_filtered_recordio_pack(small: dict, capsys) -> None:
    from facebench.io.recordio import RecordPack, write_record_pack

    tmp, mids, keep = small["tmp"], small["mids"], small["keep"]
    items = [(i, f"jpeg-of-{m}-{k}".encode()) for i, m in enumerate(mids) for k in range(3)]
    pack_dir = tmp / "v1c_pack"
    pack_dir.mkdir()
    write_record_pack(pack_dir, items, image_size=(112, 112))
    out = tmp / "out"
    assert run_small(small, small["lmk"], out, "--rec", pack_dir, "--out-rec") == 0
    pack = RecordPack(out)
    new = {m: keep.index(m) for m in keep}
    expected = sorted(((new[m], f"jpeg-of-{m}-{k}".encode()) for m in mids if m in new for k in range(3)),
                      key=lambda x: x[0])
    assert [pack.image(i) for i in range(len(pack))] == expected
    assert pack.num_classes == 8 and pack.image_size == (112, 112)
    assert pack.identity_ranges().tolist() == [[1 + 3 * c, 4 + 3 * c] for c in range(8)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rec"]["images_in"] == 36 and summary["rec"]["images_kept"] == 24
    assert "train.rec" in summary["outputs"]
    # a pack from another set: its classes are not the listing's labels
    other = tmp / "other_pack"
    other.mkdir()
    write_record_pack(other, [(40, b"x"), (41, b"y")])
    out2 = tmp / "out2"
    assert run_small(small, small["lmk"], out2, "--rec", other, "--out-rec") == 2
    assert "image 0 (key 1): class 40 is not a label of" in capsys.readouterr().err and not out2.exists()
