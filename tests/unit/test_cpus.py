"""The usable CPU count honours a container's cgroup quota, not only the host's cores."""

from __future__ import annotations

import os
from pathlib import Path

from quantrain.runtime.cpus import usable_cpus


def _host() -> int:
    return len(os.sched_getaffinity(0))


def test_a_cgroup_v2_quota_caps_the_count(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: rounds up to one
    assert usable_cpus(tmp_path) == 1


def test_no_quota_means_the_affinity_mask(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(tmp_path) == _host()
    assert usable_cpus(tmp_path / "missing") == _host()


def test_a_cgroup_v1_quota_is_read_too(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert usable_cpus(tmp_path) == _host()


def test_a_garbled_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("lots\n")
    assert usable_cpus(tmp_path) == _host()


def test_a_thread_budget_holds_numba_to_the_task_cpus_and_is_restored() -> None:
    import numba

    from quantrain.runtime.cpus import thread_budget

    before = numba.get_num_threads()
    with thread_budget(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
