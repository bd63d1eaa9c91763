"""The ``ftrl`` family's own promises beyond the contract suite: online updates continue a fit
exactly, L1 zeroes what carries no signal, a planted linear signal is learnt, missing inputs are
0 after standardising (natively and in the graph), and the native file round-trips without
pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from quantrain.errors import ModelError
from quantrain.export import check_parity
from quantrain.models import get_family
from quantrain.models.ftrl_family import FTRLFamily
from quantrain.tuning.space import DEFAULT_SPACES

#: Columns on very different scales and offsets, as real features are.
SCALES = np.array([1.0, 100.0, 0.01, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
OFFSETS = np.array([0.0, 50.0, 3.0, -20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
SIGNAL = (0, 1, 2)  # the other columns are pure noise
WARM_UP = 30  # leading rows with every feature missing, like indicators warming up


def planted(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X`` (NaN warm-up rows first), three-class labels drawn from a softmax of a linear
    function of the signal columns, and a linear regression target on the same columns."""
    rng = np.random.default_rng(seed)
    unit = rng.normal(size=(rows, len(SCALES)))
    X = unit * SCALES + OFFSETS
    X[:WARM_UP] = np.nan
    logits = np.column_stack([3 * unit[:, 0], 2 * unit[:, 1] - 2 * unit[:, 2], np.zeros(rows)])
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    labels = (proba.cumsum(axis=1) < rng.random((rows, 1))).sum(axis=1)
    values = 2 * unit[:, 0] - unit[:, 1] + 0.5 * unit[:, 2] + 0.3 + 0.5 * rng.normal(size=rows)
    return X, labels.astype(np.int64), values


def model(task: str, **params: float) -> FTRLFamily:
    family = get_family("ftrl")
    assert family is FTRLFamily
    return FTRLFamily(task, params, n_classes=3 if task == "classification" else None, seed=1)


def target(task: str, labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    return labels if task == "classification" else values


def outputs(m: FTRLFamily, X: np.ndarray) -> np.ndarray:
    return m.predict_proba(X) if m.task == "classification" else m.predict(X)


def assert_same_state(a: FTRLFamily, b: FTRLFamily) -> None:
    for name in ("z_", "n_", "count_", "mean_", "m2_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_fit_then_updates_equal_one_fit_exactly(task: str) -> None:
    X, labels, values = planted(3000, seed=0)
    y = target(task, labels, values)
    weight = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    X[100:400:7, 3] = np.nan  # gaps inside the series too
    batch = model(task).fit(X[:2500], y[:2500], sample_weight=weight[:2500])

    online = model(task).fit(X[:1000], y[:1000], sample_weight=weight[:1000])
    online.update(X[1000:2000], y[1000:2000], sample_weight=weight[1000:2000])
    for bar in range(2000, 2500):  # then bar by bar, as a deployed model sees them
        online.update(X[bar : bar + 1], y[bar : bar + 1], sample_weight=weight[bar : bar + 1])

    assert_same_state(online, batch)
    np.testing.assert_array_equal(outputs(online, X[2500:]), outputs(batch, X[2500:]))


def test_update_leaves_inputs_alone_and_refuses_what_it_cannot_continue() -> None:
    X, labels, _ = planted(600, seed=2)
    with pytest.raises(ModelError, match="fitted ftrl model"):
        model("classification").update(X, labels)
    fitted = model("classification").fit(X[:500], labels[:500])
    X_new, y_new = X[500:].copy(), labels[500:].copy()
    fitted.update(X_new, y_new)
    np.testing.assert_array_equal(X_new, X[500:])
    np.testing.assert_array_equal(y_new, labels[500:])
    with pytest.raises(ModelError, match="reads 10 columns, X has 9"):
        fitted.update(X[500:, :9], labels[500:])
    with pytest.raises(ModelError, match=r"0\.\.2"):
        fitted.update(X[500:], np.full(100, 3))


def test_an_early_stopped_fit_is_the_fixed_budget_fit() -> None:
    """Early stopping keeps the accumulators of the best epoch, so the final fit that the
    pipeline trains for ``fixed_budget(best_iteration_)`` epochs is that same model."""
    X, labels, _ = planted(3000, seed=3)
    X_fit, y_fit = X[:400], labels[:400]  # few rows: later epochs overfit them
    stopped = model("classification", epochs=40, early_stopping_rounds=2, alpha=0.1, l2=0.0)
    stopped.fit(X_fit, y_fit, eval_set=(X[2000:], labels[2000:]))
    assert 2 <= stopped.best_iteration_ < 40
    budget = stopped.fixed_budget(stopped.best_iteration_)
    fixed = model("classification", alpha=0.1, l2=0.0, **budget).fit(X_fit, y_fit)
    assert_same_state(fixed, stopped)


def test_warm_start_continues_like_update() -> None:
    X, labels, _ = planted(2000, seed=4)
    previous = model("classification").fit(X[:1200], labels[:1200])
    updated = model("classification").fit(X[:1200], labels[:1200]).update(X[1200:], labels[1200:])
    warm = model("classification").warm_start_from(previous).fit(X[1200:], labels[1200:])
    assert_same_state(warm, updated)


def test_strong_l1_gives_exact_zeros_on_noise_columns() -> None:
    X, labels, _ = planted(4000, seed=5)
    noise = [j for j in range(X.shape[1]) if j not in SIGNAL]
    loose = model("classification", l1=0.0, l2=0.0).fit(X, labels)
    sparse = model("classification", l1=150.0, l2=0.0).fit(X, labels)
    assert np.all(loose.coef_[:, noise] != 0.0)
    assert np.all(sparse.coef_[:, noise] == 0.0)
    assert np.all(np.abs(sparse.coef_[:, SIGNAL]).sum(axis=0) > 0.1)
    importance = sparse.feature_importance()
    assert np.all(importance[noise] == 0.0) and importance[list(SIGNAL)].sum() == pytest.approx(1)


def test_learns_a_planted_linear_signal_on_held_out_rows() -> None:
    X, labels, values = planted(6000, seed=6)
    classifier = model("classification").fit(X[:4000], labels[:4000])
    accuracy = balanced_accuracy_score(labels[4000:], classifier.predict(X[4000:]))
    assert accuracy > 0.7  # chance is 1/3; the generating softmax itself scores about 0.78
    regressor = model("regression", l2=1.0).fit(X[:4000], values[:4000])  # a weak prior
    residual = regressor.predict(X[4000:]) - values[4000:]
    assert 1 - residual.var() / values[4000:].var() > 0.8  # R², noise caps it near 0.95
    # The generating weights, on standardised columns (the default l2 would shrink them).
    assert regressor.coef_[0, :3] == pytest.approx(np.array([2.0, -1.0, 0.5]), abs=0.15)
    assert regressor.intercept_[0] == pytest.approx(0.3, abs=0.1)


def test_missing_inputs_are_zero_after_standardising() -> None:
    X, labels, _ = planted(3000, seed=7)
    m = model("classification").fit(X[:2500], labels[:2500])
    assert np.all(m.count_ == 2500 - WARM_UP)  # warm-up rows never reach the scaler
    rows = X[2500:2510].copy()
    gaps = rows.copy()
    gaps[:, 1] = np.nan
    gaps[:5, 4] = np.inf  # a non-finite value is missing too
    at_mean = rows.copy()
    at_mean[:, 1] = m.mean_[1]  # float32 once the model reads it: equal to ~1e-7
    at_mean[:5, 4] = m.mean_[4]
    np.testing.assert_allclose(m.predict_proba(gaps), m.predict_proba(at_mean), rtol=1e-6)
    nothing = np.full((1, X.shape[1]), np.nan)
    intercept_only = np.exp(m.intercept_) / np.exp(m.intercept_).sum()
    np.testing.assert_allclose(m.predict_proba(nothing)[0], intercept_only, rtol=1e-12)
    held_out = X[2500:].copy()
    held_out[::3, 2] = np.nan
    held_out[::11, 5] = -np.inf
    result = check_parity(m, m.to_onnx(), held_out, tolerance=1e-5, head="direction")
    assert result.label_flips == 0


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_save_load_round_trip_without_pickle(task: str, tmp_path: Path) -> None:
    X, labels, values = planted(2000, seed=8)
    y = target(task, labels, values)
    m = model(task, epochs=3, alpha=0.1).fit(X[:1500], y[:1500])
    files = m.save(tmp_path)
    assert [f.name for f in files] == ["model.npz", "meta.json"]
    with np.load(tmp_path / "model.npz", allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["count", "m2", "mean", "n", "z"]
    loaded = FTRLFamily.load(tmp_path)
    assert loaded.resolved_params() == m.resolved_params()
    np.testing.assert_array_equal(outputs(loaded, X[1500:]), outputs(m, X[1500:]))
    loaded.update(X[1500:1800], y[1500:1800])  # a loaded model keeps learning where it stopped
    m.update(X[1500:1800], y[1500:1800])
    assert_same_state(loaded, m)


def test_a_file_of_another_shape_is_refused(tmp_path: Path) -> None:
    X, labels, _ = planted(600, seed=9)
    model("classification").fit(X, labels).save(tmp_path)
    np.savez(tmp_path / "model.npz", z=np.zeros((2, 3)))
    with pytest.raises(ModelError, match="not an ftrl model file"):
        FTRLFamily.load(tmp_path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": 0}, r"alpha must be a number > 0, got 0"),
        ({"l1": -1.0}, r"l1 must be a number >= 0"),
        ({"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
        ({"early_stopping_rounds": 1.5}, r"early_stopping_rounds must be an integer >= 0"),
        ({"learning_rate": 0.1}, r"unknown params \['learning_rate'\]"),
        ({"quantile": 0.9}, r"quantile heads need xgboost or lightgbm"),
    ],
)
def test_bad_params_are_named(params: dict[str, float], message: str) -> None:
    X, labels, _ = planted(200, seed=10)
    with pytest.raises(ModelError, match=message):
        model("classification", **params).fit(X, labels)


def test_the_default_search_space_names_known_params() -> None:
    space = DEFAULT_SPACES["ftrl"]
    assert space and FTRLFamily.unknown_params("classification", dict.fromkeys(space, 1)) == []
    assert FTRLFamily.unknown_params("regression", {"alpha": 0.1, "eta": 1}) == ["eta"]
