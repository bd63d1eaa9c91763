"""scikit-learn forests: ``random_forest`` and ``extra_trees``, a median imputer in front.

Missing values: a median ``SimpleImputer`` fitted on the training rows sits in front of every
random forest / extra trees (skl2onnx ignores the trees' own ``missing_go_to_left``, so native
NaN routing would not survive export); it exports as an ONNX ``Imputer``.

Forests train with the family's ``n_jobs`` and predict by summing their trees in a fixed
order (scikit-learn's threaded ``predict`` sums them in completion order, which can change the
last bit between calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from quantrain.errors import ModelError
from quantrain.models.gbdt import ONNX_OPSET
from quantrain.models.onnx_outputs import INPUT_NAME, normalise_outputs, output_names
from quantrain.models.registry import register
from quantrain.models.sklearn.base import SklearnFamily, configured, widen


class _ForestFamily(SklearnFamily):
    """A median imputer then a forest; ``n_estimators`` trees, optional tree-count stopping.

    With ``early_stopping_rounds`` > 0 and an ``eval_set``, trees are added (warm start) until
    ``early_stopping_rounds`` trees in a row fail to lower the validation loss of the
    forest's running average (log loss / squared error); the forest keeps the best prefix.
    The prefix is exactly the forest that ``n_estimators=best`` grows with the same seed, so
    :meth:`fixed_budget` reproduces it. The default (0) trains every tree: forests do not
    overfit with more trees, they only get slower.
    """

    forests: ClassVar[Mapping[str, type[BaseEstimator]]]
    default_params: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 300,
        "early_stopping_rounds": 0,
        "max_depth": 12,
        "min_samples_leaf": 20,
    }
    task_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "classification": {"max_features": "sqrt"},
        "regression": {"max_features": 0.5},
    }

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
    ) -> None:
        rounds, patience, library = self.round_params()
        forest = self.forests[self.task](random_state=self.seed, n_jobs=self.n_jobs)
        configured(forest, library, self.key)
        imputer = SimpleImputer(strategy="median", keep_empty_features=True)
        X_fit = imputer.fit_transform(X)
        if eval_set is not None and patience > 0:
            X_val = np.ascontiguousarray(imputer.transform(eval_set[0]), dtype=np.float32)
            _grow_until_stale(forest, X_fit, y, sample_weight, X_val, eval_set[1], rounds, patience)
        else:
            forest.set_params(n_estimators=rounds)
            forest.fit(X_fit, y, sample_weight=sample_weight)
        forest.set_params(warm_start=False)
        self.imputer_ = imputer
        self.forest_ = forest
        self.best_iteration_ = len(forest.estimators_)

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        mean = forest_mean(self.forest_, self.imputer_.transform(X))
        if self.task == "classification":
            assert self.n_classes is not None
            return widen(mean, self.forest_.classes_, self.n_classes)
        return mean

    def _estimators(self) -> dict[str, Any]:
        return {"imputer": self.imputer_, "forest": self.forest_}

    def _importance(self) -> np.ndarray:
        """Impurity decrease per column, averaged over trees (``feature_importances_``)."""
        return np.asarray(self.forest_.feature_importances_, dtype=np.float64)

    def _convert_onnx(self, n_features: int) -> onnx.ModelProto:
        model = convert_forest(self.imputer_, self.forest_, n_features, self.task)
        if self.task == "classification":
            assert self.n_classes is not None
            _widen_output(model, 1, self.forest_.classes_, self.n_classes)
        return normalise_outputs(model, output_names(self.task))


def forest_mean(forest: Any, X: np.ndarray) -> np.ndarray:
    """The forest's prediction: scikit-learn's average of its trees (class fractions, or
    values), summed in tree order as ``predict_proba``/``predict`` do with ``n_jobs=1``, without
    their per-tree input checks (most of the time on small batches)."""
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    if X32.ndim != 2 or X32.shape[1] != forest.n_features_in_:
        raise ModelError(f"expected {forest.n_features_in_} input columns, got {X32.shape[1:]}")
    classify = hasattr(forest, "classes_")
    width = len(forest.classes_) if classify else 1
    total = np.zeros((len(X32), width), dtype=np.float64)
    for tree in forest.estimators_:
        total += tree.tree_.predict(X32)[:, :width]
    total /= len(forest.estimators_)
    return total if classify else total[:, 0]


def _grow_until_stale(
    forest: Any,
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    X_val: np.ndarray,
    y_val: np.ndarray,
    rounds: int,
    patience: int,
) -> None:
    """Add trees until ``patience`` trees in a row do not improve the validation loss; keep
    the best prefix."""
    classify = hasattr(forest, "predict_proba")
    forest.set_params(warm_start=True)
    step = max(patience, 10)
    total: np.ndarray | None = None
    best_loss, best, count = np.inf, 0, 0
    while count < rounds and count - best < patience:
        forest.set_params(n_estimators=min(rounds, count + step))
        forest.fit(X, y, sample_weight=sample_weight)
        for tree in forest.estimators_[count:]:
            if classify:
                out = tree.predict_proba(X_val, check_input=False)
            else:
                out = tree.predict(X_val, check_input=False)
            total = out if total is None else total + out
            count += 1
            loss = _validation_loss(total / count, y_val, forest, classify)
            if loss < best_loss:
                best_loss, best = loss, count
    del forest.estimators_[best:]
    forest.set_params(n_estimators=best)


def _validation_loss(pred: np.ndarray, y: np.ndarray, forest: Any, classify: bool) -> float:
    if not classify:
        return float(np.mean((pred - y) ** 2))
    column = np.searchsorted(forest.classes_, y)
    column = np.minimum(column, len(forest.classes_) - 1)
    seen = forest.classes_[column] == y  # a class absent from training scores p = 0
    p = np.where(seen, pred[np.arange(len(y)), column], 0.0)
    return float(-np.mean(np.log(np.clip(p, 1e-15, 1.0))))


def _float_input(n_features: int) -> list[tuple[str, FloatTensorType]]:
    return [(INPUT_NAME, FloatTensorType([None, n_features]))]


def convert_forest(
    imputer: SimpleImputer, forest: Any, n_features: int, task: str
) -> onnx.ModelProto:
    """skl2onnx graph of imputer + forest: outputs ``label``, ``probabilities`` (no ZipMap) or
    ``variable``."""
    options = {id(forest): {"zipmap": False}} if task == "classification" else None
    model = convert_sklearn(
        Pipeline([("impute", imputer), ("forest", forest)]),
        initial_types=_float_input(n_features),
        target_opset=ONNX_OPSET,
        options=options,
    )
    assert isinstance(model, onnx.ModelProto)
    versions: dict[str, int] = {}  # skl2onnx lists the default domain twice
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    return model


def _widen_output(model: onnx.ModelProto, index: int, classes: np.ndarray, n_classes: int) -> None:
    """Give graph output ``index`` (probabilities over ``classes``) one column per class id,
    zeros for classes absent from training, as :func:`widen` does natively."""
    if len(classes) == n_classes:
        return
    graph = model.graph
    narrow, wide = "forest_narrow_probabilities", "forest_wide_probabilities"
    rename_value(graph, graph.output[index].name, narrow)  # the final name is normalise's
    table = np.zeros((len(classes), n_classes), dtype=np.float32)
    table[np.arange(len(classes)), np.asarray(classes, dtype=np.int64)] = 1.0
    graph.initializer.append(numpy_helper.from_array(table, f"{wide}_table"))
    graph.node.append(helper.make_node("MatMul", [narrow, f"{wide}_table"], [wide]))
    graph.output[index].name = wide
    dims = graph.output[index].type.tensor_type.shape.dim
    if len(dims) > 1:
        dims[1].ClearField("dim_param")
        dims[1].dim_value = n_classes


def rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename value ``old`` in every node and graph output, freeing its name for a node added
    after it (the final output names are :func:`normalise_outputs`')."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for out in graph.output:
        if out.name == old:
            out.name = new


@register
class RandomForestFamily(_ForestFamily):
    """Bootstrap samples of half the rows (``max_samples`` 0.5): about twice as fast to train,
    and more varied trees."""

    key = "random_forest"
    default_params: ClassVar[Mapping[str, Any]] = {
        **_ForestFamily.default_params,
        "max_samples": 0.5,
    }
    forests: ClassVar[Mapping[str, type[BaseEstimator]]] = {
        "classification": RandomForestClassifier,
        "regression": RandomForestRegressor,
    }


@register
class ExtraTreesFamily(_ForestFamily):
    key = "extra_trees"
    forests: ClassVar[Mapping[str, type[BaseEstimator]]] = {
        "classification": ExtraTreesClassifier,
        "regression": ExtraTreesRegressor,
    }
