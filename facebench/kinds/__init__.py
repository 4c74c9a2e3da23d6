"""The protocol kinds: one module each, one registry of them.

Each module of this package declares one :class:`~facebench.kinds.base.Kind` as ``KIND``. A kind of your
own is a module of yours holding such a ``KIND``, registered as an entry point of the group
``facebench.kinds`` (name = the kind's name, value = ``module:KIND``) by the package that ships it; its
protocol files are then used like the shipped ones (``--protocols``). Entry points are read only when a
name is not a built-in kind, so the built-ins cost no scan of the installed packages.

Lookup: :func:`get` (specs: an unknown name is an error with a "did you mean"), :func:`for_entry`
(results documents: an unknown kind, e.g. from a plugin not installed here, reads as :func:`generic`).
"""

from __future__ import annotations

import functools

from facebench.errors import FacebenchError
from facebench.kinds import alltoall, folder, identify, ijb_1n, ijb_1to1, megaface, pairs, rfw, scores, survface, tinyface
from facebench.kinds.base import Kind, Metric
from facebench.registry import Registry

__all__ = ["ENTRY_POINT_GROUP", "Kind", "Metric", "BUILT_IN", "for_entry", "generic", "get", "names", "pair_verification_kinds",
           "registry"]

ENTRY_POINT_GROUP = "facebench.kinds"
#: The shipped kinds, in the order `facebench benchmarks` lists them.
BUILT_IN: tuple[Kind, ...] = tuple(
    m.KIND for m in (pairs, ijb_1to1, ijb_1n, megaface, folder, alltoall, tinyface, survface, identify, rfw, scores)
)


def _registry(kinds: tuple[tuple[Kind, str], ...]) -> Registry[Kind]:
    table: Registry[Kind] = Registry("protocol kind")
    for kind, owner in kinds:
        table.add(kind.name, kind, owner)
    return table


@functools.lru_cache(maxsize=None)
def _built_in() -> Registry[Kind]:
    return _registry(tuple((k, f"facebench.kinds.{k.name}") for k in BUILT_IN))


@functools.lru_cache(maxsize=None)
def registry() -> Registry[Kind]:
    """Every kind: the shipped ones, then those of the ``facebench.kinds`` entry points (a name taken twice
    is an error naming both owners; an entry point whose name differs from its kind's, or whose value is
    not a Kind, is an error naming it)."""
    from importlib import metadata  # about 0.1 s: only when a name is not a built-in kind

    found = [(k, f"facebench.kinds.{k.name}") for k in BUILT_IN]
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        where = f"entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP})"
        try:
            kind = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is named, not a traceback
            raise FacebenchError(f"{where}: cannot load it: {type(exc).__name__}: {exc}") from exc
        if not isinstance(kind, Kind):
            raise FacebenchError(f"{where}: is a {type(kind).__name__}, not a facebench.kinds.Kind")
        if kind.name != entry.name:
            raise FacebenchError(f"{where}: names kind {kind.name!r}; the entry point must be named like its kind")
        found.append((kind, entry.value))
    return _registry(tuple(found))


def get(name: str, where: str = "") -> Kind:
    """The kind called ``name`` (built-in, else a plugin's); unknown: an error naming ``where`` with a
    suggestion and the known kinds."""
    built_in = _built_in()
    if name in built_in:
        return built_in[name]
    return registry().get(name, where)


def names() -> tuple[str, ...]:
    """Every kind's name (plugins included)."""
    return registry().names()


def pair_verification_kinds() -> str:
    """The shipped pair-verification kinds, for messages: ``"pairs or folder"``."""
    return " or ".join(k.name for k in BUILT_IN if k.pair_verification)


def generic(name: str) -> Kind:
    """The kind a results entry of an unknown kind is read as: shared metric declarations, ROC and DET
    figures, no intervals or paired tests."""
    return Kind(name=name, title=name)


def for_entry(name: str) -> Kind:
    """The kind of a results entry (``entry["kind"]``): the registered one, else :func:`generic`."""
    built_in = _built_in()
    if name in built_in:
        return built_in[name]
    try:
        table = registry()
    except FacebenchError:
        return generic(name)
    return table[name] if name in table else generic(name)
