"""Out-of-sample ML metrics, each beside the naive baseline it has to beat."""

from __future__ import annotations

import numpy as np


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, *, train_labels: np.ndarray
) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1 and log loss; ``baseline_accuracy`` always
    predicts the training set's most frequent class (what a model must beat to mean anything)."""
    # scikit-learn loads here, not at import: the store reads metric directions too, and
    # the serving install (which the store is part of) has no scikit-learn.
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

    n_classes = proba.shape[1]
    predicted = proba.argmax(axis=1)
    majority = np.bincount(train_labels.astype(np.int64), minlength=n_classes).argmax()
    clipped = np.clip(proba, 1e-15, 1.0)
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, predicted)),
        "macro_f1": float(f1_score(y_true, predicted, average="macro", zero_division=0)),
        "log_loss": float(
            log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True), labels=range(n_classes))
        ),
        "baseline_accuracy": float(np.mean(y_true == majority)),
        "rows": float(len(y_true)),
    }


def regression_metrics(
    y_true: np.ndarray,
    predicted: np.ndarray,
    *,
    train_values: np.ndarray,
    quantile: float | None = None,
) -> dict[str, float]:
    """MAE and RMSE; ``baseline_mae`` predicts the training mean for every row.

    A quantile head (``quantile`` = q) is judged by what it promises instead: ``pinball`` loss
    at q against ``baseline_pinball`` (the training rows' q-quantile for every row), and
    ``coverage``, the share of rows at or below the prediction, which should be close to q.
    """
    error = predicted - y_true
    metrics = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "baseline_mae": float(np.mean(np.abs(y_true - np.mean(train_values)))),
        "rows": float(len(y_true)),
    }
    if quantile is not None:
        constant = np.full_like(y_true, np.quantile(train_values, quantile), dtype=np.float64)
        metrics["pinball"] = pinball_loss(y_true, predicted, quantile)
        metrics["baseline_pinball"] = pinball_loss(y_true, constant, quantile)
        metrics["coverage"] = float(np.mean(y_true <= predicted))
    return metrics


def task_metrics(
    y_true: np.ndarray, predicted: np.ndarray, *, train_values: np.ndarray, tasks: list[str]
) -> dict[str, float]:
    """A composite target's heads (``(n, tasks)`` arrays): ``TASK.mae``, ``TASK.rmse`` and
    ``TASK.baseline_mae`` per task, and ``mae``/``rmse``/``baseline_mae`` as their means (the
    parts have their own units, so each task is read beside its own baseline)."""
    metrics: dict[str, float] = {}
    for i, task in enumerate(tasks):
        for key, value in regression_metrics(
            y_true[:, i], predicted[:, i], train_values=train_values[:, i]
        ).items():
            if key != "rows":
                metrics[f"{task}.{key}"] = value
    for key in ("mae", "rmse", "baseline_mae"):
        metrics[key] = float(np.mean([metrics[f"{task}.{key}"] for task in tasks]))
    metrics["rows"] = float(len(y_true))
    return metrics


#: A Gaussian's central 90 % interval: mean ± this many scales.
Z_90 = 1.6448536269514722


def gaussian_metrics(
    y_true: np.ndarray, mean: np.ndarray, scale: np.ndarray, *, train_values: np.ndarray
) -> dict[str, float]:
    """A distributional head: mean Gaussian negative log-likelihood ``nll`` and ``coverage_90``
    (share of rows inside mean ± 1.645 scale, 0.9 when the scale is calibrated) with the mean
    interval width, beside the same for ``baseline_``: one Gaussian with the training rows'
    mean and standard deviation for every row."""
    y = np.asarray(y_true, dtype=np.float64)
    spread = float(np.std(train_values)) or 1.0
    constant_mean = np.full_like(y, float(np.mean(train_values)))
    constant_scale = np.full_like(y, spread)
    metrics = {}
    for prefix, mu, sigma in (("", mean, scale), ("baseline_", constant_mean, constant_scale)):
        sigma = np.maximum(np.asarray(sigma, dtype=np.float64), 1e-12)
        z = (y - mu) / sigma
        metrics[f"{prefix}nll"] = float(
            np.mean(0.5 * z**2 + np.log(sigma) + 0.5 * np.log(2 * np.pi))
        )
        metrics[f"{prefix}coverage_90"] = float(np.mean(np.abs(z) <= Z_90))
        metrics[f"{prefix}width_90"] = float(np.mean(2 * Z_90 * sigma))
    return metrics


def pinball_loss(y_true: np.ndarray, predicted: np.ndarray, quantile: float) -> float:
    """Mean quantile (pinball) loss: under-predictions cost q, over-predictions 1 - q."""
    diff = np.asarray(y_true, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    return float(np.mean(np.maximum(quantile * diff, (quantile - 1.0) * diff)))


#: The one number per task that summary tables and ``models list`` show.
KEY_METRIC = {"classification": "balanced_accuracy", "regression": "mae"}

#: Metrics where a larger value is better; every other metric we write is an error or a loss.
HIGHER_IS_BETTER = frozenset({"accuracy", "balanced_accuracy", "macro_f1"})
#: Metrics that are errors or losses: smaller is better.
LOWER_IS_BETTER = frozenset({"mae", "rmse", "log_loss", "pinball", "nll"})

#: The scope of a trading metric of the out-of-sample backtest: ``backtest.sharpe`` (and
#: ``holdout.backtest.sharpe``).
BACKTEST_SCOPE = "backtest"
#: Backtest metrics where a larger value is better: returns and trade quality.
#: (``sharpe_period`` is the span's own Sharpe, recorded where a short span leaves ``sharpe``
#: null.)
BACKTEST_HIGHER_IS_BETTER = frozenset(
    {
        "total_return",
        "annual_return",
        "sharpe",
        "sharpe_period",
        "sortino",
        "hit_rate",
        "profit_factor",
    }
)
#: Backtest metrics where a smaller value is better (the drawdown is a positive fraction).
BACKTEST_LOWER_IS_BETTER = frozenset({"max_drawdown"})


#: The scope of what picking the best of many trials could explain (manifest ``selection``):
#: ``selection.deflated_sharpe`` (higher is better) and ``selection.pbo.HEAD`` (lower).
SELECTION_SCOPE = "selection"


def higher_is_better(metric: str) -> bool:
    """Which way ``metric`` improves; unknown names are refused.

    ML metrics are named alone or in a head (``direction.balanced_accuracy``,
    ``holdout.direction.balanced_accuracy``); trading metrics only in the backtest scope
    (``backtest.sharpe``, ``holdout.backtest.max_drawdown``).
    """
    if metric == f"{SELECTION_SCOPE}.deflated_sharpe":
        return True
    if metric.startswith(f"{SELECTION_SCOPE}.pbo."):
        return False
    scope, _, base = metric.rpartition(".")
    trading = scope.rsplit(".", 1)[-1] == BACKTEST_SCOPE
    higher, lower = (
        (BACKTEST_HIGHER_IS_BETTER, BACKTEST_LOWER_IS_BETTER)
        if trading
        else (HIGHER_IS_BETTER, LOWER_IS_BETTER)
    )
    if base in higher:
        return True
    if base in lower:
        return False
    backtest = BACKTEST_HIGHER_IS_BETTER | BACKTEST_LOWER_IS_BETTER
    hint = f" (a trading metric is {BACKTEST_SCOPE}.{base})" if base in backtest else ""
    known = ", ".join(sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER))
    trading_known = ", ".join(f"{BACKTEST_SCOPE}.{name}" for name in sorted(backtest))
    raise ValueError(
        f"metric {metric!r} has no known direction{hint}; comparable metrics: {known} "
        f"(alone or as HEAD.METRIC), {trading_known}, {SELECTION_SCOPE}.deflated_sharpe and "
        f"{SELECTION_SCOPE}.pbo.HEAD"
    )
