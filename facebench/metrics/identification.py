"""Open-set 1:N identification (IJB-B/C protocol): CMC ranks and TPIR at FPIR, plus insightface's legacy rule.

The standard rule follows bob.measure (``cmc``, ``detection_identification_rate``, ``false_alarm_rate``)
and NIST's definitions: a search is *mated* when its subject is enrolled in the gallery, otherwise
*non-mated*; FPIR is measured on non-mated searches, TPIR and ranks on mated ones. Scores are
similarities (higher = more alike), one row per probe template, one column per gallery template.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from facebench.metrics import _counting, operating
from facebench.metrics._validation import as_scores, check_rate

OPEN_SET_RULE = "open-set (bob.measure / NIST)"
LEGACY_RULE = "legacy insightface ijb_1n.py (merged galleries, FAR over probe count)"

#: The TPIR@FPIR threshold rules (PROTOCOLS 3), default first.
TPIR_RULES: tuple[str, ...] = ("insightface", "ge", "best")

#: What each TPIR rule is, in words (named in results and tables).
TPIR_RULE_TEXT = {
    "insightface": "insightface evaluation_1N: t = k-th largest non-mated best score, k = max(int(N*FPIR), 1); "
    "mate > every non-mate and mate > t",
    "ge": "bob.measure: t = far_threshold of the non-mated best scores; mate at rank 1 and mate >= t",
    "best": "supremum of TPIR over thresholds with FPIR <= target: mate at rank 1 and mate > the "
    "(c+1)-th largest non-mated best score, c = max{c : c/N <= FPIR}",
}

#: The CMC tie rules, default first: ``>=`` (bob.measure: a non-mate tied with the mate ranks above it),
#: ``>`` (ties favour the mate), ``argsort`` (insightface: the mate's position in ``np.argsort(row)[::-1]``).
CMC_TIE_RULES: tuple[str, ...] = (">=", ">", "argsort")

#: The CMC tie rules a count over blocks of scores can apply (streamed searches, image-level rankings);
#: ``argsort`` needs each search's full row.
BLOCKWISE_TIE_RULES: tuple[str, ...] = (">=", ">")


def tpir_threshold(sorted_nonmated: np.ndarray, fpir: float, rule: str = "insightface") -> tuple[float, str]:
    """The threshold and acceptance comparison of ``rule`` at target ``fpir`` (PROTOCOLS 3).

    ``sorted_nonmated``: the N non-mated searches' best scores, ascending.

    - ``insightface``: ``k = max(int(N * fpir), 1)`` (Python's truncation of the float product, as
      insightface's ``evaluation_1N``), t = the k-th largest, accept ``score > t``. FPIR reached is at most
      (k-1)/N; with ``N * fpir < 1`` it is the maximum, FPIR 0.
    - ``ge``: :func:`facebench.metrics.operating.rate_threshold` with ``">="`` (bob.measure
      ``far_threshold``), accept ``score >= t``.
    - ``best``: :func:`facebench.metrics.operating.rate_threshold` with ``">"``, accept ``score > t``: the
      supremum of TPIR over all thresholds whose FPIR is ``<= fpir``.

    >>> tpir_threshold(np.array([0.1, 0.2, 0.3, 0.4]), 0.5, "insightface"), tpir_threshold(np.array([0.1, 0.2, 0.3, 0.4]), 0.5, "best")
    ((0.3, '>'), (0.2, '>'))
    """
    check_tpir_rule(rule)
    n = sorted_nonmated.size
    if n == 0:
        raise ValueError("TPIR at FPIR needs non-mated searches; got none")
    if rule == "insightface":
        k = max(int(n * fpir), 1)
        return float(sorted_nonmated[n - k]), ">"
    comparison = ">=" if rule == "ge" else ">"
    return operating.rate_threshold(sorted_nonmated, fpir, comparison), comparison


def tpir_at_fpir(
    mate_scores: ArrayLike,
    mate_ranks: ArrayLike,
    nonmated_scores: ArrayLike,
    fpir: float,
    rule: str = "insightface",
) -> operating.RatePoint:
    """TPIR at a target FPIR by ``rule`` (:func:`tpir_threshold`), for one gallery.

    A mated search counts when its mate is at rank 1 (``mate_ranks == 1``: the mate's score is strictly
    above every non-mate's, the ``>=`` tie rule) and its mate score passes the threshold by the rule's
    comparison. ``positives_accepted / n_positives`` is the TPIR (``n_positives`` = all mated searches),
    ``negatives_accepted / n_negatives`` the FPIR reached (non-mated best scores passing the threshold).
    1 - TPIR is the FNIR.

    >>> p = tpir_at_fpir([0.9, 0.5, 0.35], [1, 1, 2], [0.1, 0.2, 0.3, 0.4], 0.5, "best")
    >>> p.positive_rate, p.negative_rate, p.threshold
    (0.6666666666666666, 0.5, 0.2)
    """
    mates = as_scores(mate_scores, "mate_scores")
    ranks = np.asarray(mate_ranks)
    if ranks.shape != mates.shape:
        raise ValueError(f"mate_ranks has shape {ranks.shape}, mate_scores {mates.shape}; they must match")
    nonmated = np.sort(as_scores(nonmated_scores, "nonmated_scores"))
    target = check_rate(fpir, "FPIR target")
    t, comparison = tpir_threshold(nonmated, target, rule)
    first = np.sort(mates[ranks == 1])
    return operating.RatePoint(
        threshold=t,
        comparison=comparison,
        positives_accepted=operating.count_accepted(first, t, comparison) if first.size else 0,
        n_positives=int(mates.size),
        negatives_accepted=operating.count_accepted(nonmated, t, comparison),
        n_negatives=int(nonmated.size),
    )


def dir_fpir_curve(mate_scores: ArrayLike, mate_ranks: ArrayLike, nonmated_scores: ArrayLike) -> dict[str, np.ndarray]:
    """The detection-and-identification rate (rank 1) against FPIR: the upper-left corners of the staircase.

    One point per distinct non-mated best score v (descending) and a last one at ``v = -inf``: accept
    ``score > v``, ``fpir = #(nonmated > v) / N``, ``dir = #(rank 1 and mate > v) / n_mated``. The first
    point (v = the maximum) has FPIR 0; the last has FPIR 1 and DIR = the rank-1 rate. The ``best`` rule's
    TPIR at f is the DIR of the last point with ``fpir <= f``; FNIR = 1 - DIR.
    """
    mates = as_scores(mate_scores, "mate_scores")
    ranks = np.asarray(mate_ranks)
    nonmated = np.sort(as_scores(nonmated_scores, "nonmated_scores"))
    if mates.size == 0 or nonmated.size == 0:
        raise ValueError("a DIR-FPIR curve needs mated and non-mated searches")
    values = np.r_[np.unique(nonmated)[::-1].astype(np.float64), -np.inf]
    first = np.sort(mates[ranks == 1]).astype(np.float64)
    fpir = _counting.count_above(nonmated.astype(np.float64), values) / nonmated.size
    dir_ = _counting.count_above(first, values) / mates.size
    return {"fpir": fpir, "dir": dir_, "thresholds": values}


def check_tpir_rule(rule: str) -> str:
    """``rule`` when it is one of :data:`TPIR_RULES`; a ValueError naming them otherwise."""
    if rule not in TPIR_RULES:
        raise ValueError(f"unknown TPIR rule {rule!r}; the rules are {', '.join(TPIR_RULES)}")
    return rule


def open_set_identification(
    scores: ArrayLike,
    probe_subjects: ArrayLike,
    gallery_subjects: ArrayLike,
    ranks: Sequence[int] = (1, 5, 10),
    fpirs: Sequence[float] = (1e-2, 1e-1),
    tpir_rule: str = "insightface",
    cmc_ties: str = ">=",
) -> dict:
    """Rank-k identification rates and TPIR at FPIR for one gallery.

    Rules:

    - A gallery subject's score is the maximum over its templates (one template per subject is the IJB
      case; several are allowed). A probe is mated when its subject is in ``gallery_subjects``.
    - Rank of a mated search by ``cmc_ties`` (:data:`CMC_TIE_RULES`): ``">="`` (default, bob.measure
      ``cmc``) 1 + the number of NON-MATE gallery subjects whose score is ``>=`` the mate's; ``">"``
      1 + the number strictly above it; ``"argsort"`` (insightface ``evaluation_1N``) the position of the
      mate's first template in ``np.argsort(row)[::-1]`` over the gallery templates, whose order among
      equal scores is numpy's. ``rank_rates[k]`` = share of mated searches with rank <= k.
    - TPIR at FPIR by ``tpir_rule`` (:func:`tpir_at_fpir`; default ``insightface``); the rank-1 condition
      of TPIR is always the strict one (mate above every non-mate), whatever ``cmc_ties``.

    Returns a dict: ``rule``, ``tpir_rule``, ``cmc_ties``, ``n_mated``, ``n_nonmated``, ``rank_rates``
    {k: rate}, ``tpir`` {target: TPIR}, ``fpir`` {target: FPIR reached}, ``thresholds`` {target: t},
    ``comparison`` (``">="``/``">"``), ``nonmated_accepted`` {target: count}, ``mated`` (bool per probe),
    ``mate_ranks`` (int per mated probe, probe order, by ``cmc_ties``), ``mate_scores`` and
    ``nonmated_scores`` (best score per non-mated probe). Pass ``fpirs=()`` for a closed-set gallery.

    >>> s = [[0.9, 0.1], [0.3, 0.4], [0.2, 0.5]]
    >>> r = open_set_identification(s, ["a", "a", "z"], ["a", "b"], ranks=(1, 2), fpirs=(0.0,), tpir_rule="ge")
    >>> r["rank_rates"], r["mate_ranks"].tolist(), r["tpir"][0.0]
    ({1: 0.5, 2: 1.0}, [1, 2], 0.5)
    """
    matrix, probes, gallery = _check_search_inputs(scores, probe_subjects, gallery_subjects)
    wanted_ranks = _check_ranks(ranks)
    wanted_fpirs = [check_rate(f, "FPIR target") for f in fpirs]
    check_tpir_rule(tpir_rule)
    if cmc_ties not in CMC_TIE_RULES:
        raise ValueError(f"unknown CMC tie rule {cmc_ties!r}; the rules are {', '.join(CMC_TIE_RULES)}")

    subjects, column_subject = np.unique(gallery, return_inverse=True)
    position = np.clip(np.searchsorted(subjects, probes), 0, subjects.size - 1)
    mated = subjects[position] == probes
    n_mated = int(np.count_nonzero(mated))
    n_nonmated = int(probes.size - n_mated)
    if n_mated == 0:
        raise ValueError(
            f"no probe subject is enrolled in the gallery ({probes.size} probes, {subjects.size} gallery "
            "subjects); identification rates are undefined"
        )
    if wanted_fpirs and n_nonmated == 0:
        raise ValueError(
            "every probe subject is enrolled in the gallery, so FPIR is undefined; "
            "pass fpirs=() for a closed-set evaluation"
        )

    mate_scores = np.empty(probes.size, dtype=matrix.dtype)
    strict_ranks = np.zeros(probes.size, dtype=np.int64)  # the >= rule: TPIR's rank-1 condition
    cmc_ranks = strict_ranks if cmc_ties == ">=" else np.zeros(probes.size, dtype=np.int64)
    first_template = np.argmax(gallery[None, :] == subjects[position][:, None], axis=1) if cmc_ties == "argsort" else None
    best_scores = matrix.max(axis=1)
    for rows in _row_chunks(matrix.shape):
        block = _max_by_subject(matrix[rows], column_subject, subjects.size)
        block_mated = mated[rows]
        at = np.flatnonzero(block_mated) + rows.start
        mated_block = block[block_mated]
        mates = mated_block[np.arange(mated_block.shape[0]), position[rows][block_mated]]
        mate_scores[at] = mates
        # the mate counts itself, so the count of scores >= the mate's is 1 + the non-mates at or above it
        strict_ranks[at] = np.count_nonzero(mated_block >= mates[:, None], axis=1)
        if cmc_ties == ">":
            cmc_ranks[at] = 1 + np.count_nonzero(mated_block > mates[:, None], axis=1)
        elif cmc_ties == "argsort":
            order = np.argsort(matrix[at], axis=1)[:, ::-1]
            cmc_ranks[at] = 1 + np.argmax(order == first_template[at][:, None], axis=1)
    mate_scores, strict_ranks, cmc_ranks = mate_scores[mated], strict_ranks[mated], cmc_ranks[mated]
    nonmated_scores = best_scores[~mated]

    result: dict = {
        "rule": OPEN_SET_RULE,
        "tpir_rule": tpir_rule,
        "cmc_ties": cmc_ties,
        "n_mated": n_mated,
        "n_nonmated": n_nonmated,
        "rank_rates": {k: float(np.count_nonzero(cmc_ranks <= k) / n_mated) for k in wanted_ranks},
        "tpir": {},
        "fpir": {},
        "thresholds": {},
        "comparison": {},
        "nonmated_accepted": {},
        "mated": mated,
        "mate_ranks": cmc_ranks,
        "rank1_strict": strict_ranks == 1,
        "mate_scores": mate_scores,
        "nonmated_scores": nonmated_scores,
    }
    for target in wanted_fpirs:
        point = tpir_at_fpir(mate_scores, strict_ranks, nonmated_scores, target, tpir_rule)
        result["thresholds"][target] = point.threshold
        result["comparison"][target] = point.comparison
        result["fpir"][target] = point.negative_rate
        result["tpir"][target] = point.positive_rate
        result["nonmated_accepted"][target] = point.negatives_accepted
    return result


def cmc_curve(mate_ranks: ArrayLike, max_rank: int) -> np.ndarray:
    """Cumulative match characteristic: entry k-1 = share of searches whose mate rank is <= k.

    >>> cmc_curve([1, 3, 1, 2], 3).tolist()
    [0.5, 0.75, 1.0]
    """
    ranks = np.asarray(mate_ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"mate_ranks must be a non-empty 1-D array; got shape {ranks.shape}")
    if ranks.dtype.kind not in "iu" or ranks.min() < 1:
        raise ValueError(f"mate_ranks must be integers >= 1; got dtype {ranks.dtype}, minimum {ranks.min()}")
    (limit,) = _check_ranks([max_rank])
    hits = np.bincount(np.minimum(ranks, limit + 1), minlength=limit + 2)[1 : limit + 1]
    return np.cumsum(hits) / ranks.size


def legacy_insightface_1n(
    scores: ArrayLike,
    probe_subjects: ArrayLike,
    gallery_subjects: ArrayLike,
    ranks: Sequence[int] = (1, 5, 10),
    fars: Sequence[float] = (1e-2, 1e-1),
) -> dict:
    """insightface's legacy 1:N numbers (``recognition/_evaluation_/ijb/ijb_1n.py``, ``evaluation``).

    The script merges both galleries (G1 + G2), so every probe is mated: each probe subject must appear
    exactly once in ``gallery_subjects`` (the script's ``gen_mask`` raises otherwise; so does this).

    - ``rank_rates[k]``: share of probes whose mate is among the k highest scores of its row. The script
      orders rows with ``np.argsort(-similarity)``, whose order among EQUAL scores is unspecified; here
      the mate is in the top k when fewer than k non-mate scores are strictly greater (ties favour the
      mate). Identical whenever the mate's score is not tied.
    - "FAR" is counted over the probe count, not over impostor comparisons: for each target,
      ``k = ceil(n_probes * far)`` and the threshold is the k-th largest of ALL non-mate scores of all
      probes (``heapq.nlargest``); the script drops scores ``<= -2.0``, its sentinel, and so does this.
      ``tpir[far]`` = share of probes whose mate score is ``> threshold`` (strict; no rank-1 condition).
      ``false_alarms[far]`` = number of non-mate scores ``> threshold`` divided by the probe count.

    Labelled legacy: these are not TPIR/FPIR in the NIST sense.
    """
    matrix, probes, gallery = _check_search_inputs(scores, probe_subjects, gallery_subjects)
    wanted_ranks = _check_ranks(ranks)
    wanted_fars = [check_rate(f, "FAR target") for f in fars]
    n_probes, n_gallery = matrix.shape

    order = np.argsort(gallery, kind="stable")
    sorted_gallery = gallery[order]
    left = np.searchsorted(sorted_gallery, probes, side="left")
    right = np.searchsorted(sorted_gallery, probes, side="right")
    if np.any(right - left != 1):
        bad = int(np.flatnonzero(right - left != 1)[0])
        raise ValueError(
            f"legacy rule: probe {bad} (subject {probes[bad].item()!r}) matches {int(right[bad] - left[bad])} "
            "gallery templates; every probe subject must appear exactly once in the merged gallery"
        )
    mate_column = order[left]
    mate_scores = matrix[np.arange(n_probes), mate_column]
    ks = {far: math.ceil(n_probes * far) for far in wanted_fars}
    keep = max(ks.values(), default=0)
    above_mate = np.empty(n_probes, dtype=np.int64)
    candidates = []  # each chunk's `keep` largest non-mate scores: they hold the overall `keep` largest
    pool_size = 0
    for rows in _row_chunks(matrix.shape):
        block = matrix[rows].copy()
        block[np.arange(block.shape[0]), mate_column[rows]] = -np.inf
        above_mate[rows] = np.count_nonzero(block > mate_scores[rows, None], axis=1)
        pool = block[block > -2.0]  # the script's sentinel: it sets the mate to -2.0 and keeps scores > -2.0
        pool_size += pool.size
        if keep == 0:
            pool = pool[:0]
        elif pool.size > keep:
            pool = np.partition(pool, pool.size - keep)[pool.size - keep :]
        candidates.append(pool)
    candidate_scores = np.concatenate(candidates)

    result: dict = {
        "rule": LEGACY_RULE,
        "n_probes": int(n_probes),
        "n_gallery": int(n_gallery),
        "rank_rates": {k: float(np.count_nonzero(above_mate < k) / n_probes) for k in wanted_ranks},
        "tpir": {},
        "thresholds": {},
        "false_alarms": {},
        "k": {},
    }
    for far, k in ks.items():
        if not 1 <= k <= pool_size:
            raise ValueError(
                f"legacy rule: FAR {far} over {n_probes} probes asks for the {k}-th largest non-mate score, "
                f"but there are {pool_size}"
            )
        threshold = np.partition(candidate_scores, candidate_scores.size - k)[candidate_scores.size - k]
        result["k"][far] = k
        result["thresholds"][far] = float(threshold)
        result["tpir"][far] = float(np.count_nonzero(mate_scores > threshold) / n_probes)
        result["false_alarms"][far] = float(np.count_nonzero(candidate_scores > threshold) / n_probes)
    return result


def _row_chunks(shape: tuple[int, int], cells: int = 1 << 22) -> list[slice]:
    """Row slices of about ``cells`` matrix entries each, to bound the temporary copies."""
    step = max(1, cells // max(1, shape[1]))
    return [slice(start, min(start + step, shape[0])) for start in range(0, shape[0], step)]


def _check_search_inputs(scores: ArrayLike, probe_subjects: ArrayLike, gallery_subjects: ArrayLike):
    matrix = as_scores(scores, "scores", ndim=2)
    if matrix.dtype.kind != "f":
        matrix = matrix.astype(np.float64)
    probes = np.asarray(probe_subjects)
    gallery = np.asarray(gallery_subjects)
    if probes.ndim != 1 or gallery.ndim != 1:
        raise ValueError(
            f"probe_subjects and gallery_subjects must be 1-D; got shapes {probes.shape} and {gallery.shape}"
        )
    if matrix.shape != (probes.size, gallery.size):
        raise ValueError(
            f"scores has shape {matrix.shape} but there are {probes.size} probes and {gallery.size} gallery "
            f"templates; expected ({probes.size}, {gallery.size})"
        )
    if probes.size == 0 or gallery.size == 0:
        raise ValueError(f"need at least one probe and one gallery template; got {probes.size} and {gallery.size}")
    numeric = {probes.dtype.kind in "iubf", gallery.dtype.kind in "iubf"}
    if len(numeric) > 1:
        raise ValueError(
            f"probe_subjects ({probes.dtype}) and gallery_subjects ({gallery.dtype}) must both be numbers or "
            "both be strings"
        )
    return matrix, probes, gallery


def _check_ranks(ranks: Sequence[int]) -> list[int]:
    checked = []
    for k in ranks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ranks must be integers >= 1; got {k!r}")
        checked.append(int(k))
    return checked


def _max_by_subject(matrix: np.ndarray, column_subject: np.ndarray, n_subjects: int) -> np.ndarray:
    """Columns grouped by subject (in ``np.unique`` order), each group reduced by its maximum."""
    order = np.argsort(column_subject, kind="stable")
    grouped = matrix[:, order]
    if n_subjects == column_subject.size:
        return grouped
    starts = np.searchsorted(column_subject[order], np.arange(n_subjects), side="left")
    return np.maximum.reduceat(grouped, starts, axis=1)
