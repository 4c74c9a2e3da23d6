"""The backbone registry: one constant table of names to constructors.

``create_backbone(name, **kwargs)`` builds a fresh ``torch.nn.Module`` (112x112 RGB input, embedding
output); ``list_backbones()`` lists the names. The table (a :class:`facebench.registry.Registry`) is filled
here, once, at import time; an unknown name is an error with a "did you mean".
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from facebench.errors import FacebenchError
from facebench.models.backbones import attention_irse, iresnet, mobilefacenet
from facebench.registry import Registry

BACKBONES: Registry[Callable[..., torch.nn.Module]] = Registry("architecture")
for _factory in (
    iresnet.iresnet18, iresnet.iresnet34, iresnet.iresnet50, iresnet.iresnet100, iresnet.iresnet200,
    mobilefacenet.mobilefacenet, mobilefacenet.mobilefacenet_large, mobilefacenet.mobilefacenet_small,
    attention_irse.attention56_irse, attention_irse.attention92_irse,
):
    BACKBONES.add(_factory.__name__, _factory, _factory.__module__)
del _factory


def list_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`, sorted."""
    return sorted(BACKBONES)


def create_backbone(name: str, **kwargs: Any) -> torch.nn.Module:
    """A new backbone ``name`` with random weights; ``kwargs`` go to its constructor
    (``num_features``, ``dropout``, ...). An unknown name or keyword is a FacebenchError."""
    factory = BACKBONES.get(name)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise FacebenchError(f"architecture {name!r}: bad arguments {sorted(kwargs)}: {exc}") from exc
