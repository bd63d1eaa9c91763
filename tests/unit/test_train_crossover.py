"""``ray.distributed_rows_threshold``: which fits go data-parallel, and which values a job takes."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from quantrain.config import build_job
from quantrain.errors import ConfigError
from quantrain.models import get_family
from quantrain.orchestration.crossover import (
    AUTO_MIN_ROWS,
    ClusterShape,
    cluster_shape,
    goes_data_parallel,
    rows_qualify,
)
from quantrain.orchestration.gbdt_train import DistributedFitter, fitter_for
from quantrain.suite.fit import plain_fit

ONE_BIG_NODE = ClusterShape((64.0,))
TWO_SMALL_NODES = ClusterShape((2.0, 2.0))


def auto(rows: int, cluster: ClusterShape | None, workers: int = 2, cpus: int = 2) -> bool:
    return goes_data_parallel(
        rows, threshold="auto", workers=workers, cpus_per_worker=cpus, cluster=cluster
    )


def test_auto_never_goes_data_parallel_below_the_measured_crossover() -> None:
    clusters = [ONE_BIG_NODE, TWO_SMALL_NODES, ClusterShape((1.0,) * 100), ClusterShape((8.0,) * 8)]
    for rows, cluster, workers, cpus in itertools.product(
        [1, 50_000, AUTO_MIN_ROWS // 2, AUTO_MIN_ROWS - 1], clusters, [2, 4, 16], [1, 2, 8]
    ):
        assert not auto(rows, cluster, workers, cpus), (rows, cluster, workers, cpus)


def test_auto_needs_cpus_beyond_one_node_that_the_cluster_has() -> None:
    rows = AUTO_MIN_ROWS
    # 2 workers x 2 CPUs = 4 > a 2-CPU node, and two nodes hold 4: data-parallel.
    assert auto(rows, TWO_SMALL_NODES, workers=2, cpus=2)
    # 2 x 1 CPU fits on one node: an in-process fit there gets those CPUs without Ray Train.
    assert not auto(rows, TWO_SMALL_NODES, workers=2, cpus=1)
    # One node, however big: never (the benchmark's same-CPU case, and no CPUs to add).
    assert not auto(10 * rows, ONE_BIG_NODE, workers=4, cpus=16)
    assert not auto(10 * rows, ClusterShape((4.0,)), workers=4, cpus=2)
    # More CPUs than the whole cluster has: the workers could not all be placed.
    assert not auto(rows, TWO_SMALL_NODES, workers=3, cpus=2)
    assert auto(rows, ClusterShape((2.0, 2.0, 2.0)), workers=3, cpus=2)
    assert not auto(rows, None)  # cluster unknown: stay in process
    assert not auto(rows, ClusterShape(()))


def test_an_integer_threshold_is_rows_only_and_null_or_one_worker_is_never() -> None:
    def decide(rows: int, threshold: int | None, workers: int = 2) -> bool:
        return goes_data_parallel(
            rows, threshold=threshold, workers=workers, cpus_per_worker=1, cluster=None
        )

    assert decide(1000, 1000) and decide(5000, 1000)
    assert not decide(999, 1000)
    assert not decide(10**9, None)
    assert not decide(10**9, 1, workers=1)
    assert rows_qualify(AUTO_MIN_ROWS, threshold="auto", workers=2)
    assert not rows_qualify(AUTO_MIN_ROWS - 1, threshold="auto", workers=2)


def test_cluster_shape_counts_the_cpus_of_alive_nodes() -> None:
    nodes: list[dict[str, object]] = [
        {"Alive": True, "Resources": {"CPU": 4.0, "memory": 1e9}},
        {"Alive": False, "Resources": {"CPU": 32.0}},  # dead: its CPUs are not there
        {"Alive": True, "Resources": {"GPU": 1.0}},  # a node without CPUs
        {"Alive": True, "Resources": {"CPU": 2.0}},
    ]
    shape = cluster_shape(nodes)
    assert shape.node_cpus == (4.0, 0.0, 2.0)
    assert shape.total == 6.0 and shape.largest_node == 4.0


def test_auto_is_the_default_and_small_fits_stay_in_process_without_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    def no_cluster() -> list[dict[str, object]]:
        raise AssertionError("the cluster was asked for a fit the rows alone decide")

    # Another test of the session may have started Ray: what counts is that it is not asked.
    monkeypatch.setattr(ray, "nodes", no_cluster)
    started = ray.is_initialized()
    job = build_job({"store": str(tmp_path)})
    assert job.ray.distributed_rows_threshold == "auto"
    assert fitter_for(job) is plain_fit  # one worker: never data-parallel
    fitter = fitter_for(build_job({"store": str(tmp_path), "ray": {"train_workers": 2}}))
    assert fitter == DistributedFitter(workers=2, threshold="auto")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)).astype(np.float32), rng.integers(0, 3, 300)
    model = get_family("xgboost")("classification", {"n_estimators": 4}, n_classes=3)
    assert fitter(model, X, y).best_iteration_ == 4
    assert ray.is_initialized() == started  # the rows alone decided: no Ray was started


@pytest.mark.parametrize("value", [1, 2_000_000, "auto", None])
def test_the_threshold_takes_rows_auto_or_null(value: object) -> None:
    assert (
        build_job({"ray": {"distributed_rows_threshold": value}}).ray.distributed_rows_threshold
        == value
    )


@pytest.mark.parametrize("value", [0, -5, "never", "2M", True, 1.5, [1000]])
def test_other_thresholds_are_refused_naming_the_key_and_the_choices(value: object) -> None:
    with pytest.raises(ConfigError) as error:
        build_job({"ray": {"distributed_rows_threshold": value}}, source="job.yaml")
    message = str(error.value)
    assert "job.yaml" in message and "ray.distributed_rows_threshold" in message
    assert "integer ≥ 1" in message and "'auto'" in message and "null" in message
    assert repr(value) in message


def test_a_set_override_takes_auto_and_an_integer() -> None:
    job = build_job(overrides=["ray.distributed_rows_threshold=auto"])
    assert job.ray.distributed_rows_threshold == "auto"
    job = build_job(overrides=["ray.distributed_rows_threshold=500000"])
    assert job.ray.distributed_rows_threshold == 500_000
    with pytest.raises(ConfigError, match=r"--set ray\.distributed_rows_threshold"):
        build_job(overrides=["ray.distributed_rows_threshold=sometimes"])
