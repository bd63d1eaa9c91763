"""Honesty checks: the pipeline reports chance when there is nothing to learn, finds a signal
that is really there, and refuses a feature that peeks at the future before any training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from quantrain.config import build_job
from quantrain.errors import ConfigError
from quantrain.features import FeatureDef, FeatureSpec, get_feature_set
from quantrain.features.compute import INDICATORS, Indicator, Param
from quantrain.pipeline import TrainedHead, build_dataset, fingerprint, fit_suite, train_suite
from quantrain.suite.dataset import Dataset

DIRECTION_ONLY = {"suite": {"heads": [{"name": "direction", "target": "direction"}]}}


def _fit(eth_frame: pd.DataFrame, data: Dataset) -> TrainedHead:
    suite = fit_suite(
        data,
        symbol="ETH-BTC",
        timeframe="5m",
        job=build_job(DIRECTION_ONLY),
        spec=get_feature_set("standard"),
        fingerprint=fingerprint(eth_frame),
    )
    return suite.heads[0]


@pytest.fixture(scope="module")
def real_data(eth_frame: pd.DataFrame) -> Dataset:
    return build_dataset(eth_frame, get_feature_set("standard"), build_job(DIRECTION_ONLY))


def test_shuffled_labels_score_at_chance(eth_frame: pd.DataFrame, real_data: Dataset) -> None:
    rng = np.random.default_rng(11)
    shuffled = dataclasses.replace(
        real_data,
        targets={**real_data.targets, "direction": rng.permutation(real_data.targets["direction"])},
    )
    oos = _fit(eth_frame, shuffled).oos
    assert abs(oos["balanced_accuracy"] - 1 / 3) < 0.04  # chance for three classes
    assert oos["rows"] > 3000


def test_a_planted_signal_is_found_and_credited_to_its_feature(
    eth_frame: pd.DataFrame, real_data: Dataset
) -> None:
    columns = get_feature_set("standard").columns()
    planted = columns.index("rsi_14")
    x = real_data.X[:, planted]
    low, high = np.quantile(x, [0.3, 0.7])
    direction = np.where(x > high, 2, np.where(x < low, 0, 1))
    noise = np.random.default_rng(5).random(len(x)) < 0.1
    direction[noise] = np.random.default_rng(6).integers(0, 3, noise.sum())
    planted_data = dataclasses.replace(
        real_data, targets={**real_data.targets, "direction": direction}
    )
    head = _fit(eth_frame, planted_data)
    assert head.oos["balanced_accuracy"] > 0.8
    assert head.importance_method == "mean_abs_shap"
    assert columns[int(np.argmax(head.importance))] == "rsi_14"


def _future_return(bars: object, params: object) -> np.ndarray:
    close = bars.close  # type: ignore[attr-defined]
    return np.append(np.log(close[1:] / close[:-1]), np.nan)  # uses bar t+1 at bar t


def test_a_feature_that_looks_ahead_is_refused_before_training(
    eth_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaky = Indicator("future_ret", _future_return, (Param("period", 1, 1),), lambda p: 0, "leak")
    monkeypatch.setitem(INDICATORS, "future_ret", leaky)
    spec = FeatureSpec(
        name="leaky",
        features=(FeatureDef(kind="ret", params={"period": 1}), FeatureDef(kind="future_ret")),
    )
    monkeypatch.setattr("quantrain.pipeline.resolve_feature_set", lambda *a, **k: spec)
    trained: list[str] = []
    monkeypatch.setattr("quantrain.pipeline.fit_suite", lambda *a, **k: trained.append("x"))
    with pytest.raises(
        ConfigError,
        match=r"future_ret_1 \(cut after bar \d+.*\) changed when only later bars changed",
    ):
        train_suite(eth_frame, symbol="ETH-BTC", timeframe="5m", job=build_job({}))
    assert trained == []  # refused before any model was fit
