"""Training checkpoints: everything needed to continue a run exactly, in one file per save.

``<output>/checkpoints/step_<k>.pt`` (written atomically by rank 0) holds the state after ``k`` steps: the
backbone, the *full* class-weight matrix and its momentum (gathered from the shards, so a checkpoint does
not depend on the number of ranks), the optimiser, the loss scaler, the sampler position, the random
number generator states of every rank, the config and the log position. Files hold only tensors and
plain Python values and are read back with ``torch.load(weights_only=True)``: a checkpoint never runs code.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facebench.errors import FacebenchError
from facebench.atomic import atomic_path

FORMAT = "facebench-train-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d{8,})\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    """``directory/step_<step, 8 digits>.pt``."""
    return directory / f"step_{step:08d}.pt"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in ``directory``, by step."""
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's generator states: torch (CPU and the current CUDA device), numpy, python."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Set the generator states captured by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format tag) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint safely (``weights_only``); a foreign or damaged file is a clear error."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FacebenchError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # torch raises several types for damaged or unsafe files
        raise FacebenchError(f"{path}: not a readable facebench training checkpoint: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FacebenchError(f"{path}: not a facebench training checkpoint (no {FORMAT!r} tag)")
    if data.get("version") != VERSION:
        raise FacebenchError(f"{path}: checkpoint version {data.get('version')} is not supported (expected {VERSION})")
    return data


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Delete all but the ``keep`` latest checkpoints."""
    for _, p in list_checkpoints(directory)[:-keep]:
        p.unlink(missing_ok=True)
