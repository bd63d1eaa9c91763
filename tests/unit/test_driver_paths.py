"""Paths are the driver's: made absolute before anything is submitted, and refused when the
driver is not on the cluster that would use them (issue 24). No Ray cluster is started here;
tests/integration/test_external_head.py runs the whole path against a real head."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import ray

from quantrain.config import build_job
from quantrain.data import DataSource
from quantrain.errors import ConfigError
from quantrain.jobs import absolute_path, absolute_paths
from quantrain.orchestration.fanout import driver_on_cluster
from quantrain.orchestration.placement import plan_placement


def test_every_local_path_of_a_job_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    job = build_job(
        {
            "data": {"path": "data", "funding": "funding/{symbol}.csv", "events": "file://ev.csv"},
            "warm_start": "old/{symbol}/core/v1",
            "ray": {"train_storage": "s3://bucket/ray-train"},
        }
    )
    resolved = absolute_paths(job)
    assert resolved.store == str(tmp_path / "models")  # the default ./models
    assert resolved.data.path == str(tmp_path / "data")
    assert resolved.data.funding == str(tmp_path / "funding" / "{symbol}.csv")
    assert resolved.data.events == str(tmp_path / "ev.csv")  # file:// becomes a plain path
    assert resolved.warm_start == str(tmp_path / "old" / "{symbol}" / "core" / "v1")
    assert resolved.ray.train_storage == "s3://bucket/ray-train"
    assert resolved.params_from is None
    assert job.store == "./models"  # the input is not changed
    assert resolved.model_dump(exclude={"store", "data", "warm_start"}) == job.model_dump(
        exclude={"store", "data", "warm_start"}
    )


def test_uris_other_than_file_stay_as_they_are() -> None:
    for uri in ("s3://bucket/models", "s3://b/p?addressing=path", "gs://not-supported/x"):
        assert absolute_path(uri) == uri
    assert absolute_path(None) is None
    assert absolute_path("~/models") == os.path.join(os.path.expanduser("~"), "models")
    assert absolute_path("/already/absolute/../x") == "/already/x"


S3 = {"store": "s3://models/q", "data": {"path": "s3://data/pairs/"}}
S3_SOURCES = [DataSource("ETH-BTC", "5m", "s3://data/pairs/ETH-BTC_5m.parquet")]


def test_a_driver_off_a_one_node_cluster_may_not_use_local_paths(tmp_path: Path) -> None:
    job = build_job({"store": str(tmp_path / "models"), "data": {"path": "s3://data/pairs/"}})
    with pytest.raises(ConfigError) as error:
        plan_placement(job, S3_SOURCES, nodes=1, driver_on_cluster=False)
    message = str(error.value)
    assert "is not a node of the Ray cluster it joined" in message
    assert f"the model store {str(tmp_path / 'models')!r} is a path on the driver's disk" in (
        message
    )
    assert "s3://BUCKET/PREFIX" in message and "ray.allow_local: true" in message


def test_on_its_own_node_the_driver_may(tmp_path: Path) -> None:
    job = build_job({"store": str(tmp_path / "models"), "data": {"path": str(tmp_path)}})
    local = [DataSource("ETH-BTC", "5m", tmp_path / "ETH-BTC_5m.parquet")]
    placement = plan_placement(job, local, nodes=1, driver_on_cluster=True)
    assert placement.local_paths == ()


def test_off_the_cluster_object_storage_needs_nothing_and_samples_travel_as_frames() -> None:
    assert plan_placement(build_job(S3), S3_SOURCES, nodes=1, driver_on_cluster=False)
    bundled = build_job({"store": "s3://models/q"})
    local = [DataSource("ETH-BTC", "5m", Path("/site-packages/quantrain/sample_data/x.parquet"))]
    assert plan_placement(bundled, local, nodes=1, driver_on_cluster=False).ship_frames


def test_allow_local_off_the_cluster_has_every_node_check_the_paths(tmp_path: Path) -> None:
    raw = {"store": str(tmp_path / "models"), "data": {"path": "s3://data/pairs/"}}
    job = build_job(raw, ["ray.allow_local=true"])
    placement = plan_placement(job, S3_SOURCES, nodes=1, driver_on_cluster=False)
    assert placement.local_paths == (str(tmp_path / "models"),)


def test_funding_events_and_warm_start_count_as_local_paths_too(tmp_path: Path) -> None:
    raw: dict[str, Any] = {
        "store": "s3://models/q",
        "data": {"path": "s3://data/pairs/", "funding": str(tmp_path / "funding.csv")},
        "warm_start": str(tmp_path / "old" / "{symbol}" / "v1"),
    }
    with pytest.raises(ConfigError, match=r"data.funding .* and warm_start .* are paths"):
        plan_placement(build_job(raw), S3_SOURCES, nodes=2)
    shared = build_job(raw, ["ray.allow_local=true"])
    placement = plan_placement(shared, S3_SOURCES, nodes=2)
    assert placement.local_paths == (str(tmp_path / "funding.csv"), str(tmp_path / "old"))


NODES = [
    {"NodeID": "a" * 56, "NodeManagerAddress": "10.0.0.5", "NodeManagerHostname": "ray-head"},
    {"NodeID": "b" * 56, "NodeManagerAddress": "10.0.0.6", "NodeManagerHostname": "ray-worker"},
]


@pytest.mark.parametrize(
    ("ip", "host", "on"),
    [
        ("10.0.0.6", "laptop", True),
        ("192.168.1.20", "ray-head", True),
        ("192.168.1.20", "x", False),
    ],
)
def test_a_ray_client_driver_is_on_the_cluster_only_on_a_nodes_machine(
    monkeypatch: pytest.MonkeyPatch, ip: str, host: str, on: bool
) -> None:
    """``ray://``: the driver process is the user's, wherever that is (never a raylet's)."""
    monkeypatch.setattr(ray.util.client.ray, "is_connected", lambda: True)
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: ip)
    monkeypatch.setattr("socket.gethostname", lambda: host)
    assert driver_on_cluster(NODES) is on
