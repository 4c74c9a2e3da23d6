"""Written-out 1:N rules, one probe at a time, shared by the 1:N tests (SurvFace, identify, score files,
TinyFace): the open-set searches with each CMC tie rule, TPIR at FPIR by each rule of PROTOCOLS 3 (the
loops of tests/test_ijb_eval.py's ``open_set_reference`` and tests/test_tpir_rules.py), the DIR-FPIR
curve, and TinyFace's image-level ranking with ``compute_AP.m``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def searches(scores, probe_subjects, gallery_subjects, cmc_ties: str = ">="):
    """``(mate_scores, mate_ranks, rank1_strict, nonmated)`` in probe order: a subject's score is the maximum
    over its gallery columns; a mated probe's rank is 1 + the other subjects scoring ``>=`` (or ``>``) its
    mate, ``rank1_strict`` whether every other subject scores below the mate; a non-mated probe gives its
    best subject score."""
    mates, ranks, strict, nonmated = [], [], [], []
    gallery = list(np.asarray(gallery_subjects).tolist())
    for i, subject in enumerate(np.asarray(probe_subjects).tolist()):
        by_subject: dict = {}
        for j, g in enumerate(gallery):
            by_subject[g] = max(by_subject.get(g, -np.inf), float(scores[i][j]))
        if subject in by_subject:
            mate = by_subject[subject]
            others = [v for s, v in by_subject.items() if s != subject]
            mates.append(mate)
            ranks.append(1 + sum((v >= mate) if cmc_ties == ">=" else (v > mate) for v in others))
            strict.append(all(v < mate for v in others))
        else:
            nonmated.append(max(by_subject.values()))
    return mates, ranks, strict, nonmated


def tpir(mates: Sequence[float], strict: Sequence[bool], nonmated: Sequence[float], rule: str, fpir: float):
    """TPIR at ``fpir`` by ``rule`` (PROTOCOLS 3), or None when ``1 / len(nonmated) > fpir`` (not measurable)."""
    n = len(nonmated)
    if n == 0 or 1 / n > fpir:
        return None
    if rule == "insightface":  # evaluation_1N: t = the k-th largest, k = max(int(N*f), 1); both strict
        t = sorted(nonmated, reverse=True)[max(int(n * fpir), 1) - 1]
        hits = sum(1 for r, m in zip(strict, mates) if r and m > t)
    elif rule == "ge":  # the lowest non-mated value whose share >= it is <= f; mates >= t
        candidates = [c for c in sorted(set(nonmated)) if sum(v >= c for v in nonmated) / n <= fpir]
        t = candidates[0] if candidates else np.nextafter(max(nonmated), np.inf)
        hits = sum(1 for r, m in zip(strict, mates) if r and m >= t)
    elif rule == "best":  # the most rank-1 mates over every threshold (accept >= v) whose FPIR <= f
        hits = 0
        for v in sorted(set(nonmated) | set(mates)) + [np.inf]:
            if sum(x >= v for x in nonmated) / n <= fpir:
                hits = max(hits, sum(1 for r, m in zip(strict, mates) if r and m >= v))
    else:
        raise ValueError(rule)
    return hits / len(mates)


def dir_fpir(mates: Sequence[float], strict: Sequence[bool], nonmated: Sequence[float]):
    """``(fpir, dir)`` lists: for each distinct non-mated score v, descending, then v = -inf, accept ``> v``."""
    values = sorted(set(nonmated), reverse=True) + [-np.inf]
    fpir = [sum(x > v for x in nonmated) / len(nonmated) for v in values]
    dir_ = [sum(1 for r, m in zip(strict, mates) if r and m > v) / len(mates) for v in values]
    return fpir, dir_


def compute_ap(good: set[int], index: list[int]) -> tuple[float, int]:
    """TinyFace's compute_AP.m written out: the ranked gallery ``index``, the mates ``good``; also the
    1-based position of the first mate."""
    old_recall, old_precision, ap, hits, first = 0.0, 1.0, 0.0, 0, 0
    for j, g in enumerate(index):
        if g in good:
            hits += 1
            first = first or j + 1
        recall, precision = hits / len(good), hits / (j + 1)
        ap += (recall - old_recall) * ((old_precision + precision) / 2)
        old_recall, old_precision = recall, precision
        if hits == len(good):
            break
    return ap, first


def ranked_gallery(p, label, match, match_labels, distractor, ties: str = ">="):
    """``(mates, order)``: the gallery (match + distractors) sorted highest score first; among equal scores
    the non-mates first (``ties=">="``, against the mate) or the mates first (``">"``)."""
    gallery = np.concatenate([match, distractor]).astype(np.float64)
    labels = np.concatenate([match_labels, np.full(len(distractor), -1)])
    scores = gallery @ np.asarray(p, dtype=np.float64)
    if ties == ">=":
        order = sorted(range(len(scores)), key=lambda g: (-scores[g], labels[g] == label))
    else:
        order = sorted(range(len(scores)), key=lambda g: (-scores[g], labels[g] != label))
    return {g for g in range(len(labels)) if labels[g] == label}, order


def brute_force(probe, probe_labels, match, match_labels, distractor, ranks=(1, 5, 20), ties: str = ">="):
    """TinyFace's protocol per probe: ``(rank rates, mAP, first-mate positions)``."""
    aps, firsts = [], []
    for p, label in zip(probe, probe_labels):
        ap, first = compute_ap(*ranked_gallery(p, label, match, match_labels, distractor, ties))
        aps.append(ap)
        firsts.append(first)
    return {k: sum(f <= k for f in firsts) / len(firsts) for k in ranks}, sum(aps) / len(aps), firsts
