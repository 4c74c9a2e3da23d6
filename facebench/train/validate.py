"""Periodic validation: the training backbone evaluated by the evaluators of ``facebench run``.

``validate(model, benchmark, data_root, ...)`` wraps the live backbone as a ``TorchEncoder`` (eval mode,
no gradient), runs the benchmark's evaluator exactly as ``facebench run`` would (same readers, same rules,
no feature cache since the weights change) and returns its scalar metrics. The model is put back in
training mode and the generator states are left untouched, so validating does not change the training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facebench.benchmarks import Benchmark, load_benchmarks, resolve_source, select
from facebench.extraction.preprocess import Profile


def resolve_benchmarks(names: Sequence[str], data_root: str | Path) -> list[Benchmark]:
    """The benchmark specs for ``names``; each must have a complete distribution under ``data_root`` (checked
    before training starts, so a typo fails at once rather than hours later)."""
    specs = select(",".join(names), load_benchmarks())
    for spec in specs:
        resolve_source(spec, data_root)
    return specs


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of an evaluator's metrics: top-level floats, and one level of nested dicts as
    ``outer/inner`` (lists are left out)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[key] = float(value)
        elif isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"{key}/{sub}"] = float(v)
    return out


def validate(model: nn.Module, benchmark: Benchmark, data_root: str | Path, *, profile: Profile,
             device: torch.device, architecture: str, out_dir: Path, batch_size: int = 128, workers: int = 2,
             kfold_rule: str = "insightface") -> dict[str, float]:
    """Evaluate ``model`` on ``benchmark`` as ``facebench run`` does; return the scalar metrics."""
    from facebench.extraction.extractor import FeatureExtractor, ModelSettings
    from facebench.evaluate import evaluator_for
    from facebench.evaluate.common import RunContext, RunSettings
    from facebench.models.torch_backend import TorchEncoder

    was_training = model.training
    devices = [device.index] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            encoder = TorchEncoder(model, format="pytorch", path=None, device=str(device), input_size=(112, 112),
                                   architecture=architecture, default_profile=profile, max_batch=batch_size)
            model_settings = ModelSettings(checkpoint=Path(f"<training {architecture}>"), arch=architecture,
                                           batch_size=batch_size, workers=workers, device=str(device), cache=False,
                                           progress=False)
            embedder = FeatureExtractor(model_settings, encoder, profile, sha256="")
            settings = RunSettings(benchmarks=benchmark.name, data_root=Path(data_root), out=out_dir,
                                   device=str(device), batch_size=batch_size, workers=workers, cache=False,
                                   kfold_rule=kfold_rule, progress=False)
            result = evaluator_for(benchmark.kind)(benchmark, RunContext(settings, embedder, profile))
    finally:
        model.train(was_training)
    return scalar_metrics(result.metrics)
