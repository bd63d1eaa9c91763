"""Feature selection fit on one fold's training rows only (issue 20): the fold's model is then
trained and scored on the chosen columns, and the final model's choice ships in the manifest.

Only training rows and their labels are read, so a fold's test rows cannot steer the choice
(tests/unit/test_fold_transforms.py changes them and checks the choice stays put).
"""

from __future__ import annotations

import numpy as np

from quantrain.config import SelectConfig
from quantrain.errors import ConfigError
from quantrain.labels import Task

#: Training rows the quick model reads at most (the newest): selection stays cheap on long data.
SELECT_ROWS = 20_000
#: The quick importance model: small, shallow extra trees.
QUICK_TREES = 60
QUICK_DEPTH = 6


def select_columns(
    config: SelectConfig,
    X_train: np.ndarray,
    y_train: np.ndarray,
    task: Task,
    *,
    seed: int,
    where: str,
) -> np.ndarray:
    """Sorted indices of the ``config.top`` columns kept, from training rows only. ``where``
    names the setting in errors (``head 'direction': select``)."""
    width = X_train.shape[1]
    if config.top > width:
        raise ConfigError(
            f"{where}.top is {config.top} but the head reads only {width} feature columns; "
            f"fix: lower {where}.top to at most {width} (or drop {where})"
        )
    if config.top == width:
        return np.arange(width)
    X = _standardised(X_train[-SELECT_ROWS:])
    y = y_train[-SELECT_ROWS:]
    if config.method == "rfe":
        keep = _rfe(X, y, task, config.top, seed)
    else:
        keep = np.argsort(-_importance(X, y, task, seed), kind="stable")[: config.top]
    return np.sort(keep).astype(np.int64)


def _standardised(X: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column on these rows, missing values at the mean (journal
    features may be missing): linear RFE weights are then comparable across columns."""
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(all="ignore"):
        mean = np.nanmean(X, axis=0)
        std = np.nanstd(X, axis=0)
    scaled = (X - np.nan_to_num(mean)) / np.where(np.nan_to_num(std) > 0, std, 1.0)
    return np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)


def _importance(X: np.ndarray, y: np.ndarray, task: Task, seed: int) -> np.ndarray:
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    settings = {
        "n_estimators": QUICK_TREES,
        "max_depth": QUICK_DEPTH,
        "random_state": seed,
        "n_jobs": 1,
    }
    model = (
        ExtraTreesClassifier(**settings, class_weight="balanced")
        if task == "classification"
        else ExtraTreesRegressor(**settings)
    )
    model.fit(X, y)
    return np.asarray(model.feature_importances_, dtype=np.float64)


def _rfe(X: np.ndarray, y: np.ndarray, task: Task, top: int, seed: int) -> np.ndarray:
    from sklearn.feature_selection import RFE
    from sklearn.linear_model import LogisticRegression, Ridge

    estimator = (
        LogisticRegression(max_iter=300, class_weight="balanced", random_state=seed)
        if task == "classification"
        else Ridge(alpha=1.0)
    )
    rfe = RFE(estimator, n_features_to_select=top, step=0.1).fit(X, y)
    return np.flatnonzero(rfe.support_)
