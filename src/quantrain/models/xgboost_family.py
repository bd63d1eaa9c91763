"""XGBoost through its native ``xgb.train``: no sklearn wrapper between us and the booster."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import xgboost as xgb
from onnxmltools import convert_xgboost

from quantrain.errors import ModelError
from quantrain.models.base import FamilyTags, Task
from quantrain.models.gbdt import ONNX_OPSET, BoostedTrees
from quantrain.models.onnx_outputs import float_input, normalise_outputs, output_names
from quantrain.models.registry import register

#: XGBoost's own warning for keys no part of the booster read: ``Parameters: { "a", "b" }``.
_UNUSED = re.compile(r"Parameters: \{([^}]*)\} (?:are|is) not used")


@register
class XGBoostFamily(BoostedTrees):
    key = "xgboost"
    tags = FamilyTags(
        tasks=frozenset({"classification", "regression"}),
        gpu=True,
        warm_start=True,
        sequence=False,
        native_file="model.ubj",
    )
    default_params: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 300,
        "early_stopping_rounds": 30,
        "learning_rate": 0.05,
        "max_depth": 4,
        "min_child_weight": 5.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "max_bin": 256,
    }
    objectives: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "classification": {"objective": "multi:softprob", "eval_metric": "mlogloss"},
        "regression": {"objective": "reg:squarederror", "eval_metric": "rmse"},
    }

    def objective(self) -> dict[str, Any]:
        """Two classes train ``binary:logistic``: onnxmltools converts ``multi:softprob`` with
        ``num_class=2`` wrongly (probabilities off by up to ~1.0), so the parity gate refused it.
        A regression head with ``{"quantile": q}`` trains the pinball loss at ``q``."""
        quantile = self.quantile()
        if quantile is not None:
            return {
                "objective": "reg:quantileerror",
                "quantile_alpha": quantile,
                "eval_metric": "quantile",
            }
        if self.task == "classification" and self.n_classes == 2:
            return {"objective": "binary:logistic", "eval_metric": "logloss"}
        return super().objective()

    @classmethod
    def unknown_params(cls, task: Task, params: Mapping[str, Any]) -> list[str]:
        """What XGBoost itself reports as unused: one round on eight rows with the head's
        objective, its aliases (``eta``, ``reg_lambda``) and task-specific keys included."""
        model = cls(task, params, n_classes=3 if task == "classification" else None)
        try:
            _, _, library = model.round_params()
            settings = {**model._library_params(library), "verbosity": 1, "nthread": 1}
        except ModelError:
            return []  # a bad value, not an unknown key: the fit names it
        rows = np.arange(8, dtype=np.float32)
        labels = rows % 3 if task == "classification" else rows
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                xgb.train(settings, xgb.DMatrix(rows.reshape(-1, 1), label=labels), 1)
            except xgb.core.XGBoostError:
                return []  # a bad value: the fit reports it with XGBoost's own words
        unused: set[str] = set()
        for warning in caught:
            found = _UNUSED.search(str(warning.message))
            if found:
                unused.update(re.findall(r'"([^"]+)"', found.group(1)))
        return sorted(unused & set(params))

    def _library_params(self, library: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.objective(),
            "tree_method": "hist",
            "device": self.device,
            "nthread": self.n_jobs,
            "seed": self.seed,
            "verbosity": 0,
            **self.library_only(library),
        }

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
    ) -> None:
        rounds, patience, library = self.round_params()
        params = self._library_params(library)
        # QuantileDMatrix keeps only the histogram bins (a byte per value at 256 bins) where a
        # DMatrix kept a float and a column index per value as well: the fit's largest block of
        # memory. The eval set is binned on the training rows' cuts (``ref``).
        train = xgb.QuantileDMatrix(
            X,
            label=y,
            weight=sample_weight,
            nthread=self.n_jobs,
            max_bin=params.get("max_bin"),  # must be the booster's own
        )
        evals = []
        if eval_set is not None and patience > 0:
            valid = xgb.QuantileDMatrix(
                eval_set[0], label=eval_set[1], ref=train, nthread=self.n_jobs
            )
            evals = [(valid, "valid")]
        booster = xgb.train(
            params,
            train,
            num_boost_round=rounds,
            evals=evals,
            early_stopping_rounds=patience if evals else None,
            verbose_eval=False,
            xgb_model=self.previous_booster(),  # warm start: new rounds after its trees
        )
        if evals:
            # Keep only the rounds that early stopping chose (counted from the first tree,
            # warm-start trees included), so native and ONNX agree.
            booster = booster[: booster.best_iteration + 1]
        self.booster_ = booster
        self.best_iteration_ = booster.num_boosted_rounds()

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        out = np.asarray(self.booster_.inplace_predict(X), dtype=np.float64)
        if self.task == "classification" and out.ndim == 1:  # binary: P(class 1) only
            return np.column_stack([1.0 - out, out])
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        matrix = xgb.DMatrix(np.ascontiguousarray(X, dtype=np.float32), nthread=self.n_jobs)
        phi = np.asarray(self.booster_.predict(matrix, pred_contribs=True), dtype=np.float64)
        phi = phi if phi.ndim == 3 else phi[:, None, :]  # binary and regression: one output
        return phi[:, :, :-1]

    def _save_native(self, path: Path) -> None:
        self.booster_.save_model(str(path))

    def _load_native(self, path: Path) -> None:
        booster = xgb.Booster()
        booster.load_model(str(path))
        booster.set_param({"nthread": self.n_jobs})
        self.booster_ = booster
        self.best_iteration_ = booster.num_boosted_rounds()

    def _importance(self) -> np.ndarray:
        scores = self.booster_.get_score(importance_type="total_gain")
        gain = np.zeros(self.n_features_in_)
        for name, value in scores.items():
            gain[int(name.removeprefix("f"))] = float(value)  # type: ignore[arg-type]
        return gain

    def _convert_onnx(self, n_features: int) -> onnx.ModelProto:
        model = convert_xgboost(
            self.booster_,
            initial_types=float_input(n_features),
            target_opset=ONNX_OPSET,
        )
        return normalise_outputs(model, output_names(self.task))
