"""MegaFace challenge 1 metrics from streamed probe x distractor scores (PROTOCOLS 4).

Identification: for each identity with M probe images, each image g in turn is the gallery mate (added to
the distractors) and every other image p of the identity is a probe, giving sum M(M-1) trials. Trial (p, g)
is a rank-k hit when s(p, g) beats all but fewer than k distractor scores of p:

- tie rule ``">="`` (FaceX-Zoo, the default): hit when ``#{d : s(p, d) > s(p, g)} < k``, i.e.
  ``s(p, g) >= `` the k-th largest distractor score of p;
- tie rule ``">"`` (strict): hit when ``#{d : s(p, d) >= s(p, g)} < k``, i.e. ``s(p, g) > `` that score.

A probe with fewer than k distractors counts the missing ones as ``-inf`` (always beaten). So the CMC up to
rank K needs only each probe's K largest distractor scores, which :class:`TopScores` keeps while the score
matrix streams past in blocks of distractors.

Verification (the conventional definition; the devkit's own scorer is closed source): genuine pairs are the
unordered same-identity probe pairs, impostor pairs every (probe, distractor) pair, a pair is accepted when
``score >= t``. TAR at FAR f is the best TAR of any threshold whose FAR is at most f: with
``k = max{k : k / n_impostors <= f}`` and ``tau`` the (k+1)-th largest impostor score,
``TAR = #{genuine > tau} / n_genuine`` (:func:`facebench.metrics.operating.operating_point` with ``">"``,
the same kernel as every other TAR@FAR). With fewer than ``1 / f`` impostors the target is not resolvable
(:func:`facebench.metrics.operating.resolvable`): the evaluator reports ``None``. It needs only the ``k + 1`` largest impostor scores overall, which
:class:`TopScores` also keeps.

Scores that are ``-inf`` are never counted (that is how an excluded distractor is passed in a block).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facebench.metrics import _counting
from facebench.metrics.operating import allowed_count, operating_point

TIE_RULES: tuple[str, ...] = (">=", ">")


def l2_normalise(features: np.ndarray, squared: np.ndarray | None = None, in_place: bool = False) -> np.ndarray:
    """Float32 rows divided by their L2 norm: the squared norm is accumulated in float64
    (:func:`squared_norms`, or given), its square root rounded to float32, and the float32 row divided by it
    (a zero row stays zero). ``in_place``: a float32 ``features`` array is divided where it is."""
    x = np.asarray(features, dtype=np.float32)
    sq = squared_norms(x) if squared is None else squared
    norms = np.sqrt(sq).astype(np.float32)
    divisor = np.where(norms == 0, np.float32(1), norms)[:, None]
    return np.divide(x, divisor, out=x) if in_place and x is features else x / divisor


def squared_norms(features: np.ndarray) -> np.ndarray:
    """Each float32 row's squared L2 norm, accumulated in float64."""
    x = np.asarray(features, dtype=np.float32)
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


def identity_centres_for_noise(embeddings: np.ndarray, labels: np.ndarray, noisy: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Replace each noisy probe embedding by its identity centre: the L2-normalised sum (float64) of the
    identity's clean embeddings (insightface ``remove_noises.py`` and FaceX-Zoo, without insightface's
    +-0.001 uniform jitter, which only makes the result irreproducible).

    Returns the new float32 embeddings and the labels of identities whose images are all noisy (left
    unchanged, since they have no centre).
    """
    emb = np.array(embeddings, dtype=np.float32, copy=True)
    labels = np.asarray(labels)
    noisy = np.asarray(noisy, dtype=bool)
    orphans: list[int] = []
    for label in np.unique(labels[noisy]):
        members = labels == label
        clean = members & ~noisy
        if not clean.any():
            orphans.append(int(label))
            continue
        centre = emb[clean].astype(np.float64).sum(axis=0)
        norm = np.sqrt(centre @ centre)
        centre = centre / norm if norm > 0 else centre
        emb[members & noisy] = centre.astype(np.float32)
    return emb, orphans


def megaface_trials(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Identification trials ``(probe_index, gallery_index)``: every ordered pair of distinct images of the
    same identity (sum M(M-1)); ordered by identity (first appearance), then gallery image, then probe."""
    labels = np.asarray(labels)
    probes, galleries = [], []
    _, first = np.unique(labels, return_index=True)
    for label in labels[np.sort(first)]:
        idx = np.flatnonzero(labels == label)
        m = idx.size
        g = np.repeat(idx, m)
        p = np.tile(idx, m)
        keep = g != p
        galleries.append(g[keep])
        probes.append(p[keep])
    if not probes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(probes), np.concatenate(galleries)


def genuine_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Verification genuine pairs ``(i, j)``, ``i < j``, same identity (sum M(M-1)/2): identities in order of
    first appearance, each one's pairs in ``np.triu_indices`` order of its indices (vectorised)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, first, group = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")[group.ravel()]  # first-appearance order
    order = np.argsort(rank, kind="stable").astype(np.int64)  # indices grouped by identity, ascending within
    sizes = np.bincount(rank)
    start = np.repeat(np.cumsum(sizes) - sizes, sizes)  # each position's group start
    later = start + np.repeat(sizes, sizes) - np.arange(order.size) - 1  # partners after each position
    pos_i = np.repeat(np.arange(order.size), later)
    offset = np.arange(pos_i.size) - np.repeat(np.cumsum(later) - later, later)
    return order[pos_i], order[pos_i + 1 + offset]


def impostors_needed(n_impostors: int, far: float) -> int:
    """How many of the largest impostor scores decide TAR at ``far``: ``allowed_count + 1`` (at most all)."""
    return min(allowed_count(n_impostors, far) + 1, max(n_impostors, 0))


GROUP_ROWS = 32
"""Rows per group of a score block's column maxima (:func:`group_maxima`): the unit :class:`TopScores` searches
for candidates in."""


def group_maxima(block: np.ndarray) -> np.ndarray:
    """Column maxima of a ``(b, n)`` score block over consecutive groups of :data:`GROUP_ROWS` rows (the last
    group may be shorter): ``(ceil(b / GROUP_ROWS), n)``."""
    b, n = block.shape
    whole = b // GROUP_ROWS * GROUP_ROWS
    full = block[:whole].reshape(-1, GROUP_ROWS, n).max(axis=1, initial=-np.inf)
    if whole == b:
        return full
    return np.concatenate([full, block[whole:].max(axis=0)[None]])


class TopScores:
    """Streaming accumulator: each probe's ``k`` largest distractor scores (``per_probe``, ``(n_probes, k)``,
    descending, ``-inf`` padded) and the ``m`` largest scores overall, from score blocks fed one after
    another. A block has one row per distractor and one column per probe, ``(b, n_probes)``, so that
    selecting the distractors of a list is a row selection; ``-inf`` entries are ignored.

    Only ties at the boundary are ambiguous and they do not matter: the kept values are the top-k multiset.
    """

    def __init__(self, n_probes: int, k: int, m: int = 0) -> None:
        if n_probes < 1 or k < 1 or m < 0:
            raise ValueError(f"need n_probes >= 1, k >= 1, m >= 0; got {n_probes}, {k}, {m}")
        self.n_probes, self.k, self.m = int(n_probes), int(k), int(m)
        self.per_probe = np.full((self.n_probes, self.k), -np.inf, dtype=np.float32)
        self._overall = np.zeros(0, dtype=np.float32)
        self._overall_floor = -np.inf

    @property
    def overall(self) -> np.ndarray:
        """The ``m`` (or fewer, if fewer were seen) largest scores overall, descending."""
        return np.sort(self._overall)[::-1]

    def update(self, block: np.ndarray, maxima: np.ndarray | None = None) -> None:
        """Fold a block of scores ``(b, n_probes)`` (row i: distractor i against every probe) into the lists.

        A score is a candidate when it exceeds its probe's admission floor (the smaller of the probe's k-th
        score and the m-th overall score). Candidates are found from the block's :func:`group_maxima`
        (``maxima``, computed when not given; upper bounds serve as well, such as the maxima of the block
        before some of its rows were set to ``-inf``): only the (group, probe) cells whose maximum exceeds
        the floor are read again, so a block costs one pass over its scores once the floors have risen. While more than
        an eighth of the cells pass (the first blocks), the block is taken in pieces of 1, 1, 2, 4, ... groups,
        each raising the floors for the next; a piece where most scores are candidates takes each probe's k
        largest by selection.
        """
        if block.ndim != 2 or block.shape[1] != self.n_probes:
            raise ValueError(f"expected a (b, {self.n_probes}) score block, got {block.shape}")
        b, n = block.shape
        if b == 0:
            return
        block = np.ascontiguousarray(block)
        if maxima is None:
            maxima = group_maxima(block)
        elif maxima.shape != (-(-b // GROUP_ROWS), n):
            raise ValueError(f"expected ({-(-b // GROUP_ROWS)}, {n}) group maxima, got {maxima.shape}")
        done = 0  # groups folded in
        while done < maxima.shape[0]:
            floor = self._admission_floor()
            rest = maxima[done:]
            group, probe = np.nonzero(rest > floor)
            if group.size == 0:
                return
            if 8 * group.size <= rest.size:  # sparse: read only the passing cells
                self._fold_cells(block[done * GROUP_ROWS :], group, probe, floor)
                return
            piece = max(1, done)  # dense: 1, 1, 2, 4, ... groups at a time
            self._fold_dense(block[done * GROUP_ROWS : (done + piece) * GROUP_ROWS], floor)
            done += piece

    def _admission_floor(self) -> np.ndarray:
        probe_floor = self.per_probe[:, -1]
        return np.minimum(probe_floor, self._overall_floor) if self.m else probe_floor

    def _fold_cells(self, block: np.ndarray, group: np.ndarray, probe: np.ndarray, floor: np.ndarray) -> None:
        """Fold the scores above ``floor`` in the (group, probe) cells listed."""
        b = block.shape[0]
        rows = group[:, None] * GROUP_ROWS + np.arange(GROUP_ROWS)
        values = block[np.minimum(rows, b - 1), probe[:, None]]
        cell, offset = np.nonzero((rows < b) & (values > floor[probe][:, None]))
        self._fold(values[cell, offset], probe[cell])

    def _fold_dense(self, block: np.ndarray, floor: np.ndarray) -> None:
        """Fold a piece where many scores may pass: all candidates, or each probe's k largest by selection."""
        b, n = block.shape
        candidate = np.flatnonzero(block > floor)
        if candidate.size > 4 * self.k * n and b > self.k:
            self._merge_probes(np.arange(n), np.partition(block, b - self.k, axis=0)[-self.k :].T)
            if self.m:
                self._merge_overall(block[block > self._overall_floor])
            return
        self._fold(block.ravel()[candidate], candidate % n)

    def _fold(self, values: np.ndarray, owner: np.ndarray) -> None:
        """Merge candidate ``values`` of probes ``owner`` into the per-probe and overall lists."""
        if values.size == 0:
            return
        n = self.n_probes
        keep = values > self.per_probe[owner, -1]
        if keep.any():
            order = np.argsort(owner[keep], kind="stable")
            who, vals = owner[keep][order], values[keep][order]
            counts = np.bincount(who, minlength=n)
            touched = np.flatnonzero(counts)
            starts = np.cumsum(counts) - counts
            slot = np.empty(n, dtype=np.int64)
            slot[touched] = np.arange(touched.size)
            candidates = np.full((touched.size, int(counts.max())), -np.inf, dtype=np.float32)
            candidates[slot[who], np.arange(who.size) - starts[who]] = vals
            self._merge_probes(touched, candidates)
        if self.m:
            self._merge_overall(values[values > self._overall_floor])

    def merge(self, other: TopScores) -> None:
        """Fold in another accumulator's lists (kept from other blocks of the same probes): exact, since
        the k largest of a union are the k largest of the parts' k largest."""
        if (other.n_probes, other.k, other.m) != (self.n_probes, self.k, self.m):
            raise ValueError("can only merge accumulators of the same shape")
        self._merge_probes(np.arange(self.n_probes), other.per_probe)
        if self.m:
            self._merge_overall(other._overall)

    def _merge_probes(self, probes: np.ndarray, candidates: np.ndarray) -> None:
        merged = np.concatenate([self.per_probe[probes], candidates.astype(np.float32, copy=False)], axis=1)
        merged.sort(axis=1)
        self.per_probe[probes] = merged[:, : -self.k - 1 : -1]

    def _merge_overall(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        kept = np.concatenate([self._overall, values.astype(np.float32, copy=False)])
        if kept.size > self.m:
            kept = np.partition(kept, kept.size - self.m)[-self.m :]
        self._overall = kept
        if kept.size == self.m:
            self._overall_floor = float(kept.min())


def rank_hits(
    genuine: np.ndarray, probe_index: np.ndarray, top_rows: np.ndarray, tie_rule: str = ">="
) -> np.ndarray:
    """``hits[t, r-1]``: whether trial t is a rank-r hit, for r = 1 .. K (K = ``top_rows.shape[1]``).

    ``genuine[t]`` is trial t's mate score s(p, g), ``probe_index[t]`` its probe p, ``top_rows[p]`` the K
    largest distractor scores of p, descending (``-inf`` padded). Rank-r hit: ``genuine >= top_rows[p, r-1]``
    under ``">="``, ``genuine > top_rows[p, r-1]`` under ``">"``.
    """
    if tie_rule not in TIE_RULES:
        raise ValueError(f"unknown tie rule {tie_rule!r}; use '>=' or '>'")
    genuine = np.asarray(genuine, dtype=np.float32)
    if genuine.size == 0:
        raise ValueError("no identification trials (every identity needs at least 2 images)")
    kth = top_rows[np.asarray(probe_index)]
    return genuine[:, None] >= kth if tie_rule == ">=" else genuine[:, None] > kth


def identification_rates(
    genuine: np.ndarray, probe_index: np.ndarray, top_rows: np.ndarray, tie_rule: str = ">="
) -> np.ndarray:
    """CMC: the share of trials that are rank-r hits (:func:`rank_hits`), for r = 1 .. K."""
    hits = rank_hits(genuine, probe_index, top_rows, tie_rule)
    return np.count_nonzero(hits, axis=0) / hits.shape[0]


@dataclass(frozen=True)
class VerificationCurve:
    """The ROC corners known from the largest impostor scores: point j accepts ``score > thresholds[j]``
    (point 0: above the largest impostor, FAR 0). ``fpr`` and ``tpr`` ascend; the curve covers FAR up to
    ``fpr[-1]`` only."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    n_genuine: int
    n_impostor: int


def verification_curve(genuine: np.ndarray, top_impostors: np.ndarray, n_impostors: int) -> VerificationCurve:
    """The upper-left corners of the ROC staircase (best TAR at each achievable FAR) down to the smallest
    kept impostor score: for each distinct kept impostor value v (descending),
    ``fpr = #{impostor > v} / n_impostors`` and ``tpr = #{genuine > v} / n_genuine``; the last corner
    (``v`` = the smallest kept value) is exact because every impostor above it is kept.
    """
    genuine = np.sort(np.asarray(genuine, dtype=np.float32))
    if genuine.size == 0 or n_impostors <= 0:
        raise ValueError("verification needs genuine and impostor pairs")
    top = np.sort(np.asarray(top_impostors, dtype=np.float32))[::-1]
    if top.size == 0:
        return VerificationCurve(np.zeros(1), np.ones(1), np.array([-np.inf]), genuine.size, n_impostors)
    values, first = np.unique(-top, return_index=True)  # distinct values descending, first index of each
    values = -values
    above = first  # number of kept impostors strictly above each distinct value
    gen_above = _counting.count_above(genuine, values)
    thresholds = values
    if top.size >= n_impostors:
        # every impostor is kept: add the final corner below the minimum (accept everything)
        thresholds = np.append(values, -np.inf)
        above = np.append(above, n_impostors)
        gen_above = np.append(gen_above, genuine.size)
    return VerificationCurve(
        fpr=above / n_impostors,
        tpr=gen_above / genuine.size,
        thresholds=thresholds.astype(np.float64),
        n_genuine=int(genuine.size),
        n_impostor=int(n_impostors),
    )


@dataclass(frozen=True)
class VerificationPoint:
    """TAR at a FAR target: the achieved FAR (<= target) and the threshold ``tau`` (accept ``score > tau``)."""

    tar: float
    far: float
    threshold: float


def tar_at_far(genuine: np.ndarray, top_impostors: np.ndarray, n_impostors: int, far: float) -> VerificationPoint:
    """TAR at ``far`` by the conventional definition (module docstring): ``#{genuine > tau} / n_genuine``
    with ``tau`` the (c+1)-th largest impostor score, ``c = allowed_count(n_impostors, far)``; ``tau = -inf``
    (TAR = FAR = 1) when every impostor may be accepted. This is
    :func:`facebench.metrics.operating.operating_point` with ``comparison=">"``, the supremum of TAR over
    thresholds with FAR <= ``far`` (the ``le`` read-off of the full ROC).

    ``top_impostors`` must hold at least :func:`impostors_needed` of the largest impostor scores.
    """
    genuine = np.sort(np.asarray(genuine, dtype=np.float32))
    if genuine.size == 0 or n_impostors <= 0:
        raise ValueError("verification needs genuine and impostor pairs")
    k = allowed_count(n_impostors, far)
    if k >= n_impostors:  # every impostor may be accepted
        return VerificationPoint(1.0, 1.0, float("-inf"))
    top = np.sort(np.asarray(top_impostors, dtype=np.float32))
    if top.size < k + 1:
        raise ValueError(f"TAR at FAR {far:g} needs the {k + 1} largest impostor scores; {top.size} given")
    point = operating_point(genuine, top, far, ">", n_negatives=max(n_impostors, top.size))
    return VerificationPoint(tar=point.positive_rate, far=point.negative_rate, threshold=point.threshold)
