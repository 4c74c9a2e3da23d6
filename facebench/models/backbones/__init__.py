"""Face-recognition backbones whose parameter names match the public training code they come from.

Construct them through :func:`facebench.models.registry.create_backbone`.
"""
