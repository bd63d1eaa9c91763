"""Shared fixtures: real data, a real local Ray cluster, trained packages, a clean environment."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest

from quantrain.config import JobConfig, build_job
from quantrain.data import read_ohlcv
from quantrain.jobs import sample_data_dir
from quantrain.runtime.cloud import client_config
from tests.support.s3server import S3Server, start_s3_server

SAMPLE_DIR = sample_data_dir()
TEST_BUCKET = "quantrain-test"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch a real cloud account or a real cluster."""
    for key in list(os.environ):
        if key.startswith("AWS_") or key == "RAY_ADDRESS":
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def eth_frame() -> pd.DataFrame:
    return read_ohlcv(SAMPLE_DIR / "ETH-BTC_5m.parquet").frame


def fast_job(store: Path, **overrides: object) -> JobConfig:
    """The default job with a temporary store (defaults are already fast on the sample data)."""
    return build_job({"store": str(store), **overrides})


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a loopback port for the whole session."""
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def s3_uri(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty bucket on the loopback server, reached through the standard AWS variables."""
    s3_server.reset()
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", config=client_config()).create_bucket(Bucket=TEST_BUCKET)
    return f"s3://{TEST_BUCKET}/models"


def put_test_object(key: str, body: bytes) -> None:
    """Write an object into the test bucket (after ``s3_uri`` has created it)."""
    boto3.client("s3", config=client_config()).put_object(Bucket=TEST_BUCKET, Key=key, Body=body)


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temp directory, so a leftover download cannot hide among other processes'."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    assert tempfile.gettempdir() == str(folder)
    return folder


@pytest.fixture
def no_aws_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The AWS chain finds nothing: no keys, no profile files, no instance metadata.

    Request it after ``s3_uri`` so the endpoint stays and only the credentials go.
    """
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def ray_cluster(s3_server: S3Server) -> Iterator[None]:
    """One real local Ray cluster for the whole session (about 5 s to start).

    Its workers get the S3 server's endpoint and credentials through the job's runtime
    environment, as a real cluster's workers get theirs from the cluster, not from the caller.
    """
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
            runtime_env={"env_vars": s3_server.env},
        )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local store holding one ETH-BTC xgboost package and one LTC-BTC lightgbm package."""
    from quantrain.data import DataSource
    from quantrain.pipeline import run_symbol

    store = tmp_path_factory.mktemp("store")
    for symbol, family in (("ETH-BTC", "xgboost"), ("LTC-BTC", "lightgbm")):
        job = fast_job(store, model={"family": family})
        result = run_symbol(DataSource(symbol, "5m", SAMPLE_DIR / f"{symbol}_5m.parquet"), job)
        assert result.ok, result.error
    return store


def package_path(store: Path, symbol: str) -> Path:
    (version_dir,) = (store / symbol / "core").glob("2*")
    return version_dir


@pytest.fixture
def eth_package(trained_store: Path, tmp_path: Path) -> Path:
    """A private copy of the ETH-BTC package that a test may damage."""
    copy = tmp_path / "eth-package"
    shutil.copytree(package_path(trained_store, "ETH-BTC"), copy)
    return copy
