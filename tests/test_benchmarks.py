"""Benchmark specs: the shipped protocols validate; selection, source resolution and checksum warnings."""

from __future__ import annotations

import pytest

from facebench.benchmarks import check_checksum, load_benchmarks, parse_spec, resolve_source, select
from facebench.errors import FacebenchError

MINIMAL = {
    "name": "x",
    "version": 1,
    "kind": "pairs",
    "title": "X",
    "citation": "c",
    "source": [{"reader": "binpack", "files": {"pack": "x.bin"}}],
}


def test_shipped_protocols_are_valid_and_ordered() -> None:
    specs = load_benchmarks()
    names = list(specs)
    for name in ("lfw", "cfp_fp", "cfp_ff", "agedb_30", "calfw", "cplfw", "vgg2_fp"):
        assert name in specs and specs[name].kind == "pairs"
    assert names.index("lfw") < names.index("cfp_fp") < names.index("agedb_30")
    assert specs["lfw"].counts == {"n_pairs": 6000, "n_folds": 10}
    assert specs["cfp_fp"].counts["n_pairs"] == 7000


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(FacebenchError, match=r"unknown key\(s\) \['colums'\]"):
        parse_spec({**MINIMAL, "colums": {}}, "x.toml")
    with pytest.raises(FacebenchError, match="source 1: unknown key"):
        parse_spec({**MINIMAL, "source": [{"reader": "r", "files": {}, "path": "p"}]}, "x.toml")
    with pytest.raises(FacebenchError, match="kind 'pair'"):
        parse_spec({**MINIMAL, "kind": "pair"}, "x.toml")
    with pytest.raises(FacebenchError, match="not a lowercase hex sha256"):
        parse_spec({**MINIMAL, "checksums": {"pack": ["abc"]}}, "x.toml")


def test_select_groups_lists_and_suggestions() -> None:
    specs = load_benchmarks()
    assert [s.name for s in select("lfw,cplfw,lfw", specs)] == ["lfw", "cplfw"]
    assert "cfp_ff" in [s.name for s in select("all-verification", specs)]
    with pytest.raises(FacebenchError, match="did you mean 'lfw'"):
        select("lwf", specs)
    with pytest.raises(FacebenchError, match="unknown benchmark group"):
        select("all-nothing", specs)


def test_found_selects_the_benchmarks_whose_files_are_present(tmp_path) -> None:
    specs = load_benchmarks()
    with pytest.raises(FacebenchError, match="no benchmark files found under"):
        select("found", specs, tmp_path)
    with pytest.raises(FacebenchError, match="--data-root"):
        select("found", specs)
    (tmp_path / "cplfw.bin").write_bytes(b"")
    (tmp_path / "lfw").mkdir()
    (tmp_path / "lfw" / "pairs.txt").write_text("10\t300\n")  # the original distribution counts too
    assert [s.name for s in select("found", specs, tmp_path)] == ["lfw", "cplfw"]  # registry order
    elsewhere = tmp_path / "x" / "agedb.bin"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"")
    chosen = select("found,ijbc", specs, tmp_path, {"agedb_30.pack": str(elsewhere), "lfw.pack": "/nowhere"})
    assert [s.name for s in chosen] == ["lfw", "agedb_30", "cplfw", "ijbc"]


def test_resolve_source_takes_the_first_complete_distribution(tmp_path) -> None:
    spec = load_benchmarks()["lfw"]
    with pytest.raises(FacebenchError) as info:
        resolve_source(spec, tmp_path)
    assert "lfw.bin" in str(info.value) and "pairs.txt" in str(info.value)
    (tmp_path / "lfw").mkdir()
    (tmp_path / "lfw" / "pairs.txt").write_text("10\t300\n")
    source, files = resolve_source(spec, tmp_path)
    assert source.reader == "lfw_pairs" and "landmarks" not in files
    (tmp_path / "lfw.bin").write_bytes(b"")
    source, files = resolve_source(spec, tmp_path)
    assert source.reader == "binpack" and files["pack"] == tmp_path / "lfw.bin"
    other = tmp_path / "elsewhere.bin"
    other.write_bytes(b"")
    _, files = resolve_source(spec, tmp_path, {"pack": str(other)})
    assert files["pack"] == other


def test_checksum_warning_names_both_hashes(tmp_path) -> None:
    spec = load_benchmarks()["lfw"]
    known = spec.checksums["pairs"][0]
    assert check_checksum(spec, "pairs", tmp_path / "pairs.txt", known) is None
    warning = check_checksum(spec, "pairs", tmp_path / "pairs.txt", "0" * 64)
    assert warning and known in warning and "0" * 64 in warning
    assert check_checksum(spec, "pack", tmp_path / "lfw.bin", "1" * 64) is None  # no known pack hash


def test_real_lfw_pairs_file_has_the_known_checksum(protocol_files) -> None:
    from facebench.atomic import sha256_file

    spec = load_benchmarks()["lfw"]
    assert sha256_file(protocol_files / "lfw" / "pairs.txt") in spec.checksums["pairs"]


def test_benchmarks_command_says_what_the_data_root_holds(tmp_path, capsys) -> None:
    from facebench.cli import main

    (tmp_path / "cplfw.bin").write_bytes(b"")
    assert main(["benchmarks", "--data-root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    status = {lines[i].split()[0]: lines[i + 1].strip() for i in range(0, len(lines), 2)}
    assert status["cplfw"] == f"found: binpack ({tmp_path / 'cplfw.bin'})"
    assert status["lfw"].startswith(f"missing: binpack: missing pack={tmp_path / 'lfw.bin'}; lfw_pairs: missing")
    assert main(["benchmarks", "cplfw", "--data-root", str(tmp_path)]) == 0
    assert f"under {tmp_path}: found: binpack" in capsys.readouterr().out
