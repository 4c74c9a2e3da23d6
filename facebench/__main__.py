"""`python -m facebench` (and `torchrun -m facebench`) enter the CLI."""

from facebench.cli import entry

entry()
