"""`facebench run` arguments only: parsed here, run by the run pipeline (`facebench.pipeline`).

The command evaluates a checkpoint (or precomputed features) on benchmarks.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from facebench.errors import FacebenchError

if TYPE_CHECKING:
    from facebench.results import BenchmarkEntry, RunResults


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
    group.add_argument("--workers", type=int, default=2, help="decode/align threads (default 2; 0 = inline)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    group.add_argument("--half", action="store_true", help="fp16 autocast on GPU")
    add_trust_argument(group)


def add_trust_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--trust-checkpoint-code``: the opt-in for checkpoint formats that run code (TorchScript)."""
    parser.add_argument(
        "--trust-checkpoint-code", action="store_true",
        help="allow a checkpoint that carries code (TorchScript: its code runs on load and on every forward "
        "pass, with your file access); refused without this flag",
    )


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``: replace an existing output directory (whole, when the new output is complete)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out directory (the old one is kept until the new output is "
                        "complete; no file of it survives)")


def add_enrol_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of face detection for raw photos (`run` and `align`; rules in facebench.extraction.enrol)."""
    from facebench.extraction.detection import DETECTORS
    from facebench.extraction.enrol import LANDMARK_FRAMES, ON_NO_FACE

    g = parser.add_argument_group("raw photos (images that are neither 112x112 chips nor in a landmark file)")
    g.add_argument("--detector", choices=DETECTORS, default="dlib-hog",
                   help="face detector + 5-point landmarker (default dlib-hog; needs facebench[detect])")
    g.add_argument("--on-no-face", choices=ON_NO_FACE, default="error",
                   help="an image with no face: error (default, lists the files), center-crop (ArcFace template on "
                   "the centre square), skip (its pairs and searches are left out); several faces: the largest")
    g.add_argument("--landmark-frame", choices=LANDMARK_FRAMES, default="upright",
                   help="landmark-file points are in the upright (EXIF-rotated) frame (default) or on the stored "
                   "pixels (tools that ignore EXIF)")


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
                   "folder; alltoall:PATH for every pair of a folder or 'path label' list; identify:PATH for 1:N on "
                   "gallery.txt/probes.txt lists or a folder; found (default): every "
                   "benchmark whose files are under --data-root")
    p.add_argument("--data-root", type=Path, default=Path("."), help="where the benchmark files are (default .)")
    p.add_argument("--out", type=Path, help="output directory (default reports/<checkpoint name>)")
    add_overwrite_argument(p)
    p.add_argument("--features", type=Path, help="precomputed features: FILE.npy (one benchmark) or DIR of <name>.npy")
    p.add_argument("--file", action="append", default=[], metavar="NAME.ROLE=PATH", help="override one input file")
    p.add_argument("--save-features", type=Path, help="write the evaluated embeddings (FILE.npy or DIR), each with its row order "
                   "(the image paths, one per row) in <name>.paths.txt beside it")
    p.add_argument("--save-pair-scores", action="store_true",
                   help="IJB 1:1: also keep every pair's score, label and template ids in <benchmark>.npz (IJB-C: "
                   "about 160 MB), so that report and compare bootstrap templates and test TAR differences")
    add_model_arguments(p)
    g = p.add_argument_group("rules")
    g.add_argument("--kfold-rule", choices=("insightface", "facexzoo", "xqlfw"), default="insightface",
                   help="10-fold rule: insightface (default), facexzoo, or xqlfw (the XQLFW authors' 1 - cos grid)")
    g.add_argument("--tar-rule", choices=("nearest", "le", "interp"), default="nearest",
                   help="TAR@FAR read-off: nearest (insightface), le (FPR <= target), interp")
    g.add_argument("--per-image-l2", action="store_true", help="IJB: L2-normalise each image feature before pooling")
    g.add_argument("--no-detector-weight", action="store_true", help="IJB: do not multiply by the detector score")
    g.add_argument("--ijb-1n-rule", choices=("standard", "legacy"), default="standard",
                   help="IJB 1:N: standard per-gallery open set, or the legacy insightface merged rule")
    g.add_argument("--tpir-rule", choices=("insightface", "ge", "best"), default="insightface",
                   help="1:N TPIR@FPIR threshold rule of IJB, folder, identify, SurvFace (default insightface: "
                   "evaluation_1N; ge: bob.measure; best: supremum over thresholds with FPIR <= target)")
    g.add_argument("--cmc-ties", choices=(">=", ">", "argsort"), default=">=",
                   help="1:N rank ties: >= a tied non-mate ranks above the mate (bob, default); > the mate wins; "
                   "argsort: insightface's np.argsort order (IJB, folder only: identify, SurvFace, TinyFace "
                   "count block by block and take >= or >)")
    g.add_argument("--threshold", type=float, default=None,
                   help="also report FMR and FNMR at this fixed threshold (1:1 benchmarks)")
    g.add_argument("--threshold-unit", choices=("cosine", "distance"), default="cosine",
                   help="--threshold as a cosine (accept cos >= t) or a squared-L2 distance of unit vectors "
                   "(accept d <= t, i.e. cos >= 1 - t/2)")
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
    g.add_argument("--pairs", default="auto", metavar="auto|generate|DIALECT",
                   help="folder:PATH benchmarks: read PATH/pairs.txt in its detected dialect (auto, default), in a "
                   "named one (lfw, lfw_noheader, consecutive, path_path_label, label_path_path), or ignore it and "
                   "generate pairs (generate)")
    a = p.add_argument_group("fairness and quality analyses (pair benchmarks)")
    a.add_argument("--groups", type=Path, metavar="FILE",
                   help="CSV 'key,attribute,...' (key = image path relative to the image folder, or identity): "
                   "per-group FMR/FNMR at one global threshold, SER, STD, FDR, IR, GARBE (docs/fairness.md)")
    a.add_argument("--fairness-fmr", type=float, default=1e-3, help="overall FMR of the global threshold (default 1e-3)")
    a.add_argument("--fairness-boot", type=int, default=200,
                   help="bootstrap resamples by identity for the fairness intervals (default 200; 0 = none)")
    a.add_argument("--quality", metavar="norm|FILE",
                   help="error-versus-discard curves: 'norm' (feature norm, MagFace) or a file 'path score' per "
                   "image (docs/quality.md)")
    a.add_argument("--discard-limit", type=float, default=0.2,
                   help="discard fraction up to which the pAUC of the quality curves is taken (a grid point; default 0.2)")
    add_enrol_arguments(p)
    c = p.add_argument_group("cache")
    c.add_argument("--no-cache", action="store_true",
                   help="do not read or write the feature cache (nor the parsed protocol lists kept in its tables/)")
    c.add_argument("--verify-cache", action="store_true",
                   help="read and hash every image of each cached chunk and recompute chunks whose contents "
                   "changed (the key itself tracks each image's size and mtime, as git and make do)")
    c.add_argument("--cache-dir", type=Path, help="feature cache root (default $FACEBENCH_CACHE or ~/.cache/facebench)")
    c.add_argument("--chunk-size", type=int, default=4096,
                   help="images per cache chunk (the unit of resume and of sharding under torchrun; default 4096)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    p.add_argument("--no-speed", action="store_true", help="skip the model latency/throughput measurement")
    add_protocols_argument(p)
    p.set_defaults(func=handle)


def settings_from_args(args: argparse.Namespace):
    """Build the RunSettings of a parsed `run` command line."""
    from facebench.evaluate.analyses import check_options
    from facebench.evaluate.common import RunSettings
    from facebench.rundir import default_out_dir

    options = {
        "per_image_l2": args.per_image_l2,
        "detector_weight": not args.no_detector_weight,
        "ijb_1n_rule": args.ijb_1n_rule,
        "tpir_rule": args.tpir_rule,
        "cmc_ties": args.cmc_ties,
        "threshold": args.threshold,
        "threshold_unit": args.threshold_unit,
        "noise": args.noise,
        "tie_rule": args.tie_rule,
        "feature_suffix": args.feature_suffix,
        "megaface_sizes": args.megaface_sizes,
        "calibrate_on": args.calibrate_on,
        "folder_seed": args.folder_seed,
        "folder_pairs": args.folder_pairs,
        "measure_speed": not args.no_speed,
        "save_pair_scores": args.save_pair_scores,
        "pairs": args.pairs,
        "groups": str(args.groups) if args.groups else None,
        "fairness_fmr": args.fairness_fmr,
        "fairness_boot": args.fairness_boot,
        "quality": args.quality,
        "discard_limit": args.discard_limit,
        "detector": args.detector,
        "on_no_face": args.on_no_face,
        "landmark_frame": args.landmark_frame,
    }
    check_options(options)
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
        trust_checkpoint_code=args.trust_checkpoint_code,
        verify_cache=args.verify_cache,
    )


def print_summary(doc: RunResults) -> None:
    """Print the run's table and where it was written."""
    from facebench.report.tables import build_table, to_markdown

    if doc.benchmarks:
        print(to_markdown(build_table([doc])), end="")
    for name, entry in doc.benchmarks.items():
        for line in own_data_lines(name, entry):
            print(line)
        for warning in entry.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    for name, message in doc.failed.items():
        print(f"{name}: FAILED: {message}", file=sys.stderr)


def own_data_lines(name: str, entry: BenchmarkEntry) -> list[str]:
    """Summary lines of a benchmark's enrolment (failure to enrol) and of the model's own threshold."""
    lines = []
    for label, report in entry.enrolment.items():
        if report.get("detected"):
            lines.append(
                f"{label}: {report['detected']} images detected, {report['no_face']} without a face (failure to "
                f"enrol {report['failure_to_enrol_rate']:.2%}, --on-no-face {report['on_no_face']}), "
                f"{report['several_faces']} with several faces (largest kept)"
            )
    own = entry.details.get("at_model_threshold")  # its numbers are metrics at_model_threshold.<field>
    if own:
        def pct(field: str) -> str:
            v = entry.value(f"at_model_threshold.{field}")
            return "n/a" if v is None else f"{v:.2%}"

        lines.append(
            f"{name}: at the model's own threshold ({own['metric']} {entry.value('at_model_threshold.threshold'):g}): "
            f"accuracy {pct('accuracy')}, FAR {pct('far')}, FRR {pct('frr')}"
        )
    return lines


def handle(args: argparse.Namespace) -> int:
    from facebench.rundir import OutputDir, check_writable_target, default_out_dir, replace_policy

    # the output locations are checked before the slow imports and any work (the runner claims them again)
    if int(os.environ.get("RANK", "0")) == 0:
        out = args.out or default_out_dir(args.checkpoint, args.features)
        OutputDir(out, replace_policy(args.overwrite)).check()
        save = args.save_features
        if save is not None and not Path(os.path.abspath(save)).is_relative_to(os.path.abspath(out)):
            check_writable_target(save, "--save-features", directory=save.suffix != ".npy" or save.is_dir())
    from facebench.pipeline import run

    settings = settings_from_args(args)
    doc, status = run(settings, profile_name=args.profile, flip=args.flip, replace=replace_policy(args.overwrite))
    print_summary(doc)
    print(f"results: {settings.out / 'results.json'}")
    if (settings.out / "thresholds.md").is_file():
        print(f"thresholds at target FARs: {settings.out / 'thresholds.md'}")
    return status
