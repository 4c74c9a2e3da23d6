"""`facebench overlap audit` end to end: read the inputs, get identity centres (from a features file or by
running a checkpoint over the images), find the overlaps and write the audit folder.

Features files are ``.npy`` matrices (pickles refused), read through a memory map: one row per listing
row for the training set (for a ``mids`` listing: one row per identity), one row per benchmark image in
the benchmark's image order (see :mod:`facebench.overlap.sources`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebench.extraction.extractor import FeatureExtractor, ModelSettings
from facebench.errors import FacebenchError
from facebench.extraction.images import ImageList
from facebench.atomic import sha256_file
from facebench.overlap.audit import AuditRules, find_overlaps, write_audit
from facebench.overlap.centres import Centres, identity_centres
from facebench.overlap.listing import Listing, iter_rows, read_listing
from facebench.overlap.sources import BenchmarkIdentities, read_benchmark, read_name_map

log = logging.getLogger(__name__)


@dataclass
class AuditInputs:
    """Everything an audit reads. ``benchmarks``: ``{name: path}``; the other benchmark maps are by name."""

    train: Path
    benchmarks: dict[str, Path]
    out: Path
    kind: str | None = None
    names: Path | None = None
    name_langs: set[str] | None = None
    features: Path | None = None
    images_root: Path | None = None
    per_identity: int = 0
    benchmark_features: dict[str, Path] = field(default_factory=dict)
    benchmark_images: dict[str, Path] = field(default_factory=dict)


class NpyRows:
    """Rows of a ``.npy`` matrix read from disk on demand (``rows[lo:hi]``), so memory holds one chunk.

    Unlike a memory map, nothing stays mapped: reading a 8 GB features file costs one chunk of memory.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as handle:
            major, _minor = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            self.offset = handle.tell()
        if dtype.hasobject:
            raise ValueError("object arrays (pickles) are refused")
        if fortran and len(shape) == 2 and shape[1] > 1:
            raise ValueError("a Fortran-ordered array; save it with np.save(np.ascontiguousarray(a))")
        self.shape, self.dtype, self.ndim = tuple(shape), dtype, len(shape)
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize if shape else 0

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        lo, hi, step = rows.indices(self.shape[0])
        if step != 1:
            raise ValueError("only contiguous row slices")
        count = max(0, hi - lo)
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + lo * self.row_bytes)
            data = handle.read(count * self.row_bytes)
        if len(data) != count * self.row_bytes:
            raise FacebenchError(f"{self.path}: file ends before row {hi} (truncated?)")
        return np.frombuffer(data, dtype=self.dtype).reshape((count, *self.shape[1:]))


def load_features(path: Path, rows: int, what: str) -> NpyRows:
    """A 2-D float ``.npy`` with ``rows`` rows, read in chunks; pickled or mis-shaped arrays are errors."""
    if not path.is_file():
        raise FacebenchError(f"{what}: features file not found: {path}")
    try:
        feats = NpyRows(path)
    except ValueError as exc:
        raise FacebenchError(f"{path}: not a plain .npy array ({exc}); pickled arrays are refused") from exc
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.floating):
        raise FacebenchError(f"{path}: expected a 2-D floating-point (rows, dim) array, got {feats.dtype} {feats.shape}")
    if feats.shape[0] != rows:
        raise FacebenchError(f"{path}: has {feats.shape[0]:,} rows but {what} has {rows:,}; one row per {what} row, in order")
    return feats


class _Extractor:
    """Embeds image lists with the audit's checkpoint (through the shared :class:`FeatureExtractor`)."""

    def __init__(self, model: ModelSettings) -> None:
        self.extractor = FeatureExtractor.load(model)

    def describe(self) -> dict[str, Any]:
        return self.extractor.describe()

    def __call__(self, paths: list[str], landmarks: np.ndarray | None, label: str) -> np.ndarray:
        return self.extractor.embed(ImageList(origin=label, paths=paths, landmarks=landmarks), label)


def _train_rows(listing: Listing, root: Path, per_identity: int) -> tuple[list[str], np.ndarray | None, np.ndarray]:
    """Image paths (under ``root``), landmarks (lmk listings) and identity of the rows to extract."""
    paths: list[str] = []
    lmks: list[list[float]] = []
    owner: list[int] = []
    taken = np.zeros(len(listing.classes), dtype=np.int64)
    for _row, image, fields, ci in iter_rows(listing, fields=True):
        if per_identity and taken[ci] >= per_identity:
            continue
        taken[ci] += 1
        paths.append(str(root / image.decode("utf-8", errors="surrogateescape")))
        owner.append(ci)
        if listing.kind == "lmk":
            lmks.append([float(v) for v in fields[2:12]])
    landmarks = np.asarray(lmks, dtype=np.float64).reshape(-1, 5, 2) if listing.kind == "lmk" else None
    return paths, landmarks, np.asarray(owner, dtype=np.int64)


def _train_centres(inputs: AuditInputs, listing: Listing, extractor: _Extractor | None) -> tuple[Centres | None, dict]:
    n = len(listing.classes)
    if inputs.features is not None:
        feats = load_features(inputs.features, listing.n_rows, f"training listing {listing.source}")
        if listing.row_class is None:
            raise ValueError("the listing was read without row identities (with_rows=False)")
        centres = identity_centres(feats, listing.row_class, n)
        return centres, {"features": {"path": str(inputs.features), "sha256": sha256_file(inputs.features)}}
    if extractor is None:
        return None, {}
    if not listing.has_paths:
        raise FacebenchError(f"{listing.source}: a {listing.kind} listing names no images to run the checkpoint on")
    root = inputs.images_root or (listing.source if listing.kind == "dir" else listing.source.parent)
    paths, landmarks, owner = _train_rows(listing, root, inputs.per_identity)
    log.info("training set: extracting %d images of %d identities", len(paths), n)
    feats = extractor(paths, landmarks, f"train:{listing.source.name}")
    centres = identity_centres(feats, owner, n)
    return centres, {"images_root": str(root), "images_used": len(paths), "per_identity": inputs.per_identity}


def _bench_centres(
    inputs: AuditInputs, bench: BenchmarkIdentities, extractor: _Extractor | None
) -> tuple[np.ndarray | None, dict]:
    feats_path = inputs.benchmark_features.get(bench.name)
    if feats_path is None and extractor is None:
        return None, {}
    if bench.image_paths is None or bench.image_identity is None:
        raise FacebenchError(
            f"benchmark {bench.name}: {bench.source} is a plain names list with no images, so it has no "
            "centres; give the LFW names file or image tree, or the MegaFace devkit JSON"
        )
    if feats_path is not None:
        feats = load_features(feats_path, len(bench.image_paths), f"benchmark {bench.name}")
        centres = identity_centres(feats, bench.image_identity, len(bench.identities))
        return centres.centres, {"features": {"path": str(feats_path), "sha256": sha256_file(feats_path)}}
    if extractor is None:  # unreachable: checked above; keeps the type narrow
        return None, {}
    root = inputs.benchmark_images.get(bench.name) or (bench.source if bench.format == "image-tree" else None)
    if root is None:
        raise FacebenchError(
            f"benchmark {bench.name}: give --benchmark-images {bench.name}=DIR (the folder the paths of "
            f"{bench.source.name} are relative to) or --benchmark-features {bench.name}=FILE.npy"
        )
    paths = [str(Path(root) / p) for p in bench.image_paths]
    feats = extractor(paths, None, f"benchmark:{bench.name}")
    centres = identity_centres(feats, bench.image_identity, len(bench.identities))
    return centres.centres, {"images_root": str(root)}


def run_audit(inputs: AuditInputs, rules: AuditRules, model: ModelSettings | None = None) -> dict[str, Any]:
    """Read every input, check it, find the overlaps and write ``inputs.out``; return ``audit.json``."""
    unknown = sorted((set(inputs.benchmark_features) | set(inputs.benchmark_images)) - set(inputs.benchmarks))
    if unknown:
        raise FacebenchError(f"features or images given for unknown benchmark(s) {unknown}; name them with --benchmark")
    if not inputs.benchmarks:
        raise FacebenchError("name at least one benchmark: --benchmark NAME=PATH")
    if inputs.names is None and inputs.features is None and model is None:
        raise FacebenchError("give --names (name matching) and/or --features or --checkpoint (centre similarity)")
    if inputs.features is not None and model is not None:
        raise FacebenchError("give either --features or --checkpoint for the training set, not both")
    listing = read_listing(inputs.train, inputs.kind, identity="any", with_rows=True)
    warnings = list(listing.warnings)
    for text in warnings:
        log.warning(text)
    benchmarks = [read_benchmark(name, path) for name, path in inputs.benchmarks.items()]
    record: dict[str, Any] = {
        "training": {
            "listing": str(listing.source),
            "kind": listing.kind,
            "sha256": sha256_file(listing.source) if listing.source.is_file() else None,
            "identities": len(listing.classes),
            "rows": listing.n_rows,
        },
        "benchmarks": {},
    }
    train_names = None
    if inputs.names is not None:
        wanted = set(listing.classes)
        name_map = read_name_map(inputs.names, wanted, inputs.name_langs)
        train_names = [name_map.get(c, []) for c in listing.classes]
        missing = sum(1 for n in train_names if not n)
        record["training"]["names"] = {
            "path": str(inputs.names),
            "sha256": sha256_file(inputs.names),
            "identities_named": len(listing.classes) - missing,
            "languages": sorted(inputs.name_langs) if inputs.name_langs else "all",
        }
        if missing:
            text = f"{inputs.names}: {missing:,} of {len(listing.classes):,} training identities have no name there"
            log.warning(text)
            warnings.append(text)
    extractor = _Extractor(model) if model is not None else None
    if extractor is not None:
        record["checkpoint"] = extractor.describe()
    train, info = _train_centres(inputs, listing, extractor)
    record["training"].update(info)
    train_centres = None
    if train is not None:
        train_centres = train.centres
        record["training"]["identities_with_centre"] = int(train.valid.sum())
        record["training"]["rows_without_usable_feature"] = train.skipped_rows
    bench_centres: dict[str, np.ndarray] = {}
    for bench in benchmarks:
        entry: dict[str, Any] = {
            "source": str(bench.source),
            "format": bench.format,
            "sha256": bench.sha256,
            "identities": len(bench.identities),
            "images": len(bench.image_paths) if bench.image_paths is not None else None,
        }
        if train_centres is not None:
            centres, info = _bench_centres(inputs, bench, extractor)
            if centres is not None:
                bench_centres[bench.name] = centres
            entry.update(info)
        record["benchmarks"][bench.name] = entry
    record["rules"] = rules.to_dict()
    record["warnings"] = warnings
    result = find_overlaps(
        benchmarks,
        rules,
        n_train=len(listing.classes),
        train_names=train_names,
        train_centres=train_centres,
        bench_centres=bench_centres,
    )
    for text in result.warnings:
        log.warning(text)
    return write_audit(inputs.out, result, listing.classes, listing.labels, benchmarks, record)
