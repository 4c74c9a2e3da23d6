"""Input checks shared by the public metric functions (private).

Only public functions validate; the kernels they call trust their inputs. Every message quotes what was
received so that a caller can see at once which array is wrong and how.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_labels(labels: ArrayLike, name: str = "labels") -> np.ndarray:
    """A 1-D boolean array from booleans or 0/1 numbers; anything else is a ValueError."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {array.shape}")
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be booleans or 0/1 numbers; got dtype {array.dtype}")
    if array.size and not np.all((array == 0) | (array == 1)):
        bad = np.unique(array[(array != 0) & (array != 1)])[:5]
        raise ValueError(f"{name} must contain only 0/1 or booleans; got other values such as {bad.tolist()}")
    return array == 1


def as_scores(scores: ArrayLike, name: str = "scores", ndim: int = 1) -> np.ndarray:
    """A finite real array of the given rank (dtype kept); NaN or infinite entries are a ValueError."""
    array = np.asarray(scores)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {array.shape}")
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be real numbers; got dtype {array.dtype}")
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            first = np.argwhere(~finite)[0]
            where = int(first[0]) if ndim == 1 else tuple(int(i) for i in first)
            raise ValueError(
                f"{name} contains {int(array.size - finite.sum())} NaN or infinite values "
                f"(first at index {where}: {array[tuple(first)]})"
            )
    return array


def check_same_length(**arrays: np.ndarray) -> int:
    """The common length of the named arrays; differing lengths are a ValueError naming each."""
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"arrays must have the same length; {described}")
    return next(iter(lengths.values()))


def check_both_classes(issame: np.ndarray, what: str) -> tuple[int, int]:
    """(n_genuine, n_impostor); a ValueError when either is zero."""
    n_genuine = int(np.count_nonzero(issame))
    n_impostor = int(issame.size - n_genuine)
    if n_genuine == 0 or n_impostor == 0:
        raise ValueError(
            f"{what} needs both genuine (same) and impostor (different) pairs; "
            f"got {n_genuine} genuine and {n_impostor} impostor"
        )
    return n_genuine, n_impostor


def check_rate(value: float, name: str) -> float:
    """A rate in [0, 1] as a Python float."""
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {rate!r}")
    return rate


def check_n_folds(n_folds: int, n_pairs: int) -> int:
    """A fold count k with 2 <= k <= n_pairs."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)):
        raise ValueError(f"n_folds must be an integer; got {n_folds!r}")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2; got {n_folds}")
    if n_folds > n_pairs:
        raise ValueError(f"n_folds={n_folds} exceeds the number of pairs ({n_pairs})")
    return int(n_folds)
