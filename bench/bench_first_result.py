"""Time to first result: `facebench demo` from nothing, then `facebench doctor` on the demo checkpoint.

Each command runs in a fresh interpreter (as a user types it) with an empty feature cache and an empty
demo-suite folder ($FACEBENCH_CACHE, $FACEBENCH_DEMO in a temporary directory), so the demo renders the
suite, extracts every feature and writes the report with its page; doctor then reads the rendered pack.
Prints each wall time against its target (demo <= 40 s, doctor <= 30 s on a quiet 2-core machine), the CPU
seconds the command and its workers used (user + system: on a quiet 2-core machine the wall time is at
least half of it, and it moves less than the wall time when other jobs share the cores) and, as a
yardstick of how loaded the machine is, a fixed numpy workload timed in the same process and the load
average.

    python bench/bench_first_result.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facebench.cpu import avoid_slow_avx512_sort

avoid_slow_avx512_sort(os.environ)  # numpy's code paths as the facebench command chooses them (facebench.cpu)

import numpy as np  # noqa: E402

TARGETS = {"demo": 40.0, "doctor": 30.0}


def yardstick() -> float:
    """Seconds of a fixed single-process numpy workload (float32 products and sorts)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((600, 600)).astype(np.float32)
    start = time.perf_counter()
    for _ in range(20):
        np.sort((a @ a).ravel())
    return time.perf_counter() - start


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its worker processes) of ``facebench ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "facebench", *args], env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"facebench {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="fresh demo + doctor pairs to time (default 1)")
    args = parser.parse_args()
    from facebench.cli.demo import DEMO_CHECKPOINT

    before = yardstick()
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="facebench-first-") as tmp:
            work = Path(tmp)
            env = {**os.environ, "FACEBENCH_CACHE": str(work / "cache"), "FACEBENCH_DEMO": str(work / "suite")}
            times = {
                "demo": timed(["demo", "--out", str(work / "demo")], env, work),
                "doctor": timed(["doctor", str(DEMO_CHECKPOINT)], env, work),
            }
            for name, (seconds, cpu) in times.items():
                target = TARGETS[name]
                verdict = "meets" if seconds <= target else "misses"
                print(f"run {r + 1}: facebench {name:<6} {seconds:6.1f} s wall, {cpu:6.1f} s CPU  target "
                      f"{target:.0f} s  ratio {seconds / target:.2f} ({verdict})", flush=True)
    after = yardstick()
    print(f"yardstick (fixed numpy workload): {before:.2f} s before, {after:.2f} s after; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
