"""How many threads the BLAS behind NumPy's matrix products may use, and which CPU they run on.

Left to itself, OpenBLAS starts one thread per core in every process; two
such processes on one machine (a sweep, or tests beside a run) spin against
each other and can run ten times slower. mlptrain therefore always sets the
count: the cores this process may use, unless told otherwise.
"""

from __future__ import annotations

import os
import platform
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def worker_pool(workers: int, prefix: str) -> Iterator[ThreadPoolExecutor]:
    """A thread pool whose queued tasks are cancelled when the block raises (Ctrl-C, SIGTERM), so the command
    ends once the running tasks are done, not after the whole queue."""
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix=prefix)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextmanager
def blas_threads(n: int | None) -> Iterator[int]:
    """Limit the BLAS to ``n`` threads (default: the available cores) inside the block; yields n."""
    from threadpoolctl import threadpool_limits

    n = n or available_cores()
    with threadpool_limits(limits=n, user_api="blas"):
        yield n


def spare_core() -> bool:
    """Whether this process has a core its BLAS does not use (fewer BLAS threads than available cores)."""
    from threadpoolctl import threadpool_info

    used = max((info.get("num_threads", 1) for info in threadpool_info() if info.get("user_api") == "blas"),
               default=1)
    return available_cores() > used


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo's 'model name' gives it ('unknown CPU' when the system does not say).

    Speed depends on it (subnormal floats, for one, cost far more on some CPUs than on others),
    so run summaries and benchmarks record it beside every time they measure.
    """
    try:  # Linux: x86 says "model name"; ARM kernels may say "Model" or only "Hardware"
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        for key in ("model name", "Model", "Hardware", "cpu model"):
            if fields.get(key):
                return fields[key]
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5)
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or "unknown CPU"
