"""`facebench run`: evaluate a checkpoint (or precomputed features) on benchmarks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facebench.errors import FacebenchError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that runs a model: architecture, profile, flip, batching, device."""
    group = parser.add_argument_group("model and input contract")
    group.add_argument("--arch", help="backbone name for a PyTorch state_dict (iresnet50, mobilefacenet, ...)")
    group.add_argument(
        "--profile",
        help="input contract: insightface (RGB, (x/255-0.5)/0.5), facexzoo (BGR, (x-127.5)/128), raw, dlib; "
        "default: the checkpoint's sidecar file, else insightface",
    )
    group.add_argument("--flip", choices=("add", "concat", "none"), help="flip combination (default: profile's, add)")
    group.add_argument("--batch-size", type=int, default=32, help="images per model call (default 32: on CPU larger batches cost activation memory, not speed)")
    group.add_argument("--workers", type=int, default=2, help="decode/align worker processes (default 2; 0 = inline)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    group.add_argument("--half", action="store_true", help="fp16 autocast on GPU")


def add_protocols_argument(parser: argparse.ArgumentParser) -> None:
    """``--protocols DIR|FILE`` (repeatable): user benchmark specs read besides the shipped ones."""
    parser.add_argument(
        "--protocols", action="append", default=[], metavar="DIR|FILE",
        help="also read the benchmark specs (*.toml) in this directory or file, validated like the shipped ones "
        "(repeatable; same as adding it to $FACEBENCH_PROTOCOLS)",
    )


def parse_assignments(items: list[str], flag: str, example: str, dotted: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` command-line items as a mapping (``dotted``: the key must be ``NAME.ROLE``); a malformed
    or repeated key is an error quoting the item and an example."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value or (dotted and "." not in key):
            raise FacebenchError(f"{flag} {item!r}: expected {example}")
        if key in out:
            raise FacebenchError(f"{flag}: {key} given twice")
        out[key] = value
    return out


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``--file NAME.ROLE=PATH`` items as a mapping."""
    return parse_assignments(items, "--file", "BENCHMARK.ROLE=PATH (e.g. lfw.pack=/data/lfw.bin)", dotted=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="evaluate a checkpoint or features on benchmarks",
        description="Evaluate a checkpoint (ONNX, TorchScript, PyTorch state_dict + --arch, dlib .dat) or "
        "precomputed features on benchmarks, and write results.json, tables and plots.",
    )
    p.add_argument("checkpoint", nargs="?", type=Path, help="model file (omit with --features)")
    p.add_argument("-b", "--benchmark", default="found",
                   help="names, comma separated; all-verification, all-ijb, all; folder:PATH for your own identity "
                   "folder; found (default): every benchmark whose files are under --data-root")
    p.add_argument("--data-root", type=Path, default=Path("."), help="where the benchmark files are (default .)")
    p.add_argument("--out", type=Path, help="output directory (default reports/<checkpoint name>)")
    p.add_argument("--features", type=Path, help="precomputed features: FILE.npy (one benchmark) or DIR of <name>.npy")
    p.add_argument("--file", action="append", default=[], metavar="NAME.ROLE=PATH", help="override one input file")
    p.add_argument("--save-features", type=Path, help="write the evaluated embeddings (FILE.npy or DIR)")
    p.add_argument("--save-pair-scores", action="store_true",
                   help="IJB 1:1: also keep every pair's score, label and template ids in <benchmark>.npz (IJB-C: "
                   "about 160 MB), so that report and compare bootstrap templates and test TAR differences")
    add_model_arguments(p)
    g = p.add_argument_group("rules")
    g.add_argument("--kfold-rule", choices=("insightface", "facexzoo"), default="insightface")
    g.add_argument("--tar-rule", choices=("nearest", "le", "interp"), default="nearest",
                   help="TAR@FAR read-off: nearest (insightface), le (FPR <= target), interp")
    g.add_argument("--per-image-l2", action="store_true", help="IJB: L2-normalise each image feature before pooling")
    g.add_argument("--no-detector-weight", action="store_true", help="IJB: do not multiply by the detector score")
    g.add_argument("--ijb-1n-rule", choices=("standard", "legacy"), default="standard",
                   help="IJB 1:N: standard per-gallery open set, or the legacy insightface merged rule")
    g.add_argument("--noise", choices=("insightface", "facexzoo", "none"), default="insightface",
                   help="MegaFace noise-list rule")
    g.add_argument("--tie-rule", choices=(">=", ">"), default=">=", help="MegaFace rank ties (default >=)")
    g.add_argument("--feature-suffix", default="", help="MegaFace devkit feature file suffix (e.g. _r100.bin)")
    g.add_argument("--megaface-sizes", default="", help="distractor sizes to evaluate (default: all lists present)")
    g.add_argument("--calibrate-on", metavar="NAME",
                   help="pair benchmark whose impostor scores set the operating thresholds applied to the others "
                   "(default: each benchmark's own, in-sample)")
    g.add_argument("--folder-seed", type=int, default=0,
                   help="folder:PATH benchmarks: seed of the generated pairs and gallery/probe split (default 0)")
    g.add_argument("--folder-pairs", type=int, default=6000,
                   help="folder:PATH benchmarks: most pairs generated, 10 balanced folds (default 6000)")
    c = p.add_argument_group("cache")
    c.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    c.add_argument("--cache-dir", type=Path, help="feature cache root (default $FACEBENCH_CACHE or ~/.cache/facebench)")
    c.add_argument("--chunk-size", type=int, default=4096,
                   help="images per cache chunk (the unit of resume and of sharding under torchrun; default 4096)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    p.add_argument("--no-speed", action="store_true", help="skip the model latency/throughput measurement")
    add_protocols_argument(p)
    p.set_defaults(func=handle)


def settings_from_args(args: argparse.Namespace):
    """Build the RunSettings of a parsed `run` command line."""
    from facebench.evaluate.common import RunSettings
    from facebench.runner import default_out_dir

    options = {
        "per_image_l2": args.per_image_l2,
        "detector_weight": not args.no_detector_weight,
        "ijb_1n_rule": args.ijb_1n_rule,
        "noise": args.noise,
        "tie_rule": args.tie_rule,
        "feature_suffix": args.feature_suffix,
        "megaface_sizes": args.megaface_sizes,
        "calibrate_on": args.calibrate_on,
        "folder_seed": args.folder_seed,
        "folder_pairs": args.folder_pairs,
        "measure_speed": not args.no_speed,
        "save_pair_scores": args.save_pair_scores,
    }
    return RunSettings(
        benchmarks=args.benchmark,
        data_root=args.data_root,
        out=args.out or default_out_dir(args.checkpoint, args.features),
        checkpoint=args.checkpoint,
        features=args.features,
        arch=args.arch,
        device=args.device,
        half=args.half,
        batch_size=args.batch_size,
        workers=args.workers,
        cache=not args.no_cache,
        cache_dir=args.cache_dir,
        kfold_rule=args.kfold_rule,
        tar_rule=args.tar_rule,
        file_overrides=parse_overrides(args.file),
        save_features=args.save_features,
        options=options,
        progress=not args.no_progress,
        chunk_size=args.chunk_size,
    )


def print_summary(doc: dict) -> None:
    """Print the run's table and where it was written."""
    from facebench.report.tables import build_table, to_markdown

    if doc["benchmarks"]:
        print(to_markdown(build_table([doc])), end="")
    for name, entry in doc["benchmarks"].items():
        for warning in entry.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    for name, message in doc["failed"].items():
        print(f"{name}: FAILED: {message}", file=sys.stderr)


def handle(args: argparse.Namespace) -> int:
    from facebench.runner import run

    settings = settings_from_args(args)
    doc, status = run(settings, profile_name=args.profile, flip=args.flip)
    print_summary(doc)
    print(f"results: {settings.out / 'results.json'}")
    if (settings.out / "thresholds.md").is_file():
        print(f"thresholds at target FARs: {settings.out / 'thresholds.md'}")
    return status
