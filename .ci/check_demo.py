"""CI: a `facebench demo` run reproduces the committed demo numbers (reports/demo/results.json).

Usage: python check_demo.py RUN_DIR/results.json COMMITTED/results.json. Both are read by
`facebench.results.read_results` (either schema version, ``facebench.results/1`` converted). Compares every
headline metric (the table columns each benchmark declares) within 0.005, the tolerance of
tests/test_demo_suite.py (identical on the machine that made it; other SIMD kernels may flip a pair or two near
a threshold). Exit 1 on a difference or a missing benchmark.
"""

from __future__ import annotations

import sys

from facebench.results import read_results

TOLERANCE = 0.005


def main(run_path: str, committed_path: str) -> int:
    run = read_results(run_path).benchmarks
    ref = read_results(committed_path).benchmarks
    failures, checked = [], 0
    for name, entry in ref.items():
        if name not in run:
            failures.append(f"{name}: missing from the run")
            continue
        for metric in entry.columns:
            want, got = entry.value(metric), run[name].value(metric)
            checked += 1
            if want is None or got is None or abs(got - want) > TOLERANCE:
                failures.append(f"{name} {metric}: {got} (committed {want})")
            else:
                print(f"ok {name} {metric}: {got:.4f} (committed {want:.4f})")
    for line in failures:
        print(f"DIFFERS {line}")
    print(f"{checked - len(failures)} of {checked} headline metrics reproduced (tolerance {TOLERANCE})")
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
