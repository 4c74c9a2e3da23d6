"""One validator for declarative files: protocol specs, published tables, sidecars and training configs.

A table of keys becomes a frozen dataclass: every key must be a field (an unknown key is an error with a
"did you mean"), every field without a default must be present, and each value must match the field's
annotation (``int``, ``float`` (an int is accepted, a bool never), ``bool``, ``str``, ``list[...]``,
``tuple[X, ...]``, ``tuple[X, Y, Z]`` (exactly that many), ``dict[str, ...]``, ``Literal[...]`` of strings,
``X | None`` (None, JSON's null, passes), or another such dataclass (a nested table)). Errors are
:class:`FacebenchError` naming ``where`` (file and table).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from facebench.errors import FacebenchError
from facebench.registry import did_you_mean

T = TypeVar("T")


def check_type(value: Any, hint: Any, where: str) -> Any:
    """``value`` converted to the annotated type (int -> float allowed; bool is never a number)."""
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return value
    if origin is None and hint is type(None):
        raise FacebenchError(f"{where}: unexpected value {value!r}")
    if args and type(None) in args:  # Optional[...]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return check_type(value, inner[0], where)
    if origin is Literal:
        choice(value, [str(a) for a in args], where)
        return value
    if dataclasses.is_dataclass(hint):
        return from_table(hint, value, where)  # type: ignore[arg-type]
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise FacebenchError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis and len(value) != len(args):
            raise FacebenchError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        item = args[0] if args else Any
        checked = [check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return checked if origin is list else tuple(checked)
    if origin is dict:
        if not isinstance(value, dict):
            raise FacebenchError(f"{where}: expected a table, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {str(k): check_type(v, item, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise FacebenchError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FacebenchError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FacebenchError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise FacebenchError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported schema type {hint}")  # pragma: no cover


def from_table(cls: type[T], data: Any, where: str) -> T:
    """The dataclass ``cls`` built from the table ``data``; ``where`` names it in errors (e.g.
    ``"train.toml: [optim]"``)."""
    if not isinstance(data, dict):
        raise FacebenchError(f"{where} must be a table of keys, got {data!r}")
    hints = get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in data if k not in known]
    if unknown:
        k = unknown[0]
        raise FacebenchError(f"{where} unknown key {k!r}{did_you_mean(k, known)} (known: {', '.join(known)})")
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            values[f.name] = check_type(data[f.name], hints[f.name], f"{where} {f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            raise FacebenchError(f"{where} missing required key {f.name!r}")
    return cls(**values)


def choice(value: Any, choices: tuple[str, ...] | list[str], where: str) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise FacebenchError(f"{where}: {value!r} is not one of {', '.join(choices)}{did_you_mean(str(value), list(choices))}")


def positive(value: float | None, where: str, zero_ok: bool = False) -> None:
    """``value`` (when given) must be > 0, or >= 0 with ``zero_ok``."""
    if value is None:
        return
    if value < 0 or (value == 0 and not zero_ok):
        raise FacebenchError(f"{where}: must be {'>= 0' if zero_ok else '> 0'}, got {value}")
