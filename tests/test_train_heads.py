"""The MV-Softmax head family and its losses against PROTOCOLS 6 and a straightforward re-implementation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facebench.errors import FacebenchError
from facebench.train import make_head, make_loss
from facebench.train.heads import init_class_weights, shard_range

# PROTOCOLS 6 numeric vectors: x rows, W given as 3x4 columns (one column per class).
X = [[0.6, 0.8, 0.0], [0.0, 0.6, -0.8]]
W_COLUMNS = [[1, 0, 0.5, -1], [0, 1, 0.5, 0.2], [0, 0, 0.7071, 0.3]]
Y = [0, 2]
PUBLISHED = [
    ("am", {}, 22.670879),
    ("mv-am", {"mode": "adaptive"}, 33.541535),
    ("mv-am", {"mode": "fixed"}, 29.070879),
    ("arc", {}, 22.041993),
    ("mv-arc", {"mode": "adaptive"}, 32.912649),
]


def straightforward_logits(x, w, y, kind, s=32.0, m=0.35, t=None, mode="adaptive", easy_margin=True,
                           variant="reference"):
    """The formulas of PROTOCOLS 6 written out plainly (autograd does the gradients)."""
    if t is None:
        t = 0.12 if variant == "facexzoo" else 0.2
    xn = x / x.norm(dim=1, keepdim=True)
    wn = w / w.norm(dim=1, keepdim=True)
    cos = xn @ wn.t()
    if variant == "reference":
        cos = torch.clamp(cos, -1, 1)
    g = cos[torch.arange(len(y)), y].unsqueeze(1)
    if kind == "softmax":
        final = g
    elif kind in ("am", "mv-am"):
        final = g - m
        thr = g - m
        if easy_margin:
            final = torch.where(g > (m if variant == "facexzoo" else 0.0), g - m, g)
    else:
        cos_tm = g * math.cos(m) - torch.sqrt(1 - g**2) * math.sin(m)
        final = cos_tm
        thr = cos_tm
        if easy_margin:
            final = torch.where(g > 0, cos_tm, g)
    out = cos
    if kind.startswith("mv-"):
        hard = cos > thr
        moved = (t + 1) * cos + t if mode == "adaptive" else cos + t
        out = torch.where(hard, moved, cos)
    onehot = F.one_hot(y, cos.shape[1]).bool()
    out = torch.where(onehot, final.expand_as(out), out)
    return out * s


def straightforward_loss(logits, y, kind, gamma=2.0, keep=0.9):
    ce = F.cross_entropy(logits, y, reduction="none")
    if kind == "cross-entropy":
        return ce.mean()
    if kind == "focal":
        return ((1 - torch.exp(-ce)) ** gamma * ce).mean()
    order = torch.argsort(-ce)[: int(keep * len(y))]
    return F.cross_entropy(logits[order], y[order])


def _vector_head(kind, **kw):
    head = make_head(kind, 3, 4, **kw).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor(W_COLUMNS, dtype=torch.float64).t())
    return head


@pytest.mark.parametrize("kind,kw,expected", PUBLISHED)
def test_protocols_vectors(kind, kw, expected):
    head = _vector_head(kind, **kw)
    x = torch.tensor(X, dtype=torch.float64)
    y = torch.tensor(Y)
    loss = make_loss("cross-entropy")(head(x, y), y).item()
    assert abs(loss - expected) < 1e-6
    independent = F.cross_entropy(straightforward_logits(x, head.weight.detach(), y, kind, **kw), y).item()
    assert abs(loss - independent) < 1e-9


def test_protocols_vectors_facexzoo_variant():
    x = torch.tensor(X, dtype=torch.float64)
    y = torch.tensor(Y)
    for kind in ("mv-am", "mv-arc"):
        head = _vector_head(kind, variant="facexzoo")
        assert head.spec.t == 0.12
        loss = make_loss()(head(x, y), y).item()
        ref = straightforward_logits(x, head.weight.detach(), y, kind, t=0.12, variant="facexzoo")
        assert abs(loss - F.cross_entropy(ref, y).item()) < 1e-9
    # the AM easy-margin test differs: sample 0 has g = 0.6 > m (margin applied in both variants);
    # a target cosine in (0, m] keeps g only in the facexzoo variant
    x2 = torch.tensor([[0.2, 0.9797958971132712, 0.0]], dtype=torch.float64)
    y2 = torch.tensor([0])
    ref_logits = _vector_head("am")(x2, y2)
    fx_logits = _vector_head("mv-am", variant="facexzoo")(x2, y2)
    assert abs(ref_logits[0, 0].item() - 32 * (0.2 - 0.35)) < 1e-9
    assert abs(fx_logits[0, 0].item() - 32 * 0.2) < 1e-9


CASES = [
    ("softmax", {}),
    ("am", {}),
    ("am", {"easy_margin": False}),
    ("arc", {}),
    ("arc", {"easy_margin": False, "m": 0.5}),
    ("mv-am", {}),
    ("mv-am", {"mode": "fixed", "t": 0.3}),
    ("mv-am", {"easy_margin": False, "s": 64.0}),
    ("mv-arc", {}),
    ("mv-arc", {"mode": "fixed"}),
    ("mv-am", {"variant": "facexzoo"}),
    ("mv-arc", {"variant": "facexzoo", "easy_margin": True}),
]


@pytest.mark.parametrize("kind,kw", CASES)
@pytest.mark.parametrize("loss_kind", ["cross-entropy", "focal", "hard-mining"])
def test_logits_and_gradients_match_straightforward(kind, kw, loss_kind):
    gen = torch.Generator().manual_seed(hash((kind, str(kw), loss_kind)) % 2**31)
    batch, dim, classes = 24, 6, 11
    x = torch.randn(batch, dim, dtype=torch.float64, generator=gen) * 3
    w = torch.randn(classes, dim, dtype=torch.float64, generator=gen) * 0.5
    y = torch.randint(0, classes, (batch,), generator=gen)
    # make some targets well classified so both margin branches and the MV mask are exercised
    x[:8] = w[y[:8]] * 2 + 0.3 * torch.randn(8, dim, dtype=torch.float64, generator=gen)

    head = make_head(kind, dim, classes, **kw).double()
    with torch.no_grad():
        head.weight.copy_(w)
    xa = x.clone().requires_grad_(True)
    logits = head(xa, y)
    loss = make_loss(loss_kind)(logits, y)
    loss.backward()

    xb = x.clone().requires_grad_(True)
    wb = w.clone().requires_grad_(True)
    ref_logits = straightforward_logits(xb, wb, y, kind, **kw)
    ref_loss = straightforward_loss(ref_logits, y, loss_kind)
    ref_loss.backward()

    assert torch.allclose(logits.detach(), ref_logits.detach(), atol=1e-6, rtol=0)
    assert abs(loss.item() - ref_loss.item()) < 1e-6
    assert torch.allclose(xa.grad, xb.grad, atol=1e-6, rtol=0)
    assert torch.allclose(head.weight.grad, wb.grad, atol=1e-6, rtol=0)
    if kind.startswith("mv-"):
        # the case really exercises the MV mask: some non-target logits were re-weighted
        plain = straightforward_logits(x, w, y, kind.removeprefix("mv-"), **{k: v for k, v in kw.items()
                                                                               if k not in ("t", "mode", "variant")})
        assert not torch.allclose(plain, ref_logits.detach())


def test_clamped_cosines_get_zero_gradient():
    # a target cosine that rounds above 1 is clamped to 1 and passes no gradient (as torch.clamp does)
    gen = torch.Generator().manual_seed(0)
    y = torch.tensor([0])
    found = None
    for _ in range(500):
        w = torch.cat([torch.randn(1, 3, dtype=torch.float64, generator=gen),
                       torch.tensor([[0.5, -0.2, 0.4]], dtype=torch.float64)])
        for k in range(1, 50):
            x = w[0:1] * (k * 0.37)
            # the head computes s * cos as (x/|x| . w) * (s / |w|)
            if ((F.normalize(x, dim=1) @ w.t()) * (32.0 / w.norm(dim=1)))[0, 0] > 32.0:
                found = x
                break
        if found is not None:
            break
    assert found is not None, "no rounding case found"
    for kind in ("am", "mv-am"):
        head = make_head(kind, 3, 2, easy_margin=False).double()
        with torch.no_grad():
            head.weight.copy_(w)
        xa = found.clone().requires_grad_(True)
        logits = head(xa, y)
        assert logits[0, 0].item() == 32 * (1.0 - 0.35)
        make_loss()(logits, y).backward()
        # expected: the target logit is the constant s (1 - m); only the other class carries gradient
        xb = found.clone().requires_grad_(True)
        wb = w.clone().requires_grad_(True)
        other = (F.normalize(xb, dim=1) @ F.normalize(wb, dim=1).t())[0, 1]
        if kind == "mv-am":
            other = torch.where(other > 1 - 0.35, 1.2 * other + 0.2, other)
        ref = F.cross_entropy(32 * torch.stack([torch.tensor(1 - 0.35, dtype=torch.float64), other])[None], y)
        ref.backward()
        assert torch.allclose(head.weight.grad, wb.grad, atol=1e-12, rtol=0)
        assert torch.allclose(xa.grad, xb.grad, atol=1e-12, rtol=0)


def test_float32_close_to_float64():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(32, 16, generator=gen)
    y = torch.randint(0, 50, (32,), generator=gen)
    head = make_head("mv-arc", 16, 50, seed=5)
    head64 = make_head("mv-arc", 16, 50, seed=5).double()
    l32 = make_loss()(head(x, y), y).item()
    l64 = make_loss()(head64(x.double(), y), y).item()
    assert abs(l32 - l64) < 1e-4


def test_weight_init_is_shard_independent_and_unit_norm():
    full = init_class_weights(20000, 8, seed=7)
    assert torch.allclose(full.double().norm(dim=1), torch.ones(20000, dtype=torch.float64), atol=1e-6)
    parts = [init_class_weights(20000, 8, 7, *shard_range(20000, r, 3)) for r in range(3)]
    assert torch.equal(torch.cat(parts), full)
    assert not torch.equal(init_class_weights(20000, 8, seed=8), full)
    assert shard_range(10, 0, 3) == (0, 3) and shard_range(10, 2, 3) == (6, 10)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(FacebenchError, match="unknown head 'mv-cos'"):
        make_head("mv-cos", 4, 3)
    with pytest.raises(FacebenchError, match="takes no margin"):
        make_head("softmax", 4, 3, m=0.2)
    with pytest.raises(FacebenchError, match="takes no t or mode"):
        make_head("am", 4, 3, t=0.2)
    with pytest.raises(FacebenchError, match="variant"):
        make_head("mv-am", 4, 3, variant="insightface")
    with pytest.raises(FacebenchError, match="mode"):
        make_head("mv-am", 4, 3, mode="soft")
    with pytest.raises(FacebenchError, match="unknown loss"):
        make_loss("arcface")
    head = make_head("am", 4, 3)
    with pytest.raises(FacebenchError, match=r"labels must lie in \[0, 3\)"):
        head(torch.ones(2, 4), torch.tensor([0, 3]))


def test_backward_twice_is_refused():
    head = make_head("mv-am", 4, 3)
    x = torch.randn(5, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1])
    loss = make_loss()(head(x, y), y)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="only once"):
        loss.backward()
