"""The BLAS library's thread pool, for the streamed metrics that run single-threaded products on every core.

A pool of Python threads each running single-threaded matrix products keeps every core busy with the
product *and* the bookkeeping of its own block, where a multi-threaded product followed by single-threaded
bookkeeping leaves cores waiting (MegaFace's distractor stream, all-to-all verification's tiles).
"""

from __future__ import annotations

import contextlib
from typing import Iterator


def blas_threads() -> int:
    """How many threads the BLAS library uses (1 when that cannot be told or limited)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a dependency of facebench
        return 1
    counts = [int(info.get("num_threads", 1)) for info in threadpool_info() if info.get("user_api") == "blas"]
    return max(counts, default=1)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit the BLAS library to one thread inside the block (the whole process: every thread's products)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield
