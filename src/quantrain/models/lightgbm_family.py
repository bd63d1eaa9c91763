"""LightGBM through its native ``lgb.train``; the booster is trimmed to its best iteration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import onnx
from lightgbm.basic import _ConfigAliases
from onnxmltools import convert_lightgbm

from quantrain.models.base import FamilyTags, Task
from quantrain.models.gbdt import ONNX_OPSET, ROUND_KEYS, BoostedTrees
from quantrain.models.onnx_outputs import float_input, normalise_outputs, output_names
from quantrain.models.registry import register


@register
class LightGBMFamily(BoostedTrees):
    key = "lightgbm"
    tags = FamilyTags(
        tasks=frozenset({"classification", "regression"}),
        gpu=False,  # the PyPI wheel has no CUDA learner; a GPU build is a later issue
        warm_start=True,
        sequence=False,
        native_file="model.txt",
    )
    default_params: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 300,
        "early_stopping_rounds": 30,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
    }
    objectives: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "classification": {"objective": "multiclass", "metric": "multi_logloss"},
        "regression": {"objective": "regression", "metric": "rmse"},
    }

    def objective(self) -> dict[str, Any]:
        """A regression head with ``{"quantile": q}`` trains the pinball loss at ``q``."""
        quantile = self.quantile()
        if quantile is not None:
            return {"objective": "quantile", "alpha": quantile, "metric": "quantile"}
        return super().objective()

    @classmethod
    def unknown_params(cls, task: Task, params: Mapping[str, Any]) -> list[str]:
        """Keys that are neither LightGBM parameters nor their aliases (LightGBM's own table,
        which already holds the scikit-learn names such as ``reg_alpha`` and ``subsample``)."""
        del task
        known = set(ROUND_KEYS) | {"quantile"}
        for name, aliases in _ConfigAliases._get_all_param_aliases().items():
            known.update({name, *aliases})
        return sorted(set(params) - known)

    def _library_params(self, library: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.objective(),
            "num_threads": self.n_jobs,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
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
        train = lgb.Dataset(X, label=y, weight=sample_weight, free_raw_data=True)
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Callable[..., Any]] = []
        if eval_set is not None and patience > 0:
            valid_sets = [lgb.Dataset(eval_set[0], label=eval_set[1], reference=train)]
            callbacks = [lgb.early_stopping(patience, verbose=False)]
        booster = lgb.train(
            params,
            train,
            num_boost_round=rounds,
            valid_sets=valid_sets,
            callbacks=callbacks,
            init_model=self.previous_booster(),  # warm start: new rounds after its trees
        )
        best = booster.best_iteration if valid_sets and booster.best_iteration > 0 else None
        # Re-read the trimmed model so prediction, save and ONNX all see the same trees.
        self.booster_ = lgb.Booster(
            model_str=float32_thresholds(booster.model_to_string(num_iteration=best))
        )
        self.best_iteration_ = self.booster_.current_iteration()

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        out = self.booster_.predict(X, num_threads=self.n_jobs)
        return np.asarray(out, dtype=np.float64)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        raw = self.booster_.predict(
            np.ascontiguousarray(X, dtype=np.float64), pred_contrib=True, num_threads=self.n_jobs
        )
        phi = np.asarray(raw, dtype=np.float64)
        outputs = phi.shape[1] // (X.shape[1] + 1)
        return phi.reshape(len(X), outputs, X.shape[1] + 1)[:, :, :-1]

    def _save_native(self, path: Path) -> None:
        self.booster_.save_model(str(path))

    def _load_native(self, path: Path) -> None:
        self.booster_ = lgb.Booster(model_file=str(path))
        self.best_iteration_ = self.booster_.current_iteration()

    def _importance(self) -> np.ndarray:
        return np.asarray(self.booster_.feature_importance(importance_type="gain"), dtype=float)

    def _convert_onnx(self, n_features: int) -> onnx.ModelProto:
        model = convert_lightgbm(
            self.booster_,
            initial_types=float_input(n_features),
            target_opset=ONNX_OPSET,
            zipmap=False,
        )
        return normalise_outputs(model, output_names(self.task))


def _floor_float32(value: float) -> float:
    """The largest float32 not above ``value``."""
    rounded = np.float32(value)
    if float(rounded) > value:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return float(rounded)


def float32_thresholds(model_text: str) -> str:
    """The model with every numerical split threshold lowered to the largest float32 not above
    it: for float32 inputs ``x <= t`` and ``x <= floor32(t)`` agree, so native predictions are
    unchanged, and ONNX (float32 thresholds) then compares against exactly the same number.

    LightGBM keeps thresholds in double; the converter rounds them to the *nearest* float32,
    which can land on an input value just above ``t`` and send that row the other way (seen on
    real data: one row of 2000 off by 0.008 in probability). Categorical splits are left alone.
    """
    lines = model_text.split("\n")
    where: dict[str, int] = {}  # the current tree's threshold= and decision_type= lines
    for i, line in enumerate(lines):
        key = line.partition("=")[0]
        if key in ("threshold", "decision_type"):
            where[key] = i
        if len(where) < 2:
            continue
        values = lines[where["threshold"]].removeprefix("threshold=").split()
        kinds = lines[where["decision_type"]].removeprefix("decision_type=").split()
        if len(values) != len(kinds):
            raise ValueError("LightGBM model text: a tree's thresholds and decision types differ")
        lowered = [
            v if int(d) & 1 else repr(_floor_float32(float(v)))
            for v, d in zip(values, kinds, strict=True)
        ]
        lines[where["threshold"]] = "threshold=" + " ".join(lowered)
        where.clear()
    # ``tree_sizes`` gives each tree's length in bytes, which the rewrite changed; without it
    # LightGBM finds the trees by their ``Tree=`` headers.
    lines = [line for line in lines if not line.startswith("tree_sizes=")]
    return "\n".join(lines)
