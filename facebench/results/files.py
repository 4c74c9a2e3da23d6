"""Writing and reading results.json: provenance, portable paths, both schema versions."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from facebench import __version__
from facebench.errors import FacebenchError
from facebench.atomic import save_npz, write_json
from facebench.cpu import NUMPY_VARIABLE
from facebench.io.textdoc import parse_json
from facebench.results.convert import SCHEMA_V1, check_members, upgrade_v1
from facebench.results.jsonvalues import json_ready
from facebench.results.model import SCHEMA, RunResults


def environment() -> dict[str, Any]:
    """Versions of the interpreter and the numeric libraries, the machine, and the numpy code paths turned
    off (``NPY_DISABLE_CPU_FEATURES``; :mod:`facebench.cpu`), if any."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "numpy": np.__version__,
        "numpy_disabled_cpu_features": os.environ.get(NUMPY_VARIABLE) or None,
    }
    for key, dist in (("torch", "torch"), ("onnxruntime", "onnxruntime"), ("scipy", "scipy"),
                      ("cv2", "opencv-python-headless")):
        try:
            env[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[key] = None
    return env


def new_run(
    settings: dict[str, Any], checkpoint: dict[str, Any] | None, features: dict[str, Any] | None
) -> RunResults:
    """An empty results document with provenance filled in."""
    return RunResults(
        facebench_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        settings=settings,
        environment=environment(),
        checkpoint=checkpoint,
        features=features,
    )


def write_results(out_dir: str | Path, run: RunResults, arrays: dict[str, dict[str, np.ndarray]]) -> Path:
    """Write ``results.json`` (schema ``facebench.results/2``; non-finite numbers as null, paths under the home
    directory as ``~/...``, :func:`portable`) and one compressed ``<benchmark>.npz`` of arrays per benchmark,
    atomically."""
    out_dir = Path(out_dir)
    for name, named_arrays in arrays.items():
        if named_arrays:
            save_npz(out_dir / f"{name}.npz", **named_arrays)
    path = out_dir / "results.json"
    write_json(path, json_ready(run.to_json()))
    return path


def read_results(path: str | Path) -> RunResults:
    """Load a results.json (or a run directory holding one), version 2 or version 1 (converted by
    :func:`facebench.results.convert.upgrade_v1`), every member checked. Whatever is wrong is a clear error
    naming the file and the member."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FacebenchError(f"{path}: no results.json here (is this a facebench run directory?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FacebenchError(f"{path}: cannot read: {exc}") from None
    if not text.strip():
        raise FacebenchError(f"{path}: empty file (the run was not written completely)")
    try:
        doc = parse_json(text, str(path))
    except json.JSONDecodeError as exc:
        raise FacebenchError(f"{path}: not valid JSON (truncated or edited?): {exc}") from None
    return parse_results(doc, str(path))


def parse_results(doc: Any, where: str) -> RunResults:
    """A results document already parsed from JSON (``where`` names it in errors), either version."""
    if not isinstance(doc, dict):
        raise FacebenchError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    schema = doc.get("schema")
    if schema == SCHEMA_V1:
        return upgrade_v1(doc, where)
    if schema != SCHEMA:
        raise FacebenchError(
            f"{where}: not a facebench results file (schema {schema!r}, expected {SCHEMA!r} or {SCHEMA_V1!r}; "
            "a newer facebench may have written it)"
        )
    check_members(doc, where)
    return RunResults.from_json(doc, where)


def load_arrays(run_dir: str | Path, benchmark: str) -> dict[str, np.ndarray]:
    """The arrays saved for one benchmark of a run (empty when none)."""
    path = Path(run_dir) / f"{benchmark}.npz"
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
