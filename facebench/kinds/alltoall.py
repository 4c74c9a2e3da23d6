"""Kind ``alltoall``: every genuine and impostor pair among the images (``--benchmark alltoall:PATH``),
TAR at FAR down to 1e-6 (`facebench.evaluate.alltoall`)."""

from __future__ import annotations

from facebench.kinds.base import Kind

KIND = Kind(
    name="alltoall",
    title="all-to-all verification",
    evaluator="facebench.evaluate.alltoall:run_alltoall",
    readers=("alltoall",),
)
