"""One evaluator per protocol kind; each kind (`facebench.kinds`) names its ``function(spec, ctx) ->
BenchmarkResult``."""

from __future__ import annotations

from typing import Callable

from facebench import kinds
from facebench.benchmarks import Benchmark
from facebench.evaluate.common import BenchmarkResult, RunContext


def evaluator_for(kind: str) -> Callable[[Benchmark, RunContext], BenchmarkResult]:
    """The evaluator function of a protocol kind (imported now)."""
    return kinds.get(kind).load_evaluator()
