"""``gmm_regime``: a Gaussian mixture over a few feature columns, read as a regime classifier.

The mixture is fit on the training rows' features alone (unsupervised: its components are
regimes of the inputs, e.g. calm/trending/volatile), then each component is mapped to the
target's classes on the same rows: ``P(class | component)`` is the responsibility-weighted class
frequency of the training rows (times their sample weights), smoothed towards the training
class prior by ``smoothing`` pseudo-rows. A row's class probabilities are its component
responsibilities times that table, so they sum to 1 and every component says something even
if it saw few rows. Meant for the ``volatility_regime`` target over volatility and trend
columns (``columns``: positions in the feature matrix; the pipeline turns names into them);
no labels are read at fit time beyond the training rows'.

Inputs: the selected columns in float64 (the graph casts too, so native and ONNX agree to
~1e-14), non-finite values replaced by the training rows' median, then standardised inside a
scikit-learn pipeline. Native file: skops (as the other scikit-learn families), no pickle. ONNX:
``Gather``/``Cast``/``IsNaN``-``IsInf``/``Where`` in front of skl2onnx's mixture graph, then a
``MatMul`` with the component→class table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from quantrain.errors import ModelError
from quantrain.models.base import FamilyTags, ModelFamily, Task
from quantrain.models.gbdt import ONNX_OPSET
from quantrain.models.onnx_outputs import INPUT_NAME, normalise_outputs, output_names
from quantrain.models.registry import register
from quantrain.models.sklearn.base import configured, read_estimators, write_estimators
from quantrain.models.sklearn.forest import rename_value

NATIVE_FILE = "model.skops"
#: Params that are ours, not GaussianMixture's.
_OWN = ("columns", "smoothing")


@register
class GMMRegimeFamily(ModelFamily):
    """Components fit without labels, mapped to classes on the training rows."""

    key = "gmm_regime"
    tags = FamilyTags(
        tasks=frozenset({"classification"}),
        gpu=False,
        warm_start=False,
        sequence=False,
        native_file=NATIVE_FILE,
    )
    default_params: ClassVar[Mapping[str, Any]] = {
        "n_components": 4,
        "covariance_type": "full",
        "reg_covar": 1e-3,
        "max_iter": 200,
        "n_init": 1,
        "columns": None,
        "smoothing": 1.0,
    }

    @classmethod
    def unknown_params(cls, task: Task, params: Mapping[str, Any]) -> list[str]:
        known = set(GaussianMixture().get_params()) | set(_OWN)
        return sorted(set(params) - known)

    def _columns(self, n_features: int) -> np.ndarray:
        given = self.resolved_params()["columns"]
        if given is None:
            return np.arange(n_features, dtype=np.int64)
        if not isinstance(given, list | tuple) or not given:
            raise ModelError(f"gmm_regime: columns must be a non-empty list, got {given!r}")
        bad = [c for c in given if not isinstance(c, int) or isinstance(c, bool)]
        if bad:
            raise ModelError(
                f"gmm_regime: columns must be feature names (in a job) or positions, got {bad}"
            )
        wrong = [c for c in given if not 0 <= c < n_features]
        if wrong:
            raise ModelError(f"gmm_regime: columns {wrong} outside 0..{n_features - 1}")
        return np.asarray(given, dtype=np.int64)

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """The selected columns in float64, non-finite values set to the training median."""
        picked = X[:, self.columns_].astype(np.float64)
        return np.where(np.isfinite(picked), picked, self.medians_)

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
    ) -> None:
        del eval_set  # no rounds to stop
        params = self.resolved_params()
        assert self.n_classes is not None
        self.columns_ = self._columns(X.shape[1])
        picked = X[:, self.columns_].astype(np.float64)
        finite = np.where(np.isfinite(picked), picked, np.nan)
        with np.errstate(all="ignore"):
            medians = np.nanmedian(finite, axis=0) if len(finite) else np.zeros(picked.shape[1])
        self.medians_ = np.where(np.isfinite(medians), medians, 0.0)
        mixture = GaussianMixture(random_state=self.seed)
        configured(mixture, {k: v for k, v in params.items() if k not in _OWN}, self.key)
        self.pipeline_ = Pipeline([("scale", StandardScaler()), ("mixture", mixture)])
        inputs = self._inputs(X)
        self.pipeline_.fit(inputs)
        weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        self.table_ = class_table(
            self.pipeline_.predict_proba(inputs),
            y.astype(np.int64),
            weights,
            self.n_classes,
            float(params["smoothing"]),
        )
        self.best_iteration_ = 0

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.n_features_in_:
            raise ModelError(f"expected {self.n_features_in_} input columns, got {X.shape[1]}")
        return np.asarray(self.pipeline_.predict_proba(self._inputs(X)) @ self.table_)

    def _state_arrays(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline_,
            "columns": self.columns_,
            "medians": self.medians_,
            "table": self.table_,
        }

    def _save_native(self, path: Path) -> None:
        write_estimators(path, self._state_arrays())

    def _load_native(self, path: Path) -> None:
        for name, value in read_estimators(path).items():
            setattr(self, f"{name}_", value)

    def _importance(self) -> np.ndarray:
        """How far apart the components sit per column (weighted variance of their means, in
        standardised units): the columns that separate the regimes."""
        mixture = self.pipeline_.named_steps["mixture"]
        spread = np.average(
            (mixture.means_ - np.average(mixture.means_, axis=0, weights=mixture.weights_)) ** 2,
            axis=0,
            weights=mixture.weights_,
        )
        gain = np.zeros(self.n_features_in_)
        np.add.at(gain, self.columns_, spread)
        return gain

    def _convert_onnx(self, n_features: int) -> onnx.ModelProto:
        inner = convert_sklearn(
            self.pipeline_,
            initial_types=[("gmm_input", DoubleTensorType([None, len(self.columns_)]))],
            target_opset=ONNX_OPSET,
        )
        assert isinstance(inner, onnx.ModelProto)
        return normalise_outputs(
            _wrap(inner, n_features, self.columns_, self.medians_, self.table_),
            output_names(self.task),
        )


def class_table(
    responsibilities: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    n_classes: int,
    smoothing: float,
) -> np.ndarray:
    """``P(class | component)``: the weighted class frequency of each component's rows, with
    ``smoothing`` pseudo-rows at the training class prior. Rows sum to 1."""
    onehot = np.zeros((len(y), n_classes))
    onehot[np.arange(len(y)), y] = 1.0
    counts = (responsibilities * weights[:, None]).T @ onehot
    prior = (weights @ onehot) / max(float(weights.sum()), 1e-12)
    table = counts + smoothing * prior
    totals = table.sum(axis=1, keepdims=True)
    uniform = np.full_like(table, 1.0 / n_classes)
    return np.where(totals > 0, table / np.where(totals > 0, totals, 1.0), uniform)


def _wrap(
    inner: onnx.ModelProto,
    n_features: int,
    columns: np.ndarray,
    medians: np.ndarray,
    table: np.ndarray,
) -> onnx.ModelProto:
    """``inner`` (the pipeline on ``gmm_input``, float64) behind the column pick and imputation,
    its component probabilities mapped to class probabilities (float32)."""
    graph = inner.graph
    pre = [
        helper.make_node("Gather", [INPUT_NAME, "gmm_columns"], ["gmm_picked"], axis=1),
        helper.make_node("Cast", ["gmm_picked"], ["gmm_double"], to=TensorProto.DOUBLE),
        helper.make_node("IsNaN", ["gmm_double"], ["gmm_nan"]),
        helper.make_node("IsInf", ["gmm_double"], ["gmm_inf"]),
        helper.make_node("Or", ["gmm_nan", "gmm_inf"], ["gmm_missing"]),
        helper.make_node("Where", ["gmm_missing", "gmm_medians", "gmm_double"], ["gmm_input"]),
    ]
    components = "gmm_components"  # freeing ``probabilities`` for the class output
    rename_value(graph, graph.output[1].name, components)
    post = [
        helper.make_node("MatMul", [components, "gmm_table"], ["gmm_class_double"]),
        helper.make_node("Cast", ["gmm_class_double"], ["gmm_classes"], to=TensorProto.FLOAT),
    ]
    nodes = pre + list(graph.node) + post
    initializers = [
        *graph.initializer,
        numpy_helper.from_array(np.asarray(columns, dtype=np.int64), "gmm_columns"),
        numpy_helper.from_array(np.asarray(medians, dtype=np.float64), "gmm_medians"),
        numpy_helper.from_array(np.asarray(table, dtype=np.float64), "gmm_table"),
    ]
    outputs = [
        graph.output[0],
        helper.make_tensor_value_info("gmm_classes", TensorProto.FLOAT, [None, table.shape[1]]),
    ]
    features = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, n_features])
    wrapped = helper.make_graph(nodes, "gmm_regime", [features], outputs, initializers)
    model = helper.make_model(wrapped, opset_imports=list(inner.opset_import))
    model.ir_version = inner.ir_version
    return model
