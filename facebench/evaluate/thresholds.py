"""Operating thresholds: the decision threshold that gives a target FAR, estimated on one pair set, checked on
another. A run stores them per verification benchmark under ``thresholds`` in results.json (beside ``metrics``;
IJB's ``metrics.operating_points`` are in-sample ROC read-offs, a different thing) and writes ``thresholds.md``
and ``thresholds.csv``.

Rule (for each target FAR):

- Estimate: ``t`` = the lowest cosine value among the calibration set's impostor scores whose share of
  impostors accepted (``score >= t``) is still ``<= target`` (:func:`facebench.metrics.roc.threshold_at_far`
  with ``">="``, bob.measure's ``far_threshold``, the one kernel of :mod:`facebench.metrics.operating`;
  above the largest impostor score when even that accepts too many). Genuine scores strictly between that
  impostor value and the next lower one are rejected, so its TAR can be below the ``le`` ROC read-off's. The same threshold in squared-L2 form
  between unit vectors is ``2 - 2t``: accept when the squared distance is ``<= 2 - 2t`` (the two forms accept
  the same pairs, up to floating-point rounding at the boundary).
- Check: on the evaluated set, FAR = impostors with ``score >= t`` / impostors and TAR = genuine pairs with
  ``score >= t`` / genuine pairs, each with its exact (Clopper-Pearson) 95% interval. ``target_in_far_ci``
  says whether the target lies inside the measured FAR's interval: the threshold transfers.
- A target below ``1 / n`` for ``n`` calibration impostors cannot be estimated (no count of accepted
  impostors is small enough); it is kept with ``resolvable = false``.

Without ``--calibrate-on`` the estimate and the check use the same set (``calibrated_on`` is null: an
in-sample operating point, optimistic by construction). With ``--calibrate-on NAME`` the thresholds come from
benchmark ``NAME``'s impostor scores and are applied to every other verification benchmark of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facebench.atomic import write_text
from facebench.keys import rate_key
from facebench.metrics import operating
from facebench.metrics import roc as mroc
from facebench.metrics.stats import clopper_pearson
from facebench.results import RunResults

FAR_TARGETS: tuple[float, ...] = mroc.DEFAULT_FAR_TARGETS
ALPHA = 0.05
RULE = (
    "threshold t = lowest cosine with share(calibration impostors >= t) <= target FAR; accept cosine >= t, "
    "i.e. squared L2 between unit vectors <= 2 - 2t; FAR and TAR measured on this set with 95% Clopper-Pearson "
    "intervals"
)


def split_scores(scores: np.ndarray, labels: np.ndarray, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """``(genuine, impostor)`` float64 score arrays; both classes must be present."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{origin}: {scores.size} scores for {labels.size} labels")
    genuine, impostor = scores[labels], scores[~labels]
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError(f"{origin}: needs genuine and impostor pairs (got {genuine.size} and {impostor.size})")
    return genuine, impostor


def accepted_share(scores: np.ndarray, threshold: float, alpha: float = ALPHA) -> dict[str, Any]:
    """Share of ``scores >= threshold`` with its count and Clopper-Pearson interval at level 1 - alpha."""
    k = int(np.count_nonzero(scores >= threshold))
    lo, hi = clopper_pearson(k, int(scores.size), alpha)
    return {"rate": k / scores.size, "accepted": k, "n": int(scores.size), "ci": [lo, hi]}


def operating_points(
    scores: np.ndarray,
    labels: np.ndarray,
    calibration: tuple[np.ndarray, np.ndarray] | None = None,
    calibrated_on: str | None = None,
    targets: Sequence[float] = FAR_TARGETS,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """The JSON-ready operating points of one verification set (module rule).

    ``scores``/``labels`` are the set's cosine scores and same/different labels; ``calibration`` the
    (scores, labels) the thresholds are estimated on (default: the set itself, in-sample).
    """
    genuine, impostor = split_scores(scores, labels, "operating points")
    cal_genuine, cal_impostor = (
        (genuine, impostor) if calibration is None else split_scores(*calibration, f"calibration set {calibrated_on}")
    )
    sorted_cal = np.sort(cal_impostor)
    points: dict[str, Any] = {}
    for target in targets:
        t = mroc.threshold_at_far(sorted_cal, target)
        cal_far = accepted_share(cal_impostor, t, alpha)
        far = accepted_share(impostor, t, alpha)
        tar = accepted_share(genuine, t, alpha)
        points[rate_key(target)] = {
            "target": float(target),
            "cosine": float(t),
            "squared_l2": float(mroc.cos_to_sqeuclidean(t)),
            "resolvable": operating.resolvable(int(cal_impostor.size), target),
            "calibration_far": cal_far["rate"],
            "calibration_tar": accepted_share(cal_genuine, t, alpha)["rate"],
            "far": far["rate"],
            "far_ci": far["ci"],
            "accepted_impostors": far["accepted"],
            "tar": tar["rate"],
            "tar_ci": tar["ci"],
            "target_in_far_ci": bool(far["ci"][0] <= target <= far["ci"][1]),
        }
    return {
        "calibrated_on": calibrated_on,
        "in_sample": calibration is None,
        "rule": RULE,
        "confidence": 1.0 - alpha,
        "n_calibration_impostors": int(cal_impostor.size),
        "n_impostors": int(impostor.size),
        "n_genuine": int(genuine.size),
        "points": points,
    }


def has_verification_scores(arrays: dict[str, np.ndarray]) -> bool:
    """Whether a benchmark's saved arrays carry per-pair cosine ``scores`` and boolean ``labels``."""
    scores, labels = arrays.get("scores"), arrays.get("labels")
    return (
        scores is not None
        and labels is not None
        and np.shape(scores) == np.shape(labels)
        and np.ndim(scores) == 1
        and np.asarray(labels).dtype == bool
    )


def table_rows(document: RunResults) -> list[list[str]]:
    """One row per (benchmark, resolvable target): the operating points of a results document as text."""
    rows = []
    for name, entry in document.benchmarks.items():
        ops = entry.thresholds
        if not ops:
            continue
        source = ops.get("calibrated_on") or "itself (in-sample)"
        for key, p in ops["points"].items():
            if not p["resolvable"]:
                continue
            rows.append(
                [
                    name,
                    source,
                    key,
                    f"{p['cosine']:.6f}",
                    f"{p['squared_l2']:.6f}",
                    f"{p['far']:.2e} [{p['far_ci'][0]:.2e}, {p['far_ci'][1]:.2e}]",
                    f"{100 * p['tar']:.2f} [{100 * p['tar_ci'][0]:.2f}, {100 * p['tar_ci'][1]:.2f}]",
                ]
            )
    return rows


TABLE_HEADER = [
    "benchmark",
    "calibrated on",
    "target FAR",
    "accept cosine >=",
    "accept squared L2 <=",
    "FAR measured [95% CI]",
    "TAR % [95% CI]",
]


def to_markdown(rows: list[list[str]]) -> str:
    """The operating-points table as GitHub Markdown, with the rule as a footnote."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * 4) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    lines.append(f"Rule: {RULE}. Targets below 1/N calibration impostors are left out (not resolvable).")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[list[str]]) -> str:
    """The operating-points table as CSV (same columns as the Markdown table)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


def write_tables(out_dir: str | Path, document: dict[str, Any]) -> list[Path]:
    """Write ``thresholds.md`` and ``thresholds.csv`` when any benchmark has operating thresholds."""
    rows = table_rows(document)
    if not rows:
        return []
    out_dir = Path(out_dir)
    written = []
    for name, text in (("thresholds.md", to_markdown(rows)), ("thresholds.csv", to_csv(rows))):
        write_text(out_dir / name, text)
        written.append(out_dir / name)
    return written


def for_benchmark(
    name: str,
    arrays: dict[str, np.ndarray],
    calibrate_on: str | None,
    known: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[dict[str, Any] | None, str | None]:
    """Operating points of one evaluated benchmark during a run: ``(points or None, warning or None)``.

    ``known`` holds the (scores, labels) of the verification benchmarks evaluated so far; this benchmark's
    are added. The calibration benchmark itself, and every benchmark of a run without ``--calibrate-on``,
    gets in-sample points; when the calibration benchmark gave no scores (it failed), the points are
    in-sample and the warning says so.
    """
    if not has_verification_scores(arrays):
        return None, None
    scores, labels = arrays["scores"], arrays["labels"]
    if labels.all() or not labels.any():
        return None, None
    known[name] = (scores, labels)
    if not calibrate_on or calibrate_on == name:
        return operating_points(scores, labels), None
    if calibrate_on not in known:
        warning = (
            f"{name}: --calibrate-on {calibrate_on} gave no verification scores (it failed or is not a pair set): "
            "these operating points are in-sample"
        )
        return operating_points(scores, labels), warning
    return operating_points(scores, labels, known[calibrate_on], calibrate_on), None
