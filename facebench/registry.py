"""One small registry for every named table (kinds, backbones, heads, losses, profiles, readers, ...).

Rule: a name is registered once (a second registration is an error naming both owners); lookup of an
unknown name is a :class:`FacebenchError` that names the table, lists what is known and suggests close
matches; iteration follows registration order.
"""

from __future__ import annotations

import difflib
from typing import Generic, Iterable, Iterator, TypeVar

from facebench.errors import FacebenchError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """``"; did you mean 'a' or 'b'?"`` for the close matches of ``name`` among ``choices`` (empty if none)."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """Names to entries of one kind of thing; ``what`` names the table in errors (e.g. ``"backbone"``)."""

    def __init__(self, what: str, entries: Iterable[tuple[str, T]] = ()) -> None:
        """An empty table, or one holding ``entries`` (``(name, entry)`` pairs, added in order by :meth:`add`)."""
        self.what = what
        self._entries: dict[str, T] = {}
        self._owners: dict[str, str] = {}
        for name, entry in entries:
            self.add(name, entry)

    def add(self, name: str, entry: T, owner: str = "") -> T:
        """Register ``entry`` under ``name``; a name already taken is an error naming both owners."""
        if name in self._entries:
            raise FacebenchError(
                f"duplicate {self.what} name {name!r}: registered by {self._owners[name] or 'facebench'}"
                f" and again by {owner or 'facebench'}"
            )
        self._entries[name] = entry
        self._owners[name] = owner
        return entry

    def register(self, name: str, owner: str = ""):
        """Decorator form of :meth:`add`."""

        def wrap(entry: T) -> T:
            return self.add(name, entry, owner or getattr(entry, "__module__", ""))

        return wrap

    def get(self, name: str, where: str = "") -> T:
        """The entry of ``name``; an unknown name is an error listing the known names with a suggestion."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            prefix = f"{where}: " if where else ""
            raise FacebenchError(
                f"{prefix}unknown {self.what} {name!r}{did_you_mean(str(name), self.names())}"
                f" (known: {', '.join(self.names())})"
            ) from None

    def check(self, name: str, where: str = "") -> str:
        """``name`` itself when registered, else the error of :meth:`get`."""
        self.get(name, where)
        return name

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._entries.items()))

    def values(self) -> Iterator[T]:
        """Every entry, in registration order."""
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {list(self._entries)})"
