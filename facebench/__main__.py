"""`python -m facebench` (and `torchrun -m facebench`) enter the CLI."""

from facebench.cli import main

raise SystemExit(main())
