"""``facebench.report.run_report`` with its ``write_run_report`` timed, for bench_overhead.py's child: the
runner imports it in the background as it does the real module (``runner.REPORT_MODULE``)."""

from __future__ import annotations

import time

from facebench.report import run_report

#: seconds spent in write_run_report
SPENT: dict[str, float] = {}


def write_run_report(*args, **kwargs):
    start = time.perf_counter()
    try:
        return run_report.write_run_report(*args, **kwargs)
    finally:
        SPENT["report"] = SPENT.get("report", 0.0) + time.perf_counter() - start
