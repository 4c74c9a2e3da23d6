"""Command-line KEY=VALUE items: one parser for `run --file` and `overlap audit --benchmark`."""

from __future__ import annotations

import pytest

from facebench.cli import main
from facebench.cli.run import parse_assignments, parse_overrides
from facebench.errors import FacebenchError


def test_file_overrides_need_benchmark_dot_role() -> None:
    assert parse_overrides(["lfw.pack=/d/lfw.bin", "ijbc.pairs=/x/p.txt"]) == {
        "lfw.pack": "/d/lfw.bin", "ijbc.pairs": "/x/p.txt"}
    with pytest.raises(FacebenchError, match=r"--file 'lfw=/d/lfw.bin': expected BENCHMARK.ROLE=PATH"):
        parse_overrides(["lfw=/d/lfw.bin"])
    with pytest.raises(FacebenchError, match="lfw.pack given twice"):
        parse_overrides(["lfw.pack=a", "lfw.pack=b"])


def test_assignments_reject_empty_parts() -> None:
    for bad in ("=x", "name=", "name"):
        with pytest.raises(FacebenchError, match="expected NAME=PATH"):
            parse_assignments([bad], "--benchmark", "NAME=PATH")


def test_malformed_file_override_exits_2(tmp_path, capsys) -> None:
    status = main(["run", "--features", str(tmp_path), "-b", "lfw", "--file", "nodot=/x", "--out", str(tmp_path / "o")])
    assert status == 2
    assert "expected BENCHMARK.ROLE=PATH" in capsys.readouterr().err
