"""Named parameter presets per family (``variant: conservative | balanced | aggressive``).

A preset sits between a family's defaults and the head's own ``params`` (which win), so a job
can say how much a model may bend to its training rows without knowing every library knob:

- ``conservative``: less capacity, more regularisation, slower learning (more rounds): the
  least overfitting, for short or noisy histories; can underfit a real, strong signal.
- ``balanced``: the family's defaults (what a head gets with no variant).
- ``aggressive``: more capacity, less regularisation, faster learning: fits more of the
  signal and trains in fewer rounds, and overfits first; for long histories.

The presets are data: adding a family's presets is adding an entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantrain.errors import ConfigError

VARIANTS = ("conservative", "balanced", "aggressive")

_FOREST: dict[str, dict[str, Any]] = {
    "conservative": {"max_depth": 8, "min_samples_leaf": 50},
    "balanced": {},
    "aggressive": {"max_depth": 20, "min_samples_leaf": 5},
}
_TORCH: dict[str, dict[str, Any]] = {
    "conservative": {"learning_rate": 0.0005, "weight_decay": 0.05, "dropout": 0.3},
    "balanced": {},
    "aggressive": {"learning_rate": 0.003, "weight_decay": 0.001, "dropout": 0.0},
}

#: family -> variant -> params over the family defaults.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "xgboost": {
        "conservative": {
            "n_estimators": 600,
            "early_stopping_rounds": 50,
            "learning_rate": 0.03,
            "max_depth": 3,
            "min_child_weight": 10.0,
            "subsample": 0.7,
            "colsample_bytree": 0.7,
            "reg_lambda": 5.0,
        },
        "balanced": {},
        "aggressive": {
            "learning_rate": 0.1,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 0.9,
            "colsample_bytree": 0.9,
            "reg_lambda": 0.5,
        },
    },
    "lightgbm": {
        "conservative": {
            "n_estimators": 600,
            "early_stopping_rounds": 50,
            "learning_rate": 0.03,
            "num_leaves": 7,
            "min_data_in_leaf": 100,
            "feature_fraction": 0.7,
            "bagging_fraction": 0.7,
            "lambda_l2": 5.0,
        },
        "balanced": {},
        "aggressive": {
            "learning_rate": 0.1,
            "num_leaves": 63,
            "min_data_in_leaf": 20,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.9,
            "lambda_l2": 0.1,
        },
    },
    "random_forest": _FOREST,
    "extra_trees": _FOREST,
    "stacking": {
        "conservative": {
            "learning_rate": 0.03,
            "n_estimators": 600,
            "max_leaf_nodes": 7,
            "min_samples_leaf": 100,
            "l2_regularization": 5.0,
            "forest_max_depth": 8,
            "forest_min_samples_leaf": 50,
        },
        "balanced": {},
        "aggressive": {
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 0.1,
            "forest_max_depth": 16,
            "forest_min_samples_leaf": 5,
        },
    },
    "ftrl": {
        "conservative": {"alpha": 0.02, "l1": 3.0, "l2": 3000.0},
        "balanced": {},
        "aggressive": {"alpha": 0.1, "l1": 0.3, "l2": 300.0, "epochs": 3},
    },
    "mlp": _TORCH,
    "lstm": _TORCH,
    "cnn1d": _TORCH,
    "transformer": _TORCH,
    "gmm_regime": {
        "conservative": {"covariance_type": "diag", "n_components": 3, "smoothing": 20.0},
        "balanced": {},
        "aggressive": {"n_components": 8, "reg_covar": 1e-4, "smoothing": 0.0},
    },
}


def variant_params(family: str, variant: str | None, *, where: str = "") -> Mapping[str, Any]:
    """The preset ``variant`` gives ``family`` ({} for no variant); unknown variants and
    families without presets are refused with the choices."""
    if variant is None:
        return {}
    at = f" ({where})" if where else ""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}{at}; choose one of {', '.join(VARIANTS)}")
    if family not in PRESETS:
        raise ConfigError(
            f"family {family!r} has no variants{at}; families with variants: "
            f"{', '.join(sorted(PRESETS))}. fix: drop `variant` or set the params directly"
        )
    return PRESETS[family][variant]
