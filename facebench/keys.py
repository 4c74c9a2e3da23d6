"""The grammar of metric keys in results documents, published tables and ``[columns]``.

A metric path is ``head`` or ``head.key`` (only the first dot splits): ``accuracy``, ``tar_at_far.1e-04``,
``tpir_at_fpir.1e-02``, ``rank.5``, ``rank1.1000000`` (MegaFace: rank-1 at a distractor list size),
``group_fnmr.race/African``. A rate key (FAR, FPIR, FMR targets) is written ``f"{rate:.0e}"`` (``1e-04``)
and shown in labels without the leading zero of the exponent (``1e-4``).
"""

from __future__ import annotations


def split_path(path: str) -> list[str]:
    """``tar_at_far.1e-04`` -> ``["tar_at_far", "1e-04"]`` (only the first dot splits: FAR keys hold none
    before it, and ``val_at_far_1e-03.val`` splits into its key and field)."""
    head, _, tail = path.partition(".")
    return [head] + ([tail] if tail else [])


def rate_key(rate: float) -> str:
    """Results key of a FAR/FPIR/FMR target: ``f"{rate:.0e}"`` (``1e-04``)."""
    return f"{rate:.0e}"


def rate_label(rate: float | str) -> str:
    """A rate as table labels show it: ``1e-4`` (from ``1e-04`` or ``0.0001``)."""
    return (rate_key(rate) if isinstance(rate, float) else str(rate)).replace("e-0", "e-")


def parse_rate(key: str) -> float | None:
    """The rate of a key (any text ``float`` reads), else None."""
    try:
        return float(key)
    except ValueError:
        return None


def is_rate_key(key: str) -> bool:
    """Whether ``key`` is a rate written exactly as :func:`rate_key` writes it."""
    rate = parse_rate(key) if key else None
    return rate is not None and rate_key(rate) == key


def path_rate(path: str, head: str) -> float | None:
    """The rate of a ``head.<rate>`` metric path (``tar_at_far.1e-04`` -> 1e-4), else None."""
    parts = split_path(path)
    if parts[0] != head or len(parts) < 2:
        return None
    return parse_rate(parts[1])
