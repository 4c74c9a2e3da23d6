"""The backbone registry: one constant table of names to constructors.

``create_backbone(name, **kwargs)`` builds a fresh ``torch.nn.Module`` (112x112 RGB input, embedding
output); ``list_backbones()`` lists the names. The table is a read-only mapping fixed at import time:
nothing registers itself at run time.
"""

from __future__ import annotations

import difflib
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch

from facebench.errors import FacebenchError
from facebench.models.backbones import attention_irse, iresnet, mobilefacenet

BACKBONES: Mapping[str, Callable[..., torch.nn.Module]] = MappingProxyType(
    {
        "iresnet18": iresnet.iresnet18,
        "iresnet34": iresnet.iresnet34,
        "iresnet50": iresnet.iresnet50,
        "iresnet100": iresnet.iresnet100,
        "iresnet200": iresnet.iresnet200,
        "mobilefacenet": mobilefacenet.mobilefacenet,
        "mobilefacenet_large": mobilefacenet.mobilefacenet_large,
        "mobilefacenet_small": mobilefacenet.mobilefacenet_small,
        "attention56_irse": attention_irse.attention56_irse,
        "attention92_irse": attention_irse.attention92_irse,
    }
)


def list_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`, sorted."""
    return sorted(BACKBONES)


def _unknown(name: str) -> FacebenchError:
    close = difflib.get_close_matches(name, list(BACKBONES), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return FacebenchError(f"unknown architecture {name!r}{hint} (known: {', '.join(list_backbones())})")


def create_backbone(name: str, **kwargs: Any) -> torch.nn.Module:
    """A new backbone ``name`` with random weights; ``kwargs`` go to its constructor
    (``num_features``, ``dropout``, ...). An unknown name or keyword is a FacebenchError."""
    try:
        factory = BACKBONES[name]
    except KeyError:
        raise _unknown(name) from None
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise FacebenchError(f"architecture {name!r}: bad arguments {sorted(kwargs)}: {exc}") from exc
