"""`facebench doctor`: find the input contract a checkpoint expects, from its accuracy on a small pair set.

A wrong colour order or pixel scale does not crash anything: it silently costs accuracy (a model fed
0..255 pixels when it expects (x-127.5)/127.5 scores near chance). The doctor inspects the checkpoint, then
evaluates a fixed, fold-balanced subset of a verification benchmark under every candidate contract and says
which one to use.

Candidates: colour order {RGB, BGR} x normalisation {(x-127.5)/127.5 (insightface), (x-127.5)/128
(FaceX-Zoo), x in 0..255 (raw), x/255} x flip {add, none, concat} x alignment template (the ArcFace template
at the model's input size; also dlib's chip when the input is not 112x112), plus the profile `facebench run`
resolves for the checkpoint today and the backend's own default (e.g. dlib's) when they are not in the grid.

Procedure (the images are decoded and aligned once per template and reused by every contract; the model is
not run for the contract `facebench run` uses when the feature cache holds that contract's outputs for every
image of the benchmark, as a `facebench run` or `facebench demo` of the checkpoint leaves them: they are read
back, read only):

1. Subset: from each of the benchmark's 10 contiguous folds, ``pairs // 20`` same and as many different
   pairs, evenly spaced in stored order (all pairs when the benchmark has fewer). Folds stay contiguous, so
   the insightface 10-fold rule on the subset keeps them.
2. Screening: every (colour, normalisation, template) first runs on the unflipped chips of a fold-balanced
   third of the subset (``pairs // 3`` pairs, at least 200). A contract whose screening accuracy is clearly
   worse than the best (exact McNemar test, p < 0.001) keeps its screening row, marked ``screened``; so
   does the /127.5-or-/128 twin of a surviving contract that is not a named profile (a 0.4% scale that no
   accuracy can tell apart), marked ``twin``. The survivors run on the whole subset (their screening images
   are reused): the flip ``none`` rows. ``--exhaustive`` skips the screening.
3. The flipped chips run only for contracts whose unflipped accuracy is not clearly worse than the best
   (exact McNemar test on the held-out decisions, p >= 0.001), and for the contract `facebench run` uses
   today: a flip combination does not rescue a wrong colour order or scale. When even the best unflipped
   accuracy is more than 10 points below the plausible floor (nothing works), only the best contract and
   the current one get flip views. Their ``add``/``concat`` rows are computed from the two views; the
   others are marked ``pruned`` (``--exhaustive`` runs them all).
4. Ranking: 10-fold accuracy (insightface rule), then AUC. The verdict is the top contract, except that among
   contracts not significantly worse (McNemar p >= 0.05) which differ from it only by the /127.5 vs /128
   divisor (a 0.4% scale no accuracy can tell apart), or the offset within one pixel scale (``x/255`` and
   dlib's ``(x - mean)/256`` span the same unit range), or the flip mode, a named profile and flip ``add``
   are preferred. When even the best accuracy is below the benchmark's plausible floor (its spec's
   ``plausible.min_accuracy``, else 0.75), the verdict is that no contract works: the checkpoint or the data
   is the problem. When contracts of different pixel scales (span 255, 2 or 1: say 0..255 and
   (x-127.5)/127.5) are within noise of the best, the verdict is ``undetermined``: the pairs do not separate
   them (more pairs usually do; an untrained network is also indifferent to scale), so no profile is
   recommended. Raw photos are detected and aligned first (:mod:`facebench.extraction.enrol`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facebench.benchmarks import Benchmark, resolve_source
from facebench.extraction.cache import FeatureCache, default_cache_root
from facebench.extraction.extractor import FeatureExtractor
from facebench.extraction.enrol import EnrolOptions, enrol
from facebench.errors import FacebenchError
from facebench import kinds
from facebench.evaluate.pairs import balance_warnings, verification_metrics
from facebench.io.pairsets import PairData
from facebench.extraction.extract import combine_flip
from facebench.extraction.images import ImageList
from facebench.metrics import kfold as mkfold
from facebench.metrics.stats import mcnemar
from facebench.extraction.preprocess import PROFILES, Profile, chip_geometry, read_sidecar
from facebench.progress import track

DEFAULT_PAIRS = 600
DEFAULT_MIN_ACCURACY = 0.75
PRUNE_P = 1e-3
MIN_SCREEN_PAIRS = 200
HOPELESS_MARGIN = 0.10
TIE_P = 0.05
N_FOLDS = 10
FLIP_ORDER = ("add", "none", "concat")


@dataclass(frozen=True)
class Normalisation:
    """A uniform pixel normalisation ``(x - mean) / std`` with its short key and formula."""

    key: str
    mean: float
    std: float
    formula: str
    family: str


NORMALISATIONS: tuple[Normalisation, ...] = (
    Normalisation("pm1", 127.5, 127.5, "(x-127.5)/127.5", "pm1"),
    Normalisation("pm1_128", 127.5, 128.0, "(x-127.5)/128", "pm1"),
    Normalisation("pixels", 0.0, 1.0, "x (0..255)", "pixels"),
    Normalisation("unit", 0.0, 255.0, "x/255", "unit"),
)
COLOURS = ("rgb", "bgr")


def contract_key(profile: Profile) -> tuple:
    """What a contract is, flip aside: colour, mean, std, chip, size."""
    return (profile.colour, tuple(profile.mean), tuple(profile.std), profile.chip, int(profile.size))


def _normalisation(profile: Profile) -> Normalisation | None:
    for norm in NORMALISATIONS:
        if profile.mean == (norm.mean,) * 3 and profile.std == (norm.std,) * 3:
            return norm
    return None


def named_profile(profile: Profile) -> str | None:
    """The name of the shipped profile with the same contract (flip aside), if any."""
    for name, named in PROFILES.items():
        if contract_key(named) == contract_key(profile):
            return name
    return None


def contract_name(profile: Profile) -> str:
    """A named profile's name, else ``<colour>-<normalisation key>[-<chip><size>]``."""
    named = named_profile(profile)
    if named:
        return named
    norm = _normalisation(profile)
    name = f"{profile.colour}-{norm.key if norm else 'custom'}"
    if profile.chip != "arcface":
        name += f"-{profile.chip}{profile.size}"
    return name


def describe_contract(profile: Profile) -> str:
    """``BGR, (x-127.5)/128, arcface 112, flip add``."""
    norm = _normalisation(profile)
    formula = norm.formula if norm else f"(x-{list(profile.mean)})/{list(profile.std)}"
    return f"{profile.colour.upper()}, {formula}, {profile.chip} {profile.size}, flip {profile.flip}"


def candidate_contracts(size: int, extras: Sequence[Profile | None] = ()) -> list[Profile]:
    """The grid of base contracts (flip ``none``) for a ``size`` x ``size`` model, plus ``extras``."""
    chips = ["arcface"] + (["dlib"] if size != 112 else [])
    out: list[Profile] = []
    seen: set[tuple] = set()
    for chip in chips:
        for colour in COLOURS:
            for norm in NORMALISATIONS:
                mean, std = (norm.mean,) * 3, (norm.std,) * 3
                base = Profile("", colour, mean, std, chip, size, "none")  # type: ignore[arg-type]
                out.append(dataclasses.replace(base, name=contract_name(base)))
                seen.add(contract_key(base))
    for extra in extras:
        if extra is None or int(extra.size) != size or contract_key(extra) in seen:
            continue
        base = extra.with_flip("none")
        out.append(dataclasses.replace(base, name=contract_name(base) if named_profile(base) else extra.name))
        seen.add(contract_key(base))
    return out


def fold_balanced_subset(issame: np.ndarray, n_pairs: int, n_folds: int = N_FOLDS) -> np.ndarray:
    """Pair indices of the doctor's subset (module rule 1), fold by fold, same pairs first."""
    issame = np.asarray(issame, dtype=bool)
    if n_pairs < 2 * n_folds:
        raise FacebenchError(f"--pairs must be at least {2 * n_folds} (one same and one different pair per fold)")
    if n_pairs >= issame.size:
        return np.arange(issame.size)
    per_fold = n_pairs // n_folds
    want_same, want_diff = per_fold // 2, per_fold - per_fold // 2
    out = []
    for idx in mkfold.kfold_indices(int(issame.size), n_folds):
        for group, want in ((idx[issame[idx]], want_same), (idx[~issame[idx]], want_diff)):
            out.append(group if want >= group.size else group[(np.arange(want) * group.size) // want])
    return np.concatenate(out)


def subset_images(images: ImageList, rows: np.ndarray) -> tuple[ImageList, np.ndarray, np.ndarray]:
    """The distinct images among ``rows`` (same path = same image; pack items are all distinct), per row its
    index in that list, and per listed image its index in ``images``."""
    landmarks = images.landmarks
    if images.paths is not None:
        index: dict[str, int] = {}
        picked: list[int] = []
        where = np.empty(rows.size, dtype=np.int64)
        for k, r in enumerate(rows):
            path = images.paths[int(r)]
            if path not in index:
                index[path] = len(picked)
                picked.append(int(r))
            where[k] = index[path]
        sub = ImageList(
            origin=images.origin,
            paths=[images.paths[r] for r in picked],
            landmarks=landmarks[picked] if landmarks is not None else None,
            crops=images.crops,
        )
        return sub, where, np.asarray(picked, dtype=np.int64)
    names = [images.names[int(r)] for r in rows] if images.names is not None else None
    sub = ImageList(
        origin=images.origin,
        blobs=[images.blobs[int(r)] for r in rows],  # type: ignore[index]
        landmarks=landmarks[rows] if landmarks is not None else None,
        names=names,
        crops=images.crops,
    )
    return sub, np.arange(rows.size), np.asarray(rows, dtype=np.int64)


def cached_views(embedder: FeatureExtractor, images: ImageList, profile: Profile) -> np.ndarray | None:
    """Raw per-view outputs ``(N, V, D)`` of every one of ``images`` under ``profile`` from a complete entry
    of the feature cache (`facebench run` wrote it for this checkpoint, image list and contract; read only),
    else None."""
    root = embedder.settings.cache_dir or default_cache_root()
    cache = FeatureCache.find(root, embedder.cache_fields(images, profile))
    if cache is None or cache.n_images != len(images):
        return None
    return cache.read_all()


@dataclass
class ContractResult:
    """One row of the doctor's table."""

    profile: Profile
    status: str = "ok"
    accuracy: float | None = None
    accuracy_std: float | None = None
    auc: float | None = None
    seconds: float = 0.0
    correct: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def label(self) -> str:
        return f"{self.profile.name} / flip {self.profile.flip}"

    def sort_key(self) -> tuple:
        named = named_profile(self.profile)
        prior = list(PROFILES).index(named) if named else len(PROFILES)
        return (-(self.accuracy or 0.0), -(self.auc or 0.0), prior, FLIP_ORDER.index(self.profile.flip))

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract": self.name,
            "profile": self.profile.to_dict(),
            "description": describe_contract(self.profile),
            "status": self.status,
            "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "auc": self.auc,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Diagnosis:
    """The doctor's findings: checkpoint facts, the pair subset, every contract's row (ranked), the verdict."""

    checkpoint: dict[str, Any]
    benchmark: dict[str, Any]
    rows: list[ContractResult]
    verdict: dict[str, Any]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> Profile | None:
        profile = self.verdict.get("profile")
        return Profile.from_dict(profile, "doctor verdict") if profile else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "benchmark": self.benchmark,
            "contracts": [r.to_dict() for r in self.rows],
            "verdict": self.verdict,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": self.warnings,
        }


NORMALISES_TEXT = {
    True: "yes: the graph applies a constant affine map to its input before the first layer (it expects raw pixels)",
    False: "no: the first layer sees the input as given (it expects normalised input)",
    None: "unknown: the graph's first operators are not a pattern facebench recognises",
}


def inspect_checkpoint(embedder: FeatureExtractor) -> dict[str, Any]:
    """Format, input size and layout, output dimension, in-graph normalisation, size and FLOPs, profiles."""
    from facebench.models.complexity import model_complexity

    encoder = embedder.encoder
    described = encoder.describe()
    info: dict[str, Any] = {
        "path": str(embedder.settings.checkpoint),
        "sha256": embedder.sha256,
        "format": encoder.format,
        "architecture": described.get("architecture"),
        "input_size": list(encoder.input_size),
        "input_layout": described.get("input_layout", "NCHW"),
        "embedding_dim": encoder.embedding_dim,
        "normalizes_input": encoder.normalizes_input,
        "normalizes_input_text": NORMALISES_TEXT[encoder.normalizes_input],
        "parameters": described.get("parameters"),
    }
    try:
        complexity = model_complexity(encoder)
        info.update(file_bytes=complexity.get("file_bytes"), flops=complexity.get("flops"))
    except FacebenchError as exc:
        info["complexity_error"] = str(exc)
    sidecar = read_sidecar(embedder.settings.checkpoint)
    default = getattr(encoder, "default_profile", None)
    info["sidecar_profile"] = sidecar.to_dict() if sidecar else None
    info["backend_default_profile"] = default.to_dict() if default else None
    info["run_profile"] = embedder.profile.to_dict()
    info["run_profile_source"] = (
        "--profile" if embedder.settings.profile
        else "sidecar" if sidecar
        else "backend default" if default
        else "insightface default"
    )
    return info


def load_pair_data(
    spec: Benchmark,
    data_root: str | Path,
    overrides: Mapping[str, str] | None = None,
    seed: int = 0,
    max_pairs: int = 6000,
) -> PairData:
    """A verification benchmark's pairs, read by its kind's pair reader (a ``folder`` benchmark's generated
    with ``seed`` and at most ``max_pairs`` pairs)."""
    kind = kinds.get(spec.kind)
    if not kind.pair_verification:
        raise FacebenchError(
            f"doctor needs a pair-verification benchmark (kind {kinds.pair_verification_kinds()}); {spec.name} is "
            f"kind {spec.kind}"
        )
    source, paths = resolve_source(spec, data_root, overrides)
    return kind.load_pair_data()(source.reader, paths, spec.options, seed, max_pairs)


def _embed(encoder: Any, chips: np.ndarray, profile: Profile, batch_size: int) -> np.ndarray:
    """Raw float32 outputs ``(M, D)`` of uint8 RGB ``chips`` under ``profile`` (no flip)."""
    parts = [np.asarray(encoder.embed(profile.normalise(chips[s : s + batch_size])), dtype=np.float32)
             for s in range(0, len(chips), batch_size)]
    return np.concatenate(parts)


def _embed_reusing(
    encoder: Any, chips: np.ndarray, profile: Profile, batch_size: int, done: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """``_embed`` of every chip, reusing the rows already computed for the image indices in ``done``."""
    if done is None:
        return _embed(encoder, chips, profile, batch_size)
    idx, raw = done
    rest = np.setdiff1d(np.arange(len(chips)), idx)
    out = np.empty((len(chips), raw.shape[1]), dtype=np.float32)
    out[idx] = raw
    if rest.size:
        out[rest] = _embed(encoder, chips[rest], profile, batch_size)
    return out


def _named_twin(base: Profile, others: Sequence[Profile]) -> Profile | None:
    """The surviving contract that differs from ``base`` only by the /127.5 vs /128 divisor and is a named
    profile while ``base`` is not (then ``base`` need not run on the whole subset)."""
    if named_profile(base):
        return None
    norm = _normalisation(base)
    for other in others:
        o = _normalisation(other)
        if (norm is not None and o is not None and norm.family == o.family == "pm1" and named_profile(other)
                and other.colour == base.colour and other.chip == base.chip and other.size == base.size):
            return other
    return None


def _score(row: ContractResult, features: np.ndarray, issame: np.ndarray) -> None:
    if not np.isfinite(features).all():
        row.status = "non-finite output"
        return
    metrics, arrays = verification_metrics(features, issame, "insightface", "nearest", N_FOLDS)
    row.accuracy, row.accuracy_std, row.auc = metrics["accuracy"], metrics["accuracy_std"], metrics["auc"]
    row.correct = arrays["correct"]


def diagnose(
    embedder: FeatureExtractor,
    data: PairData,
    spec: Benchmark,
    n_pairs: int = DEFAULT_PAIRS,
    *,
    exhaustive: bool = False,
    min_accuracy: float | None = None,
    batch_size: int = 32,
    log: Any = None,
    enrolment: EnrolOptions | None = None,
) -> Diagnosis:
    """Run the doctor's procedure (module rules) and return its findings."""
    started = time.perf_counter()
    encoder = embedder.encoder
    h, w = encoder.input_size
    if h != w:
        raise FacebenchError(
            f"{embedder.settings.checkpoint}: the model takes {h}x{w} input; profiles describe square chips"
        )
    checkpoint = inspect_checkpoint(embedder)
    subset = fold_balanced_subset(data.issame, n_pairs)
    issame = data.issame[subset]
    warnings = balance_warnings(f"{spec.name} subset", issame, N_FOLDS)
    rows_2n = np.stack([2 * subset, 2 * subset + 1], axis=1).reshape(-1)
    images, where, source = subset_images(data.images, rows_2n)
    as_listed = True
    if enrolment is not None:
        enrolled = enrol(images, enrolment, spec.name)  # doctor scores every pair: skip acts as center-crop
        images = enrolled.images
        as_listed = not (enrolled.report.detected or enrolled.report.reoriented)
    extras = [embedder.profile, getattr(encoder, "default_profile", None)]
    bases = candidate_contracts(h, extras)
    # the contract `facebench run` uses: its features may be in the feature cache already (both flip views)
    current_b = next((b for b, base in enumerate(bases) if contract_key(base) == contract_key(embedder.profile)), None)
    full = cached_views(embedder, data.images, embedder.profile) if as_listed and current_b is not None else None
    cached = full[source] if full is not None else None
    if cached is not None and log:
        log(f"{bases[current_b].name}: the features `facebench run` cached for {spec.name} are reused "
            f"({len(images)} images, {cached.shape[1]} view(s))")

    t0 = time.perf_counter()
    chips: dict[tuple[str, int], np.ndarray] = {}
    for base in track(bases, "doctor: align", "contracts"):
        key = (base.chip, base.size)
        if key not in chips:
            geometry = chip_geometry(base)
            chips[key] = np.stack([images.load_chip(i, geometry) for i in range(len(images))])
    decode_s = time.perf_counter() - t0
    if log:
        log(f"decoded and aligned {len(images)} images in {decode_s:.1f} s; evaluating {len(bases)} contracts")

    model_s = 0.0
    views: dict[int, list[np.ndarray]] = {}
    view_time: dict[int, list[float]] = {}
    rows: dict[tuple[int, str], ContractResult] = {}
    survivors = list(range(len(bases)))
    n_screen = max(MIN_SCREEN_PAIRS, int(subset.size) // 3)
    partial: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if not exhaustive and int(subset.size) >= 2 * n_screen:
        screen = fold_balanced_subset(issame, n_screen)
        rows_screen = np.stack([2 * screen, 2 * screen + 1], axis=1).reshape(-1)
        needed, local = np.unique(where[rows_screen], return_inverse=True)
        screened: dict[int, ContractResult] = {}
        for b, base in track(list(enumerate(bases)), "doctor: screen", "contracts"):
            t = time.perf_counter()
            if cached is not None and b == current_b:
                raw = cached[needed, 0]
            else:
                raw = _embed(encoder, chips[(base.chip, base.size)][needed], base, batch_size)
            dt = time.perf_counter() - t
            model_s += dt
            partial[b] = (needed, raw)
            row = ContractResult(base.with_flip("none"), seconds=dt)
            _score(row, raw[local], issame[screen])
            screened[b] = row
        ok = [r for r in screened.values() if r.correct is not None]
        best = min(ok, key=ContractResult.sort_key) if ok else None
        current = contract_key(embedder.profile)
        keep_keys = set()
        for b, row in screened.items():
            close = row.correct is not None and best is not None and (
                row is best or mcnemar(best.correct, row.correct).p_value >= PRUNE_P
            )
            if close or contract_key(bases[b]) == current:
                keep_keys.add(b)
        survivors = []
        for b in sorted(keep_keys):
            twin = _named_twin(bases[b], [bases[k] for k in keep_keys if k != b])
            if twin is not None and contract_key(bases[b]) != current:
                screened[b].status = f"twin of {twin.name} (screening {n_screen} pairs)"
                rows[(b, "none")] = screened[b]
            else:
                survivors.append(b)
        for b, row in screened.items():
            if b not in keep_keys:
                row.status = f"screened ({n_screen} pairs)"
                rows[(b, "none")] = row
        if log:
            log(f"screening on {n_screen} pairs kept {len(survivors)} of {len(bases)} contracts")
    for b in track(survivors, "doctor: evaluate", "contracts"):
        base = bases[b]
        t = time.perf_counter()
        if cached is not None and b == current_b:
            raw0 = cached[:, 0]
        else:
            raw0 = _embed_reusing(encoder, chips[(base.chip, base.size)], base, batch_size, partial.get(b))
        dt = time.perf_counter() - t
        model_s += dt
        views[b], view_time[b] = [raw0], [dt]
        row = ContractResult(base.with_flip("none"), seconds=dt)
        _score(row, raw0[where], issame)
        rows[(b, "none")] = row
    floor = float(spec.plausible.get("min_accuracy", DEFAULT_MIN_ACCURACY)) if min_accuracy is None else min_accuracy
    scored = [rows[(b, "none")] for b in survivors if rows[(b, "none")].correct is not None]
    best_none = min(scored, key=ContractResult.sort_key) if scored else None
    hopeless = best_none is None or (best_none.accuracy or 0.0) < floor - HOPELESS_MARGIN
    for b, base in track(list(enumerate(bases)), "doctor: flip views", "contracts"):
        if b not in survivors:
            for flip in ("add", "concat"):
                rows[(b, flip)] = ContractResult(base.with_flip(flip), status="pruned")
            continue
        none_row = rows[(b, "none")]
        close = none_row.correct is not None and best_none is not None and (
            none_row is best_none
            or (not hopeless and mcnemar(best_none.correct, none_row.correct).p_value >= PRUNE_P)
        )
        keep = exhaustive or close or contract_key(base) == contract_key(embedder.profile)
        if keep:
            t = time.perf_counter()
            if cached is not None and b == current_b and cached.shape[1] == 2:
                views[b].append(cached[:, 1])
            else:
                flipped = np.ascontiguousarray(chips[(base.chip, base.size)][:, :, ::-1])
                views[b].append(_embed(encoder, flipped, base, batch_size))
            dt = time.perf_counter() - t
            model_s += dt
            view_time[b].append(dt)
        for flip in ("add", "concat"):
            row = ContractResult(base.with_flip(flip))
            if keep:
                row.seconds = sum(view_time[b])
                raw = np.stack(views[b], axis=1)
                _score(row, combine_flip(raw, flip)[where], issame)
            else:
                row.status = "pruned"
            rows[(b, flip)] = row
        views[b] = []  # free the views of this contract
    full = [r for r in rows.values() if r.correct is not None and r.status == "ok"]
    ranked = sorted(full, key=ContractResult.sort_key)
    rest = sorted((r for r in rows.values() if r not in full), key=ContractResult.sort_key)
    verdict = make_verdict(ranked, floor, checkpoint, embedder.profile, spec, int(subset.size))
    benchmark = {
        "name": spec.name,
        "title": spec.title,
        "reader": data.reader,
        "inputs": data.inputs,
        "n_pairs_available": int(data.issame.size),
        "n_pairs": int(subset.size),
        "n_images": len(images),
        "fold_balance": mkfold.fold_balance(issame, N_FOLDS).tolist(),
        "plausible_min_accuracy": floor,
    }
    timings = {"decode_align": decode_s, "model": model_s, "total": time.perf_counter() - started}
    return Diagnosis(checkpoint, benchmark, ranked + rest, verdict, timings, warnings)


PIXEL_SCALES: tuple[tuple[float, str], ...] = (
    (1.0, "span 1: x/255, (x - mean)/256 (dlib)"),
    (2.0, "span 2: (x-127.5)/127.5 or /128"),
    (255.0, "span 255: x (0..255)"),
)


def _scale_family(profile: Profile) -> str:
    """The pixel scale of a contract: the span ``255 / std`` of its values (mean std over channels), within
    5% of 1, 2 or 255; the offset (mean) is not part of the scale, so ``x/255`` and dlib's
    ``(x - mean_c)/256`` are one family, as are ``(x-127.5)/127.5`` and ``/128``. Others: their formula."""
    span = 255.0 / float(np.mean(profile.std))
    for target, name in PIXEL_SCALES:
        if abs(span - target) <= 0.05 * target:
            return name
    return f"(x-{list(profile.mean)})/{list(profile.std)}"


def _equivalent(row: ContractResult, top: ContractResult) -> bool:
    """Differs from ``top`` only by the pixel offset or divisor within one scale family, or the flip mode."""
    same_family = _scale_family(row.profile) == _scale_family(top.profile)
    return (
        same_family
        and row.profile.colour == top.profile.colour
        and row.profile.chip == top.profile.chip
        and row.profile.size == top.profile.size
    )


def make_verdict(
    ranked: list[ContractResult],
    floor: float,
    checkpoint: dict[str, Any],
    current: Profile,
    spec: Benchmark,
    n_pairs: int,
) -> dict[str, Any]:
    """The verdict of module rule 4 as a JSON-ready dict with a ``message``."""
    path = checkpoint["path"]
    if not ranked:
        message = "no contract produced finite embeddings: the checkpoint is broken"
        return {"status": "failed", "profile": None, "message": message}
    top = ranked[0]
    tied = [r for r in ranked if r is top or mcnemar(top.correct, r.correct).p_value >= TIE_P]  # type: ignore[arg-type]
    current_row = next(
        (r for r in ranked if contract_key(r.profile) == contract_key(current) and r.profile.flip == current.flip), None
    )
    current_info = {
        "profile": current.to_dict(),
        "source": checkpoint.get("run_profile_source"),
        "accuracy": current_row.accuracy if current_row else None,
    }
    if (top.accuracy or 0.0) < floor:
        return {
            "status": "implausible",
            "profile": None,
            "best": top.to_dict(),
            "current": current_info,
            "message": (
                f"no contract reaches plausible accuracy: the best is {top.accuracy:.2%} ({top.label}) on {n_pairs} "
                f"pairs of {spec.name}, below the {floor:.0%} expected: the checkpoint or the data is the problem. "
                "Check the pairs and labels (fold balance above), that the images are aligned as the model expects "
                f"(landmarks, crops), and that {Path(path).name} is a face-embedding model "
                f"({checkpoint['embedding_dim']}-d output)."
            ),
        }
    scales = {_scale_family(r.profile) for r in tied}
    if len(scales) > 1:
        return {
            "status": "undetermined",
            "profile": None,
            "best": top.to_dict(),
            "within_noise": [r.label for r in tied if r is not top],
            "current": current_info,
            "message": (
                f"cannot tell the input contract: {len(tied)} contracts with different pixel scales "
                f"({', '.join(sorted(scales))}) are within noise of the best ({top.accuracy:.2%}, {top.label}) on "
                f"{n_pairs} pairs of {spec.name}: these pairs do not separate the top candidates. More pairs "
                "(--pairs, a larger benchmark) usually do; a trained face model's accuracy depends on its input "
                "scale, so a checkpoint that stays indifferent to it may be untrained. No profile is recommended."
            ),
        }
    eligible = [r for r in tied if _equivalent(r, top)]
    chosen = min(
        eligible,
        key=lambda r: (named_profile(r.profile) is None, FLIP_ORDER.index(r.profile.flip), r.sort_key()),
    )
    name = chosen.name
    named = named_profile(chosen.profile)
    if named and chosen.profile.flip == PROFILES[named].flip:
        how = f"`facebench run {path} --profile {named}`"
    elif named:
        how = f"`facebench run {path} --profile {named} --flip {chosen.profile.flip}`"
    else:
        how = f"`facebench doctor {path} --write-sidecar` (later runs read the sidecar)"
    lines = [
        f"use profile {name} ({describe_contract(chosen.profile)}): accuracy {chosen.accuracy:.2%} on {n_pairs} pairs "
        f"of {spec.name}; {how}, or write it as the checkpoint's sidecar with --write-sidecar."
    ]
    if chosen is not top:
        lines.append(
            f"({top.label} scored {top.accuracy:.2%}; the two are within noise and differ only by the pixel offset or "
            "divisor within one scale family or the flip mode, so the conventional one is named.)"
        )
    others = [r.label for r in tied if r is not chosen]
    if others:
        lines.append(f"Within noise of the best (McNemar p >= {TIE_P}): {', '.join(others)}.")
    if any(r.profile.colour != chosen.profile.colour for r in tied):
        lines.append("RGB and BGR are within noise on these pairs: the colour order is not determined by this data.")
    same_as_current = contract_key(current) == contract_key(chosen.profile) and current.flip == chosen.profile.flip
    if same_as_current:
        lines.append(f"`facebench run` already uses this contract for this checkpoint ({current_info['source']}).")
    elif current_row is not None:
        lines.append(
            f"`facebench run` currently uses {contract_name(current)} / flip {current.flip} "
            f"({current_info['source']}): {current_row.accuracy:.2%} here."
        )
    norm = _normalisation(chosen.profile)
    graph_norm = checkpoint.get("normalizes_input")
    if graph_norm is True and norm is not None and norm.key != "pixels":
        lines.append("Note: the graph appears to normalise its input, yet a normalised contract scored best.")
    if graph_norm is False and norm is not None and norm.key == "pixels":
        lines.append("Note: the graph does not appear to normalise its input, yet raw 0..255 pixels scored best.")
    return {
        "status": "ok",
        "profile": chosen.profile.to_dict(),
        "contract": name,
        "accuracy": chosen.accuracy,
        "best": top.to_dict(),
        "within_noise": others,
        "current": current_info,
        "current_is_right": same_as_current,
        "message": " ".join(lines),
    }
