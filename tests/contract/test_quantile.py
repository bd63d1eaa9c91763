"""Quantile regression heads (``{"quantile": q}``) on the boosted families, on real market data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig
from quantrain.errors import ModelError
from quantrain.export import check_parity
from quantrain.features import get_feature_set
from quantrain.models import family_keys, get_family
from quantrain.models.base import ModelFamily
from quantrain.pipeline import build_dataset

QUANTILE_FAMILIES = ["lightgbm", "xgboost"]
BLOCKS = 20  # interleaved time blocks: train, train, early-stopping, held-out, train, ...


@pytest.fixture(scope="module")
def next_return(eth_frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Features and the next bar's log return, split into interleaved blocks of time.

    A continuous target: the ``position_size`` label piles up at its caps, so "below the
    prediction" is ill-defined there. Blocks alternate so the fit, early-stopping and held-out
    rows all span the sample's calm and volatile days; quantiles learnt on one regime are not
    calibrated on another, whatever the objective. The first and last row of every block are
    dropped so no return straddles two blocks.
    """
    data = build_dataset(eth_frame, get_feature_set("standard"), JobConfig())
    close = eth_frame["close"].to_numpy(dtype=np.float64)
    assert data.bars is not None
    keep = data.bars + 1 < len(close)
    bars = data.bars[keep]
    X, y = data.X[keep].astype(np.float64), np.log(close[bars + 1] / close[bars])
    n = len(X)
    block = np.arange(n) * BLOCKS // n
    position = np.arange(n) - np.searchsorted(block, block)
    inner = (position > 0) & (position < np.bincount(block)[block] - 1)
    role = block % 4
    return {
        "X": X,
        "y": y,
        "fit": inner & (role < 2),
        "valid": inner & (role == 2),
        "test": inner & (role == 3),
    }


def _quantile_model(key: str, q: float, xy: dict[str, np.ndarray]) -> ModelFamily:
    X, y, fit, valid = xy["X"], xy["y"], xy["fit"], xy["valid"]
    model = get_family(key)("regression", {"quantile": q}, seed=7)
    return model.fit(X[fit], y[fit], eval_set=(X[valid], y[valid]))


@pytest.mark.parametrize("key", QUANTILE_FAMILIES)
@pytest.mark.parametrize("q", [0.1, 0.9])
def test_quantile_head_covers_its_share_of_held_out_targets(
    key: str, q: float, next_return: dict[str, np.ndarray]
) -> None:
    model = _quantile_model(key, q, next_return)
    X_test, y_test = next_return["X"][next_return["test"]], next_return["y"][next_return["test"]]
    below = float(np.mean(y_test <= model.predict(X_test)))
    assert abs(below - q) <= 0.05, f"{key} q={q}: {below:.3f} of held-out targets below"
    result = check_parity(model, model.to_onnx(), X_test, tolerance=1e-4, head="q")
    assert result.max_abs_diff <= 1e-4


@pytest.mark.parametrize("key", QUANTILE_FAMILIES)
def test_quantile_heads_are_ordered(key: str, next_return: dict[str, np.ndarray]) -> None:
    """The 0.1 head sits below the 0.9 head: a mean objective would put them together."""
    X_test = next_return["X"][next_return["test"]]
    low = _quantile_model(key, 0.1, next_return).predict(X_test)
    high = _quantile_model(key, 0.9, next_return).predict(X_test)
    assert np.mean(low < high) > 0.99


@pytest.mark.parametrize("key", QUANTILE_FAMILIES)
def test_quantile_survives_save_and_load(
    key: str, next_return: dict[str, np.ndarray], tmp_path: Path
) -> None:
    model = _quantile_model(key, 0.9, next_return)
    model.save(tmp_path)
    loaded = get_family(key).load(tmp_path)
    X_test = next_return["X"][next_return["test"]]
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    assert loaded.params == {"quantile": 0.9}


@pytest.mark.parametrize("key", QUANTILE_FAMILIES)
def test_quantile_is_refused_for_classifiers(key: str, next_return: dict[str, np.ndarray]) -> None:
    X = next_return["X"][:300]
    model = get_family(key)("classification", {"quantile": 0.9}, n_classes=2)
    with pytest.raises(ModelError, match="regression heads"):
        model.fit(X, (next_return["y"][:300] > 0).astype(np.int64))


@pytest.mark.parametrize("key", QUANTILE_FAMILIES)
@pytest.mark.parametrize("q", [0.0, 1.0, 1.5, -0.1, True, "0.9"])
def test_quantile_outside_the_open_unit_interval_is_refused(
    key: str, q: object, next_return: dict[str, np.ndarray]
) -> None:
    model = get_family(key)("regression", {"quantile": q})
    with pytest.raises(ModelError, match="quantile"):
        model.fit(next_return["X"][:300], next_return["y"][:300])


@pytest.mark.parametrize(
    "key",
    [
        k
        for k in family_keys()
        if k not in QUANTILE_FAMILIES and "regression" in get_family(k).tags.tasks
    ],
)
def test_families_without_a_quantile_objective_refuse_it(
    key: str, next_return: dict[str, np.ndarray]
) -> None:
    """Rather than silently fitting the mean under a head that says 0.9."""
    family = get_family(key)
    model = family("regression", {"quantile": 0.9, "n_estimators": 5})
    y = next_return["y"][:300]
    if family.tags.multi_target:  # one column per task of a composite target
        y = np.column_stack([y, y, y])
    with pytest.raises(ModelError, match="quantile"):
        model.fit(next_return["X"][:300], y)
