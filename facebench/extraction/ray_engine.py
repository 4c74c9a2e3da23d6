"""The Ray Data engine of the embedding store (`facebench extract --engine ray`, extra ``facebench[ray]``).

Rule: a part's missing shards (:func:`facebench.extraction.store.shard_done` says which) become the rows of a
Ray Dataset, one row per shard index; ``map_batches`` runs them on a pool of model replicas (Ray actors,
each loading the checkpoint once). A replica checks that its checkpoint is the driver's (sha256) and that
the shard's images have the content keys the driver listed, computes the shard through facebench's own
extraction (:meth:`facebench.extraction.extractor.FeatureExtractor.embed` on ``ImageList.subset(start,
stop)``: the same decode, alignment, batching from the shard's first sample and last-batch padding as one
process) and writes the shard's two files into the store itself (docs/store.md). The driver writes
``store.json`` last, after every shard has been checked complete. So the rows are bit-identical to the
one-process store for a deterministic backend (ONNX on CPU), shards already in the store are skipped (a
killed job resumes), and each sample has exactly one row whatever the number of replicas.

The store and the images must be reachable under the same paths from every Ray node (shared storage),
as for torchrun. Ray is imported only here, and only when there is a shard to compute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from facebench.errors import FacebenchError
from facebench.extraction import store
from facebench.extraction.images import ImageList
from facebench.optional import require_ray

if TYPE_CHECKING:
    from facebench.extraction.extractor import FeatureExtractor, ModelSettings
    from facebench.extraction.preprocess import Profile


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` of a running Ray cluster (``auto``, ``ray://HOST:10001``; ``None``:
    the cluster this process already joined, else a new one on this machine) and the number of model
    replicas (``None``: one per GPU of the cluster when the model runs on CUDA, else one per CPU)."""

    address: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise FacebenchError(f"--ray-workers must be >= 1, got {self.workers}")


class ShardExtractor:
    """A model replica: ``__call__`` takes a batch of shard indices, writes those shards and returns, per
    shard, its feature dimension and the message of a :class:`FacebenchError` ("" when written): errors
    travel as data, because Ray's wrapping of a raised exception loses its type and message."""

    def __init__(self, root: str, part: str, images: Any, sample_ids: Any, keys: Any, settings: ModelSettings,
                 profile: Profile, sha256: str, shard_rows: int) -> None:
        import ray

        self.root, self.part, self.shard_rows = root, part, shard_rows
        self.images: ImageList = ray.get(images)
        self.sample_ids: Sequence[str] = ray.get(sample_ids)
        self.keys: Sequence[str] = ray.get(keys)
        self.extractor: FeatureExtractor | None = None
        self.refusal = ""
        try:
            self.extractor = self._load(settings, profile, sha256)
        except FacebenchError as exc:
            self.refusal = str(exc)

    @staticmethod
    def _load(settings: ModelSettings, profile: Profile, sha256: str) -> FeatureExtractor:
        from facebench.extraction.extractor import FeatureExtractor

        extractor = FeatureExtractor.load(settings)
        if extractor.sha256 != sha256:
            raise FacebenchError(
                f"{settings.checkpoint}: a Ray worker reads a checkpoint with sha256 {extractor.sha256}, the "
                f"driver's has {sha256}; every node must see the same file"
            )
        return replace(extractor, profile=profile)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dims, errors = [], []
        for k in batch["shard"]:
            try:
                dims.append(self.write(int(k)))
                errors.append("")
            except FacebenchError as exc:
                dims.append(-1)
                errors.append(str(exc))
        return {"shard": np.asarray(batch["shard"]), "dim": np.asarray(dims, dtype=np.int64),
                "error": np.asarray(errors, dtype=object)}

    def write(self, k: int) -> int:
        """Compute and write shard ``k``; returns its feature dimension."""
        if self.extractor is None:
            raise FacebenchError(self.refusal)
        start, stop = k * self.shard_rows, min((k + 1) * self.shard_rows, len(self.images))
        images = self.images.subset(start, stop)
        ids, keys = self.sample_ids[start:stop], self.keys[start:stop]
        seen = images.content_keys()
        if seen != list(keys):
            i = next(i for i, (a, b) in enumerate(zip(seen, keys)) if a != b)
            raise FacebenchError(
                f"{images.describe(i)}: a Ray worker reads content {seen[i]}, the driver listed {keys[i]}; every "
                "node must see the same images"
            )
        feats = self.extractor.embed(images, f"{self.part}.{start}", self.extractor.profile.flip)
        return store.write_shard(self.root, self.part, k, ids, keys, feats)


def write_part_ray(
    root: str | Path,
    part: str,
    sample_ids: Sequence[str],
    keys: Sequence[str],
    images: ImageList,
    extractor: FeatureExtractor,
    flip: str | None,
    shard_rows: int,
    options: RayOptions = RayOptions(),
) -> int:
    """Write the missing shards of ``part`` with Ray Data (module rule), then record the part in
    ``store.json``. Returns the number of shards written (0: all were there; Ray is then not started)."""
    root = Path(root).resolve()
    ranges = store.shard_ranges(len(sample_ids), shard_rows)
    missing = [k for k, a, b in ranges if store.shard_done(root, part, k, sample_ids[a:b], keys[a:b]) is None]
    if missing:
        _run_shards(root, part, sample_ids, keys, images, extractor, flip, shard_rows, missing, options)
    dim = None
    for k, a, b in ranges:
        dim = store.shard_done(root, part, k, sample_ids[a:b], keys[a:b])
        if dim is None:
            raise FacebenchError(f"{root / part}: shard {k} is incomplete after the Ray job; run the extraction again")
    store.finish_part(root, part, len(sample_ids), dim, shard_rows)
    return len(missing)


def _run_shards(
    root: Path, part: str, sample_ids: Sequence[str], keys: Sequence[str], images: ImageList,
    extractor: FeatureExtractor, flip: str | None, shard_rows: int, missing: list[int], options: RayOptions,
) -> None:
    require_ray("facebench extract --engine ray")
    import ray
    import ray.data

    if not ray.is_initialized():
        try:
            ray.init(address=options.address, include_dashboard=False, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError, SystemExit) as exc:  # an unreachable GCS: sys.exit
            where = f"the Ray cluster at {options.address}" if options.address else "a local Ray cluster"
            raise FacebenchError(f"--engine ray: cannot start or join {where}: {str(exc).strip().splitlines()[0]}") from None
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if extractor.settings.device != "cpu" else 0
    workers = options.workers or gpus or max(1, int(resources.get("CPU", 1)))
    # every node resolves the same absolute paths; a replica decodes inline (Ray's replicas are the parallelism)
    settings = replace(extractor.settings, checkpoint=Path(extractor.settings.checkpoint).resolve(), workers=0,
                       cache=False, progress=False, chunk_size=shard_rows)
    if images.paths is not None:
        images = replace(images, paths=[os.path.abspath(p) for p in images.paths])
    profile = extractor.profile.with_flip(flip) if flip else extractor.profile
    rows = ray.data.from_items([{"shard": k} for k in missing], override_num_blocks=len(missing))
    done = rows.map_batches(
        ShardExtractor, batch_size=1, batch_format="numpy", num_cpus=1, num_gpus=1 if gpus else 0,
        compute=ray.data.ActorPoolStrategy(size=min(workers, len(missing))),
        fn_constructor_kwargs=dict(
            root=str(root), part=part, images=ray.put(images), sample_ids=ray.put(list(sample_ids)),
            keys=ray.put(list(keys)), settings=settings, profile=profile, sha256=extractor.sha256,
            shard_rows=shard_rows,
        ),
    )
    context = ray.data.DataContext.get_current()
    shown = context.enable_progress_bars, context.print_on_execution_start
    context.enable_progress_bars, context.print_on_execution_start = extractor.settings.progress, False
    try:
        rows_done = done.take_all()
    finally:
        context.enable_progress_bars, context.print_on_execution_start = shown
    failed = sorted((int(r["shard"]), str(r["error"])) for r in rows_done if r["error"])
    if failed:
        message = failed[0][1]
        more = f" (and {len(failed) - 1} other shard(s))" if len(failed) > 1 else ""
        raise FacebenchError(f"{message}{more}")
    written = sorted(int(r["shard"]) for r in rows_done)
    if written != sorted(missing):
        raise FacebenchError(f"{root / part}: the Ray job wrote shards {written}, expected {sorted(missing)}")
