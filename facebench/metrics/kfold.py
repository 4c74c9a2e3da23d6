"""The 10-fold verification rules of LFW-style pair sets (insightface and FaceX-Zoo), and fold sanity.

Each rule picks a threshold on the other folds and scores the held-out fold with it, exactly as its
reference code does, so the numbers equal the published ones to the last digit:

- :func:`insightface_kfold` / :func:`insightface_val_far`: insightface
  ``recognition/arcface_torch/eval/verification.py`` (``calculate_roc``, ``calculate_val``).
- :func:`facexzoo_kfold`: FaceX-Zoo ``test_protocol/lfw/lfw_evaluator.py`` (``test_one_model``,
  ``getThreshold``).

Folds are contiguous blocks of the stored pair order (scikit-learn ``KFold(k, shuffle=False)``), unless
explicit ``folds`` are given. :func:`fold_balance` and :func:`is_balanced` catch a pack whose pairs were
reordered (which silently changes every fold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from facebench.metrics import _counting
from facebench.metrics._validation import (
    as_labels,
    as_scores,
    check_both_classes,
    check_n_folds,
    check_rate,
    check_same_length,
)


@dataclass(frozen=True, eq=False)
class KFoldResult:
    """Per-fold accuracies of a k-fold verification rule.

    ``thresholds[k]`` is the threshold chosen on the other folds and applied to fold k (in the rule's own
    score: squared distance for insightface, cosine for FaceX-Zoo). ``predictions[i]`` is the held-out
    decision "same person" for pair i and ``correct[i]`` whether the held-out decision was right (these
    differ from ``predictions == issame`` only where a rule counts a score on the threshold as neither).
    ``std`` follows ``std_rule``: ``"std(ddof=0)"`` or ``"stderr(ddof=1)/sqrt(k)"``.
    """

    rule: str
    accuracies: np.ndarray
    thresholds: np.ndarray
    predictions: np.ndarray
    correct: np.ndarray
    mean: float
    std: float
    std_rule: str

    @property
    def n_folds(self) -> int:
        return int(self.accuracies.size)


@dataclass(frozen=True, eq=False)
class ValFar:
    """insightface's VAL@FAR: per-fold validation rate and FAR at the threshold that reaches the target
    FAR on the other folds; means over folds and ``np.std`` (ddof=0) of the VALs."""

    rule: str
    far_target: float
    val_mean: float
    val_std: float
    far_mean: float
    vals: np.ndarray
    fars: np.ndarray
    thresholds: np.ndarray


def kfold_indices(n_pairs: int, n_folds: int = 10) -> list[np.ndarray]:
    """Held-out index arrays of ``KFold(n_folds, shuffle=False)``: contiguous blocks in stored order.

    Fold sizes are ``n_pairs // n_folds``, the first ``n_pairs % n_folds`` folds one larger.

    >>> [f.tolist() for f in kfold_indices(7, 3)]
    [[0, 1, 2], [3, 4], [5, 6]]
    """
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive integer; got {n_pairs!r}")
    k = check_n_folds(n_folds, int(n_pairs))
    sizes = np.full(k, n_pairs // k, dtype=np.int64)
    sizes[: n_pairs % k] += 1
    stops = np.cumsum(sizes)
    return [np.arange(stop - size, stop) for stop, size in zip(stops, sizes)]


def fold_balance(issame: ArrayLike, n_folds: int = 10, *, folds: Sequence[ArrayLike] | None = None) -> np.ndarray:
    """Counts per fold, shape (k, 2): column 0 same-person pairs, column 1 different-person pairs.

    >>> fold_balance([1, 1, 0, 0, 1, 0], 2).tolist()
    [[2, 1], [1, 2]]
    """
    labels = as_labels(issame, "issame")
    test_folds = _resolve_folds(labels.size, n_folds, folds)
    same = np.array([np.count_nonzero(labels[f]) for f in test_folds], dtype=np.int64)
    sizes = np.array([f.size for f in test_folds], dtype=np.int64)
    return np.stack([same, sizes - same], axis=1)


def is_balanced(issame: ArrayLike, n_folds: int = 10, *, folds: Sequence[ArrayLike] | None = None) -> bool:
    """True when every fold holds the overall share of same-person pairs, to within one pair.

    Fold k passes when ``|same_k - size_k * p| <= 1`` with p the share of same pairs over all pairs.
    The published packs pass (LFW: 300 same + 300 different in each of 10 folds); a pack sorted by
    label, or shuffled, fails, and its k-fold numbers are not comparable with published ones.

    >>> is_balanced([1, 0] * 30), is_balanced([1] * 30 + [0] * 30)
    (True, False)
    """
    counts = fold_balance(issame, n_folds, folds=folds)
    sizes = counts.sum(axis=1)
    share = counts[:, 0].sum() / sizes.sum()
    return bool(np.all(np.abs(counts[:, 0] - sizes * share) <= 1.0))


def insightface_kfold(
    dist: ArrayLike,
    issame: ArrayLike,
    n_folds: int = 10,
    thresholds: ArrayLike | None = None,
    *,
    folds: Sequence[ArrayLike] | None = None,
) -> KFoldResult:
    """insightface's k-fold accuracy (``calculate_roc`` of ``eval/verification.py``).

    ``dist`` is the squared Euclidean distance between the two unit embeddings of each pair (2 - 2 cos),
    taken in float64. A pair is predicted "same" when ``dist < threshold`` (strict). Thresholds default
    to ``np.arange(0, 4, 0.01)``. For each fold: the FIRST threshold (in the given order) maximising
    accuracy on the other folds, then the accuracy of that threshold on the held-out fold, both as
    ``(true accepts + true rejects) / pairs``. Reports the mean and ``np.std`` (ddof=0) over folds.
    """
    distances = as_scores(dist, "dist").astype(np.float64)
    labels = as_labels(issame, "issame")
    n = check_same_length(dist=distances, issame=labels)
    check_both_classes(labels, "insightface_kfold")
    grid = _threshold_grid(thresholds, np.arange(0, 4, 0.01))
    test_folds = _resolve_folds(n, n_folds, folds)

    accuracies = np.empty(len(test_folds))
    chosen = np.empty(len(test_folds))
    predictions = np.zeros(n, dtype=bool)
    for k, test in enumerate(test_folds):
        train = _complement(n, test)
        genuine = np.sort(distances[train][labels[train]])
        impostor = np.sort(distances[train][~labels[train]])
        accepted_genuine = _counting.count_below(genuine, grid)
        rejected_impostor = impostor.size - _counting.count_below(impostor, grid)
        train_accuracy = (accepted_genuine + rejected_impostor) / train.size
        chosen[k] = grid[int(np.argmax(train_accuracy))]
        predictions[test] = distances[test] < chosen[k]
        accuracies[k] = np.count_nonzero(predictions[test] == labels[test]) / test.size
    return KFoldResult(
        rule="insightface",
        accuracies=accuracies,
        thresholds=chosen,
        predictions=predictions,
        correct=predictions == labels,
        mean=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
        std_rule="std(ddof=0)",
    )


XQLFW_THRESHOLDS = np.arange(0, 2, 0.001)
"""The cosine-distance grid of the XQLFW authors' evaluation code."""


def xqlfw_kfold(cos: ArrayLike, issame: ArrayLike, n_folds: int = 10) -> KFoldResult:
    """The XQLFW authors' k-fold accuracy (``Martlgap/xqlfw`` ``code/evaluate.py``): cosine distance
    ``1 - cos``, thresholds ``np.arange(0, 2, 0.001)``, "same" when ``distance < threshold``, contiguous
    folds, the first threshold maximising accuracy on the other folds. That is :func:`insightface_kfold` on
    ``1 - cos`` with this grid (thresholds reported as cosine distances); mean and ``np.std`` (ddof=0).
    """
    distance = 1.0 - as_scores(cos, "cos").astype(np.float64)
    result = insightface_kfold(distance, issame, n_folds, XQLFW_THRESHOLDS)
    return KFoldResult(
        "xqlfw", result.accuracies, result.thresholds, result.predictions, result.correct, result.mean,
        result.std, result.std_rule,
    )


def insightface_val_far(
    dist: ArrayLike,
    issame: ArrayLike,
    far_target: float = 1e-3,
    n_folds: int = 10,
    thresholds: ArrayLike | None = None,
    *,
    folds: Sequence[ArrayLike] | None = None,
) -> ValFar:
    """insightface's VAL@FAR (``calculate_val`` of ``eval/verification.py``), bit for bit.

    Accept = ``dist < threshold``; thresholds default to ``np.arange(0, 4, 0.001)``. Per fold, FAR on the
    other folds is computed at every grid threshold (``false accepts / impostors``). If its maximum
    reaches ``far_target``, the fold threshold is ``interp1d(far_train, thresholds, kind='slinear')``
    evaluated at the target, else 0.0. VAL and FAR are then measured on the held-out fold.

    The interpolation is reproduced as SciPy <= 1.8 computed it (SciPy >= 1.9 refuses the repeated FAR
    values that every real grid has: insightface issue #2152, "downgrade scipy to 1.8.1"): the pairs are
    stably sorted by FAR, i is the LAST grid index with ``far <= target`` (at most the second-to-last)
    and j = i + 1, and the threshold is ``t_i * w (f_j - target) + t_j * w (target - f_i)`` with
    ``w = 1 / (f_j - f_i)`` (degree-1 de Boor). So a run of equal FARs contributes its highest threshold.
    Quirk kept: if the target equals the largest FAR and that value is repeated, SciPy returned 0.0.
    A target below the smallest training FAR is a ValueError (as interp1d's bounds error).
    """
    distances = as_scores(dist, "dist").astype(np.float64)
    labels = as_labels(issame, "issame")
    n = check_same_length(dist=distances, issame=labels)
    check_both_classes(labels, "insightface_val_far")
    target = check_rate(far_target, "far_target")
    grid = _threshold_grid(thresholds, np.arange(0, 4, 0.001))
    if grid.size < 2:
        raise ValueError(f"insightface_val_far needs at least 2 thresholds to interpolate; got {grid.size}")
    test_folds = _resolve_folds(n, n_folds, folds)

    vals = np.empty(len(test_folds))
    fars = np.empty(len(test_folds))
    chosen = np.empty(len(test_folds))
    for k, test in enumerate(test_folds):
        train = _complement(n, test)
        impostor_train = np.sort(distances[train][~labels[train]])
        if impostor_train.size == 0:
            raise ValueError(f"fold {k}: the other folds hold no different-person pair; FAR is undefined")
        far_train = _counting.count_below(impostor_train, grid) / impostor_train.size
        if np.max(far_train) >= target:
            chosen[k] = _scipy18_slinear(far_train, grid, target, fold=k)
        else:
            chosen[k] = 0.0
        same_test = distances[test][labels[test]]
        diff_test = distances[test][~labels[test]]
        if same_test.size == 0 or diff_test.size == 0:
            raise ValueError(
                f"fold {k} holds {same_test.size} same and {diff_test.size} different pairs; "
                "VAL and FAR need both"
            )
        vals[k] = np.count_nonzero(same_test < chosen[k]) / same_test.size
        fars[k] = np.count_nonzero(diff_test < chosen[k]) / diff_test.size
    return ValFar(
        rule="insightface",
        far_target=target,
        val_mean=float(np.mean(vals)),
        val_std=float(np.std(vals)),
        far_mean=float(np.mean(fars)),
        vals=vals,
        fars=fars,
        thresholds=chosen,
    )


def facexzoo_kfold(
    cos: ArrayLike,
    issame: ArrayLike,
    n_folds: int = 10,
    *,
    folds: Sequence[ArrayLike] | None = None,
) -> KFoldResult:
    """FaceX-Zoo's k-fold accuracy (``LFWEvaluator.test_one_model`` / ``getThreshold``).

    Exactly as its code computes it (under the NumPy 1.x it was written for):

    - cosine scores are stored as float32;
    - per fold, on the other folds' scores: ``step = (max - min) / 1000`` (span in float32, division in
      float64) and thresholds ``min + step * i`` for i = 1..1000 (so the lowest is above the minimum and
      the highest is the maximum); TPR = ``#(genuine > t) / genuine`` and FPR = ``#(impostor > t) /
      impostors``; the FIRST threshold maximising TPR - FPR;
    - held-out accuracy = ``(#(genuine > t) + #(impostor < t)) / fold size``: a score EQUAL to the
      threshold counts as neither a true accept nor a true reject (wrong either way);
    - every comparison of a float32 score with a threshold happens in float32 (NumPy 1.x value-based
      casting rounds the float64 threshold to float32), and ``thresholds`` reports that float32 value.
      Run under NumPy >= 2, the same script compares in float64 and rounds the step to float32, so its
      last digit can differ on scores within half a float32 ulp of a threshold;
    - mean and standard error ``np.std(ddof=1) / sqrt(k)``.

    FaceX-Zoo hard-codes 10 folds of 600 (``index // 600``, contiguous), which is ``kfold_indices(6000)``;
    other sizes use :func:`kfold_indices` and divide by each fold's size. ``predictions`` is
    ``score > threshold``; ``correct`` applies the tie rule above.
    """
    scores = as_scores(cos, "cos").astype(np.float32)
    labels = as_labels(issame, "issame")
    n = check_same_length(cos=scores, issame=labels)
    check_both_classes(labels, "facexzoo_kfold")
    test_folds = _resolve_folds(n, n_folds, folds)
    steps = np.arange(1, 1001, dtype=np.float64)

    accuracies = np.empty(len(test_folds))
    chosen = np.empty(len(test_folds))
    predictions = np.zeros(n, dtype=bool)
    correct = np.zeros(n, dtype=bool)
    for k, test in enumerate(test_folds):
        train = _complement(n, test)
        train_scores = scores[train]
        genuine = np.sort(train_scores[labels[train]])
        impostor = np.sort(train_scores[~labels[train]])
        if genuine.size == 0 or impostor.size == 0:
            raise ValueError(
                f"fold {k}: the other folds hold {genuine.size} same and {impostor.size} different pairs; "
                "TPR - FPR needs both"
            )
        low, high = train_scores.min(), train_scores.max()  # float32
        step = np.float64(np.float32(high - low)) / 1000.0
        grid = (np.float64(low) + step * steps).astype(np.float32)
        tpr = _counting.count_above(genuine, grid) / genuine.size
        fpr = _counting.count_above(impostor, grid) / impostor.size
        threshold = grid[int(np.argmax(tpr - fpr))]
        chosen[k] = float(threshold)
        test_scores, test_labels = scores[test], labels[test]
        predictions[test] = test_scores > threshold
        correct[test] = np.where(test_labels, test_scores > threshold, test_scores < threshold)
        accuracies[k] = np.count_nonzero(correct[test]) / test.size
    return KFoldResult(
        rule="facexzoo",
        accuracies=accuracies,
        thresholds=chosen,
        predictions=predictions,
        correct=correct,
        mean=float(np.mean(accuracies)),
        std=float(np.std(accuracies, ddof=1) / np.sqrt(len(test_folds))),
        std_rule="stderr(ddof=1)/sqrt(k)",
    )


def _scipy18_slinear(x: np.ndarray, y: np.ndarray, at: float, fold: int) -> float:
    """``interp1d(x, y, kind='slinear')(at)`` as SciPy <= 1.8 evaluated it, repeated x allowed."""
    order = np.argsort(x, kind="mergesort")
    xs, ys = x[order], y[order]
    if at < xs[0] or at > xs[-1]:
        raise ValueError(
            f"fold {fold}: FAR target {at} lies outside the training FARs [{xs[0]}, {xs[-1]}] of the "
            "threshold grid; start the grid at a threshold that accepts nothing"
        )
    i = min(int(np.searchsorted(xs, at, side="right")) - 1, xs.size - 2)
    j = i + 1
    if xs[j] == xs[i]:
        return 0.0
    w = 1.0 / (xs[j] - xs[i])
    return float(ys[i] * (w * (xs[j] - at)) + ys[j] * (w * (at - xs[i])))


def _threshold_grid(thresholds: ArrayLike | None, default: np.ndarray) -> np.ndarray:
    if thresholds is None:
        return default
    grid = as_scores(thresholds, "thresholds").astype(np.float64)
    if grid.size == 0:
        raise ValueError("thresholds is empty")
    return grid


def _resolve_folds(n: int, n_folds: int, folds: Sequence[ArrayLike] | None) -> list[np.ndarray]:
    if folds is None:
        return kfold_indices(n, n_folds)
    test_folds = [np.asarray(f) for f in folds]
    if len(test_folds) != n_folds:
        raise ValueError(f"n_folds={n_folds} but folds has {len(test_folds)} entries; pass n_folds={len(test_folds)}")
    check_n_folds(len(test_folds), n)
    for k, f in enumerate(test_folds):
        if f.ndim != 1 or f.dtype.kind not in "iu" or f.size == 0:
            raise ValueError(
                f"folds[{k}] must be a non-empty 1-D integer index array; got shape {f.shape}, dtype {f.dtype}"
            )
    every = np.concatenate(test_folds)
    if every.size != n or not np.array_equal(np.sort(every), np.arange(n)):
        raise ValueError(
            f"folds must partition the {n} pair indices (each exactly once); they hold {every.size} indices"
        )
    return test_folds


def _complement(n: int, test: np.ndarray) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    keep[test] = False
    return np.flatnonzero(keep)


def identity_leaks(identity_a: Sequence[str], identity_b: Sequence[str], folds: ArrayLike) -> dict[str, list[int]]:
    """Identities that appear in more than one fold -> their sorted fold ids (both images of a pair count
    for the pair's fold). Empty for identity-disjoint folds such as LFW View 2's.

    >>> identity_leaks(["a", "b", "c"], ["a", "c", "d"], [0, 0, 1])
    {'c': [0, 1]}
    """
    f = np.asarray(folds).reshape(-1)
    if not (len(identity_a) == len(identity_b) == f.size):
        raise ValueError(f"identity_a ({len(identity_a)}), identity_b ({len(identity_b)}), folds ({f.size}) differ")
    seen: dict[str, set[int]] = {}
    for a, b, k in zip(identity_a, identity_b, f.tolist()):
        seen.setdefault(a, set()).add(k)
        seen.setdefault(b, set()).add(k)
    return {name: sorted(ks) for name, ks in sorted(seen.items()) if len(ks) > 1}
