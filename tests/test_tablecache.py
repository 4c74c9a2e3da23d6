"""Parsed protocol lists kept by content (facebench.io.tablecache): read back equal to a fresh parse, keyed
by the bytes (not the name), never trusted when damaged, never left half-written."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.evaluate.common import RunSettings, table_cache
from facebench.io import ijb
from facebench.io.tablecache import MANIFEST, TableCache
from facebench.metrics.pooling import lookup_rows


def pair_file(path: Path, n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t1, t2 = rng.integers(1, 300, n) * 7, rng.integers(1, 300, n) * 7
    label = rng.integers(0, 2, n)
    path.write_text("".join(f"{a} {b} {c}\n" for a, b, c in zip(t1, t2, label)))
    return t1, t2, label


def entries(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob(f"*/*/{MANIFEST}"))


def no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("parsed although the table is cached")

    monkeypatch.setattr(ijb, "_parse_table", refuse)


def test_pairs_read_back_equal_to_a_fresh_parse_and_without_parsing(tmp_path, monkeypatch) -> None:
    t1, t2, label = pair_file(tmp_path / "pairs.txt")
    cache = TableCache(tmp_path / "tables")
    ids = np.unique(np.r_[t1, t2])
    plain = ijb.read_template_pairs(tmp_path / "pairs.txt")
    first = ijb.read_template_pairs(tmp_path / "pairs.txt", cache=cache)
    mapped = ijb.read_template_pairs(tmp_path / "pairs.txt", partial(lookup_rows, ids), "tid", cache)
    assert len(entries(tmp_path / "tables")) == 1  # one entry: the raw columns, whatever the mapping
    no_parse(monkeypatch)
    again = ijb.read_template_pairs(tmp_path / "pairs.txt", cache=cache)
    again_mapped = ijb.read_template_pairs(tmp_path / "pairs.txt", partial(lookup_rows, ids), "tid", cache)
    for got in (first, again):
        np.testing.assert_array_equal(got.t1, t1)
        np.testing.assert_array_equal(got.t2, t2)
        np.testing.assert_array_equal(got.label, label.astype(bool))
        assert got.t1.dtype == plain.t1.dtype == np.int32 and got.label.dtype == np.bool_
        assert got.sha256 == plain.sha256
    for got in (mapped, again_mapped):
        np.testing.assert_array_equal(ids[got.t1], t1)  # rows of the sorted ids
        np.testing.assert_array_equal(ids[got.t2], t2)
        assert got.t1.dtype == np.int16 and got.rows


def test_the_key_is_the_content_not_the_name(tmp_path, monkeypatch) -> None:
    cache = TableCache(tmp_path / "tables")
    pair_file(tmp_path / "a.txt")
    ijb.read_template_pairs(tmp_path / "a.txt", cache=cache)
    os.replace(tmp_path / "a.txt", tmp_path / "moved.txt")
    with monkeypatch.context() as m:  # the same bytes elsewhere: read back
        no_parse(m)
        ijb.read_template_pairs(tmp_path / "moved.txt", cache=cache)
    # the same name, other bytes (one label changed): parsed again, the new values
    text = (tmp_path / "moved.txt").read_text().splitlines()
    first = text[0].split()
    text[0] = f"{first[0]} {first[1]} {1 - int(first[2])}"
    (tmp_path / "moved.txt").write_text("\n".join(text) + "\n")
    changed = ijb.read_template_pairs(tmp_path / "moved.txt", cache=cache)
    assert changed.label[0] == (1 - int(first[2]))
    assert len(entries(tmp_path / "tables")) == 2


@pytest.mark.parametrize("damage", ["truncate", "manifest", "rows", "missing"])
def test_a_damaged_entry_is_parsed_again_and_replaced(tmp_path, damage) -> None:
    t1, t2, label = pair_file(tmp_path / "pairs.txt", n=300)
    cache = TableCache(tmp_path / "tables")
    ijb.read_template_pairs(tmp_path / "pairs.txt", cache=cache)
    (entry,) = entries(tmp_path / "tables")
    if damage == "truncate":
        data = (entry / "c0.bin").read_bytes()
        (entry / "c0.bin").write_bytes(data[:-4])
    elif damage == "manifest":
        (entry / MANIFEST).write_text("{not json")
    elif damage == "rows":
        manifest = json.loads((entry / MANIFEST).read_text())
        manifest["rows"] += 1
        (entry / MANIFEST).write_text(json.dumps(manifest))
    else:
        (entry / "c2.bin").unlink()
    got = ijb.read_template_pairs(tmp_path / "pairs.txt", cache=cache)
    np.testing.assert_array_equal(got.t1, t1)
    np.testing.assert_array_equal(got.t2, t2)
    np.testing.assert_array_equal(got.label, label.astype(bool))
    assert cache.load(got.sha256, [("template_id_1", "int32"), ("template_id_2", "int32"), ("label", "int8")])
    assert [p.name for p in (tmp_path / "tables").glob("*/.*")] == []  # no temporary directory left


def test_a_file_that_fails_to_parse_leaves_no_entry(tmp_path) -> None:
    pair_file(tmp_path / "pairs.txt", n=2000)
    with open(tmp_path / "pairs.txt", "a") as handle:
        handle.write("12 14 2\n")  # a bad label on the last line: refused after every piece was parsed
    cache = TableCache(tmp_path / "tables")
    with pytest.raises(FacebenchError, match="line 2001: label must be 0 or 1"):
        ijb.read_template_pairs(tmp_path / "pairs.txt", cache=cache)
    # the columns parsed fine (the label check comes after the parse): the entry is kept, the error repeats
    with pytest.raises(FacebenchError, match="line 2001: label must be 0 or 1"):
        ijb.read_template_pairs(tmp_path / "pairs.txt", cache=cache)
    (tmp_path / "pairs.txt").write_text("1 2 0\n3 x 1\n")
    with pytest.raises(FacebenchError, match="line 2"):
        ijb.read_template_pairs(tmp_path / "pairs.txt", cache=cache)
    assert len(entries(tmp_path / "tables")) == 1
    assert [p.name for p in (tmp_path / "tables").glob("*/.*")] == []


def test_meta_files_with_text_columns_round_trip(tmp_path, monkeypatch) -> None:
    names = ["1.jpg", "frames/ü 2.png".replace(" ", "_"), "3.jpg"]
    names[2] = "bad\udcff.jpg"  # bytes that are not UTF-8 survive (surrogateescape)
    tid = tmp_path / "tid.txt"
    tid.write_bytes(b"".join(n.encode("utf-8", "surrogateescape") + f" {5 + i} {70 + i}\n".encode()
                             for i, n in enumerate(names)))
    lm = tmp_path / "lm.txt"
    lm.write_bytes(b"".join(n.encode("utf-8", "surrogateescape") + b" " +
                            " ".join(f"{i + k / 8:.3f}" for k in range(10)).encode() + b" 0.5\n"
                            for i, n in enumerate(names)))
    cache = TableCache(tmp_path / "tables")
    fresh = ijb.read_meta_images(tid, lm)
    ijb.read_meta_images(tid, lm, cache)
    no_parse(monkeypatch)
    back = ijb.read_meta_images(tid, lm, cache)
    assert list(back.names) == names and back.names.dtype == object
    for field in ("templates", "medias", "landmarks", "scores"):
        np.testing.assert_array_equal(getattr(back, field), getattr(fresh, field))
        assert getattr(back, field).dtype == getattr(fresh, field).dtype
    assert back.inputs == fresh.inputs


def test_the_fallback_parser_stores_what_it_parsed(tmp_path, monkeypatch) -> None:
    # runs of spaces on the last line: pyarrow's single-space reader refuses the file in its last piece,
    # after two pieces were stored; pandas parses it
    (tmp_path / "tid.txt").write_text("a.jpg 1 2\nb.jpg 3 4\nc.jpg 5   6\n")
    monkeypatch.setattr(ijb, "_PIECE_BYTES", 8)  # pieces stored before the refusal are dropped
    cache = TableCache(tmp_path / "tables")
    first = ijb.read_face_tid_mid(tmp_path / "tid.txt", cache)
    no_parse(monkeypatch)
    back = ijb.read_face_tid_mid(tmp_path / "tid.txt", cache)
    for a, b in zip(first[:3], back[:3]):
        np.testing.assert_array_equal(a, b)
    assert list(back[0]) == ["a.jpg", "b.jpg", "c.jpg"] and back[1].tolist() == [1, 3, 5]


def test_the_run_setting_turns_the_cache_on_and_off(tmp_path) -> None:
    on = RunSettings(benchmarks="ijbc", data_root=tmp_path, out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert table_cache(on) == TableCache(tmp_path / "c" / "tables")
    off = RunSettings(benchmarks="ijbc", data_root=tmp_path, out=tmp_path / "o", cache=False)
    assert table_cache(off) is None


def test_cache_list_and_clear_cover_the_parsed_lists(tmp_path, capsys) -> None:
    from facebench.cli import main

    pair_file(tmp_path / "pairs.txt", n=1234)
    stored = ijb.read_template_pairs(tmp_path / "pairs.txt", cache=TableCache(tmp_path / "c" / "tables"))
    assert main(["cache", "list", "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "parsed list  rows=1234" in out and f"file sha256={stored.sha256[:12]}" in out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "and 1 parsed list from" in capsys.readouterr().out
    assert entries(tmp_path / "c" / "tables") == []
