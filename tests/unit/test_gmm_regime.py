"""The ``gmm_regime`` family beyond the contract suite: components fit without labels are mapped
to classes on the training rows only, it reads only the columns it is given (by name in a job),
beats chance on the volatility regime of real data, and refuses what it cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import balanced_accuracy_score

from quantrain.config import JobConfig, build_job
from quantrain.data import DataSource, read_ohlcv
from quantrain.errors import ConfigError, ModelError
from quantrain.export import check_parity
from quantrain.features import get_feature_set
from quantrain.models import get_family
from quantrain.models.gmm_regime import GMMRegimeFamily, class_table
from quantrain.package import Predictor, load_native_head
from quantrain.pipeline import build_dataset, run_symbol
from quantrain.preflight import job_problems
from quantrain.suite.fit import with_column_positions
from tests.conftest import SAMPLE_DIR, package_path

SOURCE = SAMPLE_DIR / "ETH-BTC_5m.parquet"
VOLATILITY = ["atr_frac_14", "volatility_48", "bb_width_20_2", "parkinson_20", "adx_14"]


def planted(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two regimes of column 0's spread; the label is the regime; other columns are noise."""
    rng = np.random.default_rng(seed)
    regime = (np.arange(rows) // 200) % 2
    X = rng.normal(size=(rows, 4))
    X[:, 0] = np.abs(rng.normal(size=rows)) * np.where(regime == 1, 5.0, 1.0)
    return X, regime.astype(np.int64)


def gmm(**params: object) -> GMMRegimeFamily:
    family = get_family("gmm_regime")
    assert family is GMMRegimeFamily
    return GMMRegimeFamily("classification", params, n_classes=2, seed=3)


def test_the_class_table_maps_components_by_training_labels() -> None:
    resp = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    table = class_table(resp, np.array([0, 0, 1, 0]), np.ones(4), 2, smoothing=0.0)
    np.testing.assert_allclose(table, [[1.0, 0.0], [0.5, 0.5]])
    smoothed = class_table(resp, np.array([0, 0, 1, 0]), np.ones(4), 2, smoothing=2.0)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0)
    assert smoothed[0, 1] > 0  # pulled towards the prior (3:1)


def test_labels_after_the_training_rows_change_nothing() -> None:
    X, y = planted(2000, 0)
    first = gmm().fit(X[:1500], y[:1500]).predict_proba(X[1500:])
    y_changed = y.copy()
    y_changed[1500:] = 1 - y_changed[1500:]
    second = gmm().fit(X[:1500], y_changed[:1500]).predict_proba(X[1500:])
    np.testing.assert_array_equal(first, second)
    assert balanced_accuracy_score(y[1500:], first.argmax(axis=1)) > 0.8


def test_only_the_given_columns_are_read_and_the_graph_agrees() -> None:
    X, y = planted(1500, 1)
    model = gmm(columns=[0]).fit(X, y)
    other = X.copy()
    other[:, 1:] = np.random.default_rng(9).normal(size=(len(X), 3)) * 100
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(other))
    assert model.feature_importance()[1:].sum() == 0
    missing = X.copy()
    missing[::3, 0] = np.nan
    missing[1::7, 0] = np.inf
    result = check_parity(model, model.to_onnx(), missing, tolerance=1e-6, head="regime")
    assert result.label_flips == 0


def test_names_in_a_job_become_positions_and_typos_are_refused() -> None:
    job = build_job(
        {
            "suite": {
                "name": "regime",
                "heads": [
                    {
                        "name": "volatility_regime",
                        "target": "volatility_regime",
                        "family": "gmm_regime",
                        "params": {"columns": VOLATILITY},
                    }
                ],
            }
        }
    )
    assert job_problems(job) == []
    columns = get_feature_set("standard").columns()
    (head,) = job.suite.heads
    positions = with_column_positions(head, columns).params["columns"]
    assert [columns[p] for p in positions] == VOLATILITY
    typo = head.model_copy(update={"params": {"columns": ["atr_frac_41"]}})
    with pytest.raises(ConfigError, match="did you mean atr_frac_14"):
        with_column_positions(typo, columns)


def test_refuses_regression_bad_columns_and_unknown_params() -> None:
    X, y = planted(300, 2)
    with pytest.raises(ModelError, match="does not support task 'regression'"):
        GMMRegimeFamily("regression").fit(X, y.astype(float))
    with pytest.raises(ModelError, match=r"outside 0\.\.3"):
        gmm(columns=[0, 7]).fit(X, y)
    with pytest.raises(ModelError, match="covariance_type"):
        gmm(covariance_type="banana").fit(X, y)
    assert GMMRegimeFamily.unknown_params("classification", {"n_component": 3}) == ["n_component"]


def test_its_regime_ranks_real_forward_volatility(eth_frame: pd.DataFrame) -> None:
    """On later rows the expected class rises with the realised forward volatility (the test
    period is calmer than training, so class accuracy there says little; the ranking does)."""
    data = build_dataset(eth_frame, get_feature_set("standard"), JobConfig())
    columns = get_feature_set("standard").columns()
    positions = [columns.index(c) for c in VOLATILITY]
    cut = int(len(data.X) * 0.7)
    train = np.arange(cut - 100)  # a gap past the longest label
    y, _ = data.fold_target("volatility_regime", train)
    model = GMMRegimeFamily("classification", {"columns": positions}, n_classes=4, seed=0)
    model.fit(data.X[train], y[train])
    expected_class = model.predict_proba(data.X[cut:]) @ np.arange(4)
    rho = spearmanr(expected_class, data.targets["volatility_regime"][cut:]).statistic
    assert rho > 0.1


def test_a_regime_head_is_packaged_with_its_columns(tmp_path: Path) -> None:
    job = build_job(
        {
            "store": str(tmp_path),
            "suite": {
                "name": "core",
                "heads": [
                    {"name": "direction", "target": "direction", "family": "ftrl"},
                    {
                        "name": "volatility_regime",
                        "target": "volatility_regime",
                        "family": "gmm_regime",
                        "variant": "conservative",
                        "params": {"columns": VOLATILITY},
                    },
                ],
            },
        }
    )
    result = run_symbol(DataSource("ETH-BTC", "5m", SOURCE), job)
    assert result.ok, result.error
    manifest = json.loads((package_path(tmp_path, "ETH-BTC") / "manifest.json").read_text())
    head = manifest["heads"]["volatility_regime"]
    assert head["family"] == "gmm_regime"
    assert head["parity_max_abs_diff"] <= 1e-4
    columns = manifest["features"]["columns"]
    assert [columns[p] for p in head["params"]["columns"]] == VOLATILITY
    assert head["params"]["covariance_type"] == "diag"
    # a bot's Predictor serves the graph: its probabilities match the native model's
    package = package_path(tmp_path, "ETH-BTC")
    predictor = Predictor(package)
    frame = read_ohlcv(SOURCE).frame
    matrix = predictor.feature_matrix(frame).to_numpy()
    predictions = predictor.predict(frame)
    served_rows = predictions["features_complete"].to_numpy()
    names = [f"volatility_regime_p_{c}" for c in head["classes"]]
    served = predictions.loc[served_rows, names].to_numpy()
    native = load_native_head(package, "volatility_regime").predict_proba(matrix[served_rows])
    assert served_rows.sum() > len(frame) // 2
    np.testing.assert_allclose(served, native, atol=1e-5)
