"""Backbone registry and the architectures' structure: names, shapes and parameter counts."""

from __future__ import annotations

import pytest
import torch

from facebench.errors import FacebenchError
from facebench.models.backbones.iresnet import DEPTHS
from facebench.models.registry import create_backbone, list_backbones
from tests._models import random_backbone

EXPECTED = {
    "iresnet18", "iresnet34", "iresnet50", "iresnet100", "iresnet200",
    "mobilefacenet", "mobilefacenet_large", "mobilefacenet_small", "attention56_irse", "attention92_irse",
}  # fmt: skip
DIMS = {"mobilefacenet_small": 128}


def test_registry_lists_every_family():
    names = list_backbones()
    assert names == sorted(names)
    assert set(names) == EXPECTED


def test_unknown_name_suggests_close_ones():
    with pytest.raises(FacebenchError) as err:
        create_backbone("iresnet51")
    message = str(err.value)
    assert "unknown architecture 'iresnet51'" in message
    assert "did you mean 'iresnet50'" in message
    with pytest.raises(FacebenchError, match="did you mean 'mobilefacenet'"):
        create_backbone("mobilefacnet")


def test_bad_keyword_is_a_clear_error():
    with pytest.raises(FacebenchError, match="architecture 'iresnet18': bad arguments \\['width'\\]"):
        create_backbone("iresnet18", width=2)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_shape(name):
    """Every registered backbone maps a 112x112 batch to (N, 512) (128 for the CPU demo net; shape
    propagation on the meta device)."""
    with torch.device("meta"):
        model = create_backbone(name).eval()
        out = model(torch.empty(2, 3, 112, 112))
    assert tuple(out.shape) == (2, DIMS.get(name, 512))


@pytest.mark.parametrize("name", ["iresnet18", "mobilefacenet", "attention56_irse"])
def test_forward_is_finite(name):
    """One real forward pass per family (batch 1, moderate random weights)."""
    model = random_backbone(name)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(1)))
    assert out.shape == (1, 512)
    assert torch.isfinite(out).all() and out.abs().max() > 0


def test_num_features_changes_the_embedding_size():
    with torch.device("meta"):
        model = create_backbone("mobilefacenet", num_features=128).eval()
        assert tuple(model(torch.empty(2, 3, 112, 112)).shape) == (2, 128)


def _iresnet_parameter_count(depths):
    """arcface_torch's IResNet parameter count, derived from its layer list by hand."""
    total = 3 * 64 * 9 + 2 * 64 + 64  # stem conv, bn, prelu
    c_in = 64
    for width, depth in zip((64, 128, 256, 512), depths):
        for i in range(depth):
            c = c_in if i == 0 else width
            total += 2 * c + c * width * 9 + 2 * width + width + width * width * 9 + 2 * width
            if i == 0:
                total += c * width + 2 * width  # downsample conv1x1 + bn
        c_in = width
    return total + 2 * 512 + 512 * 49 * 512 + 512 + 2 * 512  # bn2, fc (+bias), features bn


@pytest.mark.parametrize("name", sorted(DEPTHS))
def test_iresnet_parameter_count(name):
    with torch.device("meta"):
        model = create_backbone(name)
    assert sum(p.numel() for p in model.parameters()) == _iresnet_parameter_count(DEPTHS[name])


def test_iresnet_published_sizes():
    """insightface publishes 43.6M parameters for IResNet-50 and 65.2M for IResNet-100."""
    assert round(_iresnet_parameter_count(DEPTHS["iresnet50"]) / 1e6, 1) == 43.6
    assert round(_iresnet_parameter_count(DEPTHS["iresnet100"]) / 1e6, 1) == 65.2


def _bn(prefix):
    return [prefix + s for s in (".weight", ".bias", ".running_mean", ".running_var", ".num_batches_tracked")]


def test_iresnet_keys_follow_arcface_torch():
    """The state_dict key layout of arcface_torch's backbones/iresnet.py, key by key for iresnet18."""
    expected = ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                "bn1.num_batches_tracked", "prelu.weight"]  # fmt: skip
    for stage, depth in enumerate((2, 2, 2, 2), start=1):
        for block in range(depth):
            p = f"layer{stage}.{block}."
            expected += _bn(p + "bn1") + [p + "conv1.weight"] + _bn(p + "bn2")
            expected += [p + "prelu.weight", p + "conv2.weight"] + _bn(p + "bn3")
            if block == 0:
                expected += [p + "downsample.0.weight"] + _bn(p + "downsample.1")
    expected += ["bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var", "bn2.num_batches_tracked",
                 "fc.weight", "fc.bias", "features.weight", "features.bias", "features.running_mean",
                 "features.running_var", "features.num_batches_tracked"]  # fmt: skip
    with torch.device("meta"):
        state = create_backbone("iresnet18").state_dict()
    assert list(state) == expected
    assert tuple(state["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)
    assert tuple(state["layer4.1.conv2.weight"].shape) == (512, 512, 3, 3)
    assert tuple(state["fc.weight"].shape) == (512, 512 * 7 * 7)


def test_mobilefacenet_keys_follow_arcface_torch():
    """Spot checks of arcface_torch's backbones/mobilefacenet.py layout (get_mbf: blocks 1,4,6,2, scale 2)."""
    with torch.device("meta"):
        state = create_backbone("mobilefacenet").state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["layers.0.layers.0.weight"] == (128, 3, 3, 3)  # stem conv 3x3/2 to 64*scale
    assert shapes["layers.0.layers.2.weight"] == (128,)  # PReLU
    assert shapes["layers.1.layers.0.weight"] == (128, 2, 3, 3)  # grouped conv, groups=64
    assert shapes["layers.2.layers.0.layers.0.weight"] == (128, 128, 1, 1)  # DepthWise expand
    assert shapes["layers.2.layers.1.layers.0.weight"] == (128, 1, 3, 3)  # depthwise
    assert shapes["layers.2.layers.2.layers.0.weight"] == (128, 128, 1, 1)  # linear project
    assert shapes["layers.3.layers.3.layers.1.layers.0.weight"] == (128, 1, 3, 3)  # 4th residual unit
    assert "layers.3.layers.4.layers.0.layers.0.weight" not in shapes
    assert shapes["layers.5.layers.5.layers.2.layers.1.weight"] == (256,)  # 6th unit of stage 3
    assert shapes["layers.7.layers.1.layers.2.layers.0.weight"] == (256, 256, 1, 1)
    assert shapes["conv_sep.layers.0.weight"] == (512, 256, 1, 1)
    assert shapes["features.layers.0.layers.0.weight"] == (512, 1, 7, 7)  # GDC
    assert shapes["features.layers.2.weight"] == (512, 512)  # Linear, no bias
    assert "features.layers.2.bias" not in shapes
    assert shapes["features.layers.3.running_var"] == (512,)
    assert len(state) == 333


def test_attention_nets_have_the_published_module_counts():
    """Attention-56: one attention module per stage; Attention-92: 1, 2 and 3."""
    from facebench.models.backbones.attention_irse import AttentionModule

    for name, counts in (("attention56_irse", (1, 1, 1)), ("attention92_irse", (1, 2, 3))):
        with torch.device("meta"):
            model = create_backbone(name)
        modules = [m for m in model.body if isinstance(m, AttentionModule)]
        levels = [len(m.down) + 1 for m in modules]
        assert levels == [3] * counts[0] + [2] * counts[1] + [1] * counts[2]
        # IR-SE units carry a squeeze-excitation with reduction 16
        assert tuple(model.body[0].residual[5].fc1.weight.shape) == (4, 64, 1, 1)
