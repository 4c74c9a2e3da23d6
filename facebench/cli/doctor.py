"""`facebench doctor`: which input contract (colour order, normalisation, flip, alignment) a checkpoint expects."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facebench.cli.run import add_protocols_argument, add_trust_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    from facebench.cli.run import add_enrol_arguments

    p = subparsers.add_parser(
        "doctor",
        help="find the input contract a checkpoint expects (colour order, normalisation, flip, alignment)",
        description="Inspect a checkpoint (format, input size and layout, output dimension, in-graph "
        "normalisation), evaluate a small fold-balanced subset of a verification benchmark under every candidate "
        "input contract, print them ranked with a verdict, and optionally store the winner as the checkpoint's "
        "sidecar profile. Without --benchmark it uses the demo suite's demo_verify pack (rendered if missing). "
        "Exit status 1 when no contract reaches plausible accuracy.",
    )
    p.add_argument("checkpoint", type=Path,
                   help="model file (ONNX, TorchScript, PyTorch state_dict + --arch, dlib .dat)")
    p.add_argument("-b", "--benchmark",
                   help="a verification benchmark (pairs kind) or folder:PATH (default demo_verify)")
    p.add_argument("--data-root", type=Path, help="where the benchmark files are (default: the demo suite)")
    p.add_argument("--file", action="append", default=[], metavar="NAME.ROLE=PATH", help="override one input file")
    p.add_argument("--pairs", type=int, default=600, help="pairs in the fold-balanced subset (default 600)")
    p.add_argument("--exhaustive", action="store_true", help="run the flip views of every contract (no pruning)")
    p.add_argument("--min-accuracy", type=float, help="plausible accuracy floor (default: the benchmark's, else 0.75)")
    p.add_argument("--write-sidecar", action="store_true",
                   help="store the winning profile as <checkpoint>.facebench.json")
    p.add_argument("--out", type=Path, help="also write the full findings as JSON to this file")
    p.add_argument("--folder-seed", type=int, default=0, help="folder:PATH benchmarks: pair generation seed")
    p.add_argument("--folder-pairs", type=int, default=6000, help="folder:PATH benchmarks: pairs generated")
    add_enrol_arguments(p)
    g = p.add_argument_group("model")
    g.add_argument("--arch", help="backbone name for a PyTorch state_dict")
    g.add_argument("--batch-size", type=int, default=32, help="images per model call (default 32: on CPU larger batches cost activation memory, not speed)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    add_trust_argument(g)
    add_protocols_argument(p)
    p.set_defaults(func=handle)


def _fmt(value: float | None, percent: bool = True) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}" if percent else f"{value:.4f}"


def format_report(diagnosis) -> str:
    """The doctor's findings as text: checkpoint facts, the ranked table, the verdict."""
    from tabulate import tabulate

    from facebench.doctor import _normalisation

    c, b = diagnosis.checkpoint, diagnosis.benchmark
    flops = c.get("flops")
    if not flops:
        flops = "FLOPs not counted"
    else:
        flops = f"{flops / 1e9:.3f} GFLOPs/image" if flops >= 1e8 else f"{flops / 1e6:.3f} MFLOPs/image"
    lines = [
        f"checkpoint: {c['path']}",
        f"  format {c['format']}, input {c['input_size'][0]}x{c['input_size'][1]} {c['input_layout']}, "
        f"output {c['embedding_dim']}-d, {c.get('parameters') or '?'} parameters, {flops}",
        f"  normalises its input in the graph: {c['normalizes_input_text']}",
        f"  `facebench run` resolves profile {c['run_profile']['name']} ({c['run_profile_source']})",
        f"pairs: {b['n_pairs']} of {b['n_pairs_available']} from {b['name']} ({b['n_images']} images), "
        f"10 folds, plausible accuracy >= {b['plausible_min_accuracy']:.0%}",
        "",
    ]
    header = ["#", "contract", "colour", "normalisation", "chip", "flip", "accuracy %", "std", "AUC", "model s", "note"]
    table = []
    chosen = diagnosis.verdict.get("profile")
    for i, row in enumerate(diagnosis.rows):
        norm = _normalisation(row.profile)
        note = row.status if row.status != "ok" else ""
        if chosen and row.profile.to_dict() == chosen:
            note = "<- verdict"
        table.append([
            str(i + 1) if row.status == "ok" else "",
            row.name,
            row.profile.colour.upper(),
            norm.formula if norm else "custom",
            f"{row.profile.chip} {row.profile.size}",
            row.profile.flip,
            _fmt(row.accuracy),
            _fmt(row.accuracy_std),
            _fmt(row.auc, percent=False),
            f"{row.seconds:.1f}" if row.status == "ok" else "-",
            note,
        ])
    align = ["right" if k in (0, 6, 7, 8, 9) else "left" for k in range(len(header))]
    text = tabulate(table, header, tablefmt="plain", colalign=align, disable_numparse=True)
    lines += [line.rstrip() for line in text.splitlines()]
    t = diagnosis.timings
    lines += [
        "",
        f"time: {t['total']:.1f} s (decode and align {t['decode_align']:.1f} s, model {t['model']:.1f} s)",
    ]
    lines += [f"warning: {w}" for w in diagnosis.warnings]
    lines.append(f"verdict: {diagnosis.verdict['message']}")
    return "\n".join(lines) + "\n"


def handle(args: argparse.Namespace) -> int:
    from facebench.benchmarks import check_overrides, load_benchmarks, select, spec_overrides
    from facebench.extraction.cache import default_cache_root
    from facebench.cli.run import parse_overrides
    from facebench.extraction.enrol import EnrolOptions
    from facebench.doctor import diagnose, load_pair_data
    from facebench.extraction.extractor import FeatureExtractor, ModelSettings
    from facebench.errors import FacebenchError
    from facebench.atomic import write_json
    from facebench.extraction.preprocess import write_sidecar
    from facebench.rundir import check_writable_target

    name = args.benchmark or "demo_verify"
    registry = load_benchmarks()
    specs = select(name, registry)
    if len(specs) != 1:
        raise FacebenchError(f"--benchmark {name!r}: give exactly one verification benchmark, got {len(specs)}")
    spec = specs[0]
    overrides = parse_overrides(args.file)
    check_overrides(overrides, specs, registry)
    if args.out:
        check_writable_target(args.out, "--out", directory=False)
    # the checkpoint is loaded (and so checked) before anything is rendered or read
    embedder = FeatureExtractor.load(
        ModelSettings(checkpoint=args.checkpoint, arch=args.arch, batch_size=args.batch_size, device=args.device,
                      cache=False, progress=False, trust_checkpoint_code=args.trust_checkpoint_code)
    )
    data_root = args.data_root
    if data_root is None:
        if spec.name != "demo_verify":
            data_root = Path(".")
        else:
            from facebench.cli.demo import default_suite_root
            from facebench.demo.suite import build_suite

            print("demo suite: checking (rendered on first use) ...", file=sys.stderr)
            data_root = build_suite(default_suite_root())
    data = load_pair_data(spec, data_root, spec_overrides(spec.name, overrides),
                          seed=args.folder_seed, max_pairs=args.folder_pairs)
    diagnosis = diagnose(
        embedder, data, spec, args.pairs, exhaustive=args.exhaustive, min_accuracy=args.min_accuracy,
        batch_size=args.batch_size, log=lambda msg: print(msg, file=sys.stderr),
        enrolment=EnrolOptions(detector=args.detector, on_no_face=args.on_no_face,
                               landmark_frame=args.landmark_frame, cache_root=default_cache_root() / "detections"),
    )
    print(format_report(diagnosis), end="")
    if args.out:
        write_json(args.out, diagnosis.to_dict())
        print(f"findings: {args.out}")
    if diagnosis.verdict["status"] != "ok":
        if args.write_sidecar:
            print(f"no sidecar written: no profile recommended ({diagnosis.verdict['status']})", file=sys.stderr)
        return 1
    if args.write_sidecar:
        path = write_sidecar(args.checkpoint, diagnosis.chosen)
        print(f"sidecar: {path} (profile {diagnosis.verdict['contract']})")
    return 0
