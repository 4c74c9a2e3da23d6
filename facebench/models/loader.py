"""``load_encoder``: any supported checkpoint file -> an Encoder.

Format detection, by content first and extension second:

- a zip with TorchScript code (``code/`` or ``constants.pkl``) -> TorchScript;
- any other zip, or a legacy pickle stream (first byte 0x80) -> PyTorch state_dict (needs ``arch`` unless
  exactly one registered architecture matches its parameter names and shapes);
- a file starting with dlib's loss record, or a ``.dat`` file -> dlib network (format ``dlib``, profile
  ``dlib``);
- ``.onnx``, or anything else that parses as ONNX -> onnxruntime.

torch is imported only for the torch formats, so evaluating an ONNX graph never loads it.

Code in checkpoints: a TorchScript archive is a program; ``torch.jit.load`` runs its ``__setstate__``
methods and every ``forward`` runs its code, which can read and write any file the user can. Formats that
run code (``CODE_FORMATS``) are refused unless the caller passes ``trust_checkpoint_code=True`` (the CLI's
``--trust-checkpoint-code``); the other formats are data only (ONNX graphs, state_dicts read with
``weights_only=True``, dlib's serialisation read by facebench's own parser).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from facebench.errors import FacebenchError
from facebench.models.base import Encoder
from facebench.models.formats import is_dlib_file, is_torchscript_archive
from facebench.registry import Registry

FORMATS: Registry[str] = Registry("checkpoint format", [
    ("onnx", "an ONNX graph, run by onnxruntime"),
    ("torchscript", "a TorchScript archive (carries code: needs --trust-checkpoint-code)"),
    ("pytorch", "a PyTorch state_dict of a registered architecture (--arch)"),
    ("dlib", "a dlib face-recognition network (.dat)"),
])
"""Checkpoint format -> what it is (detection rules in the module docstring)."""
CODE_FORMATS = frozenset({"torchscript"})
"""Checkpoint formats whose loading or forward pass runs code stored in the file."""
TRUST_FLAG = "--trust-checkpoint-code"


def check_code_trust(path: str | Path, kind: str, trust_checkpoint_code: bool) -> None:
    """Refuse a checkpoint of a code-running format (``CODE_FORMATS``) unless its code is trusted."""
    if kind in CODE_FORMATS and not trust_checkpoint_code:
        raise FacebenchError(
            f"{path}: refused to load a {kind} checkpoint: it carries code that runs when it is loaded and on "
            "every forward pass, and that code can read and write any file you can. facebench runs no code from "
            f"a checkpoint by default. If you trust where this file comes from, pass {TRUST_FLAG} (Python: "
            "trust_checkpoint_code=True); otherwise ask for an ONNX graph or a state_dict (weights only)"
        )


def detect_format(path: str | Path) -> str:
    """``onnx``, ``torchscript``, ``pytorch`` or ``dlib`` for the file at ``path`` (rules in the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise FacebenchError(f"{path}: checkpoint file not found")
    if zipfile.is_zipfile(path):
        return "torchscript" if is_torchscript_archive(path) else "pytorch"
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head[:1] == b"\x80":
        return "pytorch"
    if is_dlib_file(path) or path.suffix.lower() == ".dat":
        return "dlib"
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":
        return "onnx"
    raise FacebenchError(
        f"{path}: unrecognised checkpoint format; supported: ONNX (.onnx), TorchScript (torch.jit.save), "
        "PyTorch state_dict (torch.save, with --arch), dlib .dat"
    )


def load_dlib(path: str | Path, *, device: str = "auto", half: bool = False, max_batch: int = 64) -> Encoder:
    """dlib's ``.dat`` network as an Encoder (150x150 chips, ``dlib`` profile, 128-d descriptors)."""
    from facebench.models.dlib import DLIB_DECISION_THRESHOLD, dlib_profile
    from facebench.optional import require_torch

    require_torch("dlib's .dat network")
    from facebench.models.dlib_torch import build_dlib_model
    from facebench.models.torch_backend import TorchEncoder

    model, net = build_dlib_model(path)
    return TorchEncoder(
        model,
        format="dlib",
        path=path,
        device=device,
        half=half,
        input_size=model.input_size,
        architecture="dlib_resnet",
        normalizes_input=False,
        default_profile=dlib_profile(net),
        max_batch=max_batch,
        extra={
            "dlib_loss": net.loss,
            "dlib_input": {"name": net.input["name"], "mean": list(net.input["mean"])},
            "decision_threshold": DLIB_DECISION_THRESHOLD,
        },
    )


def load_encoder(
    path: str | Path,
    arch: str | None = None,
    device: str = "auto",
    batch_hint: int = 64,
    *,
    half: bool = False,
    input_size: tuple[int, int] | None = None,
    format: str | None = None,
    trust_checkpoint_code: bool = False,
) -> Encoder:
    """Load the checkpoint at ``path`` as an Encoder.

    Args:
        arch: registered architecture of a PyTorch state_dict (see ``list_backbones()``).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        batch_hint: the most images one forward pass takes; larger ``embed`` calls are split (an ONNX graph
            with a fixed batch dimension uses that instead).
        half: fp16 autocast for torch models on CUDA (CPU always runs float32).
        input_size: ``(H, W)`` for graphs that do not fix it (TorchScript defaults to 112x112).
        format: force a format instead of detecting it.
        trust_checkpoint_code: allow formats that run code stored in the file (TorchScript); refused
            otherwise (see the module docstring).
    """
    kind = format or detect_format(path)
    FORMATS.check(kind)
    check_code_trust(path, kind, trust_checkpoint_code)
    if arch is not None and kind not in ("pytorch",):
        raise FacebenchError(f"{path}: --arch applies to PyTorch state_dicts; this file is {kind}")
    if kind == "onnx":
        from facebench.models.onnx_backend import OnnxEncoder

        if half:
            raise FacebenchError(
                f"{path}: fp16 autocast applies to torch models; an ONNX graph runs at its own precision"
            )
        return OnnxEncoder(path, device=device, input_size=input_size, max_batch=batch_hint)
    from facebench.optional import require_torch

    require_torch(f"{path}: a {kind} checkpoint (export it to ONNX once to evaluate it without torch)")
    from facebench.models.torch_backend import load_pytorch, load_torchscript

    if kind == "torchscript":
        return load_torchscript(path, device=device, half=half, input_size=input_size, max_batch=batch_hint)
    if kind == "dlib":
        return load_dlib(path, device=device, half=half, max_batch=batch_hint)
    encoder = load_pytorch(path, arch, device=device, half=half, max_batch=batch_hint)
    if input_size is not None and tuple(input_size) != encoder.input_size:
        raise FacebenchError(
            f"{path}: architecture {encoder.architecture} takes {encoder.input_size} input, not {input_size}"
        )
    return encoder
