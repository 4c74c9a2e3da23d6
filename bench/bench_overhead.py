"""facebench's own cost around the protocol math, on the IJB-C-sized set and on MegaFace at 1M, in one run.

Each ``facebench run --features`` runs in a child process of this script (the real CLI, ``facebench.cli.main``)
whose phases are timed from inside: interpreter start and imports, the protocol (the benchmark's evaluator;
for IJB-C also its own phases: meta, pooling, pairs, scoring, ROC), writing results.json and the arrays,
and the report (tables, plots, thresholds). The parent measures the child's wall time and peak RSS (VmHWM).
Then ``facebench report RUN --no-stats`` and ``facebench compare RUN --no-stats`` are timed on the IJB-C run.

Baselines, measured in the same child process right after the run:

- IJB-C: the protocol itself (the evaluator's time): the rest is what facebench adds around it; goal: total
  wall <= 4.5 s on a quiet 2-core machine, peak RSS <= 2 x the feature file, report and compare <= 1 s each.
  Timed twice: with ``--no-cache`` (every run parses the meta files and the 15.6M-line pair list) and with
  a table cache of its own, emptied first (one run parses and stores the lists, the timed ones read them
  back: :mod:`facebench.io.tablecache`, what a researcher's second and later runs on the same files do).
- MegaFace: the bare float32 product of the distractors (memory-mapped ``megaface.npy``, blocks of 4,096
  rows) by the probes with a running maximum per probe (``bench_megaface.baseline``); goal: the whole
  evaluation (every list, CMC 1..10, TAR@1e-6) <= 1.05 x that, peak RSS <= distractor bytes + 1 GiB. Run
  twice with a table cache of its own, emptied first: the first run maps the lists to feature rows and
  stores the mapping, the second reads it back (the verdict is the second's).

The data come from the generators of ``bench_ijb.py`` and ``bench_megaface.py`` (kept in --workdir and
reused when present).

    python bench/bench_overhead.py --workdir /tmp/overhead-bench            # both, full size
    python bench/bench_overhead.py --workdir /tmp/ob --ijb-scale 0.05 --distractors 100000   # quick
    python bench/bench_overhead.py --workdir /tmp/overhead-bench --runs /tmp/mine --skip megaface  # IJB-C only

``--runs`` writes the IJB-C runs (and the timings) elsewhere than the data. Beside wall times it prints CPU
seconds per phase (the process's, every thread, while the phase ran), the figure to compare on a loaded
machine. ``report`` and ``compare`` run as ``python -m facebench`` from the current directory: run the
bench from the tree being measured (or from a directory without a ``facebench`` package, with PYTHONPATH).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

START = time.perf_counter()  # the child's clock starts here, before any facebench import

sys.path.insert(0, str(Path(__file__).resolve().parent))

from facebench.cpu import avoid_slow_avx512_sort

avoid_slow_avx512_sort(os.environ)  # numpy's code paths as the facebench command chooses them (facebench.cpu)

IJB_WALL_GOAL_S = 4.5
IJB_RSS_GOAL = 2.0
REPORT_GOAL_S = 1.0
MEGAFACE_GOAL = 1.05


# ------------------------------------------------------------------------------------- child


def child(out_json: Path, baseline_features: str, cli_args: list[str]) -> int:
    """Run ``facebench`` with ``cli_args`` in this process, timing its phases (wall and process CPU); then,
    with ``baseline_features``, the bare MegaFace product. Writes the timings to ``out_json``."""
    import facebench.cli
    import facebench.pipeline as runner

    phases: dict[str, float] = {"start_and_imports": time.perf_counter() - START,
                                "start_and_imports_cpu": time.process_time()}
    evaluate_for = runner.evaluator_for

    def evaluator(kind: str):
        function = evaluate_for(kind)
        if kind == "ijb_1to1":  # the protocol's own phases (the module is imported by now)
            time_ijb_phases(sys.modules[function.__module__], phases)
        return timed(phases, "protocol", function)

    runner.evaluator_for = evaluator
    runner.write_results = timed(phases, "results", runner.write_results)
    runner.REPORT_MODULE = "_report_timed"  # the report module, its write_run_report timed
    runner.thresholds.write_tables = timed(phases, "thresholds", runner.thresholds.write_tables)
    t = time.perf_counter()
    status = facebench.cli.main(cli_args)
    phases["cli_main"] = time.perf_counter() - t
    phases["in_process_total"] = time.perf_counter() - START
    times = os.times()
    phases["cpu_total"] = times.user + times.system
    phases.update(sys.modules["_report_timed"].SPENT if "_report_timed" in sys.modules else {})
    peak_kib = _status_kib("VmHWM")
    result = {"status": status, "phases": phases, "peak_rss": peak_kib * 1024}
    if baseline_features:
        from bench_megaface import baseline

        wall, cpu = baseline(Path(baseline_features))
        result["baseline"] = {"wall": wall, "cpu": cpu}
    out_json.write_text(json.dumps(result))
    gc.freeze()  # as the facebench command itself exits (facebench.cli.entry)
    return int(status)


def timed(phases: dict[str, float], name: str, fn):
    """``fn`` adding its wall time to ``phases[name]``, the process's CPU time meanwhile (every thread) to
    ``phases[name + "_cpu"]`` and its own thread's to ``phases[name + "_thread_cpu"]``."""

    @functools.wraps(fn)  # the run preloads what the wrapped evaluator's module lists (its __module__)
    def wrapper(*args, **kwargs):
        t, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            for key, spent in (("", time.perf_counter() - t), ("_cpu", time.process_time() - cpu),
                               ("_thread_cpu", time.thread_time() - own)):
                phases[name + key] = phases.get(name + key, 0.0) + spent

    return wrapper


#: IJB 1:1 phases timed in the child: (phase, module attribute that runs it). The pair list is read in a
#: background thread while the features are pooled: its own thread's CPU is what it costs.
IJB_PHASES = (("read_meta", "ijbio.read_face_tid_mid"), ("read_meta", "ijbio.meta_images"), ("read_pairs", "ijbio.read_template_pairs"),
              ("features_and_pooling", "_pool"), ("scoring", "score_pairs"), ("roc", "verification_metrics"))


def time_ijb_phases(module, phases: dict[str, float]) -> None:
    for phase, attribute in IJB_PHASES:
        owner, _, name = attribute.rpartition(".")
        target = getattr(module, owner) if owner else module
        if hasattr(target, name):
            setattr(target, name, timed(phases, "ijb." + phase, getattr(target, name)))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------------------- parent


def run_child(runs: Path, name: str, cli_args: list[str], baseline_features: str = "") -> dict:
    """Run the child; its timings, wall time (spawn to exit) and peak RSS."""
    from bench_ijb import timed as timed_process

    out_json = runs / f"{name}.timings.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(out_json), "--baseline", baseline_features, "--"]
    wall, peak, status = timed_process(cmd + cli_args)
    if status != 0:
        raise SystemExit(f"{name}: facebench exited with {status}")
    result = json.loads(out_json.read_text())
    result["wall"] = wall
    return result


def wall_and_cpu(cmd: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, all threads) of a command run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def show(phases: dict[str, float], protocol_parts: dict[str, float]) -> str:
    keys = ("start_and_imports", "protocol", "results", "report", "thresholds")
    rest = phases["cli_main"] - sum(phases.get(k, 0.0) for k in keys[1:])
    text = ", ".join(f"{k} {phases.get(k, 0.0):.2f} s" for k in keys)
    text += f", the rest of the command (parser, report import wait, summary) {rest:.2f} s"
    if protocol_parts:
        text += " (protocol: " + ", ".join(f"{k} {v:.2f}" for k, v in protocol_parts.items()) + ")"
    return text


def show_cpu(phases: dict[str, float]) -> str:
    """CPU seconds per timed phase: the process's (every thread) while it ran, and for phases that share
    the process with others (the pair list read beside the pooling) their own thread's."""
    parts = [f"start_and_imports {phases.get('start_and_imports_cpu', 0.0):.2f}"]
    for key in ("protocol", *(f"ijb.{p}" for p, _ in IJB_PHASES), "results", "report", "report.figures", "thresholds"):
        if key + "_cpu" in phases:
            own = f" (own thread {phases[key + '_thread_cpu']:.2f})" if key == "ijb.read_pairs" else ""
            parts.append(f"{key} {phases[key + '_cpu']:.2f}{own}")
    return f"total {phases.get('cpu_total', 0.0):.2f} s: " + ", ".join(parts)


def ijb_part(work: Path, runs: Path, scale: float, reps: int) -> bool:
    from bench_ijb import ensure_generated
    from facebench.results import read_results

    root = work / "ijbc"
    info = ensure_generated(root, scale, 0)
    features = root / "features.npy"
    feature_bytes = features.stat().st_size
    run_dir = runs / "ijbc_run"
    args = ["-q", "run", "--features", str(features), "-b", "ijbc", "--data-root", str(root), "--out", str(run_dir),
            "--no-progress", "--overwrite"]
    table_cache = runs / "table-cache"  # its own, emptied: the first cached run parses and stores the lists
    shutil.rmtree(table_cache, ignore_errors=True)

    def series(extra: list[str], count: int) -> list[dict]:
        done = []
        for _ in range(count):
            result = run_child(runs, "ijbc", args + extra)
            result["parts"] = read_results(run_dir).benchmarks["ijbc"].extra.get("timings_s", {})
            done.append(result)
        return done

    parsed = series(["--no-cache"], reps)  # every run parses the meta files and the pair list
    storing = series(["--cache-dir", str(table_cache)], 1)[0]
    runs_done = series(["--cache-dir", str(table_cache)], reps)  # the lists read back from the table cache
    best = min(runs_done, key=lambda r: r["wall"])
    best_parsed = min(parsed, key=lambda r: r["wall"])
    protocol = best["phases"]["protocol"]
    report = best["phases"].get("report", 0.0) + best["phases"].get("thresholds", 0.0)
    rss = max(r["peak_rss"] for r in (best, best_parsed, storing)) / feature_bytes
    reports = [wall_and_cpu([sys.executable, "-m", "facebench", "-q", "report", str(run_dir), "--no-stats"])
               for _ in range(reps)]
    compares = [wall_and_cpu([sys.executable, "-m", "facebench", "-q", "compare", str(run_dir), "--no-stats",
                              "--out", str(runs / "ijbc_compare"), "--overwrite"]) for _ in range(reps)]
    print(f"IJB-C-sized set {info['sizes']['images']:,} images x 512, {info['sizes']['pairs']:,} pairs "
          f"(features {feature_bytes / 2**20:.0f} MiB)")
    for title, done in (("lists parsed in every run (--no-cache)", parsed),
                        ("lists read back from the table cache", runs_done)):
        walls = ", ".join(f"{r['wall']:.2f}" for r in done)
        cpus = ", ".join(f"{r['phases'].get('cpu_total', 0.0):.2f}" for r in done)
        top = min(done, key=lambda r: r["wall"])
        print(f"  run --features -b ijbc, {title}: wall per run {walls} s; best {top['wall']:.2f} s"
              f"  [goal <= {IJB_WALL_GOAL_S} s quiet]  {'OK' if top['wall'] <= IJB_WALL_GOAL_S else 'OVER'}; CPU per run: "
              f"{cpus} s")
        print(f"    phases of the best: {show(top['phases'], top['parts'])}")
        print(f"    CPU of the best: {show_cpu(top['phases'])}")
    print(f"  the run that parsed and stored the lists: {storing['wall']:.2f} s wall, "
          f"{storing['phases'].get('cpu_total', 0.0):.2f} s CPU")
    print("  with the table cache:")
    print(f"  protocol {protocol:.2f} s, report {report:.2f} s, total {best['wall']:.2f} s: "
          f"total / protocol {best['wall'] / protocol:.2f}, outside the protocol {best['wall'] - protocol:.2f} s")
    print(f"  peak RSS (the highest of the three kinds of run) {rss * feature_bytes / 2**20:.0f} MiB = {rss:.2f} x the "
          f"feature file  [goal <= {IJB_RSS_GOAL}]  "
          f"{'OK' if rss <= IJB_RSS_GOAL else 'OVER'}")
    report_wall, compare_wall = min(w for w, _ in reports), min(w for w, _ in compares)
    print(f"  facebench report RUN --no-stats: {report_wall:.2f} s (best of {reps}; CPU {min(c for _, c in reports):.2f} s);"
          f"  facebench compare RUN --no-stats: {compare_wall:.2f} s (CPU {min(c for _, c in compares):.2f} s)"
          f"  [goal <= {REPORT_GOAL_S} s each]")
    return best["wall"] <= IJB_WALL_GOAL_S and rss <= IJB_RSS_GOAL and max(report_wall, compare_wall) <= REPORT_GOAL_S


def megaface_part(work: Path, n: int, reps: int = 1) -> bool:
    from bench_megaface import build

    from facebench.io import megaface as mfio

    mf = work / "megaface"
    if (mf / "features" / mfio.MEGAFACE_NPY).is_file() and (mf / "size.json").is_file() and \
            json.loads((mf / "size.json").read_text()) == n:
        root, features = mf / "data", mf / "features"
    else:
        t = time.perf_counter()
        root, features, _ = build(mf, n, 512, 0)
        (mf / "size.json").write_text(json.dumps(n))
        print(f"MegaFace data built in {time.perf_counter() - t:.0f} s under {mf}")
    rows = mfio.NpyRows(features / mfio.MEGAFACE_NPY).shape[0]
    run_dir = mf / "overhead_run"
    table_cache = work / "megaface-table-cache"  # its own, emptied: the first run maps the lists, the second reads
    shutil.rmtree(table_cache, ignore_errors=True)
    args = ["-q", "run", "--features", str(features), "-b", "megaface", "--data-root", str(root), "--out", str(run_dir),
            "--no-progress", "--overwrite", "--cache-dir", str(table_cache)]
    limit = rows * 512 * 4 + (1 << 30)
    print(f"MegaFace {rows:,} distractor rows x 512 (every list up to {n:,}), real 3,530-probe list when present")
    met = []
    titles = ["lists mapped to rows and stored (first run)"] + [
        f"mapping read back from the table cache (run {k + 2})" for k in range(max(1, reps))]
    for title in titles:
        r = run_child(work, "megaface", args, baseline_features=str(features))
        protocol, base = r["phases"]["protocol"], r["baseline"]["wall"]
        report = r["phases"].get("report", 0.0) + r["phases"].get("thresholds", 0.0)
        run_total = r["phases"]["in_process_total"]  # measured before the baseline ran
        print(f"  {title}:")
        print(f"    phases: {show(r['phases'], {})}; child wall {r['wall']:.2f} s (includes the baseline)")
        print(f"    bare product with running max (same process): {base:.2f} s wall, {r['baseline']['cpu']:.2f} s CPU")
        print(f"    protocol {protocol:.2f} s = {protocol / base:.3f} x bare [goal <= {MEGAFACE_GOAL}]  "
              f"{'OK' if protocol <= MEGAFACE_GOAL * base else 'OVER'} (CPU {r['phases']['protocol_cpu']:.2f} s = "
              f"{r['phases']['protocol_cpu'] / r['baseline']['cpu']:.3f} x bare); report {report:.2f} s; "
              f"run total (start to end of report) {run_total:.2f} s = {run_total / base:.3f} x bare")
        print(f"    peak RSS of the run {r['peak_rss'] / 2**30:.2f} GiB  [goal <= distractors + 1 GiB = "
              f"{limit / 2**30:.2f} GiB]  {'OK' if r['peak_rss'] <= limit else 'OVER'}")
        if title != titles[0]:
            met.append((protocol / base, r["peak_rss"] <= limit))
    ratios = sorted(ratio for ratio, _ in met)
    median = ratios[len(ratios) // 2]
    print(f"  cached runs: protocol / bare {', '.join(f'{x:.3f}' for x in ratios)}; median {median:.3f}  "
          f"[goal <= {MEGAFACE_GOAL}]  {'OK' if median <= MEGAFACE_GOAL else 'OVER'}")
    return median <= MEGAFACE_GOAL and all(ok for _, ok in met)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        split = argv.index("--")
        return child(Path(argv[1]), argv[3], argv[split + 1 :])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/overhead-bench"), help="the data (kept)")
    parser.add_argument("--runs", type=Path, help="where the IJB-C runs and their timings are written (default: --workdir)")
    parser.add_argument("--ijb-scale", type=float, default=1.0, help="fraction of IJB-C's sizes (default 1)")
    parser.add_argument("--distractors", type=int, default=1_000_000, help="largest MegaFace list (default 1M)")
    parser.add_argument("--reps", type=int, default=3,
                        help="IJB-C runs of each kind (the best is shown) and cached MegaFace runs (the median); default 3")
    parser.add_argument("--skip", choices=("ijb", "megaface"), action="append", default=[], help="leave a part out")
    parser.add_argument("--clean", action="store_true", help="remove --workdir at the end")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    runs = args.runs or args.workdir
    runs.mkdir(parents=True, exist_ok=True)
    ok = True
    try:
        if "ijb" not in args.skip:
            ok &= ijb_part(args.workdir, runs, args.ijb_scale, max(1, args.reps))
        if "megaface" not in args.skip:
            ok &= megaface_part(args.workdir, args.distractors, args.reps)
    finally:
        if args.clean:
            shutil.rmtree(args.workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
