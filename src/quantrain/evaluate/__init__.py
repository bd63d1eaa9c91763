"""Out-of-sample evaluation: metrics beside the baselines they must beat."""

from quantrain.evaluate.metrics import (
    KEY_METRIC,
    classification_metrics,
    higher_is_better,
    regression_metrics,
)

__all__ = ["KEY_METRIC", "classification_metrics", "higher_is_better", "regression_metrics"]
