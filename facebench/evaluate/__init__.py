"""One evaluator per protocol kind. Each exposes ``run_benchmark(spec, ctx) -> BenchmarkResult``."""

from __future__ import annotations

import importlib
from typing import Callable

from facebench.benchmarks import Benchmark
from facebench.evaluate.common import BenchmarkResult, RunContext

EVALUATORS: dict[str, str] = {
    "pairs": "facebench.evaluate.pairs",
    "ijb_1to1": "facebench.evaluate.ijb",
    "ijb_1n": "facebench.evaluate.ijb",
    "megaface": "facebench.evaluate.megaface",
    "folder": "facebench.evaluate.folder",
    "alltoall": "facebench.evaluate.alltoall",
    "tinyface": "facebench.evaluate.tinyface",
    "survface": "facebench.evaluate.survface",
    "identify": "facebench.evaluate.identify",
    "rfw": "facebench.evaluate.rfw",
}


def evaluator_for(kind: str) -> Callable[[Benchmark, RunContext], BenchmarkResult]:
    """The ``run_benchmark`` function of the evaluator module for a protocol kind."""
    module = importlib.import_module(EVALUATORS[kind])
    return getattr(module, f"run_{kind}") if hasattr(module, f"run_{kind}") else module.run_benchmark
