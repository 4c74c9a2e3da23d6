"""Your own data: an image folder with one sub-folder per identity (``--benchmark folder:PATH``).

Layout (``PATH``):

- ``PATH/<identity>/<image>``: one sub-folder per identity, images directly inside it (``.jpg``, ``.jpeg``,
  ``.png``, ``.bmp``, ``.webp``, ``.tif``, ``.tiff``; other files, hidden entries and deeper folders are
  ignored). Identities and images are taken in sorted name order.
- Images are aligned 112x112 crops (the insightface layout), or raw photos listed in a 5-point landmark
  file, ``PATH/landmarks.txt`` or ``--file <name>.landmarks=FILE`` (lines ``path x1 y1 ... x5 y5``, paths
  relative to ``PATH``; see `facebench.io.landmarks`). A raw photo that no landmark file lists is detected
  (`facebench.extraction.enrol`: ``--detector``, ``--on-no-face``; the report goes to ``enrolment`` in results).
- Optional pair list ``PATH/pairs.txt`` or ``--file <name>.pairs=FILE``, in any dialect of
  `facebench.io.pairlists.PAIR_DIALECTS` (detected, or named by ``--pairs DIALECT``; e.g. ``path_a path_b label``
  with paths relative to ``PATH``, or LFW's own ``pairs.txt``); folds by the list's rule (`FOLD_RULES`).
  ``--pairs generate`` ignores the list and generates pairs.

Checks: a file with an image suffix whose first bytes are not a JPEG/PNG/BMP/WebP/TIFF signature is an error
listing the unreadable files (an image that passes the signature check but cannot be decoded is an error
naming it when it is read). An identity folder with fewer than two images cannot form a genuine pair or a
mated search: it is skipped, with a warning naming it. Fewer than two usable identities is an error (unless
a pair list is given, which then carries the verification alone).

Verification pairs, when no list is given (seeded by ``--folder-seed``, default 0; at most ``--folder-pairs``
pairs, default 6000):

- 10 folds. With at least 20 usable identities the identities are disjoint across folds: identity ``j`` of a
  seeded permutation goes to fold ``j mod 10``. With fewer, every fold draws from all identities (pairs still
  never repeat); the rule used is recorded as ``rules.fold_identities`` (``disjoint`` or ``shared``).
- Every fold holds ``G`` genuine then ``G`` impostor pairs, so folds are exactly balanced and the contiguous
  ``KFold(10)`` of the 10-fold rule recovers them. ``G`` = ``folder_pairs // 20``, lowered to what the
  poorest fold can supply.
- Genuine pairs are drawn identity by identity in rounds (the fold's identities in seeded order), each
  identity giving its next unused pair: images in a seeded order ``p``, pairs ``(p[j], p[j+d])`` for
  ``d = 1, 2, ...``, so every identity contributes as evenly as its images allow.
- Impostor pairs: two distinct identities of the fold and one image of each, uniformly at random, never
  repeating an image pair.

Identification (open set, rank-k and TPIR@FPIR by `facebench.metrics.identification`): a seeded 20% of the
usable identities (at least one) are not enrolled and all their images are non-mated probes; every other
identity enrols one seeded image in the gallery and its other images are mated probes. Scores are cosines
of the L2-normalised features. Ranks larger than the gallery are not reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from facebench.benchmarks import Benchmark
from facebench.errors import FacebenchError
from facebench.evaluate.common import BenchmarkResult, RunContext
from facebench.evaluate import rates
from facebench.evaluate.analyses import image_attributes, pair_analyses, search_analyses
from facebench.evaluate.pairs import (
    at_decision_threshold, balance_warnings, leak_warnings, normalise_rows, verification_metrics,
)
from facebench.io.pairsets import PairData
from facebench.atomic import sha256_file
from facebench.extraction.images import ImageList
from facebench.io.landmarks import landmark_array, read_landmarks
from facebench.io.pairlists import image_identity, read_pair_list
from facebench.metrics import identification as mident

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
N_FOLDS = 10
DEFAULT_MAX_PAIRS = 6000
DEFAULT_SEED = 0
UNENROLLED_SHARE = 0.2
RANKS = (1, 5, 10)
FPIR_TARGETS = (1e-2, 1e-1)


def has_image_signature(path: str) -> bool:
    """Whether the file starts like a JPEG, PNG, BMP, WebP or TIFF image (a cheap readability check)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return (
        head[:3] == b"\xff\xd8\xff"
        or head[:8] == b"\x89PNG\r\n\x1a\n"
        or head[:2] == b"BM"
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or head[:4] in (b"II*\x00", b"MM\x00*")
    )


@dataclass(frozen=True)
class FolderListing:
    """The usable images of an identity folder.

    ``paths`` are absolute (``os.path.abspath``), identity by identity; ``labels[i]`` is the index into
    ``identities`` of image i; ``groups[k]`` the image indices of identity k. ``skipped`` names identity
    folders with fewer than two images; ``ignored`` counts files that are not images by their suffix.
    """

    root: Path
    identities: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray
    skipped: tuple[str, ...] = ()
    ignored: int = 0

    @property
    def groups(self) -> list[np.ndarray]:
        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(len(self.identities) + 1))
        return [order[bounds[k] : bounds[k + 1]] for k in range(len(self.identities))]


def list_folder(root: str | Path, require_identities: bool = True) -> FolderListing:
    """Read an identity folder (module rules). Errors name the folder or the unreadable files."""
    root = Path(os.path.abspath(os.path.expanduser(str(root))))
    if not root.is_dir():
        raise FacebenchError(f"{root}: not a folder (expected one sub-folder of images per identity)")
    identities: list[str] = []
    paths: list[str] = []
    labels: list[int] = []
    skipped: list[str] = []
    unreadable: list[str] = []
    ignored = 0
    real_dirs: dict[str, str] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        real = os.path.realpath(entry.path)
        if real in real_dirs:
            raise FacebenchError(
                f"{root}: identity folders {real_dirs[real]} and {entry.name} are the same directory ({real}, "
                "through a symbolic link): one identity would count as two; remove one of them"
            )
        real_dirs[real] = entry.name
        images = []
        for item in sorted(os.scandir(entry.path), key=lambda e: e.name):
            if item.name.startswith(".") or not item.is_file():
                continue
            if not item.name.lower().endswith(IMAGE_SUFFIXES):
                ignored += 1
                continue
            path = os.path.abspath(item.path)
            if has_image_signature(path):
                images.append(path)
            else:
                unreadable.append(path)
        if len(images) < 2:
            skipped.append(entry.name)
            continue
        labels += [len(identities)] * len(images)
        identities.append(entry.name)
        paths += images
    if unreadable:
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        raise FacebenchError(
            f"{root}: {len(unreadable)} unreadable image file(s) (empty, or not JPEG/PNG/BMP/WebP/TIFF): "
            f"{', '.join(unreadable[:5])}{more}; remove or replace them"
        )
    if require_identities and len(identities) < 2:
        found = f"{len(identities)} identity folder(s) with two or more images"
        if skipped:
            found += f" ({len(skipped)} with fewer were skipped: {', '.join(skipped[:5])})"
        raise FacebenchError(
            f"{root}: needs at least two identities with two or more images each, found {found}; "
            "layout: PATH/<identity>/<image>.jpg (or give a pair list PATH/pairs.txt)"
        )
    labels_array = np.asarray(labels, dtype=np.int64)
    return FolderListing(root, tuple(identities), tuple(paths), labels_array, tuple(skipped), ignored)


@dataclass(frozen=True)
class GeneratedPairs:
    """Pairs as image indices ``(N, 2)``, labels, the fold rule (``disjoint``/``shared``) and pairs per fold
    (``genuine_per_fold`` genuine then as many impostor pairs, fold after fold)."""

    pairs: np.ndarray
    issame: np.ndarray
    fold_identities: str
    genuine_per_fold: int
    seed: int


def _genuine_stream(order: np.ndarray) -> Iterator[tuple[int, int]]:
    """Every image pair of one identity exactly once: ``(p[j], p[j + d])`` for d = 1, 2, ... (module rule)."""
    n = len(order)
    for d in range(1, n):
        for j in range(n - d):
            yield int(order[j]), int(order[j + d])


def _capacities(sizes: np.ndarray) -> tuple[int, int]:
    """(genuine, impostor) image pairs available among identities with ``sizes`` images."""
    sizes = sizes.astype(np.int64)
    total = int(sizes.sum())
    genuine = int((sizes * (sizes - 1) // 2).sum())
    return genuine, (total * total - int((sizes * sizes).sum())) // 2


def generate_pairs(
    groups: Sequence[np.ndarray], seed: int = DEFAULT_SEED, max_pairs: int = DEFAULT_MAX_PAIRS, n_folds: int = N_FOLDS
) -> GeneratedPairs:
    """Seeded, fold-balanced genuine/impostor pairs over identities ``groups`` (module rule)."""
    n_ids = len(groups)
    if n_ids < 2:
        raise FacebenchError(f"pair generation needs at least two identities with two or more images, got {n_ids}")
    if max_pairs < 2 * n_folds:
        raise FacebenchError(f"--folder-pairs must be at least {2 * n_folds} (one genuine and one impostor per fold)")
    rng = np.random.default_rng([int(seed), 0])
    order = rng.permutation(n_ids)
    sizes = np.array([len(g) for g in groups])
    if n_ids >= 2 * n_folds:
        fold_ids = [order[k::n_folds] for k in range(n_folds)]
        caps = [_capacities(sizes[ids]) for ids in fold_ids]
        rule = "disjoint"
    else:
        fold_ids = [order] * n_folds
        gen, imp = _capacities(sizes)
        caps = [(gen // n_folds, imp // n_folds)] * n_folds
        rule = "shared"
    per_fold = min(max_pairs // (2 * n_folds), min(c[0] for c in caps), min(c[1] for c in caps))
    if per_fold < 1:
        raise FacebenchError(
            f"too few images to make one genuine and one impostor pair in each of {n_folds} folds "
            f"({n_ids} identities, {int(sizes.sum())} images); add images or give a pair list"
        )
    streams = {int(i): _genuine_stream(groups[i][rng.permutation(len(groups[i]))]) for i in order}
    used: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    issame: list[bool] = []
    for ids in fold_ids:
        genuine = _draw_genuine(ids, streams, per_fold)
        impostor = _draw_impostors(ids, groups, per_fold, rng, used)
        pairs += genuine + impostor
        issame += [True] * len(genuine) + [False] * len(impostor)
    pair_array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return GeneratedPairs(pair_array, np.asarray(issame, dtype=bool), rule, per_fold, int(seed))


def _draw_genuine(ids: np.ndarray, streams: dict[int, Iterator[tuple[int, int]]], count: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    while len(out) < count:
        progressed = False
        for i in ids:
            if len(out) == count:
                break
            pair = next(streams[int(i)], None)
            if pair is not None:
                out.append(pair)
                progressed = True
        if not progressed:  # pragma: no cover - the capacity check rules this out
            raise RuntimeError("genuine pairs exhausted before the fold was full")
    return out


def _draw_impostors(
    ids: np.ndarray, groups: Sequence[np.ndarray], count: int, rng: np.random.Generator, used: set[tuple[int, int]]
) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    attempts = 0
    while len(out) < count and attempts < 50 * count:
        attempts += 1
        a, b = rng.choice(len(ids), 2, replace=False)
        ga, gb = groups[ids[a]], groups[ids[b]]
        ia, ib = int(ga[rng.integers(len(ga))]), int(gb[rng.integers(len(gb))])
        key = (min(ia, ib), max(ia, ib))
        if key not in used:
            used.add(key)
            out.append((ia, ib))
    if len(out) < count:  # nearly exhausted: draw the rest from what is left, still at random
        left = [
            (int(x), int(y))
            for a in range(len(ids))
            for b in range(a + 1, len(ids))
            for x in groups[ids[a]]
            for y in groups[ids[b]]
            if (min(x, y), max(x, y)) not in used
        ]
        for k in rng.permutation(len(left))[: count - len(out)]:
            x, y = left[int(k)]
            used.add((min(x, y), max(x, y)))
            out.append((x, y))
    return out


@dataclass(frozen=True)
class IdentificationSplit:
    """Gallery and probe image indices with their subjects (identity indices)."""

    gallery: np.ndarray
    gallery_subjects: np.ndarray
    probes: np.ndarray
    probe_subjects: np.ndarray
    n_unenrolled: int


def identification_split(groups: Sequence[np.ndarray], seed: int = DEFAULT_SEED) -> IdentificationSplit:
    """Seeded open-set gallery/probe split (module rule)."""
    n_ids = len(groups)
    if n_ids < 2:
        raise FacebenchError(f"identification needs at least two identities, got {n_ids}")
    rng = np.random.default_rng([int(seed), 1])
    n_unenrolled = max(1, int(round(UNENROLLED_SHARE * n_ids)))
    unenrolled = set(rng.permutation(n_ids)[:n_unenrolled].tolist())
    gallery, gallery_subjects, probes, probe_subjects = [], [], [], []
    for k, images in enumerate(groups):
        if k in unenrolled:
            probes += images.tolist()
            probe_subjects += [k] * len(images)
            continue
        pick = int(rng.integers(len(images)))
        gallery.append(int(images[pick]))
        gallery_subjects.append(k)
        rest = [int(x) for j, x in enumerate(images) if j != pick]
        probes += rest
        probe_subjects += [k] * len(rest)
    gallery_arrays = np.asarray(gallery, dtype=np.int64), np.asarray(gallery_subjects, dtype=np.int64)
    probe_arrays = np.asarray(probes, dtype=np.int64), np.asarray(probe_subjects, dtype=np.int64)
    return IdentificationSplit(*gallery_arrays, *probe_arrays, n_unenrolled)


def identification_metrics(
    features: np.ndarray, split: IdentificationSplit, tpir_rule: str = "insightface", cmc_ties: str = ">="
) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """(metrics, details, arrays) of the open-set search of every probe against the gallery: rank-k rates
    (ties by ``cmc_ties``), TPIR / FNIR at FPIR by ``tpir_rule`` (None below 1/non-mated searches, with
    ``unmeasurable`` / ``few_events`` notes in the metrics), the DIR-FPIR curve in the arrays.; images
    whose feature row is not finite (not enrolled, ``--on-no-face skip``) are left out of gallery and probes, so
    the probes of an identity whose gallery image is left out become non-mated searches."""
    finite = np.isfinite(features).all(axis=1)
    if not finite.all():
        g, p = finite[split.gallery], finite[split.probes]
        split = dataclasses.replace(
            split, gallery=split.gallery[g], gallery_subjects=split.gallery_subjects[g],
            probes=split.probes[p], probe_subjects=split.probe_subjects[p],
        )
    emb = normalise_rows(features)
    scores = emb[split.probes] @ emb[split.gallery].T
    ranks = [k for k in RANKS if k <= len(split.gallery)]
    r = mident.open_set_identification(
        scores, split.probe_subjects, split.gallery_subjects, ranks, FPIR_TARGETS, tpir_rule, cmc_ties
    )
    values, unmeasurable, few, curve = rates.open_set_rates(r, FPIR_TARGETS, tpir_rule)
    metrics = {
        "rank": {str(k): float(v) for k, v in r["rank_rates"].items()},
        "tpir_at_fpir": values["tpir_at_fpir"],
        "fnir_at_fpir": values["fnir_at_fpir"],
        "unmeasurable": unmeasurable,
        "few_events": few,
    }
    details = {
        "rule": r["rule"],
        "tpir_rule": rates.tpir_rule_text(tpir_rule),
        "cmc_ties": cmc_ties,
        "fpir": values["fpir"],
        "thresholds": values["thresholds"],
    }
    arrays = {
        "mate_ranks": r["mate_ranks"],
        "mate_scores": r["mate_scores"],
        "nonmated_scores": r["nonmated_scores"],
        "cmc": mident.cmc_curve(r["mate_ranks"], len(split.gallery)),
        **curve,
    }
    return metrics, details, arrays


@dataclass
class FolderData:
    """Everything read from a folder: the images to embed (listing first, then images only a pair list
    names), verification pairs as indices into them, the identification split and provenance."""

    listing: FolderListing
    images: ImageList
    pairs: np.ndarray
    issame: np.ndarray
    rules: dict[str, Any]
    counts: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    split: IdentificationSplit | None = None
    identities: list[str] = field(default_factory=list)


def read_folder(
    files: Mapping[str, Path], seed: int = DEFAULT_SEED, max_pairs: int = DEFAULT_MAX_PAIRS, pairs_mode: str = "auto"
) -> FolderData:
    """Read a folder benchmark's files (roles ``images``, optional ``landmarks`` and ``pairs``); ``pairs_mode``:
    ``auto`` (detect the list's dialect), a dialect name, or ``generate`` (ignore the list)."""
    root = Path(files["images"])
    pair_file = files.get("pairs") if pairs_mode != "generate" else None
    listing = list_folder(root, require_identities=pair_file is None)
    warnings: list[str] = []
    if listing.skipped:
        warnings.append(
            f"{listing.root}: skipped {len(listing.skipped)} identity folder(s) with fewer than two images: "
            f"{', '.join(listing.skipped[:10])}{' ...' if len(listing.skipped) > 10 else ''}"
        )
    paths = list(listing.paths)
    identities = [listing.identities[k] for k in listing.labels.tolist()]
    rules: dict[str, Any] = {}
    counts: dict[str, Any] = {
        "n_identities": len(listing.identities),
        "n_images": len(listing.paths),
        "skipped_identities": len(listing.skipped),
        "ignored_files": listing.ignored,
    }
    if pair_file is not None:
        plist = read_pair_list(pair_file, listing.root, dialect=pairs_mode)
        index = {p: i for i, p in enumerate(paths)}
        list_identities = plist.identities or tuple(image_identity(os.path.relpath(p, listing.root)) for p in plist.paths)
        for p, name in zip(plist.paths, list_identities):
            if p not in index:
                index[p] = len(paths)
                paths.append(p)
                identities.append(name)
        remap = np.array([index[p] for p in plist.paths], dtype=np.int64)
        pairs, issame = remap[plist.pairs], plist.issame
        flat = pairs.reshape(-1)
        warnings += leak_warnings(Path(pair_file).name, [identities[i] for i in flat], plist.folds)
        rules["pairs"] = f"pair list {Path(pair_file).name}, dialect {plist.dialect}"
        rules["pair_list_dialect"] = plist.dialect
        rules["folds"] = plist.fold_rule
        warnings += balance_warnings(Path(pair_file).name, issame, N_FOLDS)
    else:
        generated = generate_pairs(listing.groups, seed, max_pairs)
        pairs, issame = generated.pairs, generated.issame
        rules["pairs"] = (
            f"generated: seed {seed}, 10 folds of {generated.genuine_per_fold} genuine then "
            f"{generated.genuine_per_fold} impostor pairs (facebench.evaluate.folder rule)"
        )
        rules["fold_identities"] = generated.fold_identities
        counts["pairs_per_fold"] = 2 * generated.genuine_per_fold
        if generated.fold_identities == "shared":
            warnings.append(
                f"{listing.root}: only {len(listing.identities)} usable identities (< {2 * N_FOLDS}): folds share "
                "identities, so the 10-fold accuracy is optimistic"
            )
    counts["n_pairs"] = int(len(issame))
    counts["n_genuine"] = int(np.count_nonzero(issame))
    split = None
    if len(listing.identities) >= 2:
        split = identification_split(listing.groups, seed)
        rules["identification"] = (
            f"open set: seed {seed}, {split.n_unenrolled} of {len(listing.identities)} identities unenrolled "
            "(non-mated), one gallery image per enrolled identity, the rest mated probes; cosine scores"
        )
        counts.update(gallery_size=int(len(split.gallery)), n_probes=int(len(split.probes)))
    else:
        rules["identification"] = "not run: fewer than two identity folders with two or more images"
    landmarks = None
    if "landmarks" in files:
        lm = read_landmarks(files["landmarks"], listing.root)
        landmarks = landmark_array(paths, lm, str(files["landmarks"]))
        rules["alignment"] = (
            f"5-point landmarks from {Path(files['landmarks']).name}; images it does not list are 112x112 crops "
            "or detected (see enrolment)"
        )
    else:
        rules["alignment"] = "112x112 images are aligned crops; other images are detected (see enrolment)"
    images = ImageList(origin=str(listing.root), paths=paths, landmarks=landmarks, crops=False)
    inputs = {f"{listing.root.name}/ ({len(paths)} images)": images_digest(listing.root, paths)}
    return FolderData(
        listing, images, pairs, np.asarray(issame, dtype=bool), rules, counts, warnings, inputs, split, identities
    )


def images_digest(root: Path, paths: Sequence[str]) -> str:
    """sha256 over (path relative to ``root``, sha256 of the file) of every image, in order."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(os.path.relpath(p, root).encode("utf-8", "surrogateescape") + b"\0")
        digest.update(bytes.fromhex(sha256_file(p)))
    return digest.hexdigest()


def folder_pair_data(
    files: Mapping[str, Path], seed: int = DEFAULT_SEED, max_pairs: int = DEFAULT_MAX_PAIRS
) -> PairData:
    """The folder's verification pairs as a pair set (2N images in pair order), for doctor and pack."""
    data = read_folder(files, seed, max_pairs)
    flat = data.pairs.reshape(-1)
    paths = [data.images.paths[i] for i in flat]  # type: ignore[index]
    landmarks = data.images.landmarks[flat] if data.images.landmarks is not None else None
    images = ImageList(origin=data.images.origin, paths=paths, landmarks=landmarks, crops=False)
    return PairData(images, data.issame, data.inputs, "folder")


def folder_pairs(
    reader: str, files: Mapping[str, Path], options: Mapping[str, Any], seed: int = DEFAULT_SEED,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> PairData:
    """:func:`folder_pair_data` in the shape of a kind's ``pair_data`` (`facebench.kinds.folder`)."""
    return folder_pair_data(files, seed, max_pairs)


def run_folder(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """Embed every image of the folder once, then verification on the pairs and open-set identification."""
    _, files = ctx.files(spec)
    options = ctx.settings.options
    seed = int(options.get("folder_seed", DEFAULT_SEED) or 0)
    max_pairs = int(options.get("folder_pairs", DEFAULT_MAX_PAIRS) or DEFAULT_MAX_PAIRS)
    data = read_folder(files, seed, max_pairs, str(options.get("pairs") or "auto"))
    for w in data.warnings:
        log.warning(w)
    inputs = ctx.hash_inputs(spec, {k: v for k, v in files.items() if k != "images"}, data.warnings, known=data.inputs)
    features = ctx.features_for(spec, data.images)
    metrics, arrays = verification_metrics(
        features[data.pairs.reshape(-1)], data.issame, ctx.settings.kfold_rule, ctx.settings.tar_rule, N_FOLDS,
        threshold=options.get("threshold"), threshold_unit=str(options.get("threshold_unit", "cosine")),
    )
    arrays["pair_images"] = data.pairs[arrays["pairs_kept"]] if "pairs_kept" in arrays else data.pairs
    own = ctx.embedder.decision_threshold() if ctx.embedder is not None else None
    if own is not None:
        metrics["at_model_threshold"] = at_decision_threshold(features[data.pairs.reshape(-1)], data.issame, own)
    flat = data.pairs.reshape(-1)
    analyses = pair_analyses(
        spec.name, options, ctx.settings.tar_rule, features[flat], data.issame,
        [data.images.paths[i] for i in flat],  # type: ignore[index]
        [data.identities[i] for i in flat],
    )
    metrics.update(analyses.metrics)
    arrays.update(analyses.arrays)
    for w in analyses.warnings:
        log.warning(w)
        data.warnings.append(w)
    extra: dict[str, Any] = {"reader": "folder", "images": str(data.listing.root), **analyses.extra}
    if data.split is not None:
        id_metrics, details, id_arrays = identification_metrics(
            features, data.split, *rates.identification_rules(options)
        )
        for field in ("unmeasurable", "few_events"):
            metrics[field] = {**metrics.get(field, {}), **id_metrics.pop(field)}
        metrics.update(id_metrics)
        extra["identification"] = details
        arrays.update(id_arrays)
        data.counts.update(n_mated=int(id_arrays["mate_ranks"].size), n_nonmated=int(id_arrays["nonmated_scores"].size))
        attributes, _ = image_attributes(options, data.images.paths, data.identities)  # type: ignore[arg-type]
        mated = np.isin(data.split.probe_subjects, data.split.gallery_subjects)
        search = search_analyses(
            spec.name, options, attributes, data.split.probes[mated], data.split.probes[~mated],
            id_arrays["mate_ranks"], id_arrays["mate_scores"], id_arrays["nonmated_scores"],
        )
        metrics.update(search.metrics)
        extra.update(search.extra)
        analyses.rules.update(search.rules)
        analyses.columns.update(search.columns)
        data.warnings.extend(search.warnings)
    for w in rates.unmeasurable_warnings(spec.name, metrics):
        log.warning(w)
        data.warnings.append(w)
    rules = {
        "kfold": ctx.settings.kfold_rule,
        "tar_at_far": ctx.settings.tar_rule,
        "flip": ctx.profile.flip,
        "score": "cosine",
        "n_folds": N_FOLDS,
        **rates.RULES_1TO1,
        **data.rules,
        **analyses.rules,
    }
    if data.split is not None:
        rules["tpir_rule"] = extra["identification"]["tpir_rule"]
    return BenchmarkResult(
        metrics=metrics,
        rules=rules,
        inputs=inputs,
        counts=data.counts,
        warnings=data.warnings,
        arrays=arrays,
        extra=extra,
        columns=analyses.columns,
    )


PACK_JPEG_QUALITY = 95


def pack_folder(
    files: Mapping[str, Path], out: str | Path, seed: int = DEFAULT_SEED, max_pairs: int = DEFAULT_MAX_PAIRS,
    list_out: str | Path | None = None,
) -> dict[str, Any]:
    """Write the folder's pairs (its pair list when ``files`` has ``pairs``, else the generated ones) as an
    insightface ``.bin`` pack: 112x112 crops are stored byte for byte, raw images with landmarks are aligned
    onto the ArcFace 112x112 chip and stored as JPEG (quality 95). ``list_out`` also writes the pairs as a
    ``path_a path_b label`` list relative to the folder. Returns a summary."""
    import cv2

    from facebench.atomic import write_text
    from facebench.extraction.images import ARCFACE_SIZE, arcface_chip, decode_image
    from facebench.io.binpack import write_bin

    data = folder_pair_data(files, seed, max_pairs)
    images = data.images
    root = Path(files["images"])
    chip = arcface_chip(ARCFACE_SIZE)
    blobs: list[bytes] = []
    cache: dict[str, bytes] = {}
    aligned = 0
    for i, path in enumerate(images.paths):  # type: ignore[union-attr]
        if path not in cache:
            lmk = images.landmarks[i] if images.landmarks is not None else None
            if lmk is not None and np.isfinite(lmk).all():
                crop = images.load_chip(i, chip)
                ok, buffer = cv2.imencode(
                    ".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, PACK_JPEG_QUALITY]
                )
                if not ok:  # pragma: no cover
                    raise FacebenchError(f"{path}: JPEG encoding of the aligned chip failed")
                cache[path] = buffer.tobytes()
                aligned += 1
            else:
                raw = Path(path).read_bytes()
                shape = decode_image(raw, path).shape
                if shape[:2] != (ARCFACE_SIZE, ARCFACE_SIZE):
                    raise FacebenchError(
                        f"{path}: a {shape[1]}x{shape[0]} image without landmarks; a pack holds 112x112 aligned "
                        "crops: give a landmark file (PATH/landmarks.txt or --landmarks) or use aligned crops"
                    )
                cache[path] = raw
        blobs.append(cache[path])
    digest = write_bin(out, blobs, data.issame)
    if list_out is not None:
        lines = []
        for k in range(len(data.issame)):
            a, b = (os.path.relpath(images.paths[2 * k + j], root) for j in (0, 1))  # type: ignore[index]
            if any(ch.isspace() for ch in a + b):
                raise FacebenchError(f"{a!r} / {b!r}: a pair list cannot hold paths with whitespace")
            lines.append(f"{a} {b} {int(data.issame[k])}")
        write_text(list_out, "\n".join(lines) + "\n")
    return {
        "out": str(out),
        "sha256": digest,
        "n_pairs": int(len(data.issame)),
        "n_genuine": int(np.count_nonzero(data.issame)),
        "fold_balance": [[int(s), int(d)] for s, d in _fold_counts(data.issame)],
        "distinct_images": len(cache),
        "aligned": aligned,
    }


def _fold_counts(issame: np.ndarray) -> list[tuple[int, int]]:
    from facebench.metrics.kfold import fold_balance

    return [tuple(row) for row in fold_balance(issame, N_FOLDS).tolist()]  # type: ignore[misc]
