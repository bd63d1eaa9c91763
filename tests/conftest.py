"""Shared fixtures: real data, a real local Ray cluster, trained packages, a clean environment."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from quantrain.config import JobConfig, build_job
from quantrain.data import read_ohlcv
from quantrain.runner import sample_data_dir

SAMPLE_DIR = sample_data_dir()


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
def ray_cluster() -> Iterator[None]:
    """One real local Ray cluster for the whole session (about 5 s to start)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
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
