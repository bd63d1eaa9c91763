"""Which inputs a head relies on, measured on out-of-sample rows.

Tree families give exact TreeSHAP contributions through their own libraries (``pred_contribs``
/ ``pred_contrib``); any other family falls back to permutation importance: the drop in the
head's key metric when one column is shuffled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantrain.evaluate.metrics import classification_metrics, regression_metrics
from quantrain.models.base import ModelFamily

#: Permutation re-predicts the rows once per column and repeat. Rows are capped (the most
#: recent, kept contiguous so a sequence family's windows stay in time order); sequence
#: networks, whose every prediction reads a window of rows, get fewer rows and one repeat so
#: importance does not cost more than training them (a transformer's 3 repeats on 1,500 rows
#: took ~9x its training time).
PERMUTATION_ROWS = 2000
SEQUENCE_ROWS, SEQUENCE_REPEATS = 1000, 1
#: TreeSHAP costs rows x trees x depth²; a fold's newest rows are plenty for a mean |φ| (a
#: year of 5m bars tests ~20k rows per fold, five years ~100k: 7 s of SHAP for two heads).
SHAP_ROWS = 20_000


def mean_abs_shap(contributions: np.ndarray) -> np.ndarray:
    """Mean over rows of |φ| summed over a classifier's classes: one value per feature."""
    return np.abs(contributions).sum(axis=1).mean(axis=0)


def _score(model: ModelFamily, X: np.ndarray, y: np.ndarray) -> float:
    if model.task == "classification":
        return classification_metrics(y, model.predict_proba(X), train_labels=y)[
            "balanced_accuracy"
        ]
    return -regression_metrics(y, model.predict(X), train_values=y)["mae"]


def permutation_importance(
    model: ModelFamily, X: np.ndarray, y: np.ndarray, *, seed: int, repeats: int = 3
) -> np.ndarray:
    """Mean drop of the key metric (balanced accuracy, or −MAE) when a column is shuffled."""
    rng = np.random.default_rng(seed)
    base = _score(model, X, y)
    drops = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        shuffled = X.copy()
        for _ in range(repeats):
            shuffled[:, j] = rng.permutation(X[:, j])
            drops[j] += (base - _score(model, shuffled, y)) / repeats
    return drops


def importance_values(
    model: ModelFamily, X: np.ndarray, y: np.ndarray, *, seed: int
) -> tuple[np.ndarray, str]:
    """One importance per input column on held-out rows, and the method that measured it."""
    phi = model.contributions(X[-SHAP_ROWS:])
    if phi is not None:
        return mean_abs_shap(phi), "mean_abs_shap"
    sequence = model.tags.sequence
    rows, repeats = (SEQUENCE_ROWS, SEQUENCE_REPEATS) if sequence else (PERMUTATION_ROWS, 3)
    drops = permutation_importance(model, X[-rows:], y[-rows:], seed=seed, repeats=repeats)
    return drops, "permutation"


def importance_frame(
    columns: list[str], values: np.ndarray, method: str, gain: np.ndarray
) -> pd.DataFrame:
    """``feature, importance, method, gain`` sorted by importance (largest first)."""
    frame = pd.DataFrame({"feature": columns, "importance": values, "method": method, "gain": gain})
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
