"""How sure is each number, and which differences are real: intervals and paired tests from a run's arrays.

Exact definitions (docs/reports.md repeats them):

Confidence intervals (level 1 - alpha, percentile bootstrap, ``n_boot`` resamples from
``numpy.random.default_rng(seed)``):

- **10-fold accuracy** (pair sets): the held-out decisions ``correct`` of the run are kept fixed (the
  thresholds chosen on the other folds are not re-chosen) and the pairs are resampled with replacement
  (:func:`facebench.metrics.stats.bootstrap_ci`, one cluster per pair: the packs carry no identities).
  The statistic is ``sum(w c) / sum(w)`` with ``w = 1 / (k n_fold)`` for a pair of a fold of ``n_fold``
  pairs, which on the full set is the reported mean of the k fold accuracies.
- **TAR@FAR** (pair sets, IJB 1:1 when the run saved per-pair arrays): TAR re-read on the resample's ROC by
  the run's rule (nearest | le | interp) with the fast exact kernel of :mod:`facebench.report.bootstrap`.
  Pair sets resample pairs; a set whose arrays carry ``template1``/``template2`` resamples templates (a
  pair counted ``m(t1) m(t2)`` times). Without per-pair arrays an IJB run's own Clopper-Pearson 95%
  interval of the accepted genuine count is shown, labelled as such (it treats pairs as independent).
- **IJB 1:N rank-1 and TPIR@FPIR** (standard rule): the probe templates are resampled with replacement,
  one draw shared by both galleries (a probe is a mated search of one gallery and a non-mated search of the
  other); per gallery rank-1 of the drawn mated searches, or the threshold re-read from the drawn non-mated
  searches and TPIR of the drawn mated ones; the statistic is the mean over the galleries, as reported.
- **MegaFace rank-1** (per distractor size): the FaceScrub identities are resampled with replacement, each
  with all its trials' rank-1 hits (:func:`bootstrap_ci` with the trial identities as clusters);
  **MegaFace TAR@1e-6** likewise over the genuine pairs' acceptances at the run's threshold (held fixed).

Paired tests between two runs of the SAME items (same input files by sha256, same labels):

- **accuracy**: exact McNemar test on the two runs' held-out decisions (:func:`mcnemar`).
- **TAR@FAR**: paired bootstrap of TAR_a - TAR_b (same resamples for both runs, same design as above);
  two-sided p-value ``min(1, 2 min((1 + #(d <= 0)), (1 + #(d >= 0))) / (B + 1))``.
- **IJB 1:N rank-1**: exact McNemar on the rank-1 hits of the mated searches of both galleries pooled.
- **IJB 1:N TPIR@FPIR**: paired bootstrap of the probe templates (the same draws for both runs).
- **MegaFace rank-1, TAR@1e-6**: paired bootstrap of identities (:func:`paired_bootstrap`), same noise and tie
  rules.

A difference is significant when p < alpha. No correction for multiple comparisons is applied; alpha is
per test and stated with every table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from facebench import kinds
from facebench.keys import path_rate, split_path
from facebench.kinds.base import resolve
from facebench.metrics.kfold import kfold_indices
from facebench.metrics.identification import tpir_threshold
from facebench.errors import FacebenchError
from facebench.metrics.stats import bootstrap_ci, mcnemar, paired_bootstrap
from facebench.registry import did_you_mean
from facebench.report import bootstrap as fast
from facebench.report.runs import Run
from facebench.results import BenchmarkEntry

TEMPLATE_ARRAYS = ("template1", "template2")


@dataclass(frozen=True)
class StatsSettings:
    """Bootstrap resamples, seed and the significance level (intervals are at level 1 - alpha)."""

    n_boot: int = 1000
    seed: int = 0
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.n_boot < 1:
            raise ValueError(f"n_boot must be at least 1; got {self.n_boot}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie strictly between 0 and 1; got {self.alpha}")


@dataclass(frozen=True)
class Interval:
    """A confidence interval of one table value: ``[low, high]`` at ``level`` around ``estimate``."""

    run: str
    benchmark: str
    metric: str
    estimate: float
    low: float
    high: float
    level: float
    method: str
    n_boot: int = 0
    seed: int | None = None


@dataclass(frozen=True)
class PairedTest:
    """A paired test of two runs on one value: the difference a - b, its p-value and (bootstrap) interval."""

    benchmark: str
    metric: str
    run_a: str
    run_b: str
    value_a: float
    value_b: float
    test: str
    p_value: float
    alpha: float
    statistic: str = ""
    low: float = float("nan")
    high: float = float("nan")

    @property
    def difference(self) -> float:
        return self.value_a - self.value_b

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


@dataclass(frozen=True)
class Unavailable:
    """Why a value has no interval or test."""

    reason: str


# ------------------------------------------------------------------------------------------- helpers


def _bootstrap_interval(
    run: Run, benchmark: str, metric: str, reported: float, low: float, high: float, method: str,
    settings: StatsSettings,
) -> Interval:
    """A bootstrap interval at level 1 - alpha with the resampling settings that drew it."""
    return Interval(
        run.label, benchmark, metric, reported, low, high, 1 - settings.alpha, method, settings.n_boot, settings.seed
    )


class Designs:
    """Resampling designs, built once per distinct content of labels and template ids (runs of one benchmark
    share them: at IJB-C scale a template design takes seconds to build)."""

    def __init__(self) -> None:
        self._built: dict[str, fast.Design] = {}

    def get(self, arrays: dict[str, np.ndarray], labels: np.ndarray) -> fast.Design:
        """The design of a benchmark's arrays: templates when ``template1``/``template2`` are saved, else pairs."""
        templates = all(name in arrays for name in TEMPLATE_ARRAYS)
        digest = hashlib.blake2b(np.ascontiguousarray(labels).tobytes(), digest_size=16)
        if templates:
            for name in TEMPLATE_ARRAYS:
                digest.update(np.ascontiguousarray(arrays[name]).tobytes())
        key = f"{templates}:{labels.size}:{digest.hexdigest()}"
        if key not in self._built:
            if templates:
                self._built[key] = fast.template_design(labels, arrays[TEMPLATE_ARRAYS[0]], arrays[TEMPLATE_ARRAYS[1]])
            else:
                self._built[key] = fast.cluster_design(labels)
        return self._built[key]


def _pair_arrays(run: Run, benchmark: str) -> tuple[np.ndarray, np.ndarray] | Unavailable:
    arrays = run.arrays(benchmark)
    if "scores" not in arrays or "labels" not in arrays:
        return Unavailable(
            f"{run.label}: {benchmark} has no per-pair scores saved (IJB 1:1: facebench run --save-pair-scores)"
        )
    scores, labels = arrays["scores"], np.asarray(arrays["labels"], dtype=bool)
    if scores.shape != labels.shape:
        return Unavailable(f"{run.label}: {benchmark}: {scores.size} scores for {labels.size} labels")
    return scores, labels


def _same_items(a: Run, b: Run, benchmark: str) -> str:
    """Empty when the two runs evaluated the same items of ``benchmark``; else why not."""
    ea, eb = a.entry(benchmark), b.entry(benchmark)
    if not ea or not eb:
        return "a run lacks the benchmark"
    if ea.inputs != eb.inputs:
        return "the runs read different input files (sha256 differ)"
    return ""


# ------------------------------------------------------------------------------------------- intervals


def intervals_for(
    run: Run, benchmark: str, metrics: Sequence[str], settings: StatsSettings, designs: Designs | None = None
) -> dict[str, Interval | Unavailable]:
    """The interval of each of ``metrics`` of one run's benchmark (or why there is none), by the interval
    method its kind declares for the metric (`facebench.kinds.base.Metric.interval`, :data:`METHODS`)."""
    designs = designs or Designs()
    entry = run.entry(benchmark)
    if not entry:
        return {m: Unavailable(f"{run.label} has no {benchmark}") for m in metrics}
    out: dict[str, Interval | Unavailable] = {}
    by_method: dict[str, list[str]] = {}
    kind = kinds.for_entry(entry.kind)
    for m in metrics:
        method = kind.metric(split_path(m)[0]).interval
        reason = entry.metrics[m].unmeasurable if m in entry.metrics else ""
        if reason:
            out[m] = Unavailable(f"{run.label}: {benchmark} {m} is not measurable ({reason})")
        elif not method:
            out[m] = Unavailable(f"no interval is defined for {benchmark} {m}")
        else:
            by_method.setdefault(method, []).append(m)
    for method, wanted in by_method.items():
        out.update(_method(method, "interval")(run, benchmark, entry, wanted, settings, designs))
    return {m: out[m] for m in metrics}


def _each_interval(
    interval: Callable[[Run, str, BenchmarkEntry, str, StatsSettings], Interval | Unavailable],
) -> Callable[..., dict[str, Interval | Unavailable]]:
    """An interval method from ``interval(run, benchmark, entry, metric, settings)``, one metric at a time."""

    def method(
        run: Run, benchmark: str, entry: BenchmarkEntry, metrics: list[str], settings: StatsSettings, designs: Designs
    ) -> dict[str, Interval | Unavailable]:
        return {m: interval(run, benchmark, entry, m, settings) for m in metrics}

    return method


def _tar_bootstrap_intervals(
    run: Run, benchmark: str, entry: BenchmarkEntry, metrics: list[str], settings: StatsSettings, designs: Designs
) -> dict[str, Interval | Unavailable]:
    fars = {m: path_rate(m, "tar_at_far") for m in metrics}
    out: dict[str, Interval | Unavailable] = {
        m: Unavailable(f"no interval is defined for {benchmark} {m}") for m in metrics if fars[m] is None
    }
    measured = [m for m in metrics if fars[m] is not None]
    if measured:
        out.update(_tar_intervals(run, benchmark, entry, measured, [fars[m] for m in measured], settings, designs))
    return out


def _accuracy_interval(
    run: Run, benchmark: str, entry: BenchmarkEntry, settings: StatsSettings
) -> Interval | Unavailable:
    arrays = run.arrays(benchmark)
    if "correct" not in arrays:
        return Unavailable(f"{run.label}: {benchmark} has no held-out decisions saved")
    correct = np.asarray(arrays["correct"], dtype=np.float64)
    reported = entry.value("accuracy")
    n_folds = int(
        entry.rules.get("n_folds") or len(entry.details.get("fold_accuracies", [])) or 10
    )
    weights = np.empty(correct.size)
    for fold in kfold_indices(correct.size, n_folds):
        weights[fold] = 1.0 / (n_folds * fold.size)
    weighted = weights * correct

    def statistic(idx: np.ndarray) -> float:
        return float(weighted[idx].sum() / weights[idx].sum())

    if reported is None or abs(statistic(np.arange(correct.size)) - reported) > 1e-12:
        return Unavailable(f"{run.label}: {benchmark}: the saved decisions do not reproduce the reported accuracy")
    r = bootstrap_ci(
        statistic, np.arange(correct.size), n_boot=settings.n_boot, seed=settings.seed, alpha=settings.alpha
    )
    method = f"pair bootstrap of the {n_folds}-fold held-out decisions ({correct.size:,} pairs, thresholds fixed)"
    return _bootstrap_interval(run, benchmark, "accuracy", reported, r.low, r.high, method, settings)


def _tar_intervals(
    run: Run,
    benchmark: str,
    entry: BenchmarkEntry,
    metrics: list[str],
    fars: list[float],
    settings: StatsSettings,
    designs: Designs,
) -> dict[str, Interval | Unavailable]:
    pairs = _pair_arrays(run, benchmark)
    if isinstance(pairs, Unavailable):
        return {m: _stored_tar_interval(run, benchmark, entry, m, far, pairs) for m, far in zip(metrics, fars)}
    scores, labels = pairs
    rule = str(entry.rules.get("tar_at_far", "nearest"))
    design = designs.get(run.arrays(benchmark), labels)
    results = fast.tar_at_far_bootstrap(
        scores, design, fars, rule, n_boot=settings.n_boot, seed=settings.seed, alpha=settings.alpha
    )
    out: dict[str, Interval | Unavailable] = {}
    for m, far in zip(metrics, fars):
        r = results[far]
        reported = entry.value(m)
        if reported is None or r.estimate != reported:
            out[m] = Unavailable(f"{run.label}: {benchmark}: the saved scores do not reproduce the reported {m}")
            continue
        out[m] = _bootstrap_interval(
            run, benchmark, m, reported, r.low, r.high,
            f"{design.description}; TAR re-read by rule {rule}",
            settings,
        )
    return out


def _stored_tar_interval(
    run: Run, benchmark: str, entry: BenchmarkEntry, metric: str, far: float, missing: Unavailable
) -> Interval | Unavailable:
    stored = entry.metrics.get(metric)
    if stored is None or stored.value is None or stored.interval is None:
        return missing
    return Interval(
        run.label,
        benchmark,
        metric,
        stored.value,
        stored.interval[0],
        stored.interval[1],
        0.95,
        "Clopper-Pearson 95% of the accepted genuine pairs, from the run (pairs treated as independent; "
        "no per-pair scores saved for a template bootstrap: run with --save-pair-scores)",
    )


def _rank1_interval(run: Run, benchmark: str, entry: BenchmarkEntry, settings: StatsSettings) -> Interval | Unavailable:
    searches = _searches(run, benchmark, entry)
    if isinstance(searches, Unavailable):
        return searches
    reported = entry.value("rank1")
    if reported is None or abs(float(np.mean([s.hits.mean() for s in searches.values()])) - reported) > 1e-12:
        return Unavailable(f"{run.label}: {benchmark}: the saved mate ranks do not reproduce the reported rank-1")
    try:
        samples = _search_samples([searches], settings, lambda s, mated, _: float(s.hits[mated].mean()))
    except ValueError as exc:
        return Unavailable(f"{run.label}: {benchmark}: {exc}")
    low, high = fast.percentile_interval(samples[:, 0], settings.alpha)
    return _bootstrap_interval(
        run, benchmark, "rank1", reported, low, high,
        f"{_probe_design(searches)}; rank-1 of each gallery's drawn mated searches, mean over galleries",
        settings,
    )


def _rank1_hits(run: Run, benchmark: str, entry: BenchmarkEntry) -> dict[str, np.ndarray] | Unavailable:
    if entry.rules.get("ijb_1n") != "standard":
        return Unavailable(f"{run.label}: {benchmark}: intervals are defined for the standard 1:N rule only")
    arrays = run.arrays(benchmark)
    galleries = entry.details.get("per_gallery", {})
    hits = {}
    for name in galleries:
        ranks = arrays.get(f"{name}_mate_ranks")
        if ranks is None:
            return Unavailable(f"{run.label}: {benchmark} has no mate ranks saved for {name}")
        hits[name] = np.asarray(ranks) == 1
    if not hits:
        return Unavailable(f"{run.label}: {benchmark} has no galleries")
    return hits


@dataclass(frozen=True)
class _Searches:
    """One gallery's open-set searches in probe order: rank-1 hit and mate score of each mated search, best
    score of each non-mated search, and for each probe template the index of its search among the mated
    (``mated_pos``) or the non-mated ones (``nonmated_pos``), -1 where it is of the other kind."""

    hits: np.ndarray
    mate_scores: np.ndarray
    nonmated: np.ndarray
    mated_pos: np.ndarray
    nonmated_pos: np.ndarray
    tpir_rule: str = "ge"


def _searches(run: Run, benchmark: str, entry: BenchmarkEntry) -> dict[str, _Searches] | Unavailable:
    hits = _rank1_hits(run, benchmark, entry)
    if isinstance(hits, Unavailable):
        return hits
    arrays = run.arrays(benchmark)
    out = {}
    for name, h in hits.items():
        mates, non, mated = (arrays.get(f"{name}_{k}") for k in ("mate_scores", "nonmated_scores", "mated"))
        if mates is None or non is None or np.asarray(mates).shape != h.shape or np.asarray(non).size == 0:
            return Unavailable(f"{run.label}: {benchmark} has no mate / non-mated scores saved for {name}")
        if mated is None or np.count_nonzero(mated) != h.size or np.count_nonzero(~np.asarray(mated)) != non.size:
            return Unavailable(
                f"{run.label}: {benchmark} does not say which probe made each search of {name} "
                "(rerun it with this version of facebench)"
            )
        mated = np.asarray(mated, dtype=bool)
        mated_pos = np.full(mated.size, -1, dtype=np.int64)
        mated_pos[mated] = np.arange(h.size)
        nonmated_pos = np.full(mated.size, -1, dtype=np.int64)
        nonmated_pos[~mated] = np.arange(non.size)
        tpir_hits = arrays.get(f"{name}_tpir_hits")  # TPIR's rank-1 condition when --cmc-ties was not >=
        h = np.asarray(tpir_hits, dtype=bool) if tpir_hits is not None and np.shape(tpir_hits) == h.shape else h
        # results before the TPIR rules existed used the ge rule
        rule = str(entry.rules.get("tpir_rule", "ge")).split(":", 1)[0]
        out[name] = _Searches(h, np.asarray(mates), np.asarray(non), mated_pos, nonmated_pos, rule)
    if len({s.mated_pos.size for s in out.values()}) != 1:
        return Unavailable(f"{run.label}: {benchmark}: the galleries were searched by different probe lists")
    return out


def _probe_design(searches: dict[str, _Searches]) -> str:
    n_probes = next(iter(searches.values())).mated_pos.size
    return (
        f"probe-template bootstrap: {n_probes:,} probe templates drawn with replacement, the same draw for every "
        "gallery"
    )


def _tpir(s: _Searches, fpir: float, mated: np.ndarray | None = None, nonmated: np.ndarray | None = None) -> float:
    """TPIR at ``fpir`` by the evaluator's rule (``s.tpir_rule``,
    :func:`facebench.metrics.identification.tpir_threshold`): the threshold re-read from the non-mated
    searches, TPIR = share of mated searches with the mate at rank 1 passing it.
    ``mated`` / ``nonmated``: indices of a resample (all searches when None)."""
    non = np.sort(s.nonmated if nonmated is None else s.nonmated[nonmated])
    t, comparison = tpir_threshold(non, fpir, s.tpir_rule)
    hits, mates = (s.hits, s.mate_scores) if mated is None else (s.hits[mated], s.mate_scores[mated])
    passed = mates >= t if comparison == ">=" else mates > t
    return float(np.count_nonzero(hits & passed) / hits.size)


def _search_samples(
    runs: Sequence[dict[str, _Searches]],
    settings: StatsSettings,
    statistic: Callable[[_Searches, np.ndarray, np.ndarray], float],
) -> np.ndarray:
    """``statistic(searches, mated, nonmated)`` averaged over the galleries, for each run and resample: the
    probe templates are drawn with replacement (one draw per resample, shared by every gallery and every
    run), each drawn probe bringing its search of each gallery, mated or not."""
    rng = np.random.default_rng(settings.seed)
    first = runs[0]
    n_probes = next(iter(first.values())).mated_pos.size
    samples = np.empty((settings.n_boot, len(runs)))
    for b in range(settings.n_boot):
        drawn = rng.integers(0, n_probes, n_probes)
        per_gallery = []
        for name, s in first.items():
            mated, nonmated = s.mated_pos[drawn], s.nonmated_pos[drawn]
            mated, nonmated = mated[mated >= 0], nonmated[nonmated >= 0]
            if mated.size == 0 or nonmated.size == 0:
                raise ValueError(f"a resample drew no mated or no non-mated search of {name}: too few probes")
            per_gallery.append([statistic(run[name], mated, nonmated) for run in runs])
        samples[b] = np.mean(per_gallery, axis=0)
    return samples


def _tpir_interval(
    run: Run, benchmark: str, entry: BenchmarkEntry, metric: str, settings: StatsSettings
) -> Interval | Unavailable:
    searches = _searches(run, benchmark, entry)
    if isinstance(searches, Unavailable):
        return searches
    fpir = float(split_path(metric)[1])
    reported = entry.value(metric)
    if reported is None or abs(float(np.mean([_tpir(s, fpir) for s in searches.values()])) - reported) > 1e-12:
        return Unavailable(f"{run.label}: {benchmark}: the saved searches do not reproduce the reported {metric}")
    try:
        samples = _search_samples([searches], settings, lambda s, mated, nonmated: _tpir(s, fpir, mated, nonmated))
    except ValueError as exc:
        return Unavailable(f"{run.label}: {benchmark}: {exc}")
    low, high = fast.percentile_interval(samples[:, 0], settings.alpha)
    return _bootstrap_interval(
        run, benchmark, metric, reported, low, high,
        f"{_probe_design(searches)}; threshold re-read from each gallery's drawn non-mated searches, TPIR of "
        "its drawn mated searches, mean over galleries",
        settings,
    )


def _megaface_outcomes(run: Run, benchmark: str, metric: str) -> tuple[np.ndarray, np.ndarray, str] | Unavailable:
    """The per-item outcomes behind a MegaFace value and each item's FaceScrub identity, and what they are.

    ``rank1.<size>``: the rank-1 hit of every identification trial at that distractor size.
    ``tar_at_far.1e-06``: whether each genuine pair scores above the run's threshold at the largest size.
    """
    parts = split_path(metric)
    arrays = run.arrays(benchmark)
    again = "rerun it with this version of facebench"
    if parts[0] == "rank1":
        if len(parts) != 2 or not all(k in arrays for k in ("sizes", "rank1_hits", "trial_identity")):
            return Unavailable(f"{run.label}: {benchmark} has no per-trial rank-1 hits saved ({again})")
        rows = np.flatnonzero(np.asarray(arrays["sizes"]) == int(parts[1]))
        if rows.size != 1:
            return Unavailable(f"{run.label}: {benchmark} has no trials saved for {parts[1]} distractors")
        return np.asarray(arrays["rank1_hits"][rows[0]], dtype=bool), np.asarray(arrays["trial_identity"]), "trials"
    if not all(k in arrays for k in ("genuine_accepted", "genuine_identity")):
        return Unavailable(f"{run.label}: {benchmark} has no per-pair verification outcomes saved ({again})")
    return np.asarray(arrays["genuine_accepted"], dtype=bool), np.asarray(arrays["genuine_identity"]), "genuine pairs"


def _megaface_interval(
    run: Run, benchmark: str, entry: BenchmarkEntry, metric: str, settings: StatsSettings
) -> Interval | Unavailable:
    found = _megaface_outcomes(run, benchmark, metric)
    if isinstance(found, Unavailable):
        return found
    outcomes, identity, items = found
    reported = entry.value(metric)
    if reported is None or abs(float(outcomes.mean()) - reported) > 1e-12:
        return Unavailable(f"{run.label}: {benchmark}: the saved outcomes do not reproduce the reported {metric}")
    r = bootstrap_ci(
        lambda idx: outcomes[idx].mean(), identity, n_boot=settings.n_boot, seed=settings.seed, alpha=settings.alpha
    )
    method = (
        f"identity bootstrap: {r.n_clusters} FaceScrub identities ({outcomes.size:,} {items}) drawn with "
        f"replacement, each with all its {items}"
    )
    if items == "genuine pairs":
        method += "; threshold fixed at the run's (its error from the billions of impostor pairs not included)"
    return _bootstrap_interval(run, benchmark, metric, reported, r.low, r.high, method, settings)


# ------------------------------------------------------------------------------------------- tests


def paired_tests(
    a: Run, b: Run, benchmark: str, metrics: Sequence[str], settings: StatsSettings, designs: Designs | None = None
) -> dict[str, PairedTest | Unavailable]:
    """The paired test of each of ``metrics`` between runs ``a`` and ``b`` (or why there is none), by the test
    its kind declares for the metric (`facebench.kinds.base.Metric.paired_test`, :data:`METHODS`)."""
    designs = designs or Designs()
    why = _same_items(a, b, benchmark)
    if why:
        return {m: Unavailable(why) for m in metrics}
    entry = a.entry(benchmark)
    assert entry is not None
    kind = kinds.for_entry(entry.kind)
    out: dict[str, PairedTest | Unavailable] = {}
    by_method: dict[str, list[str]] = {}
    for m in metrics:
        method = kind.metric(split_path(m)[0]).paired_test
        if not method:
            out[m] = _lacking(a, b, benchmark, m) or Unavailable(f"no paired test is defined for {benchmark} {m}")
        else:
            by_method.setdefault(method, []).append(m)
    for method, wanted in by_method.items():
        out.update(_method(method, "paired test")(a, b, benchmark, wanted, settings, designs))
    return {m: out[m] for m in metrics}


def _lacking(a: Run, b: Run, benchmark: str, metric: str) -> Unavailable | None:
    """Why there is no test when a run lacks the value of ``metric``, else None."""
    values = [run.entry(benchmark).value(metric) for run in (a, b)]  # type: ignore[index]
    return Unavailable("a run lacks the value") if None in values else None


def _values(a: Run, b: Run, benchmark: str, metric: str) -> tuple[float, float]:
    va = a.entry(benchmark).value(metric)  # type: ignore[index]
    vb = b.entry(benchmark).value(metric)  # type: ignore[index]
    assert va is not None and vb is not None
    return va, vb


def _each_test(
    test: Callable[[Run, Run, str, str, float, float, StatsSettings], PairedTest | Unavailable],
) -> Callable[..., dict[str, PairedTest | Unavailable]]:
    """A paired-test method from ``test(a, b, benchmark, metric, value_a, value_b, settings)``, one metric at
    a time (a metric a run lacks is not tested)."""

    def method(
        a: Run, b: Run, benchmark: str, metrics: list[str], settings: StatsSettings, designs: Designs
    ) -> dict[str, PairedTest | Unavailable]:
        return {m: _lacking(a, b, benchmark, m) or test(a, b, benchmark, m, *_values(a, b, benchmark, m), settings)
                for m in metrics}

    return method


def _tar_paired_tests(
    a: Run, b: Run, benchmark: str, metrics: list[str], settings: StatsSettings, designs: Designs
) -> dict[str, PairedTest | Unavailable]:
    fars = {m: path_rate(m, "tar_at_far") for m in metrics}
    out: dict[str, PairedTest | Unavailable] = {
        m: _lacking(a, b, benchmark, m) or Unavailable(f"no paired test is defined for {benchmark} {m}")
        for m in metrics if fars[m] is None
    }
    measured = [m for m in metrics if fars[m] is not None]
    if measured:
        out.update(_tar_tests(a, b, benchmark, measured, [fars[m] for m in measured], settings, designs))
    return out


def _accuracy_test(
    a: Run, b: Run, benchmark: str, va: float, vb: float, settings: StatsSettings
) -> PairedTest | Unavailable:
    arr_a, arr_b = a.arrays(benchmark), b.arrays(benchmark)
    if "correct" not in arr_a or "correct" not in arr_b:
        return Unavailable("held-out decisions not saved by both runs")
    if "labels" in arr_a and "labels" in arr_b and not np.array_equal(arr_a["labels"], arr_b["labels"]):
        return Unavailable("the runs' pair labels differ")
    ca, cb = np.asarray(arr_a["correct"], bool), np.asarray(arr_b["correct"], bool)
    if ca.shape != cb.shape:
        return Unavailable(f"{ca.size} vs {cb.size} held-out decisions")
    return _mcnemar_test(benchmark, "accuracy", a, b, va, vb, ca, cb, "held-out decisions", "right", settings)


def _mcnemar_test(
    benchmark: str, metric: str, a: Run, b: Run, va: float, vb: float, ca: np.ndarray, cb: np.ndarray,
    items: str, outcome: str, settings: StatsSettings,
) -> PairedTest:
    """The exact McNemar test of two runs' paired binary outcomes ``ca``/``cb`` (e.g. right/wrong per pair)."""
    r = mcnemar(ca, cb)
    return PairedTest(
        benchmark, metric, a.label, b.label, va, vb, f"exact McNemar ({items})", r.p_value, settings.alpha,
        _only_in(ca, cb, outcome, a.label, b.label),
    )


def _only_in(ca: np.ndarray, cb: np.ndarray, what: str, label_a: str, label_b: str) -> str:
    """``"k <what> only in A, j only in B"``: the discordant outcomes of two runs."""
    only_a, only_b = int(np.count_nonzero(ca & ~cb)), int(np.count_nonzero(~ca & cb))
    return f"{only_a} {what} only in {label_a}, {only_b} only in {label_b}"


def _tar_tests(
    a: Run, b: Run, benchmark: str, metrics: list[str], fars: list[float], settings: StatsSettings, designs: Designs
) -> dict[str, PairedTest | Unavailable]:
    pa, pb = _pair_arrays(a, benchmark), _pair_arrays(b, benchmark)
    if isinstance(pa, Unavailable) or isinstance(pb, Unavailable):
        reason = (pa if isinstance(pa, Unavailable) else pb).reason
        return {m: Unavailable(reason) for m in metrics}
    (sa, la), (sb, lb) = pa, pb
    if not np.array_equal(la, lb):
        return {m: Unavailable("the runs' pair labels differ") for m in metrics}
    arr_a, arr_b = a.arrays(benchmark), b.arrays(benchmark)
    for name in TEMPLATE_ARRAYS:
        if (name in arr_a) != (name in arr_b) or (name in arr_a and not np.array_equal(arr_a[name], arr_b[name])):
            return {m: Unavailable("the runs' template arrays differ") for m in metrics}
    rule_a = str(a.entry(benchmark).rules.get("tar_at_far", "nearest"))  # type: ignore[index]
    rule_b = str(b.entry(benchmark).rules.get("tar_at_far", "nearest"))  # type: ignore[index]
    if rule_a != rule_b:
        return {m: Unavailable(f"different TAR@FAR rules ({rule_a} vs {rule_b})") for m in metrics}
    design = designs.get(arr_a, la)
    results = fast.paired_tar_at_far_bootstrap(
        sa, sb, design, fars, rule_a, n_boot=settings.n_boot, seed=settings.seed, alpha=settings.alpha
    )
    out: dict[str, PairedTest | Unavailable] = {}
    for m, far in zip(metrics, fars):
        r = results[far]
        va = a.entry(benchmark).value(m)  # type: ignore[index]
        vb = b.entry(benchmark).value(m)  # type: ignore[index]
        if va is None or vb is None:
            out[m] = Unavailable("a run lacks the value")
            continue
        out[m] = PairedTest(
            benchmark,
            m,
            a.label,
            b.label,
            va,
            vb,
            f"paired bootstrap of {design.unit} (B={settings.n_boot}, seed {settings.seed})",
            r.p_value,
            settings.alpha,
            "",
            r.low,
            r.high,
        )
    return out


def _tpir_test(
    a: Run, b: Run, benchmark: str, metric: str, va: float, vb: float, settings: StatsSettings
) -> PairedTest | Unavailable:
    sa, sb = _searches(a, benchmark, a.entry(benchmark)), _searches(b, benchmark, b.entry(benchmark))  # type: ignore[arg-type]
    if isinstance(sa, Unavailable) or isinstance(sb, Unavailable):
        return sa if isinstance(sa, Unavailable) else sb  # type: ignore[return-value]
    if list(sa) != list(sb) or any(
        sa[g].hits.shape != sb[g].hits.shape or sa[g].nonmated.shape != sb[g].nonmated.shape for g in sa
    ):
        return Unavailable("the runs' searches differ")
    if any(not np.array_equal(sa[g].mated_pos, sb[g].mated_pos) for g in sa):
        return Unavailable("the runs' probes are not mated in the same galleries")
    fpir = float(split_path(metric)[1])
    try:
        samples = _search_samples([sa, sb], settings, lambda s, mated, nonmated: _tpir(s, fpir, mated, nonmated))
    except ValueError as exc:
        return Unavailable(str(exc))
    d = samples[:, 0] - samples[:, 1]
    low, high = fast.percentile_interval(d, settings.alpha)
    return PairedTest(
        benchmark,
        metric,
        a.label,
        b.label,
        va,
        vb,
        f"paired bootstrap of probe templates (B={settings.n_boot}, seed {settings.seed})",
        fast.two_sided_p(d),
        settings.alpha,
        "",
        low,
        high,
    )


def _rank1_test(
    a: Run, b: Run, benchmark: str, va: float, vb: float, settings: StatsSettings
) -> PairedTest | Unavailable:
    ha, hb = _rank1_hits(a, benchmark, a.entry(benchmark)), _rank1_hits(b, benchmark, b.entry(benchmark))  # type: ignore[arg-type]
    if isinstance(ha, Unavailable) or isinstance(hb, Unavailable):
        return ha if isinstance(ha, Unavailable) else hb  # type: ignore[return-value]
    if list(ha) != list(hb) or any(ha[g].shape != hb[g].shape for g in ha):
        return Unavailable("the runs' mated searches differ")
    ca, cb = np.concatenate(list(ha.values())), np.concatenate(list(hb.values()))
    return _mcnemar_test(benchmark, "rank1", a, b, va, vb, ca, cb, "rank-1 hits, galleries pooled", "hits", settings)


def _megaface_test(
    a: Run, b: Run, benchmark: str, metric: str, va: float, vb: float, settings: StatsSettings
) -> PairedTest | Unavailable:
    fa, fb = _megaface_outcomes(a, benchmark, metric), _megaface_outcomes(b, benchmark, metric)
    if isinstance(fa, Unavailable) or isinstance(fb, Unavailable):
        return fa if isinstance(fa, Unavailable) else fb  # type: ignore[return-value]
    (oa, ia, items), (ob, ib, _) = fa, fb
    if not np.array_equal(ia, ib):
        return Unavailable(f"the runs' {items} differ")
    rules = [
        tuple(run.entry(benchmark).rules.get(k) for k in ("noise", "tie_rule"))  # type: ignore[index]
        for run in (a, b)
    ]
    if rules[0] != rules[1]:
        return Unavailable(f"different noise / tie rules ({rules[0]} vs {rules[1]})")
    r = paired_bootstrap(
        lambda idx: oa[idx].mean(), lambda idx: ob[idx].mean(), ia,
        n_boot=settings.n_boot, seed=settings.seed, alpha=settings.alpha,
    )
    return PairedTest(
        benchmark,
        metric,
        a.label,
        b.label,
        va,
        vb,
        f"paired bootstrap of identities (B={settings.n_boot}, seed {settings.seed})",
        r.p_value,
        settings.alpha,
        _only_in(oa, ob, f"{items} {'hit' if items == 'trials' else 'accepted'}", a.label, b.label),
        r.low,
        r.high,
    )


# ------------------------------------------------------------------------------------------- methods

#: The statistics a kind's metric may name (`facebench.kinds.base.Metric.interval` / ``paired_test``), as
#: kind of method then name: each takes the run(s), the benchmark, its entry (intervals) and the metrics asked.
METHODS: dict[str, dict[str, Callable[..., Any]]] = {
    "interval": {
        "kfold_accuracy": _each_interval(lambda run, bench, entry, m, s: _accuracy_interval(run, bench, entry, s)),
        "tar_bootstrap": _tar_bootstrap_intervals,
        "ijb_rank1": _each_interval(
            lambda run, bench, entry, m, s: _rank1_interval(run, bench, entry, s) if m == "rank1"
            else Unavailable(f"no interval is defined for {bench} {m}")
        ),
        "ijb_tpir": _each_interval(_tpir_interval),
        "megaface_identities": _each_interval(_megaface_interval),
    },
    "paired test": {
        "kfold_mcnemar": _each_test(lambda a, b, bench, m, va, vb, s: _accuracy_test(a, b, bench, va, vb, s)),
        "tar_paired_bootstrap": _tar_paired_tests,
        "ijb_rank1_mcnemar": _each_test(
            lambda a, b, bench, m, va, vb, s: _rank1_test(a, b, bench, va, vb, s) if m == "rank1"
            else Unavailable(f"no paired test is defined for {bench} {m}")
        ),
        "ijb_tpir_paired": _each_test(_tpir_test),
        "megaface_identities": _each_test(_megaface_test),
    },
}


def _method(name: str, what: str) -> Callable[..., Any]:
    """The statistics method ``name`` (one of :data:`METHODS`, or ``"module:function"`` of a kind's own)."""
    if ":" in name:
        return resolve(name, f"{what} method")
    table = METHODS[what]
    if name not in table:
        raise FacebenchError(
            f"unknown {what} method {name!r}{did_you_mean(name, list(table))} (known: {', '.join(table)})"
        )
    return table[name]
