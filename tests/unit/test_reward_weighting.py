"""Reward-weighted regression as a head option: rows weighted by exp(beta * R / std(R)) of the
trade they would open, computed from the fit rows' rewards only, multiplied into the other
sample weights, and changing the model it trains."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from quantrain.config import HeadConfig, JobConfig, build_job
from quantrain.errors import ConfigError
from quantrain.features import get_feature_set
from quantrain.models import get_family
from quantrain.pipeline import build_dataset, make_folds
from quantrain.preflight import job_problems
from quantrain.suite.dataset import Dataset
from quantrain.suite.fit import (
    balanced_weights,
    fit_on,
    head_folds,
    new_model,
    reward_weights,
    row_rewards,
    sample_weights,
)

JOB = JobConfig()
HEAD = HeadConfig(
    name="position_size",
    target="position_size",
    family="lightgbm",
    weighting="reward",
    reward_beta=2.0,
    params={"n_estimators": 40, "early_stopping_rounds": 0},
)


@pytest.fixture(scope="module")
def data(eth_frame: pd.DataFrame) -> Dataset:
    return build_dataset(eth_frame, get_feature_set("standard"), JOB)


def with_rewards(data: Dataset, rows: np.ndarray, values: np.ndarray) -> Dataset:
    """``data`` whose rows ``rows`` have the realised R ``values`` (features, targets kept)."""
    assert data.labels is not None and data.bars is not None
    r = data.labels.r_multiple.copy()
    r[data.bars[rows]] = values
    return replace(data, labels=replace(data.labels, r_multiple=r))


def test_weights_grow_with_reward_have_mean_one_and_never_overflow() -> None:
    r = np.array([-1.0, 0.0, 0.5, 2.0, np.nan])
    w = reward_weights(r, 1.0)
    assert w.mean() == pytest.approx(1.0)
    assert np.all(np.diff(w[:4]) > 0)
    assert w[4] == pytest.approx(w[1])  # a missing reward counts as 0
    sharper = reward_weights(r, 4.0)
    assert sharper.max() / sharper.min() > w.max() / w.min()
    huge = reward_weights(np.array([1e6, -1e6, 0.0]), 50.0)
    assert np.all(np.isfinite(huge)) and huge.mean() == pytest.approx(1.0)


def test_reward_weights_multiply_the_class_weights() -> None:
    model = get_family("xgboost")("classification", n_classes=3)
    y = np.array([0, 1, 1, 2, 2, 2])
    reward = np.array([1.0, -1.0, 0.0, 2.0, 0.5, -0.5])
    got = sample_weights(model, y, np.arange(6), JOB, reward=reward, reward_beta=1.5)
    assert got is not None
    np.testing.assert_allclose(got, reward_weights(reward, 1.5) * balanced_weights(y, 3))


def test_only_the_fit_rows_rewards_weigh(data: Dataset) -> None:
    """Rewards of rows after the fold's training rows (its test rows, later folds) and of its
    validation slice change nothing; the training rows' rewards change the model."""
    fold = make_folds(data, JOB)[0]
    y = data.target("position_size")
    later = np.arange(int(fold.train[-1]) + 1, len(data.X))
    val_rows = fold.train[-int(len(fold.train) * JOB.split.validation_fraction) :]
    rng = np.random.default_rng(0)

    def fitted_on(d: Dataset) -> np.ndarray:
        model = fit_on(new_model(HEAD, JOB, 1), d, y, fold.train, JOB, head=HEAD)
        return np.asarray(model.predict(data.X[fold.test]))

    base = fitted_on(data)
    outside = np.concatenate([later, val_rows])
    scrambled = with_rewards(data, outside, rng.normal(scale=5.0, size=len(outside)))
    np.testing.assert_array_equal(fitted_on(scrambled), base)
    inside = fold.train[: len(fold.train) // 2]
    changed = with_rewards(data, inside, rng.normal(scale=5.0, size=len(inside)))
    assert not np.array_equal(fitted_on(changed), base)


def test_the_option_changes_the_model(data: Dataset) -> None:
    folds = make_folds(data, JOB)[:1]
    plain = head_folds(
        HEAD.model_copy(update={"weighting": "none"}), data, folds, JOB, importance=False
    )
    weighted = head_folds(HEAD, data, folds, JOB, importance=False)
    assert not np.allclose(plain.outputs[0], weighted.outputs[0])


def test_without_triple_barrier_labels_it_is_refused(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="triple-barrier"):
        row_rewards(replace(data, labels=None), HEAD)
    job = build_job(
        {
            "data": {"kind": "journal"},
            "suite": {
                "name": "j",
                "heads": [{"name": "quality", "target": "signal_quality", "weighting": "reward"}],
            },
        }
    )
    assert any("weighting: reward" in p for p in job_problems(job))
