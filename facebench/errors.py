"""The one exception type users see.

Every error caused by the user's input (a file, a flag, a checkpoint) is a `FacebenchError` whose message
says what is wrong, where (file, line, item or field) and, when it helps, what to do. The CLI prints it
without a traceback and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


class FacebenchError(Exception):
    """An input or usage error with a message meant for the user."""


def where(path: str | Path, line: int | None = None, item: str | None = None) -> str:
    """Format a location prefix: ``file``, ``file line 12`` or ``file item 7``."""
    text = str(path)
    if line is not None:
        text += f" line {line}"
    if item is not None:
        text += f" {item}"
    return text
