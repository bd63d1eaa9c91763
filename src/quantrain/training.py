"""One head over the walk-forward folds: fit on each fold's training rows (early stopping on
their purged, most recent slice), score its held-out rows, then fit the final model on every row.

Shared by the pipeline (which keeps everything) and by tuning (which only needs the fold scores),
so a tuned trial and a packaged head are trained by exactly the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantrain.config import HeadConfig, JobConfig
from quantrain.dataset import TARGETS, Dataset
from quantrain.evaluate import classification_metrics, regression_metrics
from quantrain.evaluate.importance import importance_values
from quantrain.models import ModelFamily, get_family, resolve_device
from quantrain.split import Fold, holdout


@dataclass
class HeadFolds:
    """What the folds of one head produced: metrics per fold, the round budgets early stopping
    chose, out-of-sample outputs in time order and (optionally) importance on held-out rows."""

    metrics: list[dict[str, float]] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    importance: np.ndarray | None = None
    importance_method: str = ""
    last_model: ModelFamily | None = None

    def pooled(self) -> dict[str, float]:
        """Row-weighted mean over folds: every out-of-sample row counts once."""
        rows = np.array([m["rows"] for m in self.metrics])
        pooled = {
            k: float(np.average([m[k] for m in self.metrics], weights=rows))
            for k in self.metrics[0]
            if k != "rows"
        }
        pooled["rows"] = float(rows.sum())
        return pooled

    def budget(self) -> int:
        """The round budget for the final model: the median of what the folds chose."""
        return int(np.median(self.rounds))


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse class frequency so a rare class counts as much as a common one."""
    counts = np.bincount(y.astype(np.int64), minlength=n_classes).astype(np.float64)
    per_class = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return per_class[y.astype(np.int64)]


def new_model(
    config: HeadConfig,
    job: JobConfig,
    n_jobs: int,
    params: Mapping[str, Any] | None = None,
) -> ModelFamily:
    """A fresh, unfitted model for ``config``: the head's params overlaid with ``params``."""
    family = job.family_of(config)
    target = TARGETS[config.target]
    return get_family(family)(
        target.task,
        {**config.params, **(params or {})},
        n_classes=len(target.classes) if target.classes else None,
        seed=job.seed,
        device=resolve_device(job.model.device, family=family),
        n_jobs=n_jobs,
    )


def fit_on(
    model: ModelFamily, data: Dataset, y: np.ndarray, rows: np.ndarray, job: JobConfig
) -> ModelFamily:
    """Fit on ``rows`` with early stopping on their purged, most recent slice."""
    local_end = np.searchsorted(rows, data.label_end[rows], side="right") - 1
    inner = holdout(len(rows), test_fraction=job.split.validation_fraction, label_end=local_end)
    fit_rows, val_rows = rows[inner.train], rows[inner.test]
    weights = None
    if model.task == "classification":
        assert model.n_classes is not None
        weights = balanced_weights(y[fit_rows], model.n_classes)
    return model.fit(
        data.X[fit_rows],
        y[fit_rows],
        eval_set=(data.X[val_rows], y[val_rows]),
        sample_weight=weights,
    )


def outputs_of(model: ModelFamily, X: np.ndarray) -> np.ndarray:
    """Probabilities ``(n, classes)`` for classifiers, values ``(n,)`` for regressors."""
    return model.predict_proba(X) if model.task == "classification" else model.predict(X)


def score(
    model: ModelFamily, y_test: np.ndarray, out: np.ndarray, y_train: np.ndarray
) -> dict[str, float]:
    """Out-of-sample metrics of ``out`` (already predicted) against ``y_test``."""
    if model.task == "classification":
        return classification_metrics(y_test, out, train_labels=y_train)
    return regression_metrics(y_test, out, train_values=y_train)


def head_folds(
    config: HeadConfig,
    data: Dataset,
    folds: list[Fold],
    job: JobConfig,
    *,
    n_jobs: int = 1,
    params: Mapping[str, Any] | None = None,
    importance: bool = True,
) -> HeadFolds:
    """Train and score one head on every fold. ``params`` override the head's own (tuning);
    ``importance=False`` skips the held-out importance (permutation importance is slow)."""
    y = data.target(config.target)
    result = HeadFolds()
    total_test = sum(len(f.test) for f in folds)
    if importance:
        result.importance = np.zeros(data.X.shape[1])
    for fold in folds:
        model = fit_on(new_model(config, job, n_jobs, params), data, y, fold.train, job)
        out = outputs_of(model, data.X[fold.test])
        result.metrics.append(score(model, y[fold.test], out, y[fold.train]))
        result.rounds.append(model.best_iteration_)
        result.outputs.append(out)
        result.truth.append(y[fold.test])
        if result.importance is not None:
            values, result.importance_method = importance_values(
                model, data.X[fold.test], y[fold.test], seed=job.seed
            )
            result.importance += values * len(fold.test) / total_test
        result.last_model = model
    return result


def fit_final(
    config: HeadConfig,
    data: Dataset,
    job: JobConfig,
    budget: int,
    *,
    n_jobs: int = 1,
    params: Mapping[str, Any] | None = None,
) -> ModelFamily:
    """The head's final model on every labelled row, trained for the folds' round budget
    (no validation slice is left to early-stop on)."""
    probe = new_model(config, job, n_jobs, params)
    final = new_model(config, job, n_jobs, {**(params or {}), **probe.fixed_budget(budget)})
    y = data.target(config.target)
    weights = balanced_weights(y, final.n_classes) if final.n_classes else None
    return final.fit(data.X, y, sample_weight=weights)
