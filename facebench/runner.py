"""`facebench run`: resolve benchmarks, load the checkpoint once, evaluate each benchmark, write the run.

A benchmark that cannot be read (missing files, malformed lists) is recorded under ``failed`` with its
message and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from facebench.benchmarks import Benchmark, load_benchmarks, select
from facebench.errors import FacebenchError
from facebench.evaluate import evaluator_for, thresholds
from facebench.evaluate.common import RunContext, RunSettings
from facebench.extract import init_distributed_from_env
from facebench.embedder import Embedder, ModelSettings
from facebench.preprocess import resolve_profile
from facebench.report.run_report import write_run_report
from facebench.results import new_document, write_results

log = logging.getLogger(__name__)


def run(
    settings: RunSettings, profile_name: str | None = None, flip: str | None = None, *, page: bool = False
) -> tuple[dict[str, Any], int]:
    """Evaluate every selected benchmark; write results, tables and plots to ``settings.out`` (``page``:
    also the intervals and ``report.html`` that `facebench report` writes).

    Returns the results document and the exit status (0 all benchmarks ran, 1 some failed).
    """
    specs = load_benchmarks()
    chosen = select(settings.benchmarks, specs, settings.data_root, settings.file_overrides)
    calibrate_on = settings.options.get("calibrate_on") or None
    if calibrate_on:
        chosen, calibrate_on = calibration_first(chosen, calibrate_on, specs)
    if settings.checkpoint is None and settings.features is None:
        raise FacebenchError("give a CHECKPOINT or --features FILE|DIR")
    if settings.features is not None and not settings.features.exists():
        raise FacebenchError(f"--features: {settings.features} does not exist")
    if settings.features is not None and settings.features.is_file() and len(chosen) > 1:
        raise FacebenchError(
            f"--features FILE.npy holds one benchmark's features, but {len(chosen)} are selected "
            f"({', '.join(s.name for s in chosen)}): name one with --benchmark, or give a directory with "
            "<benchmark>.npy files"
        )
    distributed = init_distributed_from_env()
    rank = _rank() if distributed else 0

    embedder = None
    if settings.checkpoint is not None:
        embedder = Embedder.load(
            ModelSettings(
                checkpoint=settings.checkpoint, arch=settings.arch, profile=profile_name, flip=flip,
                batch_size=settings.batch_size, workers=settings.workers, device=settings.device,
                half=settings.half, cache=settings.cache, cache_dir=settings.cache_dir, progress=settings.progress,
                chunk_size=settings.chunk_size,
            )
        )
        profile = embedder.profile
    else:
        profile = resolve_profile(None, profile_name, flip)
    features_info = {"path": str(settings.features)} if settings.features is not None else None
    ctx = RunContext(settings, embedder, profile, n_benchmarks=len(chosen))

    checkpoint_info = embedder.describe() if embedder else None
    doc = new_document({**settings.to_dict(), "profile": profile.to_dict()}, checkpoint_info, features_info)
    if embedder is not None and rank == 0:
        doc["model"] = describe_model(embedder.encoder, settings)
    arrays: dict[str, dict[str, Any]] = {}
    verification: dict[str, tuple[Any, Any]] = {}
    for spec in chosen:
        log.info("%s: evaluating (%s)", spec.name, spec.kind)
        try:
            result = evaluator_for(spec.kind)(spec, ctx)
        except FacebenchError as exc:
            log.error("%s: %s", spec.name, exc)
            doc["failed"][spec.name] = str(exc)
            continue
        doc["benchmarks"][spec.name] = {
            "title": spec.title,
            "kind": spec.kind,
            "protocol_version": spec.version,
            "metrics": result.metrics,
            "rules": result.rules,
            "inputs": result.inputs,
            **result.counts,
            "columns": dict(spec.columns),
            "warnings": result.warnings,
            "artifacts": {"arrays": f"{spec.name}.npz"} if result.arrays else {},
            **({"extra": result.extra} if result.extra else {}),
        }
        points, warning = thresholds.for_benchmark(spec.name, result.arrays, calibrate_on, verification)
        if points is not None:
            doc["benchmarks"][spec.name]["thresholds"] = points
        if warning:
            log.warning(warning)
            result.warnings.append(warning)
        arrays[spec.name] = result.arrays
    if ctx.timings:
        doc["extraction"] = {
            label: {"seconds": round(t, 3), "images": n, "images_per_s": round(n / t, 2) if t > 0 else None}
            for label, (t, n) in ctx.timings.items()
        }
    if rank == 0:
        write_results(settings.out, doc, arrays)
        write_run_report(settings.out, doc, html=page, statistics=page, gallery=6 if page else 0)
        thresholds.write_tables(settings.out, doc)
    return doc, (1 if doc["failed"] else 0)


def calibration_first(chosen: list[Benchmark], name: str, specs: dict[str, Benchmark]) -> tuple[list[Benchmark], str]:
    """Put the ``--calibrate-on`` benchmark first (adding it when it was not selected; a registered name or
    ``folder:PATH``) so that its impostor scores set the operating thresholds of the others."""
    match = [s for s in chosen if s.name == name]
    calibration = match[0] if match else None
    if calibration is None:
        found = select(name, specs)
        if len(found) != 1:
            raise FacebenchError(f"--calibrate-on {name!r}: name one benchmark, not a group")
        calibration = found[0]
    if calibration.kind not in ("pairs", "folder"):
        raise FacebenchError(
            f"--calibrate-on {name}: thresholds are estimated on a pair-verification benchmark (kind pairs or "
            f"folder); {calibration.name} is kind {calibration.kind}"
        )
    return [calibration] + [s for s in chosen if s.name != calibration.name], calibration.name


def describe_model(encoder: Any, settings: RunSettings) -> dict[str, Any]:
    """Model size (parameters, file bytes), FLOPs per image and, unless ``measure_speed`` is off, batch-1
    latency and batch throughput of the bare model on this machine."""
    from facebench.models.complexity import measure_speed, model_complexity

    try:
        info = model_complexity(encoder)
    except FacebenchError as exc:
        info = {"complexity_error": str(exc)}
    if settings.options.get("measure_speed", True):
        info["speed"] = measure_speed(encoder, batch=settings.batch_size, repeats=3, warmup=1)
    return info


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank()


def default_out_dir(checkpoint: Path | None, features: Path | None) -> Path:
    """``reports/<checkpoint or features stem>``."""
    stem = (checkpoint or features or Path("run")).name.split(".")[0] or "run"
    return Path("reports") / stem
