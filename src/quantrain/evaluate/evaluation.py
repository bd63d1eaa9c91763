"""How a suite would have traded out of sample: the backtest of its fold predictions against
baselines on the same bars and costs, plus the diagnostics the report plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Evaluation:
    """Everything the package's ``evaluation/`` files and ``report.html`` are written from."""

    backtest: dict[str, dict[str, float]]  # model, buy_and_hold, flat, random_median
    random_percentile: float | None
    equity: pd.DataFrame  # timestamp + equity curves of the model and the baselines
    oos: pd.DataFrame  # timestamp, fold, each head's truth and prediction
    trades: pd.DataFrame
    folds: list[dict[str, Any]] = field(default_factory=list)  # per-fold model backtest
    confusion: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def confusion(truth: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Out-of-sample counts, rows = true class, columns = predicted class."""
    k = len(classes)
    predicted = probs.argmax(axis=1)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (truth.astype(np.int64), predicted), 1)
    return {"classes": classes, "matrix": matrix.tolist()}


def calibration(
    truth: np.ndarray, probs: np.ndarray, classes: list[str], *, bins: int = 10
) -> dict[str, Any]:
    """Reliability per class: mean predicted probability vs observed frequency in each bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    observed: dict[str, list[float | None]] = {}
    predicted: dict[str, list[float | None]] = {}
    counts: dict[str, list[int]] = {}
    for j, name in enumerate(classes):
        p = probs[:, j]
        hit = truth == j
        which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
        observed[name], predicted[name], counts[name] = [], [], []
        for b in range(bins):
            in_bin = which == b
            n = int(in_bin.sum())
            counts[name].append(n)
            observed[name].append(float(hit[in_bin].mean()) if n else None)
            predicted[name].append(float(p[in_bin].mean()) if n else None)
    return {
        "classes": classes,
        "bins": centres,
        "observed": observed,
        "predicted": predicted,
        "counts": counts,
    }
