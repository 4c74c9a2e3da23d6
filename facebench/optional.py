"""Optional dependencies: the one check that says which extra to install when torch is missing."""

from __future__ import annotations

from facebench.errors import FacebenchError

TORCH_INSTALL_HINT = (
    'install the torch extra: pip install "facebench[torch]" (a CPU-only build, without the CUDA packages: '
    "pip install torch --index-url https://download.pytorch.org/whl/cpu)"
)


def require_torch(what: str) -> None:
    """Import torch, or raise an error saying that ``what`` needs it and how to install it.

    ONNX graphs, precomputed features, every protocol, reports, overlap and doctor on ONNX run without
    torch; PyTorch state_dicts, TorchScript, dlib's ``.dat``, export, training and torchrun sharding need it.
    """
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise FacebenchError(f"{what} needs PyTorch, which is not installed: {TORCH_INSTALL_HINT}") from exc
