"""The conformance suite every registered model family passes, on real market data.

Budgets are given in each family's own terms (boosting rounds, or a few epochs of a small
network) so the torch families run in seconds; fitted models and their graphs are shared
between the tests that only read them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

from quantrain.config import JobConfig
from quantrain.errors import ExportParityError, ModelError
from quantrain.export import check_parity
from quantrain.export.parity import graph_input
from quantrain.features import get_feature_set
from quantrain.features.windows import lookback_windows
from quantrain.models import family_keys, get_family
from quantrain.models.base import ModelFamily
from quantrain.models.device import TORCH_FAMILIES
from quantrain.models.windows import sequence_length_of
from quantrain.package.session import onnx_session
from quantrain.pipeline import build_dataset

CASES = [
    (key, task)
    for key in family_keys()
    for task in ("classification", "regression")
    if task in get_family(key).tags.tasks
]
#: Families that regress (``gmm_regime`` only classifies).
REGRESSORS = [key for key, task in CASES if task == "regression"]


@pytest.fixture(scope="module")
def real_xy(eth_frame: pd.DataFrame) -> dict[str, np.ndarray]:
    data = build_dataset(eth_frame, get_feature_set("standard"), JobConfig())
    return {
        "X": data.X.astype(np.float64),
        "classification": data.target("direction").astype(np.int64),
        "regression": data.target("position_size"),
        "trade_path": data.target("trade_path"),
    }


#: Regression graphs with more than the one ``value`` output.
REGRESSION_OUTPUTS = {
    "mlp_gaussian": ["value", "scale"],
    "mlp_multitask": ["time_to_hit", "mae", "mfe"],
}


def target_for(key: str, task: str, xy: dict[str, np.ndarray]) -> np.ndarray:
    """The labels ``key`` learns for ``task``: a multi-target family's regression learns the
    composite ``trade_path`` (one column per task)."""
    multi = task == "regression" and get_family(key).tags.multi_target
    return xy["trade_path"] if multi else xy[task]


def budget(key: str, rounds: int, **extra: Any) -> dict[str, Any]:
    """``rounds`` boosting rounds, for a network family a few epochs of a small one, for an
    online linear family (``ftrl``) two passes."""
    family = get_family(key)
    if "n_estimators" in family.default_params:
        return {"n_estimators": rounds, **extra}
    if "max_iter" in family.default_params:  # an EM fit (gmm_regime)
        return {"max_iter": rounds, **extra}
    if key not in TORCH_FAMILIES:
        return {"epochs": 2, **extra}
    small = {"epochs": 3, "hidden": 16, "layers": 1}
    if family.tags.sequence:
        small["sequence_length"] = 8
    return {**small, **extra}


def _fit(key: str, task: str, xy: dict[str, np.ndarray], seed: int = 7) -> ModelFamily:
    X, y = xy["X"], target_for(key, task, xy)
    model = get_family(key)(
        task, budget(key, 60), n_classes=3 if task == "classification" else None, seed=seed
    )
    return model.fit(X[:3000], y[:3000], eval_set=(X[3000:3600], y[3000:3600]))


@pytest.fixture(scope="module")
def fitted(real_xy: dict[str, np.ndarray]) -> Callable[[str, str], ModelFamily]:
    """``_fit(key, task)`` once per module, for tests that only read the model."""
    cache: dict[tuple[str, str], ModelFamily] = {}

    def get(key: str, task: str) -> ModelFamily:
        if (key, task) not in cache:
            cache[key, task] = _fit(key, task, real_xy)
        return cache[key, task]

    return get


@pytest.fixture(scope="module")
def graph_of(
    fitted: Callable[[str, str], ModelFamily],
) -> Callable[[str, str], onnx.ModelProto]:
    """The ONNX graph of ``fitted(key, task)``, exported once per module."""
    cache: dict[tuple[str, str], onnx.ModelProto] = {}

    def get(key: str, task: str) -> onnx.ModelProto:
        if (key, task) not in cache:
            cache[key, task] = fitted(key, task).to_onnx()
        return cache[key, task]

    return get


def _outputs(model: ModelFamily, X: np.ndarray) -> np.ndarray:
    return model.predict_proba(X) if model.task == "classification" else model.predict(X)


@pytest.mark.parametrize(("key", "task"), CASES)
def test_fit_returns_self_and_leaves_inputs_alone(
    key: str, task: str, real_xy: dict[str, np.ndarray]
) -> None:
    X, y = real_xy["X"][:2000].copy(), target_for(key, task, real_xy)[:2000].copy()
    X_before, y_before = X.copy(), y.copy()
    model = get_family(key)(
        task, budget(key, 20), n_classes=3 if task == "classification" else None
    )
    assert model.fit(X, y) is model
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert model.n_features_in_ == X.shape[1]


@pytest.mark.parametrize(("key", "task"), CASES)
def test_same_seed_same_predictions(key: str, task: str, real_xy: dict[str, np.ndarray]) -> None:
    X_test = real_xy["X"][3600:4200]
    first = _outputs(_fit(key, task, real_xy, seed=3), X_test)
    second = _outputs(_fit(key, task, real_xy, seed=3), X_test)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(("key", "task"), CASES)
def test_save_load_round_trip_is_exact(
    key: str,
    task: str,
    real_xy: dict[str, np.ndarray],
    tmp_path: Path,
    fitted: Callable[[str, str], ModelFamily],
) -> None:
    model = fitted(key, task)
    files = model.save(tmp_path)
    assert all(f.is_file() for f in files)
    loaded = get_family(key).load(tmp_path)
    X_test = real_xy["X"][3600:]
    np.testing.assert_array_equal(_outputs(loaded, X_test), _outputs(model, X_test))
    assert loaded.best_iteration_ == model.best_iteration_


@pytest.mark.parametrize(("key", "task"), CASES)
def test_onnx_parity_on_real_data(
    key: str,
    task: str,
    real_xy: dict[str, np.ndarray],
    fitted: Callable[[str, str], ModelFamily],
    graph_of: Callable[[str, str], onnx.ModelProto],
) -> None:
    model = fitted(key, task)
    X_held_out = real_xy["X"][3600:]
    result = check_parity(model, graph_of(key, task), X_held_out, tolerance=1e-4, head="h")
    assert result.rows == len(X_held_out)
    assert result.max_abs_diff <= 1e-4
    assert result.label_flips == 0


@pytest.mark.parametrize(("key", "task"), CASES)
def test_onnx_graph_has_the_named_interface(
    key: str,
    task: str,
    real_xy: dict[str, np.ndarray],
    fitted: Callable[[str, str], ModelFamily],
    graph_of: Callable[[str, str], onnx.ModelProto],
) -> None:
    session = onnx_session(graph_of(key, task).SerializeToString())
    assert [i.name for i in session.get_inputs()] == ["features"]
    expected = (
        ["label", "probabilities"]
        if task == "classification"
        else REGRESSION_OUTPUTS.get(key, ["value"])
    )
    assert [o.name for o in session.get_outputs()] == expected
    assert fitted(key, task).output_names() == expected
    for rows in (5, 1):
        feed = graph_input(fitted(key, task), real_xy["X"][:rows])
        batch = session.run(None, {"features": feed})
        assert len(batch[0]) == rows


@pytest.mark.parametrize("key", [k for k, task in CASES if get_family(k).tags.sequence])
def test_sequence_graph_serves_any_window_length(
    key: str,
    real_xy: dict[str, np.ndarray],
    fitted: Callable[[str, str], ModelFamily],
    graph_of: Callable[[str, str], onnx.ModelProto],
) -> None:
    """Sequence graphs read ``(N, seq, F)`` windows with both axes dynamic: a bot may feed a
    shorter or longer window than training used and still gets one answer per row."""
    model = fitted(key, "classification")
    trained = sequence_length_of(model)
    assert trained is not None
    session = onnx_session(graph_of(key, "classification").SerializeToString())
    (features,) = session.get_inputs()
    assert isinstance(features.shape[0], str) and isinstance(features.shape[1], str)
    X = real_xy["X"][3600:3650]
    for length in (2, trained + 5, 3 * trained):
        windows = np.ascontiguousarray(lookback_windows(X, length), dtype=np.float32)
        label, probabilities = session.run(None, {"features": windows})
        assert label.shape == (len(X),) and probabilities.shape == (len(X), 3)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(label, probabilities.argmax(axis=1))


@pytest.mark.parametrize("key", family_keys())
def test_parity_gate_refuses_a_graph_outside_tolerance(
    key: str,
    real_xy: dict[str, np.ndarray],
    fitted: Callable[[str, str], ModelFamily],
    graph_of: Callable[[str, str], onnx.ModelProto],
) -> None:
    task = "regression" if key in REGRESSORS else "classification"
    model, graph = fitted(key, task), graph_of(key, task)
    with pytest.raises(ExportParityError, match=r"max \|diff\|"):
        check_parity(model, graph, real_xy["X"][3600:], tolerance=1e-12, head="size")


@pytest.mark.parametrize(
    "key", [k for k in REGRESSORS if "max_iter" not in get_family(k).default_params]
)
def test_early_stopping_trims_rounds(key: str, real_xy: dict[str, np.ndarray]) -> None:
    X, y = real_xy["X"], target_for(key, "regression", real_xy)
    if key in TORCH_FAMILIES:  # a network that overfits within epochs
        params, limit = budget(key, 0, epochs=60, early_stopping_rounds=2, learning_rate=0.01), 60
    elif "n_estimators" not in get_family(key).default_params:  # passes of an online model
        params, limit = {"epochs": 60, "early_stopping_rounds": 2}, 60
    else:
        params, limit = {"n_estimators": 400, "early_stopping_rounds": 5}, 400
    model = get_family(key)("regression", params)
    model.fit(X[:3000], y[:3000], eval_set=(X[3000:3600], y[3000:3600]))
    assert 1 <= model.best_iteration_ < limit


@pytest.mark.parametrize("key", REGRESSORS)
def test_predict_proba_is_refused_for_regressors(
    key: str, real_xy: dict[str, np.ndarray], fitted: Callable[[str, str], ModelFamily]
) -> None:
    model = fitted(key, "regression")
    with pytest.raises(ModelError, match="classifiers"):
        model.predict_proba(real_xy["X"][:3])


def test_unknown_family_lists_near_matches() -> None:
    with pytest.raises(ModelError, match="Did you mean xgboost") as info:
        get_family("xgbost")
    assert "lightgbm" in str(info.value)


def test_class_ids_outside_range_are_refused(real_xy: dict[str, np.ndarray]) -> None:
    model = get_family("xgboost")("classification", n_classes=2)
    with pytest.raises(ModelError, match=r"0\.\.1"):
        model.fit(real_xy["X"][:100], np.full(100, 2))


@pytest.mark.parametrize("key", [k for k, task in CASES if task == "classification"])
def test_two_class_heads_with_missing_inputs_keep_onnx_parity(
    key: str, real_xy: dict[str, np.ndarray]
) -> None:
    """Binary heads (journal signal quality) on inputs with NaN: XGBoost's multi:softprob with
    two classes once converted with probabilities off by ~1.0; this pins the fix."""
    X = real_xy["X"].copy()
    X[::5, 3] = np.nan  # a journal field that some records lack
    y = (real_xy["classification"] == 2).astype(np.int64)  # BUY or not: ~29 % positives
    model = get_family(key)("classification", budget(key, 60), n_classes=2, seed=7)
    model.fit(X[:3000], y[:3000], eval_set=(X[3000:3600], y[3000:3600]))
    assert model.predict_proba(X[3600:]).shape == (len(X) - 3600, 2)
    result = check_parity(model, model.to_onnx(), X[3600:], tolerance=1e-4, head="quality")
    assert result.max_abs_diff <= 1e-4 and result.label_flips == 0


@pytest.mark.parametrize(("key", "task"), CASES)
def test_contributions_are_exact_treeshap_or_absent(
    key: str, task: str, real_xy: dict[str, np.ndarray], fitted: Callable[[str, str], ModelFamily]
) -> None:
    model = fitted(key, task)
    X = real_xy["X"][3600:3800]
    phi = model.contributions(X)
    if phi is None:
        return  # the family falls back to permutation importance
    outputs = 3 if task == "classification" else 1
    assert phi.shape == (len(X), outputs, X.shape[1])
    if task == "regression":
        # SHAP is additive: prediction = bias + Σ φ, so prediction − Σ φ is one constant.
        bias = model.predict(X) - phi.sum(axis=(1, 2))
        assert np.ptp(bias) < 1e-4
