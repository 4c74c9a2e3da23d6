"""Python values as results.json holds them: plain JSON numbers, lists and text, no machine path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np


def portable(text: str, home: str | Path | None = None) -> str:
    """``text`` with every path under the writer's home directory written ``~/...`` (a report must not
    carry the machine it was made on); relative paths and other absolute paths stay as given."""
    home = str(home or Path.home()).rstrip("/")
    if not home:
        return text
    return re.sub(rf"(?<![\w.~/-]){re.escape(home)}(?=/|$|[\s'\",:;)])", "~", text)


def json_ready(obj: Any) -> Any:
    """``obj`` as JSON values: numpy numbers and arrays as Python numbers and lists, tuples as lists,
    non-finite numbers as None, text and paths :func:`portable`."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, str):
        return portable(obj)
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
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
