"""What the torch families add to the contract: windows, in-graph normalisation, epochs,
weights, window-length-free graphs, devices, and a clear message when torch is missing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig
from quantrain.errors import ConfigError, ModelError
from quantrain.features import get_feature_set
from quantrain.features.windows import lookback_windows
from quantrain.models import family_keys, get_family, resolve_device
from quantrain.pipeline import build_dataset

requires_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="needs the torch extra"
)

TORCH_KEYS = ["mlp", "lstm", "cnn1d", "transformer"]
SEQUENCE_KEYS = ["lstm", "cnn1d", "transformer"]
SMALL = {"epochs": 2, "hidden": 16, "layers": 1}


def small(key: str, **extra: object) -> dict[str, object]:
    seq = {"sequence_length": 8} if get_family(key).tags.sequence else {}
    return {**SMALL, **seq, **extra}


@pytest.fixture(scope="module")
def xy(eth_frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    data = build_dataset(eth_frame, get_feature_set("standard"), JobConfig())
    return data.X[:2000].astype(np.float64), data.target("direction")[:2000].astype(np.int64)


def test_lookback_window_of_row_i_ends_at_row_i_and_repeats_the_first_row() -> None:
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    windows = lookback_windows(X, 3)
    assert windows.shape == (6, 3, 2)
    np.testing.assert_array_equal(windows[4], X[2:5])
    np.testing.assert_array_equal(windows[5, -1], X[5])
    np.testing.assert_array_equal(windows[0], np.stack([X[0]] * 3))
    np.testing.assert_array_equal(windows[1], np.stack([X[0], X[0], X[1]]))
    assert lookback_windows(X[:0], 3).shape == (0, 3, 2)
    with pytest.raises(ModelError, match="sequence_length"):
        lookback_windows(X, 0)


def test_windows_are_causal() -> None:
    """Appending rows never changes an earlier row's window."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    np.testing.assert_array_equal(lookback_windows(X[:30], 7), lookback_windows(X, 7)[:30])


@requires_torch
def test_torch_families_are_listed() -> None:
    assert set(TORCH_KEYS) <= set(family_keys())
    assert [k for k in TORCH_KEYS if get_family(k).tags.sequence] == SEQUENCE_KEYS


@requires_torch
@pytest.mark.parametrize("key", ["mlp", "lstm"])
def test_normalisation_lives_in_the_model(key: str, xy: tuple[np.ndarray, np.ndarray]) -> None:
    """Mean/std of the training rows (NaN-aware) are buffers: in the native file and graph."""
    X, y = xy[0].copy(), xy[1]
    X[::7, 2] = np.nan
    model = get_family(key)("regression", small(key, epochs=1)).fit(X, y.astype(np.float64))
    state = model.net_.state_dict()
    np.testing.assert_allclose(state["inputs.mean"].numpy(), np.nanmean(X, axis=0), rtol=1e-5)
    np.testing.assert_allclose(state["inputs.scale"].numpy(), np.nanstd(X, axis=0), rtol=1e-4)
    # A NaN input reads as the training mean (the graph does the same: the contract suite's
    # NaN parity test).
    row = X[-1:].copy()
    at_mean = row.copy()
    row[0, 5], at_mean[0, 5] = np.nan, float(state["inputs.mean"][5])
    if key == "mlp":
        assert model.predict(row)[0] == pytest.approx(model.predict(at_mean)[0], abs=1e-6)


@requires_torch
@pytest.mark.parametrize("key", ["mlp", "cnn1d"])
def test_fixed_budget_trains_exactly_that_many_epochs(
    key: str, xy: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = xy
    probe = get_family(key)("classification", small(key), n_classes=3)
    params = {**small(key), **probe.fixed_budget(3)}
    assert params["early_stopping_rounds"] == 0
    model = get_family(key)("classification", params, n_classes=3)
    model.fit(X[:1500], y[:1500], eval_set=(X[1500:], y[1500:]))
    assert model.best_iteration_ == 3
    assert model.rows_seen_ == [1500, 1500, 1500]


@requires_torch
def test_early_stopping_keeps_the_best_epoch(xy: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = xy
    params = small("mlp", epochs=40, early_stopping_rounds=2, learning_rate=0.02, hidden=64)
    model = get_family("mlp")("classification", params, n_classes=3, seed=2)
    model.fit(X[:1500], y[:1500], eval_set=(X[1500:], y[1500:]))
    assert len(model.rows_seen_) == model.best_iteration_ + 2 < 40


@requires_torch
def test_sample_weight_is_a_weighted_loss(xy: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = xy
    heavy = np.where(y == 2, 20.0, 1.0)
    plain = get_family("mlp")("classification", small("mlp", epochs=4), n_classes=3).fit(X, y)
    weighted = get_family("mlp")("classification", small("mlp", epochs=4), n_classes=3)
    weighted.fit(X, y, sample_weight=heavy)
    assert (weighted.predict(X) == 2).mean() > (plain.predict(X) == 2).mean() + 0.2


@requires_torch
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_estimators": 10}, r"unknown params \['n_estimators'\]"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"dropout": 1.5}, "dropout must be a number"),
        ({"quantile": 0.9}, "quantile heads need xgboost or lightgbm"),
    ],
)
def test_bad_params_are_refused_by_name(
    params: dict[str, object], message: str, xy: tuple[np.ndarray, np.ndarray]
) -> None:
    with pytest.raises(ModelError, match=message):
        get_family("mlp")("regression", params).fit(xy[0][:50], xy[1][:50].astype(float))


@requires_torch
def test_transformer_checks_heads_divide_hidden(xy: tuple[np.ndarray, np.ndarray]) -> None:
    model = get_family("transformer")("regression", {"hidden": 30, "heads": 4})
    with pytest.raises(ModelError, match="divisible by heads"):
        model.fit(xy[0][:50], xy[1][:50].astype(float))


@requires_torch
def test_auto_device_follows_torch() -> None:
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto", family="lstm") == expected
    assert resolve_device("cpu", family="lstm") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="torch sees no GPU"):
            resolve_device("cuda", family="mlp")


def test_without_torch_the_family_names_the_extra() -> None:
    """A fresh interpreter where torch cannot be found, as on an install without the extra.

    (``sys.modules['torch'] = None`` would also hide it, but scikit-learn's array-API helpers
    then crash on import, so an import hook refuses torch the way a missing package does.)
    """
    script = (
        "import sys, json\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from quantrain.errors import ModelError\n"
        "from quantrain.models import family_keys, get_family\n"
        "try:\n"
        "    get_family('lstm')\n"
        "    message = None\n"
        "except ModelError as error:\n"
        "    message = str(error)\n"
        "print(json.dumps({'keys': family_keys(), 'message': message}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["message"] is not None
    assert "pip install 'quantrain[torch]'" in result["message"]
    assert "xgboost" in result["keys"]
    assert not set(TORCH_KEYS) & set(result["keys"])


def test_held_out_rows_are_scored_with_their_real_history(
    xy: tuple[np.ndarray, np.ndarray],
) -> None:
    """A fold's first test rows read the feature rows before them, as a live bot would, so the
    fold's outputs equal those of one pass over the whole history (and not padded windows)."""
    from quantrain.suite.fit import held_out_outputs

    X, y = xy
    model = get_family("lstm")("classification", small("lstm"), n_classes=3, seed=1)
    model.fit(X[:1200], y[:1200])
    rows = np.arange(1500, 1800)
    whole = model.predict_proba(X[:1800])[rows]
    np.testing.assert_allclose(held_out_outputs(model, X, rows), whole, rtol=0, atol=1e-6)
    padded = model.predict_proba(X[rows])
    assert not np.allclose(padded[:5], whole[:5], atol=1e-6)  # what scoring used to see
