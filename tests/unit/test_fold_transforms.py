"""Fold-fitted feature selection and transforms (issue 20): fit on a fold's training rows only,
so nothing a fold's test rows hold can change what is chosen or fitted; once fitted, a
transform is row-wise (row t's outputs read row t alone), and a planted signal is found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantrain.config import HeadConfig, SelectConfig, TransformConfig, build_job
from quantrain.errors import ConfigError
from quantrain.split import walk_forward
from quantrain.suite.dataset import Dataset
from quantrain.suite.fit import head_folds, head_view
from quantrain.suite.select import select_columns
from quantrain.suite.transforms import fit_transforms

ROWS = 900
WIDTH = 12
SIGNAL = (3, 7, 10)  # the other columns are noise


def planted(seed: int = 0) -> Dataset:
    """Features on mixed scales, a direction label and a size target driven by SIGNAL."""
    rng = np.random.default_rng(seed)
    unit = rng.normal(size=(ROWS, WIDTH))
    X = (unit * np.linspace(0.01, 50.0, WIDTH)).astype(np.float32)
    score = unit[:, SIGNAL[0]] + unit[:, SIGNAL[1]] - unit[:, SIGNAL[2]]
    direction = np.digitize(score, [-0.6, 0.6]).astype(np.int64)
    size = (score + 0.3 * rng.normal(size=ROWS)).astype(np.float64)
    return Dataset(
        X=X,
        targets={"direction": direction, "position_size": size},
        label_end=np.minimum(np.arange(ROWS) + 3, ROWS - 1),
        stamps=pd.Series(pd.date_range("2024-01-01", periods=ROWS, freq="5min", tz="UTC")),
        columns=tuple(f"f{i}" for i in range(WIDTH)),
    )


def _job(**suite: object):  # type: ignore[no-untyped-def]
    heads = [{"name": "direction", "target": "direction", "family": "random_forest"}]
    return build_job({"store": "/tmp/unused", "suite": {"name": "t", "heads": heads, **suite}})


@pytest.mark.parametrize("method", ["importance", "rfe"])
def test_selection_finds_the_planted_columns(method: str) -> None:
    data = planted()
    for target, task in (("direction", "classification"), ("position_size", "regression")):
        keep = select_columns(
            SelectConfig(method=method, top=3),  # type: ignore[arg-type]
            data.X,
            data.targets[target],
            task,  # type: ignore[arg-type]
            seed=0,
            where="select",
        )
        assert tuple(keep) == SIGNAL, (method, target, keep)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), method=st.sampled_from(["importance", "rfe"]))
def test_selection_ignores_everything_outside_the_fold_training_rows(
    seed: int, method: str
) -> None:
    """Property: rewrite every row that is not a training row of the fold (its test rows, the
    purged and embargoed rows, later rows) with other features and labels: the fold's choice
    stays the same."""
    data = planted()
    job = _job(select={"method": method, "top": 4})
    config = job.suite.heads[0]
    folds = walk_forward(ROWS, n_folds=3, label_end=data.label_end, min_train=200, embargo=2)
    rng = np.random.default_rng(seed)
    for fold in folds:
        outside = np.setdiff1d(np.arange(ROWS), fold.train)
        X = data.X.copy()
        X[outside] = rng.normal(scale=100.0, size=(len(outside), WIDTH))
        y = data.targets["direction"].copy()
        y[outside] = rng.integers(0, 3, size=len(outside))
        changed = Dataset(**{**data.__dict__, "X": X, "targets": {"direction": y}})
        _, want = head_view(config, data, data.targets["direction"], fold.train, job)
        _, got = head_view(config, changed, y, fold.train, job)
        np.testing.assert_array_equal(got, want)


def test_each_fold_model_reads_only_its_selected_columns() -> None:
    data = planted()
    job = _job(select={"method": "importance", "top": 3})
    folds = walk_forward(ROWS, n_folds=3, label_end=data.label_end, min_train=200, embargo=2)
    run = head_folds(job.suite.heads[0], data, folds, job)
    assert [tuple(k) for k in run.selected] == [SIGNAL] * 3
    assert run.last_model is not None and run.last_model.n_features_in_ == 3
    assert run.importance is not None and len(run.importance) == WIDTH
    assert set(np.flatnonzero(run.importance)) <= set(SIGNAL)  # unread columns get none


def test_a_head_select_overrides_the_suite_and_too_many_is_a_clear_error() -> None:
    head = HeadConfig(name="direction", target="direction", select=SelectConfig(top=WIDTH + 1))
    job = build_job(
        {
            "store": "/tmp/unused",
            "suite": {"name": "t", "heads": [head.model_dump()], "select": {"top": 2}},
        }
    )
    assert job.suite.select_of(job.suite.heads[0]) == SelectConfig(top=WIDTH + 1)
    data = planted()
    with pytest.raises(ConfigError, match=r"select.top is 13 but the head reads only 12"):
        head_view(job.suite.heads[0], data, data.targets["direction"], np.arange(500), job)


# -- transforms ------------------------------------------------------------------------------

GMM = TransformConfig(kind="gmm", columns=("f3", "f7"), components=2)
VAE = TransformConfig(kind="vae", latent=2, hidden=8, epochs=3)


def regimes(seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """Two volatility regimes in blocks: calm rows, then wild rows, repeated."""
    data = planted(seed)
    regime = (np.arange(ROWS) // 150) % 2
    X = data.X.copy()
    X[:, 3] = np.where(regime == 1, 8.0, 1.0) * np.abs(X[:, 3]) + 5.0 * regime
    X[:, 7] = np.where(regime == 1, 3.0, 0.2) * X[:, 7]
    return Dataset(**{**data.__dict__, "X": X}), regime


def test_gmm_posteriors_recover_planted_regimes() -> None:
    data, regime = regimes()
    fitted = fit_transforms((GMM,), data, np.arange(600), seed=0)
    out = fitted.apply(data.X)
    assert fitted.columns() == (*data.columns, "gmm_0", "gmm_1")
    np.testing.assert_allclose(out[:, :WIDTH], data.X)
    posterior = out[:, WIDTH:]
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0, atol=1e-5)
    found = posterior.argmax(axis=1)
    agreement = max(np.mean(found == regime), np.mean(found != regime))
    assert agreement > 0.9  # rows 600+ were never fit on, and are classified as well


@pytest.mark.parametrize("config", [GMM, VAE], ids=["gmm", "vae"])
def test_a_transform_reads_only_training_rows_and_is_row_wise(config: TransformConfig) -> None:
    data, _ = regimes()
    train = np.arange(500)
    fitted = fit_transforms((config,), data, train, seed=0)
    want = fitted.apply(data.X)
    # Rows outside the training rows rewritten: the fit (so every row's output) is unchanged.
    X = data.X.copy()
    X[500:] = np.random.default_rng(1).normal(scale=100.0, size=(ROWS - 500, WIDTH))
    refit = fit_transforms((config,), Dataset(**{**data.__dict__, "X": X}), train, seed=0)
    np.testing.assert_array_equal(refit.apply(data.X), want)
    # Row-wise: row t's outputs read row t alone (no later row, no earlier one).
    t = 700
    np.testing.assert_array_equal(fitted.apply(data.X[: t + 1])[t], want[t])
    np.testing.assert_array_equal(fitted.apply(data.X[t : t + 1])[0], want[t])


def test_fold_transforms_are_fit_per_fold_and_widen_the_importance() -> None:
    data, _ = regimes()
    job = _job(transforms=[GMM.model_dump()], select={"method": "importance", "top": 5})
    folds = walk_forward(ROWS, n_folds=2, label_end=data.label_end, min_train=200, embargo=2)
    run = head_folds(job.suite.heads[0], data, folds, job)
    assert run.importance is not None and len(run.importance) == WIDTH + 2
    assert all(len(k) == 5 for k in run.selected)


def test_unknown_transform_columns_are_a_clear_error() -> None:
    data = planted()
    bad = TransformConfig(kind="gmm", columns=("f3", "atr_frac_99"))
    with pytest.raises(
        ConfigError, match=r"suite.transforms\[0\] \(gmm\).columns: \['atr_frac_99'\]"
    ):
        fit_transforms((bad,), data, np.arange(300), seed=0)
    with pytest.raises(ConfigError, match="names must be unique"):
        _job(transforms=[GMM.model_dump(), GMM.model_dump()])


def test_warm_start_is_refused_with_fold_fitted_inputs() -> None:
    """Selection and transforms are fit anew on each run's rows: earlier trees read others."""
    from quantrain.features import resolve_feature_set
    from quantrain.suite.fit import warm_start_problems

    job = _job(select={"top": 5})
    spec = resolve_feature_set(job.features, "5m")
    manifest = {"symbol": "ETH-BTC", "features": {"hash": spec.spec_hash()}, "heads": {}}
    problems = warm_start_problems(manifest, job, "ETH-BTC", spec)
    assert any("fit anew on each run's rows" in p for p in problems)
    plain = warm_start_problems(manifest, _job(), "ETH-BTC", spec)
    assert not any("fit anew" in p for p in plain)
