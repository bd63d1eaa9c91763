"""The model family contract every family implements (sklearn-like, no pickle).

A constructor only stores its arguments; ``fit`` validates and trains; fitted state ends in
``_``. ``save``/``load`` use the library's native format plus a small ``meta.json``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import onnx

from quantrain.errors import ModelError
from quantrain.models.onnx_outputs import output_names

Task = Literal["classification", "regression"]
META_FILE = "meta.json"


@dataclass(frozen=True)
class FamilyTags:
    """What a family can do, declared rather than discovered."""

    tasks: frozenset[str]
    gpu: bool
    warm_start: bool
    sequence: bool
    native_file: str
    #: Learns several regression targets at once: ``y`` is ``(n, tasks)`` and the graph has one
    #: output per task (a composite target such as ``trade_path``).
    multi_target: bool = False


class ModelFamily(ABC):
    """One model of one head: fit on a feature matrix, predict, save natively, export to ONNX."""

    key: ClassVar[str]
    tags: ClassVar[FamilyTags]
    default_params: ClassVar[Mapping[str, Any]]
    #: Rounds/epochs early stopping kept; 0 for families without an iteration budget.
    best_iteration_: int = 0
    #: A fitted model of this family whose trees the next ``fit`` continues (warm start).
    init_model: ModelFamily | None = None

    def __init__(
        self,
        task: Task,
        params: Mapping[str, Any] | None = None,
        *,
        n_classes: int | None = None,
        seed: int = 0,
        device: str = "cpu",
        n_jobs: int = 1,
    ) -> None:
        self.task = task
        self.params = dict(params or {})
        self.n_classes = n_classes
        self.seed = seed
        self.device = device
        self.n_jobs = n_jobs

    def _n_outputs(self) -> int:
        """Output columns of the model: one per class, or one value."""
        if self.task == "classification":
            assert self.n_classes is not None
            return self.n_classes
        return 1

    # -- what families implement -------------------------------------------------------------
    @abstractmethod
    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
    ) -> None: ...

    @abstractmethod
    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) for classifiers, values (n,) for regressors."""

    @abstractmethod
    def _save_native(self, path: Path) -> None: ...

    @abstractmethod
    def _load_native(self, path: Path) -> None: ...

    @abstractmethod
    def _convert_onnx(self, n_features: int) -> onnx.ModelProto: ...

    @abstractmethod
    def _importance(self) -> np.ndarray:
        """Total split gain per input column (0 for unused columns)."""

    # -- the contract ------------------------------------------------------------------------
    @classmethod
    def unknown_params(cls, task: Task, params: Mapping[str, Any]) -> list[str]:
        """Keys of ``params`` this family and its library would not read, so that a typo is
        refused when the job is loaded instead of being ignored by the library. Families that
        cannot tell return []."""
        del task, params
        return []

    def resolved_params(self) -> dict[str, Any]:
        """Family defaults overlaid with the caller's params (unknown keys are the library's)."""
        return {**self.default_params, **self.params}

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Self:
        """Train on ``X`` (float32 matrix) and ``y``; early-stops on ``eval_set`` when given."""
        if self.task not in self.tags.tasks:
            raise ModelError(f"family {self.key!r} does not support task {self.task!r}")
        X = _as_matrix(X)
        y = np.asarray(y)
        if len(X) != len(y):
            raise ModelError(f"X has {len(X)} rows but y has {len(y)}")
        if self.task == "classification":
            if self.n_classes is None or self.n_classes < 2:
                raise ModelError(f"classification needs n_classes >= 2, got {self.n_classes}")
            if y.min() < 0 or y.max() >= self.n_classes:
                raise ModelError(f"class ids must lie in 0..{self.n_classes - 1}")
        if eval_set is not None:
            eval_set = (_as_matrix(eval_set[0]), np.asarray(eval_set[1]))
        previous_columns = getattr(self.init_model, "n_features_in_", X.shape[1])
        if previous_columns != X.shape[1]:
            raise ModelError(
                f"warm start: the previous model reads {previous_columns} columns, "
                f"X has {X.shape[1]}"
            )
        self.n_features_in_ = X.shape[1]
        self._fit(X, y, eval_set, sample_weight)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class ids (argmax of probabilities) for classifiers, values for regressors."""
        raw = self._raw_predict(_as_matrix(X))
        return raw.argmax(axis=1) if self.task == "classification" else raw

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.task != "classification":
            raise ModelError(f"predict_proba is for classifiers; this {self.key} head regresses")
        return self._raw_predict(_as_matrix(X))

    def output_names(self) -> list[str]:
        """The ONNX graph's outputs in order; families with more outputs than the task's
        (a predicted scale, one value per task) override it and :meth:`native_outputs`."""
        return output_names(self.task)

    def native_outputs(self, X: np.ndarray) -> list[np.ndarray]:
        """What each graph output holds for ``X``, computed natively (the parity gate's side)."""
        if self.task == "classification":
            proba = self.predict_proba(X)
            return [proba.argmax(axis=1), proba]
        return [self.predict(X)]

    def contributions(self, X: np.ndarray) -> np.ndarray | None:
        """Exact per-row TreeSHAP contributions ``(n, classes, features)`` (classes = 1 for
        regressors), without the bias term; None for families with no exact method."""
        return None

    def feature_importance(self) -> np.ndarray:
        """Gain per input column, normalised to sum to 1 (all zeros for a constant model)."""
        gain = np.asarray(self._importance(), dtype=np.float64)
        total = gain.sum()
        return gain / total if total > 0 else gain

    def to_onnx(self) -> onnx.ModelProto:
        """ONNX graph: input ``features``; outputs ``label``+``probabilities`` or ``value``."""
        return self._convert_onnx(self.n_features_in_)

    def save(self, directory: str | Path) -> list[Path]:
        """Write the native model and ``meta.json``; returns the files written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        native = directory / self.tags.native_file
        self._save_native(native)
        meta = {
            "family": self.key,
            "task": self.task,
            "n_classes": self.n_classes,
            "n_features": self.n_features_in_,
            "params": self.params,
            "seed": self.seed,
            "state": self._state(),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return [native, directory / META_FILE]

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild a fitted model from :meth:`save` output."""
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        if meta["family"] != cls.key:
            raise ModelError(f"{directory} holds a {meta['family']!r} model, not {cls.key!r}")
        model = cls(meta["task"], meta["params"], n_classes=meta["n_classes"], seed=meta["seed"])
        model.n_features_in_ = int(meta["n_features"])
        model._restore_state(meta.get("state", {}))
        model._load_native(directory / cls.tags.native_file)
        return model

    def warm_start_from(self, previous: ModelFamily) -> Self:
        """Make the next ``fit`` continue ``previous``'s fitted model (its rounds kept, this
        model's rounds added) instead of starting from nothing. Only families whose
        ``tags.warm_start`` is true; ``previous`` must be the same family, task and classes."""
        if not self.tags.warm_start:
            raise ModelError(f"family {self.key!r} cannot warm start (tags.warm_start is false)")
        differs = [
            f"{name}: {theirs!r} vs {ours!r}"
            for name, theirs, ours in (
                ("family", previous.key, self.key),
                ("task", previous.task, self.task),
                ("n_classes", previous.n_classes, self.n_classes),
            )
            if theirs != ours
        ]
        if differs:
            raise ModelError(
                "cannot warm start from a different model (previous vs this): " + "; ".join(differs)
            )
        self.init_model = previous
        return self

    def fixed_budget(self, iterations: int) -> dict[str, Any]:
        """Params that train exactly ``iterations`` rounds with no early stopping.

        The final model, fit on every row, has no validation slice left, so it reuses the
        budget the walk-forward folds chose. Families without iterations return ``{}``.
        """
        del iterations
        return {}

    def _state(self) -> dict[str, Any]:
        """Fitted scalars worth keeping beside the native file (e.g. best iteration)."""
        return {}

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        del state


def _as_matrix(X: np.ndarray) -> np.ndarray:
    """Models see float32: it is what ONNX runs, so native and ONNX agree on every split."""
    array = np.asarray(X)
    if array.ndim != 2:
        raise ModelError(f"X must be a 2-D matrix, got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)
