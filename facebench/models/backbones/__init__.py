"""Face-recognition backbones whose parameter names match the public training code they come from.

Construct them through :func:`facebench.models.registry.create_backbone`.
"""

from torch import nn


def kaiming_init(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, relu) convolutions and linears with zero bias; batch norms weight 1, bias 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
