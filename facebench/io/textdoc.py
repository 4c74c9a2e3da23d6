"""Parsing the JSON and TOML files users hand to facebench (sidecars, results, protocol and config files).

Every such file goes through :func:`parse_json` or :func:`parse_toml`, so a document nested deeper than the
parser can follow (``[[[[...]]]]`` a hundred thousand levels deep, a few hundred kilobytes) is a
`FacebenchError` naming the file instead of a ``RecursionError`` traceback. Syntax errors keep the
parser's own exception (``json.JSONDecodeError``, ``tomllib.TOMLDecodeError``), which each caller words for
its file kind.
"""

from __future__ import annotations

import json
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from facebench.errors import FacebenchError

TOMLDecodeError = tomllib.TOMLDecodeError
"""The TOML parser's syntax error (``tomllib`` on Python >= 3.11, ``tomli`` before)."""


def _too_deep(origin: str, kind: str) -> FacebenchError:
    return FacebenchError(
        f"{origin}: the {kind} document is nested too deeply to parse (more levels than Python's parser "
        "follows, about a thousand); a facebench file is nested a few levels deep: this one is malformed"
    )


def parse_json(text: str | bytes, origin: str) -> Any:
    """``json.loads(text)``; excessive nesting is a FacebenchError naming ``origin``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise _too_deep(origin, "JSON") from None


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    """``tomllib.loads(text)``; excessive nesting is a FacebenchError naming ``origin``."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise _too_deep(origin, "TOML") from None
