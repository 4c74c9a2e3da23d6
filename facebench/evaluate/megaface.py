"""MegaFace challenge 1: FaceScrub probes against distractor lists of 10 ... 1,000,000 images (PROTOCOLS 4).

Rules (every one is named in the results' ``rules``):

- Embedding: the flip-combined feature, L2-normalised (float64 norm, float32 result); score: cosine
  (float32 dot products).
- Noise (``--noise``): ``insightface`` (default) replaces each FaceScrub image of ``facescrub_noises.txt``
  by its identity centre (the normalised sum of the identity's clean embeddings) and excludes every
  distractor of ``megaface_noises.txt`` (insightface gives it a 513th dimension of 100, so it can never
  rank); ``facexzoo`` replaces noisy FaceScrub images the same way and makes each noisy distractor a zero
  vector (score 0 with every probe, so it still ranks above a negative mate score); ``none`` uses the
  raw features.
- Identification (:mod:`facebench.metrics.megaface`): each image of an identity in turn is the gallery
  mate, every other image of the identity a probe (sum M(M-1) trials); CMC rank 1..10 and rank-1 for every
  distractor list present, tie rule ``--tie-rule`` (``>=`` default, FaceX-Zoo; ``>`` strict).
- Verification: TAR at FAR 1e-6, conventional definition (genuine = same-identity probe pairs, impostors =
  every probe x distractor pair of the largest list, best TAR of any threshold with FAR <= 1e-6); the
  devkit's own scorer is closed source.

The probe x distractor score matrix is computed once, streamed in blocks of distractors: the lists are
independent samples, so the union of the selected lists is streamed once and every block updates, for
each list it belongs to, each probe's 10 largest scores and the largest scores overall. Nothing of size
probes x distractors is ever held.

Features come from ``--features DIR`` (``facescrub.npy``, ``megaface.npy`` + ``megaface.txt``), from the
devkit's matio files (``--feature-suffix`` without a checkpoint; roots ``facescrub_features`` and
``megaface_features``), or from the images through the checkpoint (``facescrub_images``,
``megaface_images``, optional landmark files). ``--save-features DIR`` writes the ``--features`` layout,
and with ``--feature-suffix`` also the devkit's matio trees (``DIR/FaceScrub_Features``,
``DIR/MegaFace_Features``) of the L2-normalised features, ready for the devkit's ``run_experiment.py``.
Devkit-style ``cmc_facescrub_megaface_<alg>_<size>_1.json`` files go to the run's output directory.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from facebench import kinds
from facebench.benchmarks import Benchmark
from facebench.errors import FacebenchError
from facebench.evaluate.checks import check_embeddings, may_be_degenerate
from facebench.evaluate import rates
from facebench.keys import rate_key
from facebench.evaluate.common import BenchmarkResult, RunContext, table_cache
from facebench.atomic import sha256_file, write_text
from facebench.extraction.images import ImageList
from facebench.io import megaface as mfio
from facebench.metrics import megaface as mmf
from facebench.metrics import operating
from facebench.metrics.blas import blas_threads, single_threaded_blas
from facebench.progress import progress

log = logging.getLogger(__name__)

NOISE_RULES: tuple[str, ...] = ("insightface", "facexzoo", "none")
FAR_TARGET = 1e-6
TAR_RULE = "conventional"
VERIFICATION_RULE = (
    "best TAR of any threshold with FAR <= target (accept score >= t); genuine = same-identity probe pairs, "
    "impostors = every probe x distractor pair of the largest list; the devkit's scorer is closed source"
)
MATIO_DIRS = ("FaceScrub_Features", "MegaFace_Features")


def _tar_metrics(
    points: dict[int, mmf.VerificationPoint], n_impostors: dict[int, int], n_genuine: int, largest: int, key: str
) -> dict[str, Any]:
    """``tar_at_far`` (the largest list) and ``tar_at_far_by_size``: None where the list's impostor pairs
    cannot resolve the target (fewer than 1 / FAR), listed in ``unmeasurable`` with the reason; a point
    accepting fewer than 10 impostors in ``few_events`` with its intervals."""
    by_size: dict[str, dict[str, float | None]] = {}
    unmeasurable: dict[str, str] = {}
    few: dict[str, Any] = {}
    for size, p in points.items():
        n = n_impostors[size]
        measurable = operating.resolvable(n, FAR_TARGET)
        by_size[str(size)] = {key: p.tar if measurable else None}
        if not measurable:
            unmeasurable[f"tar_at_far_by_size.{size}.{key}"] = operating.unresolvable_reason(n, "impostor pairs")
        elif round(p.far * n) < operating.FEW_EVENTS:
            few[f"tar_at_far_by_size.{size}.{key}"] = rates.few_events_entry(
                round(p.far * n), n, round(p.tar * n_genuine), n_genuine
            )
    out: dict[str, Any] = {"tar_at_far": {key: by_size[str(largest)][key]}, "tar_at_far_by_size": by_size}
    for notes in (unmeasurable, few):
        if f"tar_at_far_by_size.{largest}.{key}" in notes:
            notes[f"tar_at_far.{key}"] = notes[f"tar_at_far_by_size.{largest}.{key}"]
    out["unmeasurable"] = unmeasurable
    out["few_events"] = few
    return out


def list_role(size: int) -> str:
    """The file role of the distractor list of ``size`` in ``protocols/megaface.toml``."""
    return f"list_{size}"


def devkit_alg_name(suffix: str) -> str:
    """The algorithm name the devkit derives from a feature suffix (``_r100.bin`` -> ``r100``)."""
    return suffix.split(".")[0].strip("_") or "facebench"


def cmc_file_name(alg: str, size: int, set_number: int = 1) -> str:
    """The devkit's result file name: ``cmc_facescrub_megaface_<alg>_<size>_<set>.json``."""
    return f"cmc_facescrub_megaface_{alg}_{size}_{set_number}.json"


# ------------------------------------------------------------------------------------------- distractors


class DistractorRows(Protocol):
    """Distractor features by row: ``read(rows)`` returns ``(len(rows), dim)`` floats."""

    origin: str

    def read(self, rows: np.ndarray) -> np.ndarray: ...


@dataclass
class ArrayRows:
    """Distractor features held in memory (matio files, extraction)."""

    array: np.ndarray
    origin: str

    def read(self, rows: np.ndarray) -> np.ndarray:
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:
            return self.array[rows[0] : rows[-1] + 1]
        return self.array[rows]


@dataclass
class FileRows:
    """Distractor features streamed from ``megaface.npy``."""

    rows_reader: mfio.NpyRows
    origin: str

    def read(self, rows: np.ndarray) -> np.ndarray:
        return self.rows_reader.take(rows)


def list_rows(row_paths: Sequence[str], lists: dict[int, list[str]]) -> dict[int, np.ndarray]:
    """Per list, the row of ``row_paths`` (the paths of a feature matrix's rows, in order) holding each of
    its paths; -1 where none does. A list that is a prefix of the rows (the largest list, in the layout
    facebench writes) is rows 0..n-1; the others are found in one pass over the rows against a table of
    their own paths, so no table of a million rows is built."""
    out: dict[int, np.ndarray] = {}
    rest: dict[int, list[str]] = {}
    for size, paths in lists.items():
        if len(paths) <= len(row_paths) and paths == row_paths[: len(paths)]:
            out[size] = np.arange(len(paths), dtype=np.int64)
        else:
            rest[size] = paths
    if rest:
        wanted = dict(zip(dict.fromkeys(itertools.chain.from_iterable(rest.values())), itertools.count()))
        ids = np.fromiter(map(wanted.get, row_paths, itertools.repeat(-1)), dtype=np.int64, count=len(row_paths))
        found = np.flatnonzero(ids >= 0)
        row_of_id = np.full(len(wanted), -1, dtype=np.int64)
        row_of_id[ids[found]] = found
        for size, paths in rest.items():
            out[size] = row_of_id[np.fromiter(map(wanted.__getitem__, paths), dtype=np.int64, count=len(paths))]
    return out


def noisy_paths(paths: Sequence[str], noise: set[str]) -> np.ndarray:
    """Bool per path: on the MegaFace noise list, matched on its last three components
    (:func:`facebench.io.megaface.megaface_noise_key`). When every path has exactly three components (the
    devkit's own form) each path is its own key and is tested as it is."""
    if not noise:
        return np.zeros(len(paths), dtype=bool)
    if set(map(str.count, paths, itertools.repeat("/"))) == {2} and "\\" not in "".join(paths):
        return np.fromiter(map(noise.__contains__, paths), dtype=bool, count=len(paths))
    key = mfio.megaface_noise_key
    return np.fromiter((key(p) in noise for p in paths), dtype=bool, count=len(paths))


@dataclass
class Distractors:
    """The rows of the distractor matrix to stream and, for each list, which of them belong to it."""

    source: DistractorRows
    rows: np.ndarray  # sorted unique rows of the matrix used by any selected list
    paths: Sequence[str]  # devkit path of each entry of ``rows``
    members: dict[int, np.ndarray] = field(default_factory=dict)  # size -> bool over ``rows``
    noisy: np.ndarray | None = None  # bool over ``rows``: on the MegaFace noise list (when already known)


def union_paths(lists: dict[int, list[str]]) -> list[str]:
    """The distinct paths of all lists: the largest list in its order, then what each smaller one adds."""
    seen: set[str] = set()
    out: list[str] = []
    for size in sorted(lists, reverse=True):
        for p in lists[size]:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def _members_from_rows(row_paths: Sequence[str], lists: dict[int, list[str]], list_files: dict[int, Path],
                       features_txt: str) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    per_list = list_rows(row_paths, lists)
    for size, rows in per_list.items():
        if rows.size and rows.min() < 0:
            i = int(np.argmin(rows >= 0))
            raise FacebenchError(
                f"{list_files[size]}: path[{i}] {lists[size][i]} has no feature row in {features_txt}; "
                "the features must cover every image of the distractor lists"
            )
    n_rows = len(row_paths)  # rows are 0 .. len - 1
    marks = {}
    for size, rows in per_list.items():
        mark = np.zeros(n_rows, dtype=bool)
        mark[rows] = True
        if np.count_nonzero(mark) != rows.size:  # two paths of the list on one row: a repeated path
            mfio.check_unique_paths(lists[size], list_files[size])
        marks[size] = mark
    used = np.flatnonzero(np.logical_or.reduce(list(marks.values()))) if marks else np.zeros(0, np.int64)
    return used, {size: mark[used] for size, mark in marks.items()}


# ------------------------------------------------------------------------------------------- streaming


def stream_top_scores(
    probes: np.ndarray,
    distractors: Distractors,
    excluded: np.ndarray,
    zeroed: np.ndarray,
    k: int,
    overall: dict[int, int],
    chunk_rows: int = 2048,
    workers: int = 0,
) -> dict[int, mmf.TopScores]:
    """Stream the probe x distractor scores once and keep, per list, each probe's ``k`` largest scores
    and the ``overall[size]`` largest scores overall.

    ``probes`` are L2-normalised float32 ``(P, D)``; ``excluded`` (bool over ``distractors.rows``) never
    rank (their scores are ``-inf``); ``zeroed`` distractors are zero vectors (score 0). Blocks of
    ``chunk_rows`` distractors go to a ``concurrent.futures`` thread pool of ``workers`` threads (0: as many
    as the BLAS library has), each running single-threaded matrix products into its own top lists, which
    are merged at the end (exact): the bookkeeping then runs on every core instead of waiting between
    multi-threaded products. A block's group maxima (:func:`facebench.metrics.megaface.group_maxima`) are
    taken once and serve every list that takes the whole block; a list that takes only some of its rows
    holds a copy of them and folds them in batches of ``chunk_rows`` (:class:`_WorkerTops`). An error is raised for the first failing block in stream order (the pool's
    ``map`` yields in order and cancels the blocks not yet started).
    """
    rows = distractors.rows
    n_chunks = -(-rows.size // chunk_rows)
    n_workers = max(1, min(workers or blas_threads(), n_chunks))
    probes_t = np.ascontiguousarray(np.asarray(probes, dtype=np.float32).T)  # C order: 2% less CPU than a transposed view
    states: list[_WorkerTops] = []
    local = threading.local()

    def own_state() -> _WorkerTops:
        """This thread's top lists (created on its first block)."""
        if not hasattr(local, "tops"):
            local.tops = _WorkerTops(
                {size: mmf.TopScores(probes.shape[0], k, overall.get(size, 0)) for size in distractors.members},
                chunk_rows,
            )
            states.append(local.tops)
        return local.tops

    def process(chunk: int) -> None:
        worker = own_state()
        tops = worker.tops
        start = chunk * chunk_rows
        stop = min(start + chunk_rows, rows.size)
        raw = distractors.source.read(rows[start:stop])
        if raw.shape[1] != probes.shape[1]:
            raise FacebenchError(
                f"{distractors.source.origin}: {raw.shape[1]}-dim distractor features but the probes are "
                f"{probes.shape[1]}-dim"
            )
        squared = mmf.squared_norms(raw)
        if may_be_degenerate(squared):  # the norms prove most blocks fine; the full check names the rows
            check_embeddings(raw, distractors.source.origin, lambda r: distractors.paths[r], row_offset=start)
        emb = mmf.l2_normalise(raw, squared, in_place=raw.flags.owndata)  # a copy of the rows: divided in place
        z = zeroed[start:stop]
        if z.any():
            emb[z] = 0.0
        scores = emb @ probes_t  # (distractors, probes): a list's distractors are rows
        x = excluded[start:stop]
        if x.any():
            scores[x] = -np.inf
        width = stop - start
        maxima = mmf.group_maxima(scores)  # one pass, shared by the lists that take the whole block
        counts = {size: int(np.count_nonzero(m[start:stop])) for size, m in distractors.members.items()}
        order = sorted((c, size) for size, c in counts.items() if c)
        for i, (count, size) in enumerate(order):
            member = distractors.members[size][start:stop]
            if count == width:
                tops[size].update(scores, maxima)
            elif i == len(order) - 1:  # the last list takes the block in place: its other rows are -inf
                scores[~member] = -np.inf
                tops[size].update(scores, maxima)  # (still upper bounds of the block's group maxima)
            else:  # a copy of its rows, folded in once a batch of them is held
                worker.hold(size, scores[member])
        bar.update(width)

    bar = progress(int(rows.size), "megaface: distractors", "distractors")
    if n_workers == 1:
        for chunk in range(n_chunks):
            process(chunk)
    else:
        with single_threaded_blas(), ThreadPoolExecutor(n_workers, thread_name_prefix="megaface") as pool:
            for _ in pool.map(process, range(n_chunks)):
                pass
    bar.close()
    if not states:
        own_state()
    for worker in states:
        worker.flush()
    tops = states[0].tops
    for other in states[1:]:
        for size, top in tops.items():
            top.merge(other.tops[size])
    return tops


class _WorkerTops:
    """One worker's top lists, and the rows of the lists that take only some rows of a block (a smaller list
    of a union), held until ``batch_rows`` of them are folded in at once: such a list then pays the fixed
    cost of :meth:`TopScores.update` once a batch instead of once a block (the result is the same: a top
    list does not depend on the order or grouping of its scores)."""

    def __init__(self, tops: dict[int, mmf.TopScores], batch_rows: int) -> None:
        self.tops, self.batch_rows = tops, batch_rows
        self.held: dict[int, list[np.ndarray]] = {size: [] for size in tops}
        self.held_rows = dict.fromkeys(tops, 0)

    def hold(self, size: int, rows: np.ndarray) -> None:
        """Keep ``rows`` (score rows of list ``size``, a copy) for the next batch."""
        self.held[size].append(rows)
        self.held_rows[size] += rows.shape[0]
        if self.held_rows[size] >= self.batch_rows:
            self.flush(size)

    def flush(self, size: int | None = None) -> None:
        """Fold in the rows held for ``size`` (every list when None)."""
        for s in self.tops if size is None else (size,):
            if self.held[s]:
                self.tops[s].update(np.concatenate(self.held[s]) if len(self.held[s]) > 1 else self.held[s][0])
                self.held[s], self.held_rows[s] = [], 0


# ------------------------------------------------------------------------------------------- run


@dataclass
class _Inputs:
    probes: mfio.ProbeList
    list_files: dict[int, Path]
    paths: dict[str, Path]
    digests: dict[Path, str] = field(default_factory=dict)

    def sha256(self, path: Path) -> str:
        """sha256 of an input file, read once per run (the provenance and the table cache's key share it)."""
        if path not in self.digests:
            self.digests[path] = sha256_file(path)
        return self.digests[path]

    @functools.cached_property
    def lists(self) -> dict[int, list[str]]:
        """The selected distractor lists' paths, read on first use (a run whose list-to-row mapping is
        cached (:func:`_distractor_rows`) never parses them)."""
        # repeated paths are found when the lists are mapped to feature rows (`_members_from_rows`)
        return {size: mfio.read_distractor_list(path, check_unique=False) for size, path in self.list_files.items()}


def _expected_path(spec: Benchmark, ctx: RunContext, role: str) -> str:
    override = ctx.settings.file_overrides.get(f"{spec.name}.{role}")
    if override:
        return override
    for src in spec.sources:
        if role in src.files:
            return str(Path(ctx.settings.data_root) / src.files[role])
    return role


def parse_sizes(text: str) -> list[int]:
    """``--megaface-sizes`` text (``"10,1000000"``) as sorted sizes; empty means every list present."""
    sizes = []
    for token in (t.strip().replace("_", "") for t in (text or "").split(",")):
        if not token:
            continue
        try:
            size = int(token)
        except ValueError:
            raise FacebenchError(f"--megaface-sizes: {token!r} is not a size; use e.g. 10,1000,1000000") from None
        if size not in mfio.DISTRACTOR_SIZES:
            raise FacebenchError(f"--megaface-sizes: {size} is not a devkit list size {mfio.DISTRACTOR_SIZES}")
        sizes.append(size)
    return sorted(set(sizes))


def read_inputs(spec: Benchmark, ctx: RunContext, warnings: list[str]) -> _Inputs:
    """The probe list and the selected distractor lists (``--megaface-sizes``), with count checks."""
    _, paths = ctx.files(spec)
    if "facescrub_list" not in paths:
        raise FacebenchError(f"{spec.name}: the FaceScrub probe list is missing ({_expected_path(spec, ctx, 'facescrub_list')})")
    probes = mfio.read_probe_list(paths["facescrub_list"])
    wanted = parse_sizes(str(ctx.settings.options.get("megaface_sizes", "") or ""))
    present = [s for s in mfio.DISTRACTOR_SIZES if list_role(s) in paths]
    for size in wanted:
        if size not in present:
            raise FacebenchError(
                f"{spec.name}: no distractor list of size {size} at {_expected_path(spec, ctx, list_role(size))} "
                f"(give it with --file {spec.name}.{list_role(size)}=PATH)"
            )
    sizes = wanted or present
    if not sizes:
        looked = ", ".join(_expected_path(spec, ctx, list_role(s)) for s in mfio.DISTRACTOR_SIZES[:1])
        raise FacebenchError(
            f"{spec.name}: no distractor list found (looked for {looked} and the other sizes); give one with "
            f"--file {spec.name}.list_1000000=PATH"
        )
    names, _ = probes.identity_index()
    for key, got in (("n_probes", len(probes)), ("n_identities", len(names))):
        expected = spec.counts.get(key)
        if expected and expected != got:
            _warn(warnings, f"{spec.name}: {key} is {got}, the official list has {expected}: numbers are not comparable")
    return _Inputs(probes, {s: paths[list_role(s)] for s in sizes}, paths)


def _warn(warnings: list[str], message: str) -> None:
    log.warning(message)
    warnings.append(message)


def _image_list(root: Path, entries: Sequence[str], landmarks: Path | None, origin: str) -> ImageList:
    names: Sequence[str] = entries
    points = None
    if landmarks is not None:
        names, points = mfio.match_landmarks(entries, mfio.read_landmark_file(landmarks), str(landmarks))
    return ImageList(origin, paths=[os.path.join(str(root), n) for n in names], landmarks=points)


def load_features(
    spec: Benchmark, ctx: RunContext, inputs: _Inputs, suffix: str, noise: tuple[Path | None, set[str]] = (None, set())
) -> tuple[np.ndarray, Distractors, str]:
    """Probe features ``(P, D)`` in list order, the distractors to stream, and the source's name. ``noise``: the
    MegaFace noise list file and its keys (none: ``(None, set())``)."""
    s = ctx.settings
    if s.features is not None:
        if not s.features.is_dir():
            raise FacebenchError(
                f"--features {s.features}: MegaFace needs a directory holding {mfio.FACESCRUB_NPY}, "
                f"{mfio.MEGAFACE_NPY} and {mfio.MEGAFACE_TXT}"
            )
        feats = mfio.open_features_dir(s.features, len(inputs.probes), read_paths=False)
        distractors = _distractor_rows(ctx, inputs, feats, noise)
        _check_probes(feats.facescrub, str(s.features / mfio.FACESCRUB_NPY), inputs.probes.paths)
        return feats.facescrub, distractors, "features_dir"
    lists = inputs.lists
    union = union_paths(lists)
    rows, members = _members_from_rows(union, lists, inputs.list_files, "the union")
    if suffix and ctx.encoder is None:
        roots = {}
        for role in ("facescrub_features", "megaface_features"):
            if role not in inputs.paths:
                raise FacebenchError(
                    f"{spec.name}: --feature-suffix reads the devkit's matio files, but the {role} directory "
                    f"{_expected_path(spec, ctx, role)} does not exist (give it with --file {spec.name}.{role}=DIR)"
                )
            roots[role] = inputs.paths[role]
        probes = mfio.read_matio_features(roots["facescrub_features"], inputs.probes.paths, suffix)
        array = mfio.read_matio_features(roots["megaface_features"], union, suffix, dim=probes.shape[1])
        _check_probes(probes, str(roots["facescrub_features"]), inputs.probes.paths)
        source = ArrayRows(array, str(roots["megaface_features"]))
        return probes, Distractors(source, rows, union, members), "matio"
    if ctx.encoder is None:
        raise FacebenchError("no checkpoint and no --features: nothing to evaluate")
    for role in ("facescrub_images", "megaface_images"):
        if role not in inputs.paths:
            raise FacebenchError(
                f"{spec.name}: extracting features needs the image root {_expected_path(spec, ctx, role)} "
                f"(give it with --file {spec.name}.{role}=DIR, or evaluate --features DIR)"
            )
    if s.save_features is not None and s.save_features.suffix == ".npy":
        raise FacebenchError("--save-features: MegaFace writes a directory (facescrub.npy, megaface.npy, megaface.txt)")
    probe_images = _image_list(
        inputs.paths["facescrub_images"], inputs.probes.paths, inputs.paths.get("facescrub_landmarks"), "FaceScrub"
    )
    distractor_images = _image_list(
        inputs.paths["megaface_images"], union, inputs.paths.get("megaface_landmarks"), "MegaFace"
    )
    probes = ctx.features_for(spec, probe_images, part="facescrub", label="facescrub")
    array = ctx.features_for(spec, distractor_images, part="megaface", label="megaface")
    if s.save_features is not None:
        mfio.write_path_list(s.save_features / mfio.MEGAFACE_TXT, union)
    source = ArrayRows(np.asarray(array, dtype=np.float32), "extracted MegaFace features")
    return np.asarray(probes, dtype=np.float32), Distractors(source, rows, union, members), "extracted"


ROWS_CACHE_VERSION = 1
"""Raised whenever the rule mapping lists to feature rows, or the noise rule, changes what it gives."""


def _distractor_rows(
    ctx: RunContext, inputs: _Inputs, feats: mfio.FeaturesDir, noise: tuple[Path | None, set[str]]
) -> Distractors:
    """The rows of ``megaface.npy`` the lists use, each list's members and the noisy rows, for ``--features
    DIR``. Mapping a million list paths to rows (reading ``megaface.txt``, the list files, a table of their
    paths, the noise keys) is about 1.5 s of single-threaded Python before the stream can start: the result
    is kept in the table cache (:mod:`facebench.io.tablecache`, off with ``--no-cache``) under the sha256 of
    ``megaface.txt``, of every list file and of the noise list, and ``megaface.npy``'s row count; a run that
    finds it reads ``megaface.txt`` only if an error must name a row's path."""
    txt = feats.directory / mfio.MEGAFACE_TXT
    source = FileRows(feats.megaface, str(feats.megaface.path))
    sizes = sorted(inputs.list_files)
    cache = table_cache(ctx.settings)
    noise_file, noise_keys = noise
    digest = ""
    columns = [("rows", "int64")] + [(f"list_{size}", "int8") for size in sizes] + [("noisy", "int8")]
    if cache is not None:  # each file hashed by its path here (two inputs may share a name)
        fields = {
            "version": ROWS_CACHE_VERSION,
            "megaface_txt": sha256_file(txt),
            "npy_rows": len(feats.megaface),
            "lists": {str(size): inputs.sha256(inputs.list_files[size]) for size in sizes},
            "noise": inputs.sha256(noise_file) if noise_file is not None else None,
        }
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()
        stored = cache.load(digest, columns)
        if stored is not None:
            rows = stored[0]
            members = {size: stored[1 + i].view(bool) for i, size in enumerate(sizes)}
            return Distractors(source, rows, _RowPaths(txt, rows), members, stored[-1].view(bool))
    row_paths = mfio.read_path_list(txt)
    mfio.check_path_count(txt, row_paths, feats.megaface)
    rows, members = _members_from_rows(row_paths, inputs.lists, inputs.list_files, str(txt))
    all_rows = rows.size == len(row_paths)  # rows are sorted and unique: every row, in order
    paths = row_paths if all_rows else [row_paths[r] for r in rows]
    noisy = noisy_paths(paths, noise_keys)
    if cache is not None:
        sink = cache.writer(digest, columns)
        for i, values in enumerate([rows, *(members[size] for size in sizes), noisy]):
            sink.add(i, values.view(np.int8) if values.dtype == bool else values)
        sink.commit()
    return Distractors(source, rows, paths, members, noisy)


class _RowPaths(Sequence[str]):
    """The devkit path of each streamed row, read from ``megaface.txt`` when first asked for (error
    messages, ``--save-features``)."""

    def __init__(self, txt: Path, rows: np.ndarray) -> None:
        self.txt, self.rows = txt, rows

    @functools.cached_property
    def _lines(self) -> list[str]:
        return mfio.read_path_list(self.txt)

    def __len__(self) -> int:
        return int(self.rows.size)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self._lines[int(r)] for r in self.rows[index]]
        return self._lines[int(self.rows[index])]


def _check_probes(features: np.ndarray, origin: str, paths: Sequence[str]) -> None:
    """`check_embeddings` on probe features, naming each row's FaceScrub path."""
    check_embeddings(features, origin, lambda r: paths[r])


def _save_converted(ctx: RunContext, kind: str, probes: np.ndarray, inputs: _Inputs, distractors: Distractors,
                    suffix: str) -> list[str]:
    """``--save-features``: the ``--features`` layout for matio input; matio trees for other input with a
    ``--feature-suffix``. Returns what was written."""
    target = ctx.settings.save_features
    if target is None:
        return []
    written = []
    if kind == "matio":
        array = distractors.source.array  # type: ignore[attr-defined]
        mfio.write_features_dir(target, probes, array, distractors.paths)
        written.append(str(target))
    elif suffix:
        fs_root, mf_root = (target / name for name in MATIO_DIRS)
        mfio.write_matio_features(fs_root, inputs.probes.paths, mmf.l2_normalise(probes), suffix)
        chunk = 65536
        for start in range(0, distractors.rows.size, chunk):
            rows = distractors.rows[start : start + chunk]
            block = mmf.l2_normalise(distractors.source.read(rows))
            mfio.write_matio_features(mf_root, distractors.paths[start : start + chunk], block, suffix)
        written += [str(fs_root), str(mf_root)]
    return written


def run_benchmark(spec: Benchmark, ctx: RunContext) -> BenchmarkResult:
    """MegaFace challenge 1: CMC and rank-1 per distractor list, TAR at FAR 1e-6 at the largest list."""
    options = kinds.get(spec.kind).check_options(spec.options, f"{spec.path}: [options]")
    max_rank, chunk_rows, roc_max_far = options.max_rank, options.chunk_rows, options.roc_max_far
    opts = ctx.settings.options
    noise = str(opts.get("noise", "insightface") or "insightface")
    tie_rule = str(opts.get("tie_rule", ">=") or ">=")
    suffix = str(opts.get("feature_suffix", "") or "")
    if noise not in NOISE_RULES:
        raise FacebenchError(f"unknown --noise {noise!r}; use {', '.join(NOISE_RULES)}")
    if tie_rule not in mmf.TIE_RULES:
        raise FacebenchError(f"unknown --tie-rule {tie_rule!r}; use '>=' or '>'")
    warnings: list[str] = []
    inputs = read_inputs(spec, ctx, warnings)
    hashed = {role: p for role, p in inputs.paths.items() if p.is_file()}
    known: dict[str, str] = {}
    for path in hashed.values():
        known.setdefault(path.name, inputs.sha256(path))
    inputs_sha = ctx.hash_inputs(spec, hashed, warnings, known)

    # noise lists
    fs_noisy = np.zeros(len(inputs.probes), dtype=bool)
    mf_noise: set[str] = set()
    if noise != "none":
        for role in ("facescrub_noises", "megaface_noises"):
            if role not in inputs.paths:
                raise FacebenchError(
                    f"{spec.name}: --noise {noise} needs {_expected_path(spec, ctx, role)} (insightface's noise "
                    f"list; give it with --file {spec.name}.{role}=PATH) or use --noise none"
                )
        fs_names = mfio.read_facescrub_noises(inputs.paths["facescrub_noises"])
        fs_noisy = np.array([mfio.facescrub_noise_key(p) in fs_names for p in inputs.probes.paths], dtype=bool)
        mf_noise = mfio.read_megaface_noises(inputs.paths["megaface_noises"])

    noise_file = inputs.paths.get("megaface_noises") if noise != "none" else None
    raw_probes, distractors, source_kind = load_features(spec, ctx, inputs, suffix, (noise_file, mf_noise))
    n_listed = {size: int(np.count_nonzero(m)) for size, m in distractors.members.items()}  # = each list's length
    for size, count in n_listed.items():  # (a list path maps to one row, and no two to the same)
        if count != size:
            _warn(warnings, f"{spec.name}: {inputs.list_files[size]} lists {count} distractors, not {size}")
    saved = _save_converted(ctx, source_kind, raw_probes, inputs, distractors, suffix)

    names, labels = inputs.probes.identity_index()
    probes = mmf.l2_normalise(raw_probes)
    if noise != "none" and fs_noisy.any():
        probes, orphans = mmf.identity_centres_for_noise(probes, labels, fs_noisy)
        for label in orphans:
            _warn(warnings, f"{spec.name}: every image of {names[label]} is on the noise list; kept unchanged")
    mf_noisy = distractors.noisy if distractors.noisy is not None else noisy_paths(distractors.paths, mf_noise)
    excluded = mf_noisy if noise == "insightface" else np.zeros_like(mf_noisy)
    zeroed = mf_noisy if noise == "facexzoo" else np.zeros_like(mf_noisy)
    if zeroed.any():
        _warn(warnings, f"{spec.name}: the facexzoo noise rule scores {int(np.count_nonzero(zeroed))} noisy "
              "distractor(s) as zero vectors (cosine 0 with every probe), as FaceX-Zoo does; --noise insightface "
              "excludes them instead")

    n_probes = probes.shape[0]
    used = {size: int(np.count_nonzero(m & ~excluded)) for size, m in distractors.members.items()}
    overall = {
        size: max(mmf.impostors_needed(n_probes * n, roc_max_far), mmf.impostors_needed(n_probes * n, FAR_TARGET))
        for size, n in used.items()
    }
    tops = stream_top_scores(probes, distractors, excluded, zeroed, max_rank, overall, chunk_rows)

    genuine_matrix = probes @ probes.T
    trial_p, trial_g = mmf.megaface_trials(labels)
    trial_scores = genuine_matrix[trial_p, trial_g]
    pair_i, pair_j = mmf.genuine_pairs(labels)
    pair_scores = genuine_matrix[pair_i, pair_j]

    sizes = sorted(tops)
    hits = {size: mmf.rank_hits(trial_scores, trial_p, tops[size].per_probe, tie_rule) for size in sizes}
    cmc = {size: np.count_nonzero(h, axis=0) / h.shape[0] for size, h in hits.items()}
    curves, points = {}, {}
    for size in sizes:
        if used[size] == 0:
            continue
        n_imp = n_probes * used[size]
        curves[size] = mmf.verification_curve(pair_scores, tops[size].overall, n_imp)
        points[size] = mmf.tar_at_far(pair_scores, tops[size].overall, n_imp, FAR_TARGET)
    largest = max(sizes)
    if largest not in points:
        raise FacebenchError(f"{spec.name}: every distractor of the {largest} list is excluded as noise")

    alg = devkit_alg_name(suffix)
    cmc_files = []
    for size in sizes:
        doc = {"cmc": [list(range(max_rank)), [float(v) for v in cmc[size]]]}
        if size in curves:
            doc["roc"] = [curves[size].fpr.tolist(), curves[size].tpr.tolist()]
        path = ctx.artifact_dir / cmc_file_name(alg, size)
        if ctx.write_artifacts:
            write_text(path, json.dumps(doc))  # compact: the indented encoder is pure Python, 10x slower
        cmc_files.append(str(Path(ctx.settings.out) / cmc_file_name(alg, size)))

    key = rate_key(FAR_TARGET)
    metrics: dict[str, Any] = {
        "rank1": {str(size): float(cmc[size][0]) for size in sizes},
        "cmc": {str(size): [float(v) for v in cmc[size]] for size in sizes},
        **_tar_metrics(points, {size: n_probes * used[size] for size in points}, int(pair_scores.size), largest, key),
    }
    for w in rates.unmeasurable_warnings(spec.name, metrics):
        _warn(warnings, w)
    rules = {
        "noise": noise,
        "tie_rule": tie_rule,
        "tar_at_far": TAR_RULE,
        "verification": VERIFICATION_RULE,
        "verification_size": largest,
        "score": "cosine",
        "embedding": "l2(f(x)+f(flip(x)))" if ctx.profile.flip == "add" else f"l2(flip={ctx.profile.flip})",
        "identification": "each image in turn is the gallery mate, the identity's other images are probes",
        "features": source_kind,
        "max_rank": max_rank,
    }
    if source_kind != "extracted":
        rules["embedding"] = "l2(given features)"
    counts = {
        "n_probes": n_probes,
        "n_identities": len(names),
        "n_trials": int(trial_p.size),
        "n_genuine_pairs": int(pair_i.size),
        "n_distractors": {str(size): n_listed[size] for size in sizes},
        "n_distractors_used": {str(size): used[size] for size in sizes},
        "n_facescrub_noisy": int(fs_noisy.sum()) if noise != "none" else 0,
        "n_megaface_noisy": {str(size): int(np.count_nonzero(distractors.members[size] & mf_noisy)) for size in sizes},
    }
    largest_curve = curves[largest]
    arrays = {
        "sizes": np.asarray(sizes, dtype=np.int64),
        "cmc": np.stack([cmc[size] for size in sizes]),
        "roc_fpr": largest_curve.fpr,
        "roc_tpr": largest_curve.tpr,
        "roc_thresholds": largest_curve.thresholds,
        # per trial (rows of ``sizes``): rank-1 hit; the identity of the trial (for identity bootstraps)
        "rank1_hits": np.stack([hits[size][:, 0] for size in sizes]),
        "trial_identity": labels[trial_p].astype(np.int32),
        # per genuine pair: accepted at the largest list's TAR@FAR threshold (score > tau); its identity
        "genuine_accepted": pair_scores.astype(np.float32) > np.float32(points[largest].threshold),
        "genuine_identity": labels[pair_i].astype(np.int32),
    }
    extra = {
        "cmc_files": cmc_files,
        "verification": {"size": largest, "far": points[largest].far, "threshold": points[largest].threshold},
        **({"saved": saved} if saved else {}),
    }
    return BenchmarkResult(metrics, rules, inputs_sha, counts, warnings, arrays, extra)
