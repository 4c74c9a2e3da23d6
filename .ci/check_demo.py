"""CI: a `facebench demo` run reproduces the committed demo numbers (reports/demo/results.json).

Usage: python check_demo.py RUN_DIR/results.json COMMITTED/results.json. Compares every headline metric (the
table columns each benchmark declares) within 0.005, the tolerance of tests/test_demo_suite.py (identical
on the machine that made it; other SIMD kernels may flip a pair or two near a threshold). Exit 1 on a
difference or a missing benchmark.
"""

from __future__ import annotations

import json
import sys

TOLERANCE = 0.005


def lookup(metrics: dict, path: str) -> float | None:
    """A dotted metric path (only the first dot splits: ``tar_at_far.1e-03``, ``rank1.1000``)."""
    head, _, rest = path.partition(".")
    value = metrics.get(head)
    return value.get(rest) if rest and isinstance(value, dict) else value


def main(run_path: str, committed_path: str) -> int:
    run = json.load(open(run_path, encoding="utf-8"))["benchmarks"]
    ref = json.load(open(committed_path, encoding="utf-8"))["benchmarks"]
    failures, checked = [], 0
    for name, entry in ref.items():
        if name not in run:
            failures.append(f"{name}: missing from the run")
            continue
        for metric in entry["columns"]:
            want, got = lookup(entry["metrics"], metric), lookup(run[name]["metrics"], metric)
            checked += 1
            if want is None or got is None or abs(float(got) - float(want)) > TOLERANCE:
                failures.append(f"{name} {metric}: {got} (committed {want})")
            else:
                print(f"ok {name} {metric}: {got:.4f} (committed {want:.4f})")
    for line in failures:
        print(f"DIFFERS {line}")
    print(f"{checked - len(failures)} of {checked} headline metrics reproduced (tolerance {TOLERANCE})")
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
