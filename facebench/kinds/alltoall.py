"""Kind ``alltoall``: every genuine and impostor pair among the images (``--benchmark alltoall:PATH``),
TAR at FAR down to 1e-6 (`facebench.evaluate.alltoall`)."""

from __future__ import annotations

from facebench.kinds.base import Kind, OwnData

KIND = Kind(
    name="alltoall",
    title="all-to-all verification",
    evaluator="facebench.evaluate.alltoall:run_alltoall",
    readers=("alltoall",),
    own_data=OwnData(
        "all-to-all verification: every genuine and impostor pair among the images",
        {"images": "{root}", "landmarks": "{dir}/landmarks.txt"},
        ("landmarks",),
        {"tar_at_far.1e-06": "{stem} all-to-all TAR@1e-6", "tar_at_far.1e-04": "{stem} all-to-all TAR@1e-4"},
    ),
)
