"""What every evaluator receives (the run context) and returns (a benchmark result)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebench import kinds
from facebench.extraction import store
from facebench.benchmarks import Benchmark, check_checksum, resolve_source, spec_overrides
from facebench.extraction.cache import default_cache_root
from facebench.errors import FacebenchError
from facebench.extraction.extractor import FeatureExtractor
from facebench.evaluate.checks import Degenerate, check_embeddings, find_degenerate
from facebench.extraction.enrol import EnrolOptions, enrol
from facebench.extraction.extract import DEFAULT_CHUNK
from facebench.atomic import save_npy, sha256_file, write_text
from facebench.extraction.images import ImageList
from facebench.io.tablecache import TableCache
from facebench.models.base import Encoder
from facebench.extraction.preprocess import Profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """Everything a run was asked to do; recorded in results.json under ``settings``."""

    benchmarks: str
    data_root: Path
    out: Path
    checkpoint: Path | None = None
    features: Path | None = None
    arch: str | None = None
    device: str = "auto"
    half: bool = False
    batch_size: int = 32
    workers: int = 2
    cache: bool = True
    cache_dir: Path | None = None
    kfold_rule: str = "insightface"
    tar_rule: str = "nearest"
    file_overrides: dict[str, str] = field(default_factory=dict)
    save_features: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    chunk_size: int = DEFAULT_CHUNK
    trust_checkpoint_code: bool = False
    verify_cache: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = str(value) if isinstance(value, Path) else value
        return out


@dataclass
class BenchmarkResult:
    """One benchmark's outcome: metrics (fractions in [0, 1]), the rules that produced them, inputs'
    sha256, counts, warnings, arrays saved beside results.json (ROC curves, scores) and extras."""

    metrics: dict[str, Any]
    rules: dict[str, Any]
    inputs: dict[str, str]
    counts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    """Table columns (metric path -> label) added to the spec's, e.g. by the fairness and quality analyses."""


@dataclass
class RunContext:
    """Shared state of one run: settings, the loaded model (None with --features), its profile and where
    files of the run go while it runs: ``out_dir`` (the staging directory that becomes ``settings.out``;
    default ``settings.out``), written only when ``write_artifacts`` (False on ranks that do not write)."""

    settings: RunSettings
    embedder: FeatureExtractor | None
    profile: Profile
    n_benchmarks: int = 1
    out_dir: Path | None = None
    write_artifacts: bool = True

    @property
    def artifact_dir(self) -> Path:
        """Where an evaluator writes its files now (``out_dir``, else ``settings.out``)."""
        return self.out_dir if self.out_dir is not None else Path(self.settings.out)
    feature_sources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Per benchmark, per image list: where its features came from (a file, the cache, extraction)."""
    enrolment: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Failure-to-enrol reports of the detected image lists, by benchmark name then list label."""

    @property
    def encoder(self) -> Encoder | None:
        """The model backend, or None when features are given."""
        return self.embedder.encoder if self.embedder else None

    @property
    def timings(self) -> dict[str, tuple[float, int]]:
        """Extraction wall time and image count per image list."""
        return self.embedder.timings if self.embedder else {}

    def files(self, spec: Benchmark) -> tuple[str, dict[str, Path]]:
        """Resolve a benchmark's files: (reader name, role -> path), with ``--file name.role=PATH`` overrides."""
        overrides = spec_overrides(spec.name, self.settings.file_overrides)
        source, paths = resolve_source(spec, self.settings.data_root, overrides)
        return source.reader, paths

    def hash_inputs(
        self, spec: Benchmark, paths: dict[str, Path], warnings: list[str], known: dict[str, str] | None = None
    ) -> dict[str, str]:
        """sha256 of every input file (directories skipped; ``known`` hashes a reader already computed are
        reused), warning when a file is not a known official one. Returns ``file name -> sha256``."""
        inputs: dict[str, str] = dict(known or {})
        for role, path in paths.items():
            if path.is_file():
                digest = inputs.get(path.name) or sha256_file(path)
                inputs[path.name] = digest
                warning = check_checksum(spec, role, path, digest)
                if warning:
                    log.warning(warning)
                    warnings.append(warning)
        return inputs

    def features_for(
        self, spec: Benchmark, images: ImageList, part: str = "", flip: str | None = None, label: str | None = None
    ) -> np.ndarray:
        """Flip-combined, unnormalised features of ``images`` (in order).

        With ``--features``: a ``.npy`` file (single benchmark) or a directory holding
        ``<benchmark>[_<part>].npy``; the row count must equal the image count. Otherwise the encoder runs
        (through the feature cache unless ``--no-cache``). ``flip`` overrides the profile's flip mode.
        ``label`` replaces ``<benchmark>[_<part>]`` when benchmarks share one image list (IJB 1:1 and 1:N
        read ``DIR/ijbc.npy`` alike).
        """
        label = label or f"{spec.name}{'_' + part if part else ''}"
        origin = f"{spec.name}: {label} features"
        if self.settings.features is not None:
            feats, found = self._load_features(label, len(images))
            check_embeddings(feats, origin, images.describe, found=found)
            source: dict[str, Any] = {"source": "file", "path": str(self.settings.features)}
        elif self.embedder is None:
            raise FacebenchError("no checkpoint and no --features: nothing to evaluate")
        elif self.settings.options.get("store"):
            feats = self._extract_to_store(Path(self.settings.options["store"]), label, images, flip)
            check_embeddings(feats, origin, images.describe)
            source = {"source": "store", "path": str(self.settings.options["store"])}
        else:  # checked inside, before the rows of images left out become NaN
            feats = self._embed_enrolled(spec, images, label, flip)
            source = self.embedder.cache_info[label]
        self.feature_sources.setdefault(spec.name, {})[label] = source
        if self.settings.save_features is not None:
            self._save_features(label, feats, images)
        return feats

    def _extract_to_store(self, root: Path, label: str, images: ImageList, flip: str | None) -> np.ndarray:
        """Extract ``images`` into the embedding store at ``root`` shard by shard (`facebench.extraction.store`),
        in this process or, with the option ``engine`` ``ray``, on Ray Data (`facebench.extraction.ray_engine`):
        shards already there are kept, so a killed extraction resumes; returns the part's features."""
        assert self.embedder is not None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise FacebenchError(
                "facebench extract runs in one process (each shard on its own); under torchrun use "
                "`facebench run --save-features DIR` (docs/store.md)"
            )
        embedder = self.embedder
        contract = {**self.profile.to_dict(), "flip": flip or self.profile.flip}
        store.open_store(root, embedder.sha256, contract)
        ids = [str(p) for p in images.paths] if images.paths is not None else [f"item {i}" for i in range(len(images))]
        keys = images.content_keys()

        if self.settings.options.get("engine", "process") == "ray":
            from facebench.extraction.ray_engine import RayOptions, write_part_ray

            where = RayOptions(self.settings.options.get("ray_address"), self.settings.options.get("ray_workers"))
            write_part_ray(root, label, ids, keys, images, embedder, flip, self.settings.chunk_size, where)
            return store.read_part(root, label)[0]

        def compute(start: int, stop: int) -> np.ndarray:
            return embedder.embed(images.subset(start, stop), f"{label}.{start}", flip)

        store.write_part(root, label, ids, keys, compute, shard_rows=self.settings.chunk_size)
        return store.read_part(root, label)[0]

    def enrol_options(self) -> EnrolOptions:
        """How raw photos are enrolled in this run (``--detector``, ``--on-no-face``, ``--landmark-frame``)."""
        o = self.settings.options
        return EnrolOptions(
            detector=o.get("detector") or "dlib-hog",
            on_no_face=o.get("on_no_face") or "error",
            landmark_frame=o.get("landmark_frame") or "upright",
            cache_root=detection_cache_root(self.settings) if self.settings.cache else None,
            progress=self.settings.progress,
            workers=self.settings.workers,
        )

    def _embed_enrolled(self, spec: Benchmark, images: ImageList, label: str, flip: str | None) -> np.ndarray:
        """Features after enrolment (:mod:`facebench.extraction.enrol`); rows of images that did not enrol under
        ``--on-no-face skip`` are NaN (only pair and folder benchmarks can leave them out)."""
        assert self.embedder is not None
        done = enrol(images, self.enrol_options(), label)
        if done.report.detected or done.report.reoriented:
            self.enrolment.setdefault(spec.name, {})[label] = done.report.to_dict()
        if done.unenrolled.any() and not kinds.get(spec.kind).drops_unenrolled:
            dropping = " or ".join(k.name for k in kinds.BUILT_IN if k.drops_unenrolled)
            raise FacebenchError(
                f"{spec.name}: --on-no-face skip leaves out images only in {dropping} benchmarks; "
                f"{len(done.report.no_face)} images of this {spec.kind} benchmark have no face: use center-crop"
            )
        feats = self.embedder.embed(done.images, label, flip)
        check_embeddings(feats, f"{spec.name}: {label} features", done.images.describe)
        if done.unenrolled.any():
            feats = np.array(feats, dtype=np.float32)
            feats[done.unenrolled] = np.nan
        return feats

    def _load_features(self, label: str, n_rows: int) -> tuple[np.ndarray, Degenerate | None]:
        """The ``--features`` rows of ``label`` and, for a ``.npy`` file, what :func:`find_degenerate` found
        in them (one pass over the file; a non-finite row is an error naming the file and the row)."""
        path = self.settings.features
        assert path is not None
        if store.is_store(path):
            feats = store.read_part(path, label)[0]
            if feats.shape[0] != n_rows:
                raise FacebenchError(
                    f"{path}: part {label} has {feats.shape[0]} samples but {label} has {n_rows} images"
                )
            return feats, None
        if path.is_dir():
            path = path / f"{label}.npy"
        if not path.is_file():
            raise FacebenchError(f"{label}: features file not found: {path}")
        feats = _open_npy(path)
        if feats.ndim != 2:
            raise FacebenchError(f"{path}: expected a 2-D (images, dim) array, got shape {feats.shape}")
        if feats.shape[0] != n_rows:
            raise FacebenchError(
                f"{path}: has {feats.shape[0]} rows but {label} has {n_rows} images; "
                "features must be one row per image in benchmark order"
            )
        if not np.issubdtype(feats.dtype, np.floating):
            raise FacebenchError(f"{path}: features must be floating point, got {feats.dtype}")
        feats = np.asarray(feats, dtype=np.float32)
        found = find_degenerate(feats)
        if found.nonfinite.size:
            raise FacebenchError(f"{path}: row {int(found.nonfinite[0])} contains NaN or infinite values")
        return feats, found

    def _save_features(self, label: str, feats: np.ndarray, images: ImageList) -> None:
        """Write the features and, when the images have paths, their row order: ``<name>.paths.txt`` beside
        the ``.npy``, one image path per row (pair order for pair sets)."""
        target = self.settings.save_features
        assert target is not None
        single = target.suffix == ".npy" and self.n_benchmarks == 1
        path = target if single else target / f"{label}.npy"
        save_npy(path, feats)
        if images.paths is not None:
            write_text(path.with_suffix(".paths.txt"), "".join(f"{p}\n" for p in images.paths))


def _open_npy(path: Path) -> np.ndarray:
    """Memory-map a ``.npy`` features file; an empty file, an ``.npz`` archive (or anything else that is not
    one plain array) is an error naming the file."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    if not head:
        raise FacebenchError(f"{path}: empty file (0 bytes); expected a .npy array of features")
    if head.startswith(b"PK"):
        raise FacebenchError(f"{path}: is an .npz archive (a zip of arrays), not a .npy array; save one array "
                             "with numpy.save, or unpack the archive")
    if head != b"\x93NUMPY":
        raise FacebenchError(f"{path}: not a .npy file (no NumPy header)")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise FacebenchError(f"{path}: not a plain .npy array ({exc}); pickled arrays are refused") from None


def table_cache(settings: RunSettings) -> TableCache | None:
    """Where parsed protocol lists are kept by content (:mod:`facebench.io.tablecache`): ``tables/`` inside
    the feature cache root; None with ``--no-cache``."""
    return TableCache((settings.cache_dir or default_cache_root()) / "tables") if settings.cache else None


def detection_cache_root(settings: RunSettings) -> Path:
    """Where face detections are cached: ``detections/`` inside the feature cache root (its entries are one
    level deeper than feature entries, so `facebench cache` listings keep to features)."""
    return (settings.cache_dir or default_cache_root()) / "detections"


def implausible_warning(spec: Benchmark, ctx: RunContext, finding: str, floor: str, other_cause: str = "") -> str:
    """The warning for a value (``finding``, e.g. ``accuracy 61.20%``) below the benchmark's plausible
    ``floor``, naming ``other_cause`` when there is one and pointing at `facebench doctor`."""
    text = (
        f"{spec.name}: {finding} is implausibly low for this benchmark (expected >= {floor}); {other_cause}"
        "the input contract (colour order, normalisation, flip, alignment) is the usual cause: "
    )
    checkpoint = ctx.settings.checkpoint
    if checkpoint is None:
        return text + "check how the --features were extracted (`facebench doctor CHECKPOINT` finds a model's contract)"
    # doctor evaluates contracts on a pair-verification set: this one, or LFW for IJB and MegaFace
    bench = spec.name if kinds.get(spec.kind).pair_verification else "lfw"
    return text + (
        f"run `facebench doctor {checkpoint} --benchmark {bench} --data-root {ctx.settings.data_root}` "
        "to find the right profile"
    )
