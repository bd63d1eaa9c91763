"""The torch families with more than one output: ``mlp_multitask`` (a head per part of the
composite ``trade_path`` target, weighted losses) and ``mlp_gaussian`` (mean and scale,
trained on the Gaussian likelihood). What the contract suite does not cover: the target, the
loss weights, the scale's calibration, the metrics and the job checks."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest

from quantrain.config import JobConfig, build_job
from quantrain.errors import ExportParityError, ModelError
from quantrain.evaluate.metrics import Z_90, gaussian_metrics, task_metrics
from quantrain.export import check_parity
from quantrain.features import get_feature_set
from quantrain.labels import target_def
from quantrain.models import get_family
from quantrain.package.session import onnx_session
from quantrain.pipeline import build_dataset
from quantrain.preflight import job_problems

pytest.importorskip("torch")

SMALL = {"hidden": 16, "layers": 1}


@pytest.fixture(scope="module")
def data(eth_frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    dataset = build_dataset(eth_frame, get_feature_set("standard"), JobConfig())
    return dataset.X.astype(np.float64), dataset.target("trade_path")


def test_trade_path_is_time_to_hit_mae_mfe_of_the_same_rows(eth_frame: pd.DataFrame) -> None:
    dataset = build_dataset(eth_frame, get_feature_set("standard"), JobConfig())
    path = dataset.target("trade_path")
    assert path.shape == (len(dataset.X), 3) and np.isfinite(path).all()
    for i, part in enumerate(("time_to_hit", "mae", "mfe")):
        np.testing.assert_array_equal(path[:, i], dataset.target(part))
    assert target_def("trade_path").columns == ("time_to_hit", "mae", "mfe")
    assert get_family("mlp_multitask").default_params["tasks"] == target_def("trade_path").columns


def _heteroscedastic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = x0 + noise whose standard deviation exp(x1 / 2) the features reveal."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    sigma = np.exp(0.5 * X[:, 1])
    return X, X[:, 0] + sigma * rng.normal(size=n), sigma


def test_a_task_weighted_zero_is_not_learned() -> None:
    """Two learnable tasks; the one with weight 0 gets no gradient and stays near its mean."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    y = np.column_stack([2 * X[:, 0], -2 * X[:, 1]])
    params = {**SMALL, "epochs": 15, "tasks": ["a", "b"], "learning_rate": 0.01}

    def errors(weights: dict[str, float]) -> np.ndarray:
        model = get_family("mlp_multitask")("regression", {**params, "loss_weights": weights})
        return np.abs(model.fit(X[:2500], y[:2500]).predict(X[2500:]) - y[2500:]).mean(axis=0)

    only_a, only_b = errors({"a": 1.0, "b": 0.0}), errors({"a": 0.0, "b": 1.0})
    assert only_a[0] < 0.5 * only_b[0] and only_b[1] < 0.5 * only_a[1]


def test_the_loss_is_the_weighted_mean_of_standardised_squared_errors() -> None:
    import torch

    model = get_family("mlp_multitask")("regression", {"loss_weights": {"mae": 3.0}})
    model.loss_weights_ = torch.as_tensor(model.task_weights(), dtype=torch.float32)
    raw, target = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[0.0, 0.0, 2.0]])
    # (1·1 + 3·4 + 1·4) / (1 + 3 + 1)
    assert float(model._loss(raw, target)[0]) == pytest.approx(17 / 5)


def test_multitask_graph_has_an_output_per_task_equal_to_predict(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    model = get_family("mlp_multitask")("regression", {**SMALL, "epochs": 3}).fit(
        X[:3000], y[:3000]
    )
    graph = model.to_onnx()
    session = onnx_session(graph.SerializeToString())
    assert [o.name for o in session.get_outputs()] == ["time_to_hit", "mae", "mfe"]
    outputs = session.run(None, {"features": X[3000:].astype(np.float32)})
    native = model.predict(X[3000:])
    assert native.shape == (len(X) - 3000, 3)
    for i, values in enumerate(outputs):
        assert values.shape == (len(X) - 3000,)
        np.testing.assert_allclose(values, native[:, i], atol=1e-5)
    assert check_parity(model, graph, X[3000:], tolerance=1e-5, head="path").max_abs_diff < 1e-5


@pytest.mark.parametrize(
    ("params", "y_columns", "message"),
    [
        ({}, 1, r"one column per task \['time_to_hit', 'mae', 'mfe'\].*target: trade_path"),
        ({"loss_weights": {"drawdown": 1.0}}, 3, r"loss_weights names \['drawdown'\]"),
        ({"loss_weights": {"mae": -1.0}}, 3, "numbers >= 0"),
        ({"loss_weights": [1.0, 2.0, 1.0]}, 3, "must map a task to its weight"),
        ({"loss_weights": {"time_to_hit": 0, "mae": 0, "mfe": 0}}, 3, "all 0"),
        ({"tasks": "mae"}, 3, "tasks must be a list"),
    ],
)
def test_bad_multitask_input_is_refused_by_name(
    params: dict[str, object], y_columns: int, message: str
) -> None:
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.zeros((40, y_columns)) if y_columns > 1 else np.zeros(40)
    with pytest.raises(ModelError, match=message):
        get_family("mlp_multitask")("regression", {**SMALL, "epochs": 1, **params}).fit(X, y)


def test_gaussian_scale_follows_the_noise_and_covers_90_percent() -> None:
    X, y, sigma = _heteroscedastic(6000, seed=1)
    params = {**SMALL, "hidden": 32, "epochs": 30, "early_stopping_rounds": 3}
    model = get_family("mlp_gaussian")("regression", params, seed=0)
    model.fit(X[:4000], y[:4000], eval_set=(X[4000:4800], y[4000:4800]))
    mean, scale = model.predict_distribution(X[4800:])
    np.testing.assert_array_equal(mean, model.predict(X[4800:]))
    assert (scale > 0).all()
    assert np.corrcoef(scale, sigma[4800:])[0, 1] > 0.8
    metrics = gaussian_metrics(y[4800:], mean, scale, train_values=y[:4000])
    assert 0.85 <= metrics["coverage_90"] <= 0.95
    assert metrics["nll"] < metrics["baseline_nll"] - 0.1


def test_gaussian_graph_gives_value_and_scale_and_parity_checks_both() -> None:
    X, y, _ = _heteroscedastic(2000, seed=2)
    model = get_family("mlp_gaussian")("regression", {**SMALL, "epochs": 3}).fit(X, y)
    graph = model.to_onnx()
    value, scale = onnx_session(graph.SerializeToString()).run(
        None, {"features": X.astype(np.float32)}
    )
    mean, native_scale = model.predict_distribution(X)
    np.testing.assert_allclose(value, mean, atol=1e-5)
    np.testing.assert_allclose(scale, native_scale, atol=1e-5)
    assert check_parity(model, graph, X, tolerance=1e-5, head="size").max_abs_diff < 1e-5
    # The same graph with only its scale 1 % off is refused: parity reads every output.
    skewed = onnx.ModelProto()
    skewed.CopyFrom(graph)
    for node in skewed.graph.node:
        node.output[:] = ["scale_exact" if o == "scale" else o for o in node.output]
    skewed.graph.initializer.append(onnx.numpy_helper.from_array(np.float32(1.01), "skew"))
    skewed.graph.node.append(onnx.helper.make_node("Mul", ["scale_exact", "skew"], ["scale"]))
    with pytest.raises(ExportParityError, match=r"max \|diff\|"):
        check_parity(model, skewed, X, tolerance=1e-4, head="size")


def test_gaussian_metrics_on_known_cases() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200_000)
    calibrated = gaussian_metrics(y, np.zeros_like(y), np.ones_like(y), train_values=y)
    assert calibrated["coverage_90"] == pytest.approx(0.9, abs=0.005)
    assert calibrated["nll"] == pytest.approx(0.5 * np.log(2 * np.pi) + 0.5, abs=0.01)
    assert calibrated["width_90"] == pytest.approx(2 * Z_90)
    exact = gaussian_metrics(y[:10], y[:10], np.ones(10), train_values=y)
    assert exact["coverage_90"] == 1.0 and exact["nll"] == pytest.approx(0.5 * np.log(2 * np.pi))
    assert exact["baseline_nll"] > exact["nll"]


def test_task_metrics_name_each_task_beside_its_baseline() -> None:
    y = np.array([[0.0, 10.0], [2.0, 30.0]])
    predicted = y + np.array([1.0, 0.0])
    metrics = task_metrics(y, predicted, train_values=y, tasks=["a", "b"])
    assert metrics["a.mae"] == 1.0 and metrics["b.mae"] == 0.0
    assert metrics["a.baseline_mae"] == 1.0 and metrics["b.baseline_mae"] == 10.0
    assert metrics["mae"] == 0.5 and metrics["baseline_mae"] == 5.5 and metrics["rows"] == 2


def test_a_job_pairs_the_composite_target_with_the_multitask_family() -> None:
    def problems(target: str, family: str) -> list[str]:
        heads = [{"name": "h", "target": target, "family": family}]
        return job_problems(build_job({"suite": {"name": "s", "heads": heads}}))

    assert problems("trade_path", "mlp_multitask") == []
    assert problems("position_size", "mlp_gaussian") == []
    (wrong_family,) = problems("trade_path", "xgboost")
    assert "fix: family: mlp_multitask" in wrong_family
    (wrong_target,) = problems("position_size", "mlp_multitask")
    assert "fix: target: trade_path" in wrong_target
