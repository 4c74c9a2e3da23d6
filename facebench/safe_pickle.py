"""Load untrusted pickles without running their code.

A pickle names callables ("globals") that the loader calls while it rebuilds the object, so ``pickle.load``
on a user's file can run anything. ``load`` resolves every global through a short allow-list of the data
types an insightface ``.bin`` pack holds and refuses everything else with a `FacebenchError` that names the
refused global and the file. Modules are never imported by name: each admitted global maps to an object
facebench already holds.

Admitted (and why a pack needs them):

- numpy array reconstruction: ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``
  and ``numpy.ndarray`` (protocols 0-4), ``numpy.core.numeric._frombuffer`` /
  ``numpy._core.numeric._frombuffer`` (protocol 5), ``numpy.dtype``, and numpy scalars
  (``numpy.core.multiarray.scalar``, e.g. a ``numpy.bool_`` in ``issame``).
- ``bytes`` and ``bytearray`` (empty bytes and bytearrays under protocols 0-4), and ``_codecs.encode`` with the
  ``latin1`` codec only (how Python 3 writes ``bytes`` under protocols 0-2).

Python 2 pickles (old packs hold JPEGs as ``str``) load with ``encoding="bytes"``, so their strings arrive as
``bytes``; Python 2 module names (``__builtin__``) are accepted for the same builtins.
"""

from __future__ import annotations

import _codecs
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from facebench.errors import FacebenchError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]


def _bytes(*args: Any) -> bytes:
    """``bytes`` as a pickle may call it: no argument, or a bytes-like object (never a size to allocate)."""
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray, memoryview)):
        return bytes(args[0])
    raise pickle.UnpicklingError(f"bytes() called with unsupported arguments {tuple(type(a).__name__ for a in args)}")


def _bytearray(*args: Any) -> bytearray:
    """``bytearray`` as a pickle may call it: no argument, a bytes-like object, or a latin1 string."""
    if not args:
        return bytearray()
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray, memoryview)):
        return bytearray(args[0])
    if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        return bytearray(args[0], "latin1")
    raise pickle.UnpicklingError(
        f"bytearray() called with unsupported arguments {tuple(type(a).__name__ for a in args)}"
    )


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to turning a latin1 ``str`` into ``bytes`` (Python 3 protocol 0-2 bytes)."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode called with encoding {encoding!r}: only latin1 is allowed")
    return _codecs.encode(obj, "latin1")


_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_module, "scalar")] = _multiarray.scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = _numeric._frombuffer
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = np.dtype
for _module in ("builtins", "__builtin__"):
    _ALLOWED[(_module, "bytes")] = _bytes
    _ALLOWED[(_module, "bytearray")] = _bytearray
_ALLOWED[("_codecs", "encode")] = _codecs_encode

ALLOWED_GLOBALS: frozenset[str] = frozenset(f"{m}.{n}" for m, n in _ALLOWED)
"""The globals a pickle may name, as ``module.name``."""


class _Refused(pickle.UnpicklingError):
    """A global outside the allow-list (kept apart from corrupt-file errors)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified = f"{module}.{name}"


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only through the allow-list (see the module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not supported")


def load_stream(handle: BinaryIO, origin: str | Path) -> Any:
    """Unpickle one object from an open binary file with the restricted unpickler.

    ``origin`` names the file in error messages. A refused global, a truncated file and a corrupt stream are
    each a `FacebenchError`; nothing named by the file is ever called unless it is on the allow-list.
    """
    try:
        return RestrictedUnpickler(handle, encoding="bytes").load()
    except _Refused as exc:
        raise FacebenchError(
            f"{origin}: refused to unpickle the global '{exc.qualified}': facebench loads only the data types "
            "of an insightface .bin pack (bytes, lists, numpy arrays); this file names other code and may be "
            "malicious, so it was not loaded"
        ) from None
    except EOFError:
        raise FacebenchError(f"{origin}: the pickle ends early (file truncated?)") from None
    except Exception as exc:  # anything else the unpickler raises means the bytes are not a valid pickle
        text = str(exc)
        if "truncated" in text:
            raise FacebenchError(f"{origin}: the pickle ends early (file truncated?): {text}") from None
        raise FacebenchError(f"{origin}: not a readable pickle (corrupt or not a pack): {text}") from None


def load(path: str | Path) -> Any:
    """Unpickle the file at ``path`` with the restricted unpickler (see `loads_from`)."""
    try:
        with open(path, "rb") as handle:
            return load_stream(handle, path)
    except FileNotFoundError:
        raise FacebenchError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise FacebenchError(f"{path}: is a directory, expected a pickle file") from None
