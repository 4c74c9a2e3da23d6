"""PyTorch checkpoints: TorchScript archives and state_dicts of a registered architecture.

Safety: a state_dict is read with ``torch.load(weights_only=True)`` and nothing else; a file that needs
arbitrary unpickling (a whole pickled ``nn.Module``) is refused with an explanation, never retried unsafely.
A TorchScript archive runs TorchScript code (the TorchScript interpreter, not Python).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facebench.errors import FacebenchError
from facebench.atomic import sha256_file
from facebench.models.base import check_batch
from facebench.models.registry import BACKBONES, create_backbone
from facebench.extraction.preprocess import Profile

log = logging.getLogger(__name__)

DEFAULT_INPUT_SIZE = (112, 112)
WRAPPER_KEYS = ("state_dict_backbone", "state_dict", "model_state_dict", "model", "backbone", "net", "module", "ema")
STRIP_PREFIXES = ("module.", "_orig_mod.")
NESTED_PREFIXES = ("backbone.", "model.", "net.", "encoder.")
LIST_LIMIT = 12


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; an unavailable CUDA request is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise FacebenchError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise FacebenchError(f"device {device!r} requested but CUDA is not available on this machine")
    if resolved.type not in ("cpu", "cuda"):
        raise FacebenchError(f"device {device!r} is not supported: use auto, cpu, cuda or cuda:N")
    return resolved


# --------------------------------------------------------------------------------------------------------
# state_dict handling


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and any(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap_state_dict(obj: Any, origin: str, expected: set[str] | None = None) -> dict[str, torch.Tensor]:
    """The tensor mapping inside a loaded checkpoint.

    Rule: descend through wrapper keys (``state_dict_backbone`` (arcface_torch's resumable checkpoints),
    ``state_dict``, ``model_state_dict``, ``model``, ``backbone``,
    ``net``, ``module``, ``ema``; first match wins) until a mapping holding tensors; keep its tensor entries;
    strip ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) when every key has them; when
    ``expected`` keys are given and some match only under a ``backbone.``/``model.``/``net.``/``encoder.``
    prefix (whole-model checkpoints with a head), keep that sub-mapping with the prefix removed.
    """
    seen = 0
    while isinstance(obj, Mapping) and seen < 8:
        inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
        if inner is None or (_is_tensor_dict(obj) and not _is_tensor_dict(inner)):
            break
        obj, seen = inner, seen + 1
    if not _is_tensor_dict(obj):
        kind = type(obj).__name__
        keys = f" with keys {sorted(map(str, obj))[:LIST_LIMIT]}" if isinstance(obj, Mapping) else ""
        raise FacebenchError(
            f"{origin}: no state_dict found (a {kind}{keys}); expected a mapping of parameter names to tensors"
        )
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    changed = True
    while changed:
        changed = False
        for prefix in STRIP_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    if expected:
        direct = len(expected & state.keys())
        for prefix in NESTED_PREFIXES:
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if len(expected & sub.keys()) > direct:
                state, direct = sub, len(expected & sub.keys())
    return state


def read_state_dict(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors that say what to do."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise FacebenchError(
            f"{path}: refused to unpickle: the file holds Python objects beyond tensors (for example a whole "
            f"pickled model), and facebench never runs code from a checkpoint. Save model.state_dict() "
            f"instead, or export TorchScript/ONNX. Detail: {str(exc).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise FacebenchError(f"{path}: not a readable PyTorch checkpoint: {exc}") from None


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def _listing(title: str, items: list[str]) -> str:
    more = f" ... and {len(items) - LIST_LIMIT} more" if len(items) > LIST_LIMIT else ""
    return f"{title} ({len(items)}): " + ", ".join(items[:LIST_LIMIT]) + more


def state_dict_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    """Missing, unexpected and shape-mismatched keys of ``state`` against ``model``.

    BatchNorm's ``num_batches_tracked`` counters are not weights and never count as missing.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {_shape(state[k])} vs model {_shape(own[k])}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    return {"missing": missing, "unexpected": unexpected, "shape": shapes}


def guess_architectures(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Registered architectures whose parameter names and shapes all equal ``state``'s (built on the meta
    device: no memory, no initialisation)."""
    matches = []
    for name in BACKBONES:
        with torch.device("meta"):
            model = create_backbone(name)
        if not any(state_dict_mismatch(model, state).values()):
            matches.append(name)
    return matches


def load_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor], origin: str, arch: str) -> None:
    """Load ``state`` into ``model`` strictly; any mismatch is a FacebenchError listing the keys."""
    problems = state_dict_mismatch(model, state)
    if any(problems.values()):
        parts = [f"{origin}: the state_dict does not fit architecture {arch!r}"]
        if problems["shape"]:
            parts.append(_listing("shape mismatches", problems["shape"]))
        if problems["missing"]:
            parts.append(_listing("missing keys", problems["missing"]))
        if problems["unexpected"]:
            parts.append(_listing("unexpected keys", problems["unexpected"]))
        fits = guess_architectures(state)
        parts.append(f"architectures that fit: {', '.join(fits)}" if fits else "no registered architecture fits it")
        raise FacebenchError("\n  ".join(parts))
    own = model.state_dict()
    with torch.no_grad():
        for key, value in own.items():
            if key in state:
                value.copy_(state[key].to(dtype=value.dtype))


# --------------------------------------------------------------------------------------------------------
# the encoder


class TorchEncoder:
    """An ``nn.Module`` or TorchScript module as a facebench Encoder.

    ``embed`` runs in inference mode in chunks of ``max_batch`` images; with ``half`` on CUDA it runs under
    fp16 autocast (outputs returned as float32); on CPU it always runs float32.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        format: str,
        path: str | Path | None,
        device: str = "auto",
        half: bool = False,
        input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
        architecture: str | None = None,
        normalizes_input: bool | None = False,
        default_profile: Profile | None = None,
        max_batch: int = 64,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.format = format
        self.path = str(path) if path is not None else None
        self.device = resolve_device(device)
        if half and self.device.type != "cuda":
            raise FacebenchError("fp16 (half) runs only on a CUDA device; on CPU facebench runs float32")
        if max_batch < 1:
            raise FacebenchError(f"batch size must be >= 1, got {max_batch}")
        self.half = bool(half)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.architecture = architecture
        self.normalizes_input = normalizes_input
        self.default_profile = default_profile
        self.max_batch = int(max_batch)
        self.extra = dict(extra or {})
        self.module = module.to(self.device).eval()
        self._sha256: str | None = None
        self.embedding_dim: int | None = None
        self.embedding_dim = int(self.embed(np.zeros((2, 3, *self.input_size), dtype=np.float32)).shape[1])

    @property
    def name(self) -> str:
        return self.path or self.architecture or self.format

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        return check_batch(batch, self.input_size, self.name)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.half:
            with torch.autocast("cuda", dtype=torch.float16):
                out = self.module(x)
        else:
            out = self.module(x)
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            out = out[0]  # (embedding, norm)-style outputs: the embedding comes first
        if not isinstance(out, torch.Tensor):
            raise FacebenchError(f"{self.name}: the model returned {type(out).__name__}, expected a tensor")
        return out

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """float32 ``(N, 3, H, W)`` -> float32 ``(N, D)``, un-normalised embeddings."""
        batch = self._check_batch(batch)
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(batch), self.max_batch):
                x = torch.from_numpy(batch[start : start + self.max_batch]).to(self.device)
                try:
                    out = self._forward(x)
                except (RuntimeError, ValueError, IndexError) as exc:
                    h, w = self.input_size
                    raise FacebenchError(
                        f"{self.name}: the model failed on a {len(x)}x3x{h}x{w} batch ({exc.__class__.__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); wrong input size or architecture?"
                    ) from None
                if out.ndim != 2 or out.shape[0] != len(x):
                    raise FacebenchError(
                        f"{self.name}: the model output has shape {tuple(out.shape)} for {len(x)} images; "
                        "an embedding model must return (N, D)"
                    )
                chunks.append(out.float().cpu().numpy())
        out_np = np.concatenate(chunks) if chunks else np.zeros((0, self.embedding_dim or 0), np.float32)
        if self.embedding_dim is not None and out_np.shape[1] != self.embedding_dim:
            raise FacebenchError(
                f"{self.name}: output dimension changed from {self.embedding_dim} to {out_np.shape[1]}"
            )
        return out_np

    @property
    def sha256(self) -> str | None:
        if self._sha256 is None and self.path is not None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    def parameter_count(self) -> int:
        return int(sum(p.numel() for p in self.module.parameters()))

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance of this encoder."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "format": self.format,
            "architecture": self.architecture,
            "backend": "torch",
            "torch_version": torch.__version__,
            "device": str(self.device),
            "half": self.half,
            "max_batch": self.max_batch,
            "input_size": list(self.input_size),
            "input_layout": "NCHW",
            "embedding_dim": self.embedding_dim,
            "normalizes_input": self.normalizes_input,
            "parameters": self.parameter_count(),
            "default_profile": self.default_profile.to_dict() if self.default_profile else None,
            **self.extra,
        }


# --------------------------------------------------------------------------------------------------------
# loaders


def load_torchscript(
    path: str | Path,
    *,
    device: str = "auto",
    half: bool = False,
    input_size: tuple[int, int] | None = None,
    max_batch: int = 64,
) -> TorchEncoder:
    """A TorchScript archive (``torch.jit.save``) as an Encoder; the input size defaults to 112x112."""
    resolved = resolve_device(device)
    try:
        module = torch.jit.load(str(path), map_location=resolved)
    except (RuntimeError, ValueError, OSError) as exc:
        raise FacebenchError(f"{path}: not a loadable TorchScript archive: {str(exc).splitlines()[0]}") from None
    return TorchEncoder(
        module,
        format="torchscript",
        path=path,
        device=str(resolved),
        half=half,
        input_size=input_size or DEFAULT_INPUT_SIZE,
        normalizes_input=None,
        max_batch=max_batch,
    )


def load_pytorch(
    path: str | Path,
    arch: str | None,
    *,
    device: str = "auto",
    half: bool = False,
    max_batch: int = 64,
    arch_kwargs: dict[str, Any] | None = None,
) -> TorchEncoder:
    """A state_dict of a registered architecture as an Encoder (112x112 input, normalised outside).

    Without ``arch`` the architecture is the single registered one whose parameter names and shapes all
    match the checkpoint; none or several is an error asking for ``--arch``.
    """
    raw = read_state_dict(path)
    if arch is None:
        state = unwrap_state_dict(raw, str(path))
        fits = guess_architectures(state)
        if len(fits) != 1:
            found = f"candidates: {', '.join(fits)}" if fits else "no registered architecture matches its keys"
            known = ", ".join(sorted(BACKBONES))
            raise FacebenchError(f"{path}: a plain state_dict needs --arch NAME ({found}; known: {known})")
        arch = fits[0]
        log.info("%s: architecture %s recognised from the parameter names and shapes", path, arch)
    model = create_backbone(arch, **(arch_kwargs or {}))
    state = unwrap_state_dict(raw, str(path), expected=set(model.state_dict()))
    load_weights(model, state, str(path), arch)
    return TorchEncoder(
        model,
        format="pytorch",
        path=path,
        device=device,
        half=half,
        architecture=arch,
        normalizes_input=False,
        max_batch=max_batch,
    )
