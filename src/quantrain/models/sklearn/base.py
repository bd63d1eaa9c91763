"""What the scikit-learn families share: the skops native file, params, tags, class widening.

Native format (``model.skops``): skops, which stores fitted scikit-learn estimators as arrays
plus a JSON schema and loads them without running code, unlike pickle (which this project
refuses). Load trusts only scikit-learn, numpy and builtin types, and refuses a file written by
another scikit-learn minor version (fitted attributes are its internals); predictions after
load are bit-identical to before save. The package's ``model.onnx`` is the portable artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import sklearn
from sklearn.base import BaseEstimator

from quantrain.errors import ModelError
from quantrain.models.base import FamilyTags
from quantrain.models.gbdt import RoundBudget

NATIVE_FILE = "model.skops"
#: Types a native file may name: scikit-learn's own and numpy's.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")
_SKLEARN_TAGS = FamilyTags(
    tasks=frozenset({"classification", "regression"}),
    gpu=False,
    warm_start=False,
    sequence=False,
    native_file=NATIVE_FILE,
)

# -- the native format: skops, no pickle ----------------------------------------------------


def write_estimators(path: Path, estimators: Mapping[str, Any]) -> None:
    """Write fitted estimators with skops: a zip of arrays and a JSON schema, no pickle."""
    from skops import io as skops_io  # 1.8 s to import (it probes torch): only when saving

    skops_io.dump({"sklearn": sklearn.__version__, "estimators": dict(estimators)}, path)


def read_estimators(path: Path) -> dict[str, Any]:
    """Rebuild what :func:`write_estimators` wrote, trusting only scikit-learn's own types;
    refuses another scikit-learn minor version (the fitted state is its internals)."""
    from skops import io as skops_io

    untrusted = skops_io.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if unexpected:
        raise ModelError(f"{path}: native file names types outside scikit-learn: {unexpected}")
    content = skops_io.load(path, trusted=untrusted)
    saved = str(content["sklearn"])
    if saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ModelError(
            f"{path} was written by scikit-learn {saved}; this environment has "
            f"{sklearn.__version__}. Its fitted state is scikit-learn internals: retrain the "
            "head, or serve the package's model.onnx"
        )
    estimators: dict[str, Any] = content["estimators"]
    return estimators


# -- what the three families share ----------------------------------------------------------


def configured(estimator: BaseEstimator, params: Mapping[str, Any], key: str) -> None:
    """Apply and check library params now, turning scikit-learn's errors (unknown name, value
    out of range) into ours instead of a traceback from deep inside ``fit``."""
    try:
        estimator.set_params(**params)
        estimator._validate_params()
    except ValueError as exc:  # scikit-learn's InvalidParameterError is a ValueError
        raise ModelError(f"{key}: {exc}") from None


def widen(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over ``classes`` (those seen in training) as columns 0..n_classes-1."""
    if len(classes) == n_classes:
        return proba
    wide = np.zeros((len(proba), n_classes), dtype=proba.dtype)
    wide[:, np.asarray(classes, dtype=np.int64)] = proba
    return wide


class SklearnFamily(RoundBudget):
    """Param handling, the round budget, the no-quantile rule and the native file."""

    tags = _SKLEARN_TAGS
    #: Defaults that depend on the task, between the family defaults and the caller's params.
    task_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def resolved_params(self) -> dict[str, Any]:
        return {**self.default_params, **self.task_defaults.get(self.task, {}), **self.params}

    def round_params(self) -> tuple[int, int, dict[str, Any]]:
        """``(rounds, patience, remaining params)``, checked like the boosted families'."""
        params = self.resolved_params()
        if "quantile" in params:
            raise ModelError(
                f"family {self.key!r} has no quantile objective; a quantile head needs "
                "xgboost or lightgbm"
            )
        return super().round_params()

    def _estimators(self) -> dict[str, Any]:
        """The fitted estimators the native file holds, by name."""
        raise NotImplementedError

    def _save_native(self, path: Path) -> None:
        write_estimators(path, self._estimators())

    def _load_native(self, path: Path) -> None:
        for name, estimator in read_estimators(path).items():
            setattr(self, f"{name}_", estimator)

    def contributions(self, X: np.ndarray) -> None:
        """No exact TreeSHAP here: the pipeline falls back to permutation importance."""
        del X
        return None
