"""What the gradient-boosted tree families share: round budget, early stopping, fitted state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from quantrain.errors import ModelError
from quantrain.models.base import ModelFamily

#: Keys that are ours (the round budget), not the library's.
ROUND_KEYS = ("n_estimators", "early_stopping_rounds")
#: The highest opset onnxmltools' tree converters support.
ONNX_OPSET = 15


class BoostedTrees(ModelFamily):
    """Base of XGBoost and LightGBM: ``n_estimators`` rounds, early stopping on ``eval_set``."""

    #: Objective and eval metric per task, in the library's own parameter names.
    objectives: ClassVar[Mapping[str, Mapping[str, Any]]]

    def objective(self) -> dict[str, Any]:
        """This model's objective settings; classifiers also get their class count."""
        settings = dict(self.objectives[self.task])
        if self.task == "classification":
            settings["num_class"] = self.n_classes
        return settings

    def round_params(self) -> tuple[int, int, dict[str, Any]]:
        """``(rounds, patience, library params)`` from defaults overlaid with the caller's."""
        params = self.resolved_params()
        rounds = params.get("n_estimators")
        patience = params.get("early_stopping_rounds")
        if not isinstance(rounds, int) or rounds < 1:
            raise ModelError(f"n_estimators must be an integer >= 1, got {rounds!r}")
        if not isinstance(patience, int) or patience < 0:
            raise ModelError(f"early_stopping_rounds must be an integer >= 0, got {patience!r}")
        return rounds, patience, {k: v for k, v in params.items() if k not in ROUND_KEYS}

    def fixed_budget(self, iterations: int) -> dict[str, Any]:
        return {"n_estimators": max(1, iterations), "early_stopping_rounds": 0}

    def _state(self) -> dict[str, Any]:
        return {"best_iteration": self.best_iteration_}

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        self.best_iteration_ = int(state.get("best_iteration", 0))
