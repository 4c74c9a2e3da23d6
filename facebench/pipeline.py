"""The run pipeline of `facebench run` (`cli/run.py` only parses the arguments and calls :func:`run`).

Resolve benchmarks, load the checkpoint once, evaluate each benchmark, write the run.

Any exception inside one benchmark (a missing or malformed file, an undecodable image, degenerate
landmarks, non-finite embeddings, a fold without both classes...) is recorded under ``failed`` with its
message, the model and the benchmark's files; the others still run, the output is written and the exit
status is 1. The output directory is claimed before any work and replaced whole at the end
(`facebench.rundir`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from facebench import kinds
from facebench.benchmarks import Benchmark, check_overrides, load_benchmarks, select
from facebench.errors import FacebenchError
from facebench.evaluate import evaluator_for, thresholds
from facebench.evaluate.common import BenchmarkResult, RunContext, RunSettings
from facebench.extraction.extract import init_distributed_from_env
from facebench.extraction.extractor import FeatureExtractor, ModelSettings
from facebench.extraction.preprocess import resolve_profile
from facebench.results import BenchmarkEntry, entry_from_nested, new_run, write_results
from facebench.rundir import OutputDir, Replace, check_writable_target

log = logging.getLogger(__name__)


def run(
    settings: RunSettings,
    profile_name: str | None = None,
    flip: str | None = None,
    replace: Replace = Replace.NEVER,
    *,
    page: bool = False,
) -> tuple[dict[str, Any], int]:
    """Evaluate every selected benchmark; write results, tables and plots to ``settings.out``, whole or not
    at all (an existing directory is replaced only as ``replace`` allows); ``page``: also the intervals and
    ``report.html`` that `facebench report` writes.

    Returns the results document and the exit status (0 all benchmarks ran, 1 some failed).
    """
    specs = load_benchmarks()
    chosen = select(settings.benchmarks, specs, settings.data_root, settings.file_overrides)
    check_overrides(settings.file_overrides, chosen, specs)
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
    writer = int(os.environ.get("RANK", "0")) == 0
    inside_out = settings.save_features is not None and _inside(settings.save_features, settings.out)
    if writer and settings.save_features is not None and not inside_out:
        single = settings.save_features.suffix == ".npy" and len(chosen) == 1
        check_writable_target(settings.save_features, "--save-features", directory=not single)
    output = OutputDir(settings.out, replace) if writer else contextlib.nullcontext(None)
    with output as staging:
        return _evaluate(settings, chosen, calibrate_on, profile_name, flip, staging, page)


def _evaluate(
    settings: RunSettings,
    chosen: list[Benchmark],
    calibrate_on: str | None,
    profile_name: str | None,
    flip: str | None,
    staging: Path | None,
    page: bool = False,
) -> tuple[dict[str, Any], int]:
    """The body of :func:`run`: evaluate ``chosen`` and write the run into ``staging`` (None: not the
    writing rank), with ``report.html`` when ``page``."""
    distributed = init_distributed_from_env()
    rank = _rank() if distributed else 0

    embedder = None
    if settings.checkpoint is not None:
        embedder = FeatureExtractor.load(
            ModelSettings(
                checkpoint=settings.checkpoint, arch=settings.arch, profile=profile_name, flip=flip,
                batch_size=settings.batch_size, workers=settings.workers, device=settings.device,
                half=settings.half, cache=settings.cache, cache_dir=settings.cache_dir, progress=settings.progress,
                chunk_size=settings.chunk_size, trust_checkpoint_code=settings.trust_checkpoint_code,
                verify_cache=settings.verify_cache,
            )
        )
        profile = embedder.profile
    else:
        profile = resolve_profile(None, profile_name, flip)
    features_info = {"path": str(settings.features)} if settings.features is not None else None
    work = settings
    if staging is not None and settings.save_features is not None and _inside(settings.save_features, settings.out):
        # features saved inside --out belong to the run: written into the staging directory with it
        relative = Path(os.path.abspath(settings.save_features)).relative_to(os.path.abspath(settings.out))
        work = dataclasses.replace(settings, save_features=staging / relative)
    ctx = RunContext(work, embedder, profile, n_benchmarks=len(chosen), out_dir=staging,
                     write_artifacts=staging is not None)

    checkpoint_info = embedder.describe() if embedder else None
    doc = new_run({**settings.to_dict(), "profile": profile.to_dict()}, checkpoint_info, features_info)
    if embedder is not None and rank == 0:
        doc.model = describe_model(embedder.encoder, settings)
    arrays: dict[str, dict[str, Any]] = {}
    verification: dict[str, tuple[Any, Any]] = {}
    report_imported = preload(REPORT_MODULE) if rank == 0 else None
    preloaded: set[str] = set()
    for spec in chosen:
        log.info("%s: evaluating (%s)", spec.name, spec.kind)
        try:
            evaluate = evaluator_for(spec.kind)
            if evaluate.__module__ not in preloaded:  # what the evaluator imports on use, meanwhile
                preloaded.add(evaluate.__module__)
                preload(evaluate.__module__)
            result = evaluate(spec, ctx)
            points, warning = thresholds.for_benchmark(spec.name, result.arrays, calibrate_on, verification)
        except Exception as exc:  # one benchmark's failure is that benchmark's failure
            message = failure_message(spec, ctx, exc)
            log.error("%s: %s", spec.name, message, exc_info=log.isEnabledFor(logging.DEBUG))
            doc.failed[spec.name] = message
            continue
        if warning:
            log.warning(warning)
            result.warnings.append(warning)
        doc.benchmarks[spec.name] = benchmark_entry(
            spec, result, ctx.feature_sources.get(spec.name, {}), ctx.enrolment.get(spec.name, {}), points
        )
        arrays[spec.name] = result.arrays
    if ctx.timings:
        doc.extraction = {
            label: {"seconds": round(t, 3), "images": n, "images_per_s": round(n / t, 2) if t > 0 else None}
            for label, (t, n) in ctx.timings.items()
        }
    if staging is not None and rank == 0:
        write_results(staging, doc, arrays)
        if report_imported is not None:
            report_imported.join()
        write_run_report = importlib.import_module(REPORT_MODULE).write_run_report
        write_run_report(staging, doc, arrays=arrays, html=page, statistics=page, gallery=6 if page else 0,
                         shown_as=settings.out)
        thresholds.write_tables(staging, doc)
    return doc, (1 if doc.failed else 0)


def _inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` lies inside ``directory`` (lexically, after making both absolute)."""
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(directory))


def failure_message(spec: Benchmark, ctx: RunContext, exc: Exception) -> str:
    """What ``failed`` records for a benchmark that raised ``exc``: the message (an unexpected exception
    keeps its type), then the model and the benchmark's files. The image, when one is at fault, is named by
    the message itself (``ImageList.describe``)."""
    text = str(exc) if isinstance(exc, FacebenchError) else f"{type(exc).__name__}: {exc}"
    settings = ctx.settings
    model = settings.checkpoint or settings.features
    context = [f"model {model}"] if model is not None else []
    with contextlib.suppress(Exception):
        _, paths = ctx.files(spec)
        context.append("files " + ", ".join(f"{role}={path}" for role, path in paths.items()))
    return f"{text} [{'; '.join(context)}]" if context else text


def benchmark_entry(
    spec: Benchmark,
    result: BenchmarkResult,
    feature_sources: dict[str, Any] | None = None,
    enrolment: dict[str, Any] | None = None,
    thresholds: dict[str, Any] | None = None,
) -> BenchmarkEntry:
    """The results entry of one evaluated benchmark (``feature_sources``: where its features came from;
    ``enrolment``: its failure-to-enrol reports; ``thresholds``: its operating points), the evaluator's
    nested metrics mapped by :func:`facebench.results.entry_from_nested`, the one mapping that also reads
    version-1 documents."""
    nested = {
        "title": spec.title,
        "kind": spec.kind,
        "protocol_version": spec.version,
        "metrics": result.metrics,
        "rules": result.rules,
        "inputs": result.inputs,
        **result.counts,
        "columns": {**spec.columns, **result.columns},
        "warnings": result.warnings,
        "feature_sources": feature_sources or {},
        "artifacts": {"arrays": f"{spec.name}.npz"} if result.arrays else {},
        "extra": result.extra,
        "enrolment": enrolment or {},
        "thresholds": thresholds,
    }
    return entry_from_nested(nested, f"benchmark {spec.name}: results")


#: The report's module: with matplotlib, about half a second of imports that a run needs only at its end.
REPORT_MODULE = "facebench.report.run_report"


def preload(module: str) -> threading.Thread:
    """Import ``module`` (and what it lists in ``PRELOAD``) in a background thread, while the benchmarks are
    evaluated (their numpy work releases the GIL, and much of it leaves a core idle); join the thread before
    using the module. An import error is left for the import at the point of use to raise."""

    def work() -> None:
        try:  # with what the module lists in PRELOAD (what it imports only when it is used)
            for name in (module, *getattr(importlib.import_module(module), "PRELOAD", ())):
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - raised again where the module is used
            pass

    thread = threading.Thread(target=work, name=f"preload {module}", daemon=True)
    thread.start()
    return thread


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
    if not kinds.get(calibration.kind).pair_verification:
        raise FacebenchError(
            f"--calibrate-on {name}: thresholds are estimated on a pair-verification benchmark (kind "
            f"{kinds.pair_verification_kinds()}); {calibration.name} is kind {calibration.kind}"
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
