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
import io
import math
import pickle
import struct
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

_CALLABLE: dict[int, str] = {
    id(obj): f"{m}.{n}" for (m, n), obj in _ALLOWED.items() if obj is not np.ndarray
}
"""The admitted globals a pickle may call (REDUCE). ``numpy.ndarray`` is admitted only as the type argument
of ``_reconstruct``: called directly it would build an array over any buffer with any strides."""

_NAMES: dict[int, str] = {id(obj): f"{m}.{n}" for (m, n), obj in _ALLOWED.items()}


class _Refused(pickle.UnpicklingError):
    """A global outside the allow-list (kept apart from corrupt-file errors)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified = f"{module}.{name}"


class _Unbounded(pickle.UnpicklingError):
    """A construct that would take unbounded memory or change admitted objects (reported as refused)."""


class _Truncated(pickle.UnpicklingError):
    """A read beyond the end of the file: a truncated file, or a declared length that the file does not hold."""


class _BoundedReader:
    """A binary file whose reads may not ask for more bytes than remain in it.

    A pickle declares the length of each bytes object before its data; a declared length beyond the end of
    the file is refused before anything of that size is allocated.
    """

    def __init__(self, handle: BinaryIO, remaining: int) -> None:
        self.handle = handle
        self.remaining = remaining

    def _take(self, n: int) -> None:
        if n > self.remaining:
            raise _Truncated(f"{n:,} bytes declared where {self.remaining:,} remain in the file")

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.remaining
        self._take(n)
        data = self.handle.read(n)
        self.remaining -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        self._take(len(memoryview(buffer).cast("B")))
        got = self.handle.readinto(buffer)
        self.remaining -= got or 0
        return got

    def readline(self) -> bytes:
        line = self.handle.readline(self.remaining)
        self.remaining -= len(line)
        return line


def _stream_size(handle: BinaryIO) -> int:
    """Bytes from the current position of ``handle`` to its end."""
    position = handle.tell()
    end = handle.seek(0, io.SEEK_END)
    handle.seek(position)
    return end - position


def _prod(shape: Any) -> int:
    """Element count of a declared shape (Python ints: no overflow); a malformed shape is refused."""
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _Unbounded(f"an array declares the shape {shape!r}")
    return math.prod(shape)


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """An unpickler that admits only the pack data types, in memory bounded by the file's size.

    Rules (each refusal is a `FacebenchError` naming the file):

    - globals resolve only through the allow-list (see the module docstring);
    - only the admitted functions are called; ``numpy.ndarray`` is never called directly (it would accept a
      buffer and strides), and object construction by ``NEWOBJ``/``INST``/``OBJ`` is refused;
    - a state change (``BUILD``) is allowed only on numpy arrays and dtypes, never on admitted functions or
      types (which would alter facebench's own objects);
    - object dtypes, arrays with a zero stride over more than one element, and arrays or byte strings whose
      declared size, added to everything built so far, exceeds twice the file's size are refused (the data
      of a genuine pack is in the file, and each byte is built at most twice: once as the string read, once
      as the array made from it; so nothing it builds is larger), as is a declared length beyond the end of
      the file (before anything of that length is allocated).
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.budget = 2 * size
        super().__init__(_BoundedReader(handle, size), encoding="bytes")

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not supported")

    def _spend(self, n: int, what: str) -> None:
        if n > self.budget:
            raise _Unbounded(f"{what} declares {n:,} bytes or elements, more than the file's data could hold")
        self.budget -= n

    def _admit(self, value: Any) -> Any:
        """Check a value an admitted call or state change produced (see the class rules)."""
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise _Unbounded("an array of Python objects (object dtype)")
            if any(st == 0 and n > 1 for st, n in zip(value.strides, value.shape)):
                raise _Unbounded(f"a zero-stride array of shape {value.shape} (one element repeated)")
            self._spend(max(value.nbytes, value.size), f"an array of shape {value.shape}")
        elif isinstance(value, np.dtype) and value.hasobject:
            raise _Unbounded("the object dtype (arrays of Python objects)")
        elif isinstance(value, (bytes, bytearray)):
            self._spend(len(value), "a byte string")
        elif isinstance(value, np.generic) and value.dtype.hasobject:
            raise _Unbounded("an object scalar")
        return value

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        if id(func) not in _CALLABLE:
            name = _NAMES.get(id(func), type(func).__name__)
            raise _Unbounded(f"a call of {name}, which a pack never makes")
        if func is _multiarray._reconstruct and (len(args) < 1 or args[0] is not np.ndarray):
            raise _Unbounded("_reconstruct of a type other than numpy.ndarray")
        stack[-1] = self._admit(func(*args))

    def load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        if type(inst) is np.ndarray:
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise _Unbounded(f"an array state of type {type(state).__name__}")
            shape, dtype = state[-4], state[-3]
            if not isinstance(dtype, np.dtype) or dtype.hasobject:
                raise _Unbounded("an array of Python objects (object dtype)")
            self._spend(_prod(shape) * max(dtype.itemsize, 1), f"an array of shape {shape}")
            inst.__setstate__(state)
            self.budget += inst.nbytes  # spent above; _admit spends it again with the strides checked
            self._admit(inst)
        elif isinstance(inst, np.dtype):
            inst.__setstate__(state)
            self._admit(inst)
        else:
            name = _NAMES.get(id(inst), type(inst).__name__)
            raise _Unbounded(f"a state change (BUILD) of {name}: packs change the state of arrays only")

    def load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        self._spend(n, "a bytearray")
        self.budget += n
        buffer = bytearray(n)
        self.readinto(buffer)
        self.append(self._admit(buffer))

    def load_newobj(self) -> None:
        raise _Unbounded("object construction (NEWOBJ), which a pack never uses")

    def load_inst(self) -> None:
        raise _Unbounded("object construction (INST), which a pack never uses")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj
    dispatch[pickle.INST[0]] = load_inst
    dispatch[pickle.OBJ[0]] = load_inst


def load_stream(handle: BinaryIO, origin: str | Path) -> Any:
    """Unpickle one object from an open binary file with the restricted unpickler.

    ``origin`` names the file in error messages. A refused global, a truncated file and a corrupt stream are
    each a `FacebenchError`; nothing named by the file is ever called unless it is on the allow-list.
    """
    try:
        return RestrictedUnpickler(handle, _stream_size(handle)).load()
    except _Refused as exc:
        raise FacebenchError(
            f"{origin}: refused to unpickle the global '{exc.qualified}': facebench loads only the data types "
            "of an insightface .bin pack (bytes, lists, numpy arrays); this file names other code and may be "
            "malicious, so it was not loaded"
        ) from None
    except _Truncated as exc:
        raise FacebenchError(
            f"{origin}: the pickle ends early (file truncated, or a declared length the file does not hold: "
            f"{exc}); nothing of that length was allocated"
        ) from None
    except _Unbounded as exc:
        raise FacebenchError(
            f"{origin}: refused to unpickle {exc}: facebench loads only the data of an insightface .bin pack, "
            "within the memory its size implies; this file is malformed or malicious, so it was not loaded"
        ) from None
    except RecursionError:
        raise FacebenchError(f"{origin}: the pickle nests objects too deeply to be a pack; not loaded") from None
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
