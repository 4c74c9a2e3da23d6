"""facebench: face-recognition evaluation, computed as the field computes it.

The Python API (:mod:`facebench.api`, docs/api.md) is re-exported here and imported on first use, so that
``import facebench`` stays light: ``load_model``, ``embed_images``, ``evaluate_benchmark``, ``evaluate_pairs``,
``DEMO_CHECKPOINT``.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["DEMO_CHECKPOINT", "embed_images", "evaluate_benchmark", "evaluate_pairs", "load_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from facebench import api

        return getattr(api, name)
    raise AttributeError(f"module 'facebench' has no attribute {name!r}")
