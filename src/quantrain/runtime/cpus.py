"""How many CPUs this process may really use: a container's limit, not the host's core count.

``os.cpu_count()`` reports the node's cores, so a pod limited to 8 CPUs on a 64-core node would
start a 64-CPU local Ray cluster and oversubscribe itself 8 times. The usable count is the
smaller of the CPU affinity mask and the cgroup quota (v2 ``cpu.max``, v1 ``cfs_quota_us``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_quota(root: Path) -> float | None:
    """CPUs allowed by the cgroup quota, or None when there is no quota."""
    v2 = root / "cpu.max"
    try:
        if v2.is_file():
            quota, _, period = v2.read_text().strip().partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period or 100_000)
        v1_quota, v1_period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if v1_quota.is_file() and v1_period.is_file():
            quota_us = int(v1_quota.read_text())
            return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return None


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process can use: affinity mask, capped by a cgroup quota (rounded up, >= 1)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


@contextmanager
def thread_budget(threads: int) -> Iterator[None]:
    """Hold numba's parallel kernels and the OpenMP / BLAS pools to ``threads`` while a task
    runs. Ray tells a task how many CPUs it has, but numba would still start one thread per
    core in every task: two 1-CPU tasks on two cores then run four spinning threads."""
    import numba
    from threadpoolctl import threadpool_limits

    threads = max(1, int(threads))
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(previous)
