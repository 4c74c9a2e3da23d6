"""``facebench.report.run_report`` with its ``write_run_report`` and the figures' rendering timed, for
bench_overhead.py's child: the runner imports it in the background as it does the real module
(``runner.REPORT_MODULE``)."""

from __future__ import annotations

from bench_overhead import timed

from facebench.report import plots, run_report

#: what the runner imports in the background with this module, as with the real one
PRELOAD = getattr(run_report, "PRELOAD", ())
#: seconds spent in write_run_report (``report``) and rendering figures (``report.figures``), wall, process
#: CPU (``_cpu``) and the calling thread's CPU (``_thread_cpu``)
SPENT: dict[str, float] = {}

plots.figure_png = timed(SPENT, "report.figures", plots.figure_png)
write_run_report = timed(SPENT, "report", run_report.write_run_report)
