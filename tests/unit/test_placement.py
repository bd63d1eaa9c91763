"""Where data and store live decides whether a multi-node run may start (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantrain.config import build_job
from quantrain.data import DataSource
from quantrain.errors import ConfigError
from quantrain.orchestration.placement import plan_placement, probe_node, shared_marker

S3_SOURCES = [DataSource("ETH-BTC", "5m", "s3://data/pairs/ETH-BTC_5m.parquet")]


def test_one_node_accepts_local_paths_and_ships_nothing(tmp_path: Path) -> None:
    job = build_job({"store": str(tmp_path), "data": {"path": str(tmp_path)}})
    local = [DataSource("ETH-BTC", "5m", tmp_path / "ETH-BTC_5m.parquet")]
    placement = plan_placement(job, local, nodes=1)
    assert not placement.ship_frames and placement.local_paths == ()


def test_many_nodes_refuse_a_local_store_and_say_what_to_do(tmp_path: Path) -> None:
    job = build_job({"store": str(tmp_path / "models"), "data": {"path": "s3://data/pairs/"}})
    with pytest.raises(ConfigError, match=r"3 nodes, but the model store .* is a path") as error:
        plan_placement(job, S3_SOURCES, nodes=3)
    assert "s3://BUCKET/PREFIX" in str(error.value) and "--allow-local" in str(error.value)


def test_many_nodes_refuse_local_data_too(tmp_path: Path) -> None:
    job = build_job({"store": "s3://models/q", "data": {"path": str(tmp_path)}})
    local = [DataSource("ETH-BTC", "5m", tmp_path / "ETH-BTC_5m.parquet")]
    with pytest.raises(ConfigError, match=r"the data .* is a path on the driver's disk"):
        plan_placement(job, local, nodes=2)


def test_object_storage_everywhere_needs_nothing_more() -> None:
    job = build_job({"store": "s3://models/q", "data": {"path": "s3://data/pairs/"}})
    placement = plan_placement(job, S3_SOURCES, nodes=4)
    assert not placement.ship_frames and placement.local_paths == ()


def test_bundled_sample_data_travels_as_frames() -> None:
    job = build_job({"store": "s3://models/q"})  # data.path null: the bundled pairs
    local = [DataSource("ETH-BTC", "5m", Path("/site-packages/quantrain/sample_data/x.parquet"))]
    assert plan_placement(job, local, nodes=2).ship_frames


def test_allow_local_lists_the_paths_each_node_must_see(tmp_path: Path) -> None:
    raw = {"store": str(tmp_path / "models"), "data": {"path": str(tmp_path / "data")}}
    job = build_job(raw, ["ray.allow_local=true"])
    local = [DataSource("ETH-BTC", "5m", tmp_path / "data" / "ETH-BTC_5m.parquet")]
    placement = plan_placement(job, local, nodes=2)
    assert placement.local_paths == (str(tmp_path / "models"), str(tmp_path / "data"))


def test_probe_reports_a_node_that_does_not_share_the_disk(tmp_path: Path) -> None:
    store = tmp_path / "models"
    marker = shared_marker(str(store))
    assert probe_node(str(store), (str(store),), marker) is None  # same disk: all visible
    Path(marker).unlink()  # what a node with its own, different disk sees
    problem = probe_node(str(store), (str(tmp_path / "missing"),), marker)
    assert problem is not None
    assert "does not see" in problem and f"no {tmp_path / 'missing'} here" in problem


def test_probe_reports_an_unreachable_store(no_aws_credentials: None) -> None:
    problem = probe_node("s3://models/q", (), None)
    assert problem is not None and "no AWS credentials found" in problem
