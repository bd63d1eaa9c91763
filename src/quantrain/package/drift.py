"""How far live feature rows are from the rows a package was trained on (numpy only).

The reference is fit on the rows the final models learned from: per feature, the 0.5 % and
99.5 % quantiles and the share of missing values. A live row's ``ood_score`` is the share of
its features outside their training band; ``ood`` flags rows whose score is above the 99th
percentile of the training rows' own scores (about 1 training row in 100 would be flagged),
so the threshold is fit on training data, not chosen by hand. Quantile bands need no scaling,
are robust to fat tails and say which features moved, unlike a distance in feature space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

REFERENCE_FILE = "reference.json"
BAND = (0.005, 0.995)
TRAINING_FLAG_SHARE = 0.01  # the threshold is the (1 - this) quantile of training scores


def fit_reference(X: np.ndarray, columns: Sequence[str]) -> dict[str, Any]:
    """The training distribution a package records: bands, missing shares, the threshold."""
    rows, width = X.shape
    low = np.full(width, -np.inf)
    high = np.full(width, np.inf)
    missing = np.zeros(width)
    outside = np.zeros(rows)
    # Column by column in float64: no float64 copy of the whole matrix (1 GB of temporaries
    # at five years of 5m bars), the same numbers as the whole-matrix formulas.
    for j in range(width):
        column = np.asarray(X[:, j], dtype=np.float64)
        finite = np.isfinite(column)
        missing[j] = 1 - finite.mean() if rows else np.nan
        if finite.any():
            low[j], high[j] = np.nanquantile(column, BAND)
        with np.errstate(invalid="ignore"):
            outside += (column < low[j]) | (column > high[j])
    scores = outside / width if width else outside
    threshold = float(np.quantile(scores, 1 - TRAINING_FLAG_SHARE)) if len(scores) else 1.0
    return {
        "columns": list(columns),
        "band": list(BAND),
        "low": [_number(v) for v in low],
        "high": [_number(v) for v in high],
        "missing_share": [round(float(v), 6) for v in missing],
        "threshold": threshold,
        "rows": rows,
    }


def outside_share(X: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per row, the share of features below their band's low or above its high (NaN: inside)."""
    matrix = np.asarray(X, dtype=np.float64)
    if matrix.shape[1] == 0:
        return np.zeros(len(matrix))
    with np.errstate(invalid="ignore"):
        outside = (matrix < low) | (matrix > high)
    return np.asarray(outside.mean(axis=1), dtype=np.float64)


class Reference:
    """A package's recorded training distribution, ready to score live rows."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.columns = list(data["columns"])
        self.low = np.array([_float(v) for v in data["low"]], dtype=np.float64)
        self.high = np.array([_float(v) for v in data["high"]], dtype=np.float64)
        self.missing_share = np.asarray(data["missing_share"], dtype=np.float64)
        self.threshold = float(data["threshold"])

    def score(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ood_score, ood)`` for each row of ``X`` (columns in the package's order)."""
        scores = outside_share(X, self.low, self.high)
        return scores, scores > self.threshold

    def score_row(self, row: np.ndarray) -> tuple[float, bool]:
        """``score`` for one row, as Python scalars (the same share: features outside their
        band over the row's width)."""
        if len(self.low) == 0:
            return 0.0, bool(self.threshold < 0.0)
        outside = int(np.count_nonzero((row < self.low) | (row > self.high)))
        score = outside / len(self.low)
        return score, score > self.threshold

    def never_missing(self) -> np.ndarray:
        """Columns every training row had: a live row lacking one is not complete."""
        return self.missing_share == 0.0


def _number(value: float) -> float | str:
    """JSON has no infinities: a column with no finite training value is stored as text."""
    return float(value) if np.isfinite(value) else ("inf" if value > 0 else "-inf")


def _float(value: float | str) -> float:
    return float(value)
