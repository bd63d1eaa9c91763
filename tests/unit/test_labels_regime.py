"""Volatility regime: forward volatility vs a plain-Python reference on real data, and class
thresholds fitted on training rows only (per fold, and on all rows for the final model)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantrain.config import HeadConfig, build_job
from quantrain.errors import ConfigError, DataError
from quantrain.labels import (
    REGIME_CLASSES,
    bin_by_thresholds,
    forward_volatility,
    quantile_thresholds,
)
from quantrain.split import walk_forward
from quantrain.suite.dataset import Dataset, target_of
from quantrain.suite.fit import fit_final, head_folds
from tests.unit.test_triple_barrier import PAIRS, load_pair

QUARTILES = (0.25, 0.5, 0.75)


def reference_forward_volatility(close: np.ndarray, horizon: int) -> np.ndarray:
    c = close.tolist()
    out = np.full(len(c), np.nan)
    for t in range(len(c) - horizon):
        returns = [math.log(c[j] / c[j - 1]) for j in range(t + 1, t + horizon + 1)]
        mean = math.fsum(returns) / horizon
        out[t] = math.sqrt(math.fsum((r - mean) ** 2 for r in returns) / horizon)
    return out


@pytest.mark.parametrize("pair", PAIRS)
def test_forward_volatility_matches_reference_on_real_data(pair: str) -> None:
    _, _, close, _ = load_pair(pair)
    for horizon in (1, 12, 48):
        got = forward_volatility(close, horizon)
        want = reference_forward_volatility(close, horizon)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        assert np.isnan(got[-horizon:]).all() and not np.isnan(got[:-horizon]).any()


def test_forward_volatility_is_scale_free_and_refuses_bad_prices() -> None:
    _, _, close, _ = load_pair(PAIRS[0])
    np.testing.assert_allclose(
        forward_volatility(close * 1000.0, 24), forward_volatility(close, 24), rtol=1e-9
    )
    with pytest.raises(DataError, match="> 0"):
        forward_volatility(np.array([1.0, 0.0, 2.0]), 1)
    with pytest.raises(ConfigError, match="horizon"):
        forward_volatility(close, 0)


def test_quartile_bins_by_hand() -> None:
    values = np.arange(1.0, 9.0)  # 1..8: quartiles 2.75, 4.5, 6.25
    thresholds = quantile_thresholds(values, QUARTILES)
    np.testing.assert_allclose(thresholds, [2.75, 4.5, 6.25])
    classes = bin_by_thresholds(np.array([0.0, 2.75, 4.4, 4.5, 7.0, 100.0]), thresholds)
    np.testing.assert_array_equal(classes, [0, 1, 1, 2, 3, 3])  # a boundary starts its class
    assert len(REGIME_CLASSES) == len(QUARTILES) + 1
    with pytest.raises(ConfigError, match="regime_quantiles"):
        quantile_thresholds(values, (0.5, 0.25, 0.75))


def dataset(raw: np.ndarray, X: np.ndarray | None = None) -> Dataset:
    n = len(raw)
    return Dataset(
        X=np.zeros((n, 1), dtype=np.float32) if X is None else X,
        targets={"volatility_regime": raw, "direction": np.ones(n, dtype=np.int8)},
        label_end=np.arange(n, dtype=np.int64),
        stamps=pd.Series(pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")),
        bins={"volatility_regime": QUARTILES},
    )


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(8, 200),
    split=st.floats(0.2, 0.9),
)
def test_fold_thresholds_never_see_test_rows(seed: int, n: int, split: float) -> None:
    """Rewriting the raw target of every non-training row leaves the fold's thresholds and its
    training labels unchanged."""
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(-6.0, 0.5, n)
    train = np.sort(rng.choice(n, size=max(2, int(split * n)), replace=False))
    others = np.setdiff1d(np.arange(n), train)
    changed = raw.copy()
    changed[others] = rng.lognormal(-3.0, 2.0, len(others))  # a wildly different regime

    y, fitted = dataset(raw).fold_target("volatility_regime", train)
    y2, fitted2 = dataset(changed).fold_target("volatility_regime", train)
    assert fitted == fitted2
    np.testing.assert_array_equal(y[train], y2[train])
    np.testing.assert_allclose(fitted["thresholds"], np.quantile(raw[train], QUARTILES))
    assert y.dtype == np.int8 and set(np.unique(y[train])) <= {0, 1, 2, 3}
    # The final model's labels use every row.
    _, final = dataset(changed).fold_target("volatility_regime")
    np.testing.assert_allclose(final["thresholds"], np.quantile(changed, QUARTILES))


def test_plain_targets_pass_through_and_binned_ones_refuse_the_unfitted_accessor() -> None:
    data = dataset(np.linspace(1.0, 2.0, 10))
    y, fitted = data.fold_target("direction", np.arange(5))
    assert y is data.targets["direction"] and fitted == {}
    with pytest.raises(ConfigError, match="fold_target"):
        data.target("volatility_regime")
    assert target_of("volatility_regime").binned
    final = data.final_target("volatility_regime")
    assert final.classes == REGIME_CLASSES
    np.testing.assert_allclose(
        final.fitted["thresholds"], np.quantile(data.targets["volatility_regime"], QUARTILES)
    )
    assert data.final_target("direction").fitted == {}


def test_head_folds_bin_each_fold_on_its_own_training_rows() -> None:
    """Each fold's truth is the raw target binned with that fold's training quartiles, and a
    regime shift in the last fold's test rows moves none of its thresholds."""
    rng = np.random.default_rng(7)
    n = 1200
    raw = np.concatenate([rng.lognormal(-6.0, 0.3, 900), rng.lognormal(-4.0, 0.3, 300)])
    X = np.column_stack([np.log(raw) + rng.normal(0, 0.5, n), rng.normal(size=n)])
    data = dataset(raw, X.astype(np.float32))
    job = build_job(
        {"split": {"n_folds": 3, "min_train": 300}, "model": {"device": "cpu"}},
    )
    head = HeadConfig(name="regime", target="volatility_regime", params={"n_estimators": 5})
    folds = walk_forward(
        n, n_folds=3, label_end=data.label_end, mode="expanding", min_train=300, embargo=0
    )
    run = head_folds(head, data, folds, job, importance=False)
    for fold, truth in zip(folds, run.truth, strict=True):
        thresholds = np.quantile(raw[fold.train], QUARTILES)
        np.testing.assert_array_equal(truth, bin_by_thresholds(raw[fold.test], thresholds))
    # The last test fold sits in the high regime: against training quartiles it is all EXTREME.
    assert (run.truth[-1] == 3).mean() > 0.9
    model = fit_final(head, data, job, run.budget())
    assert model.n_classes == len(REGIME_CLASSES)
