"""Optional dependencies: the checks that say which extra to install when torch or Ray is missing."""

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


RAY_INSTALL_HINT = 'install the ray extra: pip install "facebench[ray]" (Ray with Ray Data)'


def require_ray(what: str) -> None:
    """Import Ray Data, or raise an error saying that ``what`` needs it and how to install it (only
    ``extract --engine ray`` does)."""
    try:
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise FacebenchError(f"{what} needs Ray Data, which is not installed: {RAY_INSTALL_HINT}") from exc
