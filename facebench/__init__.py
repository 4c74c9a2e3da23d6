"""facebench: face-recognition evaluation, computed as the field computes it."""

__version__ = "0.1.0"
