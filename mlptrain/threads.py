"""How many threads the BLAS behind NumPy's matrix products may use.

Left to itself, OpenBLAS starts one thread per core in every process; two
such processes on one machine (a sweep, or tests beside a run) spin against
each other and can run ten times slower. mlptrain therefore always sets the
count: the cores this process may use, unless told otherwise.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def blas_threads(n: int | None) -> Iterator[int]:
    """Limit the BLAS to ``n`` threads (default: the available cores) inside the block; yields n."""
    from threadpoolctl import threadpool_limits

    n = n or available_cores()
    with threadpool_limits(limits=n, user_api="blas"):
        yield n
