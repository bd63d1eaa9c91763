"""Out-of-sample evaluation: ML metrics now; trading backtest and reports in later issues."""

from quantrain.evaluate.metrics import KEY_METRIC, classification_metrics, regression_metrics

__all__ = ["KEY_METRIC", "classification_metrics", "regression_metrics"]
