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


class RoundBudget(ModelFamily):
    """Families trained in rounds (boosting rounds, trees) with early stopping on ``eval_set``:
    the budget params are ours, checked here; the final fit gets the rounds the folds chose."""

    #: Rounds the model started from when warm-started (``best_iteration_`` includes them).
    warm_start_rounds_: int = 0

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
        state: dict[str, Any] = {"best_iteration": self.best_iteration_}
        if self.warm_start_rounds_:
            state["warm_start_rounds"] = self.warm_start_rounds_
        return state

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        self.best_iteration_ = int(state.get("best_iteration", 0))
        self.warm_start_rounds_ = int(state.get("warm_start_rounds", 0))


class BoostedTrees(RoundBudget):
    """Base of XGBoost and LightGBM: ``n_estimators`` rounds, early stopping on ``eval_set``.

    Warm start (:meth:`warm_start_from`) adds ``n_estimators`` rounds to the previous booster's
    trees; the result is one booster, saved and exported like any other.
    """

    def previous_booster(self) -> Any:
        """The booster a warm start continues, or None; records its round count."""
        if self.init_model is None:
            self.warm_start_rounds_ = 0
            return None
        self.warm_start_rounds_ = int(self.init_model.best_iteration_)
        return self.init_model.booster_  # type: ignore[attr-defined]

    #: Objective and eval metric per task, in the library's own parameter names.
    objectives: ClassVar[Mapping[str, Mapping[str, Any]]]

    def objective(self) -> dict[str, Any]:
        """This model's objective settings; classifiers also get their class count."""
        settings = dict(self.objectives[self.task])
        if self.task == "classification":
            settings["num_class"] = self.n_classes
        return settings

    def quantile(self) -> float | None:
        """The head's ``quantile`` param, checked: regression only, strictly inside (0, 1)."""
        quantile = self.params.get("quantile")
        if quantile is None:
            return None
        if self.task != "regression":
            raise ModelError(f"quantile {quantile!r} is for regression heads, not {self.task}")
        if isinstance(quantile, bool) or not isinstance(quantile, int | float):
            raise ModelError(f"quantile must be a number in (0, 1), got {quantile!r}")
        if not 0.0 < quantile < 1.0:
            raise ModelError(f"quantile must lie strictly between 0 and 1, got {quantile!r}")
        return float(quantile)

    @staticmethod
    def library_only(library: dict[str, Any]) -> dict[str, Any]:
        """The params the library itself reads (``quantile`` is ours, turned into objectives)."""
        return {k: v for k, v in library.items() if k != "quantile"}
