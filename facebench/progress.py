"""Progress of long work on stderr, built on tqdm: a bar on a terminal, plain lines elsewhere.

When stderr is a terminal, tqdm's bar. When it is not (CI, nohup, a notebook's captured stream), one plain
line every ``interval`` seconds and one at the end, each with percent, count, elapsed, ETA and rate::

    demo_verify: extract:  45% 360/800 [00:03<00:04, 110.2 images/s]

Nothing is shown for work that ends within ``delay`` seconds.
"""

from __future__ import annotations

import sys
from typing import IO, Iterator, Sequence, TypeVar

from tqdm import tqdm

T = TypeVar("T")
LINE_FORMAT = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"


class _Lines:
    """A stream for tqdm that turns its carriage-return redraws into whole lines (a redraw at the same count
    as the line before, as on closing, is dropped)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        count = text.split(" [", 1)[0]
        if text and count != self.last:
            self.stream.write(text + "\n")
            self.last = count

    def flush(self) -> None:
        self.stream.flush()


def progress(
    total: int, label: str, unit: str = "images", *, enabled: bool = True, interval: float = 10.0,
    delay: float = 2.0, stream: IO[str] | None = None,
) -> tqdm:
    """A tqdm progress counter of ``total`` ``unit`` labelled ``label`` (use as a context manager and call
    ``update(n)``); disabled when ``enabled`` is false or ``total`` is 0."""
    stream = stream or sys.stderr
    common = dict(total=total, desc=label, unit=f" {unit}", disable=not enabled or total <= 0, delay=delay,
                  leave=True)
    if stream.isatty():
        return tqdm(file=stream, mininterval=0.5, dynamic_ncols=True, **common)
    return tqdm(file=_Lines(stream), mininterval=interval, maxinterval=interval, bar_format=LINE_FORMAT,
                ascii=True, **common)


def track(items: Sequence[T], label: str, unit: str, *, enabled: bool = True) -> Iterator[T]:
    """Iterate over ``items`` with :func:`progress` counting each one."""
    with progress(len(items), label, unit, enabled=enabled) as bar:
        for item in items:
            yield item
            bar.update(1)
