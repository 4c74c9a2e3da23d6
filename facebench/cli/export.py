"""`facebench export`: a torch checkpoint (state_dict, TorchScript, dlib .dat) to ONNX and/or TorchScript."""

from __future__ import annotations

import argparse
from pathlib import Path

from facebench.cli.run import add_trust_argument


def _size(text: str) -> tuple[int, int]:
    h, sep, w = text.lower().partition("x")
    try:
        return (int(h), int(w)) if sep else (int(h), int(h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW or N, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX or TorchScript with a parity check",
        description="Export a PyTorch state_dict (with --arch), TorchScript archive or dlib .dat model to ONNX "
        "(dynamic batch axis) and/or TorchScript. Each output is written only after a parity check on "
        "random inputs: the max abs difference is printed and the command fails (exit 1, nothing written) "
        "above the tolerance. The checkpoint's input profile (its sidecar, or dlib's) is written as the "
        "output's sidecar.",
    )
    p.add_argument("checkpoint", type=Path, help="model file")
    p.add_argument("--arch", help="backbone name of a PyTorch state_dict (iresnet18/34/50/100/200, mobilefacenet, ...)")
    p.add_argument("--onnx", type=Path, metavar="OUT.onnx", help="write an ONNX graph here")
    p.add_argument("--torchscript", type=Path, metavar="OUT.pt", help="write a TorchScript archive here")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs output difference allowed (default 1e-4)")
    p.add_argument(
        "--input-size", type=_size, metavar="HxW", help="input size of a TorchScript model (default 112x112)"
    )
    p.add_argument("--device", default="cpu", help="device to export on (default cpu)")
    add_trust_argument(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.errors import FacebenchError
    from facebench.models.loader import detect_format, load_encoder
    from facebench.optional import require_torch
    from facebench.extraction.preprocess import read_sidecar, write_sidecar
    from facebench.rundir import check_writable_target

    if args.onnx is None and args.torchscript is None:
        raise FacebenchError("nothing to do: give --onnx OUT.onnx and/or --torchscript OUT.pt")
    for flag, target in (("--onnx", args.onnx), ("--torchscript", args.torchscript)):
        if target is not None:
            check_writable_target(target, flag, directory=False)
    kind = detect_format(args.checkpoint)
    if kind == "onnx":
        raise FacebenchError(f"{args.checkpoint}: already ONNX; export reads torch checkpoints and dlib .dat files")
    require_torch("facebench export")
    from facebench.models.export import ParityError, export_checked

    encoder = load_encoder(args.checkpoint, arch=args.arch, device=args.device, input_size=args.input_size,
                           trust_checkpoint_code=args.trust_checkpoint_code)
    profile = read_sidecar(args.checkpoint) or getattr(encoder, "default_profile", None)
    status = 0
    for fmt, out in (("onnx", args.onnx), ("torchscript", args.torchscript)):
        if out is None:
            continue
        try:
            result = export_checked(encoder, out, fmt, tolerance=args.tolerance, opset=args.opset)
        except ParityError as exc:
            print(f"facebench: parity check failed: {exc}")
            status = 1
            continue
        print(
            f"wrote {result.path} ({fmt}); parity on {result.parity_inputs} random inputs: "
            f"max abs diff {result.max_abs_diff:.3g} (tolerance {result.tolerance:g})"
        )
        if profile is not None:
            print(f"wrote {write_sidecar(out, profile)} (input profile {profile.name!r})")
    return status
