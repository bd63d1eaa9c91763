"""Which part of quantrain is installed: the light serving install (``pip install quantrain``:
the Predictor, package checks, the store) or the training stack too (``quantrain[train]``)."""

from __future__ import annotations

import importlib.util

from quantrain.errors import ConfigError

#: What training, tuning and export need beyond the serving install.
TRAINING_MODULES = (
    "sklearn",
    "xgboost",
    "lightgbm",
    "onnx",
    "onnxmltools",
    "skl2onnx",
    "ray",
    "optuna",
)


def missing_training_modules() -> list[str]:
    return [name for name in TRAINING_MODULES if not _installed(name)]


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a finder that refuses the name (or a broken parent package)
        return False


def require_training(command: str) -> None:
    """Refuse a training command in a serving-only install, naming the fix."""
    missing = missing_training_modules()
    if missing:
        raise ConfigError(
            f"`quantrain {command}` needs the training install ({', '.join(missing)} not "
            "installed); fix: pip install 'quantrain[train]' (the plain install serves "
            "packages: predict, models pull/verify/list)"
        )
