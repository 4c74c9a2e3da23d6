"""The results.json document: schema, provenance, writing and reading.

Schema ``facebench.results/1``::

    {"schema": "facebench.results/1", "facebench_version", "created",
     "checkpoint": {"path", "sha256", "format", ...} | null,
     "features": {"path"} | null,
     "settings": {... every flag, "profile": {...}},
     "environment": {"python", "platform", "numpy", "torch", "onnxruntime", ...},
     "model": {"parameters", "file_bytes", "flops", "latency_ms", ...} (when measured),
     "benchmarks": {NAME: {"title", "kind", "protocol_version", "metrics", "rules", "inputs",
                           "n_pairs" / other counts, "columns", "warnings", "artifacts",
                           "feature_sources": {IMAGE_LIST: {"source": "file" | "cache" | "extracted" |
                               "cache+extracted", "cache_key", "chunks", "chunks_from_cache",
                               "chunks_computed", "verified", "stale_chunks"}}}},
     "failed": {NAME: "message"}}

Metric values are fractions in [0, 1]; FAR keys are ``f"{far:.0e}"``. Every metric is reported with the
rules that produced it.
"""

from __future__ import annotations

import json
import platform
import re
from importlib import metadata
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from facebench import __version__
from facebench.errors import FacebenchError
from facebench.atomic import save_npz, write_json
from facebench.io.textdoc import parse_json

SCHEMA = "facebench.results/1"


def environment() -> dict[str, Any]:
    """Versions of the interpreter and the numeric libraries, and the machine."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "numpy": np.__version__,
    }
    for key, dist in (("torch", "torch"), ("onnxruntime", "onnxruntime"), ("scipy", "scipy"),
                      ("cv2", "opencv-python-headless")):
        try:
            env[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[key] = None
    return env


def new_document(
    settings: dict[str, Any], checkpoint: dict[str, Any] | None, features: dict[str, Any] | None
) -> dict[str, Any]:
    """An empty results document with provenance filled in."""
    return {
        "schema": SCHEMA,
        "facebench_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "checkpoint": checkpoint,
        "features": features,
        "settings": settings,
        "environment": environment(),
        "benchmarks": {},
        "failed": {},
    }


def portable(text: str, home: str | Path | None = None) -> str:
    """``text`` with every path under the writer's home directory written ``~/...`` (a report must not
    carry the machine it was made on); relative paths and other absolute paths stay as given."""
    home = str(home or Path.home()).rstrip("/")
    if not home:
        return text
    return re.sub(rf"(?<![\w.~/-]){re.escape(home)}(?=/|$|[\s'\",:;)])", "~", text)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, str):
        return portable(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if np.isfinite(value) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return portable(str(obj))
    return obj


def write_results(out_dir: str | Path, document: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> Path:
    """Write ``results.json`` (paths under the home directory as ``~/...``, :func:`portable`) and one
    compressed ``<benchmark>.npz`` of arrays per benchmark, atomically."""
    out_dir = Path(out_dir)
    for name, named_arrays in arrays.items():
        if named_arrays:
            save_npz(out_dir / f"{name}.npz", **named_arrays)
    path = out_dir / "results.json"
    write_json(path, _jsonable(document))
    return path


def read_results(path: str | Path) -> dict[str, Any]:
    """Load a results.json (or a run directory holding one) and check its shape: the schema, and the
    top-level members every reader uses (``benchmarks`` and ``failed`` objects, each benchmark an object with
    a ``metrics`` object). Whatever is wrong is a clear error naming the file and the member."""
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
    if not isinstance(doc, dict):
        raise FacebenchError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise FacebenchError(f"{path}: not a facebench results file (schema {doc.get('schema')!r}, expected {SCHEMA!r})")
    for key in ("benchmarks", "failed"):
        if not isinstance(doc.get(key), dict):
            raise FacebenchError(f"{path}: member {key!r} must be an object, got {type(doc.get(key)).__name__}")
    for name, entry in doc["benchmarks"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
            raise FacebenchError(f"{path}: benchmarks.{name} must be an object with a 'metrics' object")
    doc["_path"] = str(path)
    return doc


def load_arrays(run_dir: str | Path, benchmark: str) -> dict[str, np.ndarray]:
    """The arrays saved for one benchmark of a run (empty when none)."""
    path = Path(run_dir) / f"{benchmark}.npz"
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
