"""The results document (results.json): its typed model (:mod:`~facebench.results.model`, schema
``facebench.results/2``), the one mapping from the evaluators' nested metrics and from version-1 documents
(:mod:`~facebench.results.convert`), and writing and reading it (:mod:`~facebench.results.files`)."""

from __future__ import annotations

from facebench.results.convert import SCHEMA_V1, entry_from_nested, flat_metrics, upgrade_v1
from facebench.results.files import environment, load_arrays, new_run, parse_results, read_results, write_results
from facebench.results.jsonvalues import json_ready, portable
from facebench.results.model import SCHEMA, BenchmarkEntry, FewEvents, MetricValue, RunResults

__all__ = [
    "SCHEMA", "SCHEMA_V1", "BenchmarkEntry", "FewEvents", "MetricValue", "RunResults", "entry_from_nested",
    "environment", "flat_metrics", "json_ready", "load_arrays", "new_run", "parse_results", "portable", "read_results",
    "upgrade_v1", "write_results",
]
