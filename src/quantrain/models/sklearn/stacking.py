"""``stacking``: HistGradientBoosting and a random forest, blended by a linear meta-learner
fitted on time-ordered out-of-fold predictions. HistGradientBoosting routes NaN natively and
its graph keeps the routing (:mod:`quantrain.models.sklearn.hgb_onnx`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import helper, numpy_helper
from sklearn.base import clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import TimeSeriesSplit
from threadpoolctl import threadpool_limits

from quantrain.errors import ModelError
from quantrain.models.onnx_outputs import INPUT_NAME, normalise_outputs, output_names
from quantrain.models.registry import register
from quantrain.models.sklearn.base import SklearnFamily, configured, widen
from quantrain.models.sklearn.forest import convert_forest, forest_mean, rename_value
from quantrain.models.sklearn.hgb_onnx import binary_from_logit, hgb_tree_node, probabilities


@register
class StackingFamily(SklearnFamily):
    """HistGradientBoosting + RandomForest, blended by a linear meta-learner.

    scikit-learn's ``Stacking*`` cannot take a time-ordered split (``cross_val_predict`` needs
    a partition, and ``TimeSeriesSplit`` never predicts its first block), so this family
    stacks by hand, never shuffling:

    1. HistGradientBoosting fits every row, early-stopping on ``eval_set`` (``n_estimators``
       and ``early_stopping_rounds`` are its rounds; ``best_iteration_`` is what it kept);
       the forest (imputer in front) fits every row.
    2. ``TimeSeriesSplit(cv_splits, gap=cv_gap)``: both bases refit on each split's past and
       predict its future; those out-of-fold predictions (class probabilities, the first
       column dropped for two classes as scikit-learn does; values for regressors) are the
       meta-learner's inputs, on every row after the first block. ``cv_gap`` (default 48, the
       default triple-barrier horizon) keeps labels that overlap the predicted block out.
    3. The meta-learner (``LogisticRegression`` / ``Ridge``, ``passthrough=False``) fits them.

    Params: unprefixed keys go to HistGradientBoosting, ``forest_*`` to the forest, ``meta_*``
    to the meta-learner (e.g. ``meta_C``, ``meta_alpha``), plus ``cv_splits``/``cv_gap``.
    """

    key = "stacking"
    default_params: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 300,
        "early_stopping_rounds": 30,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
        "forest_n_estimators": 100,
        "forest_max_depth": 12,
        "forest_min_samples_leaf": 20,
        "forest_max_features": "sqrt",
        "forest_max_samples": 0.5,
        "cv_splits": 3,
        "cv_gap": 48,
    }

    def _split_params(self) -> tuple[int, int, dict[str, dict[str, Any]], int, int]:
        rounds, patience, library = self.round_params()
        groups: dict[str, dict[str, Any]] = {"hgb": {}, "forest": {}, "meta": {}}
        for name, value in library.items():
            if name in ("cv_splits", "cv_gap"):
                continue
            prefix, _, rest = name.partition("_")
            if prefix in ("forest", "meta") and rest:
                groups[prefix][rest] = value
            else:
                groups["hgb"][name] = value
        splits, gap = library.get("cv_splits"), library.get("cv_gap")
        if not isinstance(splits, int) or splits < 2:
            raise ModelError(f"cv_splits must be an integer >= 2, got {splits!r}")
        if not isinstance(gap, int) or gap < 0:
            raise ModelError(f"cv_gap must be an integer >= 0, got {gap!r}")
        return rounds, patience, groups, splits, gap

    def _new_bases(
        self, groups: Mapping[str, Mapping[str, Any]], rounds: int
    ) -> tuple[Any, Any, Any]:
        classify = self.task == "classification"
        hgb_cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        hgb = hgb_cls(max_iter=rounds, early_stopping=False, random_state=self.seed)
        configured(hgb, groups["hgb"], self.key)
        forest_cls = RandomForestClassifier if classify else RandomForestRegressor
        forest = forest_cls(random_state=self.seed, n_jobs=self.n_jobs)
        configured(forest, groups["forest"], self.key)
        meta = LogisticRegression(max_iter=1000) if classify else Ridge()
        configured(meta, groups["meta"], self.key)
        return hgb, forest, meta

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
    ) -> None:
        rounds, patience, groups, splits, gap = self._split_params()
        hgb, forest, meta = self._new_bases(groups, rounds)
        w = sample_weight
        with threadpool_limits(limits=self.n_jobs, user_api="openmp"):
            if eval_set is not None and patience > 0:
                hgb.set_params(early_stopping=True, n_iter_no_change=patience, scoring="loss")
                hgb.fit(_binnable(X), y, sample_weight=w, X_val=eval_set[0], y_val=eval_set[1])
                _keep_best_iterations(hgb)
            else:
                hgb.fit(_binnable(X), y, sample_weight=w)
            iterations = len(hgb._predictors)
            imputer, forest = _fit_imputed_forest(forest, X, y, w)
            meta_X, meta_y, meta_w = [], [], []
            try:
                folds = list(TimeSeriesSplit(n_splits=splits, gap=gap).split(X))
            except ValueError as exc:
                raise ModelError(f"stacking: {exc}; lower cv_splits or cv_gap") from None
            for train, test in folds:
                fold_hgb = _fresh(hgb, max_iter=iterations, early_stopping=False)
                fold_hgb.fit(
                    _binnable(X[train]), y[train], sample_weight=None if w is None else w[train]
                )
                fold_imputer, fold_forest = _fit_imputed_forest(
                    _fresh(forest),
                    X[train],
                    y[train],
                    None if w is None else w[train],
                )
                meta_X.append(self._meta_features(fold_hgb, fold_imputer, fold_forest, X[test]))
                meta_y.append(y[test])
                if w is not None:
                    meta_w.append(w[test])
        try:
            meta.fit(
                np.concatenate(meta_X),
                np.concatenate(meta_y),
                sample_weight=np.concatenate(meta_w) if meta_w else None,
            )
        except ValueError as exc:
            raise ModelError(f"stacking meta-learner: {exc}") from None
        self.hgb_, self.imputer_, self.forest_, self.meta_ = hgb, imputer, forest, meta
        self.best_iteration_ = iterations

    def _meta_features(self, hgb: Any, imputer: Any, forest: Any, X: np.ndarray) -> np.ndarray:
        """The meta-learner's inputs: each base's probabilities (or value), side by side."""
        forest_out = forest_mean(forest, imputer.transform(X))
        if self.task == "regression":
            return np.column_stack([hgb.predict(X), forest_out]).astype(np.float64)
        assert self.n_classes is not None
        parts = [
            widen(np.asarray(hgb.predict_proba(X), np.float64), hgb.classes_, self.n_classes),
            widen(forest_out, forest.classes_, self.n_classes),
        ]
        if self.n_classes == 2:
            parts = [p[:, 1:] for p in parts]
        return np.hstack(parts)

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        with threadpool_limits(limits=self.n_jobs, user_api="openmp"):
            meta_X = self._meta_features(self.hgb_, self.imputer_, self.forest_, X)
        if self.task == "regression":
            return np.asarray(self.meta_.predict(meta_X), dtype=np.float64)
        assert self.n_classes is not None
        proba = np.asarray(self.meta_.predict_proba(meta_X), dtype=np.float64)
        return widen(proba, self.meta_.classes_, self.n_classes)

    def _estimators(self) -> dict[str, Any]:
        return {
            "hgb": self.hgb_,
            "imputer": self.imputer_,
            "forest": self.forest_,
            "meta": self.meta_,
        }

    def _importance(self) -> np.ndarray:
        """Mean of the two bases' normalised impurity gains (HistGradientBoosting's from its
        split gains). Only a hint: the pipeline measures this family by permutation."""
        hgb_gain = np.zeros(self.n_features_in_)
        for trees in self.hgb_._predictors:
            for predictor in trees:
                split = predictor.nodes[predictor.nodes["is_leaf"] == 0]
                np.add.at(hgb_gain, split["feature_idx"], split["gain"])
        forest_gain = np.asarray(self.forest_.feature_importances_, dtype=np.float64)
        parts = [g / g.sum() for g in (hgb_gain, forest_gain) if g.sum() > 0]
        return np.mean(parts, axis=0) if parts else hgb_gain

    def _convert_onnx(self, n_features: int) -> onnx.ModelProto:
        model = convert_forest(self.imputer_, self.forest_, n_features, self.task)
        graph = model.graph
        classify = self.task == "classification"
        for i, out in enumerate(graph.output):  # free the final names for the meta outputs
            rename_value(graph, out.name, f"stack_forest_out{i}")
        forest_out = graph.output[1 if classify else 0].name
        nodes: list[onnx.NodeProto] = []
        inits: list[onnx.TensorProto] = []

        def const(name: str, value: np.ndarray) -> str:
            inits.append(numpy_helper.from_array(value, f"stack_{name}"))
            return f"stack_{name}"

        nodes.append(hgb_tree_node(self.hgb_, INPUT_NAME, "stack_hgb_raw"))
        if not classify:
            nodes.append(
                helper.make_node("Concat", ["stack_hgb_raw", forest_out], ["stack_meta_in"], axis=1)
            )
            coef = np.asarray(self.meta_.coef_, dtype=np.float32).reshape(-1, 1)
            intercept = np.asarray(self.meta_.intercept_, dtype=np.float32).reshape(1)
            nodes.append(
                helper.make_node("MatMul", ["stack_meta_in", const("coef", coef)], ["stack_dot"])
            )
            nodes.append(
                helper.make_node(
                    "Add", ["stack_dot", const("intercept", intercept)], ["stack_value"]
                )
            )
            outputs = [
                helper.make_tensor_value_info("stack_value", onnx.TensorProto.FLOAT, [None, 1])
            ]
        else:
            assert self.n_classes is not None
            n = self.n_classes
            nodes += probabilities(self.hgb_, "stack_hgb_raw", "stack_hgb_proba", const)
            hgb_wide = _widen_nodes("stack_hgb_proba", self.hgb_.classes_, n, "hgb", nodes, const)
            forest_wide = _widen_nodes(forest_out, self.forest_.classes_, n, "forest", nodes, const)
            parts = [hgb_wide, forest_wide]
            if n == 2:
                one = const("column1", np.array([1], dtype=np.int64))
                for i, part in enumerate(list(parts)):
                    nodes.append(helper.make_node("Gather", [part, one], [f"stack_p1_{i}"], axis=1))
                    parts[i] = f"stack_p1_{i}"
            nodes.append(helper.make_node("Concat", parts, ["stack_meta_in"], axis=1))
            coef = np.asarray(self.meta_.coef_, dtype=np.float32).T
            intercept = np.asarray(self.meta_.intercept_, dtype=np.float32)
            nodes.append(
                helper.make_node("MatMul", ["stack_meta_in", const("coef", coef)], ["stack_dot"])
            )
            nodes.append(
                helper.make_node(
                    "Add", ["stack_dot", const("intercept", intercept)], ["stack_logit"]
                )
            )
            if coef.shape[1] == 1:  # two classes seen: sigmoid of one logit, as scikit-learn
                nodes += binary_from_logit("stack_logit", "stack_meta_proba", const)
            else:
                nodes.append(
                    helper.make_node("Softmax", ["stack_logit"], ["stack_meta_proba"], axis=1)
                )
            proba = _widen_nodes("stack_meta_proba", self.meta_.classes_, n, "meta", nodes, const)
            nodes.append(helper.make_node("ArgMax", [proba], ["stack_label"], axis=1, keepdims=0))
            outputs = [
                helper.make_tensor_value_info("stack_label", onnx.TensorProto.INT64, [None]),
                helper.make_tensor_value_info(proba, onnx.TensorProto.FLOAT, [None, n]),
            ]
        graph.node.extend(nodes)
        graph.initializer.extend(inits)
        del graph.output[:]
        graph.output.extend(outputs)
        return normalise_outputs(model, output_names(self.task))


def _fresh(estimator: Any, **params: Any) -> Any:
    """An unfitted copy with the same params (``sklearn.base.clone``, plus overrides)."""
    copy = clone(estimator)
    copy.set_params(**params)
    return copy


def _fit_imputed_forest(
    forest: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray | None
) -> tuple[SimpleImputer, Any]:
    imputer = SimpleImputer(strategy="median", keep_empty_features=True)
    forest.fit(imputer.fit_transform(X), y, sample_weight=w)
    return imputer, forest


def _binnable(X: np.ndarray) -> np.ndarray:
    """HistGradientBoosting's binning fails on a column with no value at all (a journal field
    no training record has): make such columns constant, so no split ever reads them."""
    empty = np.isnan(X).all(axis=0)
    if not empty.any():
        return X
    X = X.copy()
    X[:, empty] = 0.0
    return X


def _keep_best_iterations(hgb: Any) -> None:
    """Trim an early-stopped HistGradientBoosting to its best validation score (scikit-learn
    keeps the ``n_iter_no_change`` rounds after it)."""
    scores = np.asarray(hgb.validation_score_)
    best = max(1, int(np.argmax(scores)))  # index 0 is the baseline, before any tree
    hgb._predictors = hgb._predictors[:best]
    hgb.train_score_ = hgb.train_score_[: best + 1]
    hgb.validation_score_ = scores[: best + 1]


def _widen_nodes(
    name: str,
    classes: np.ndarray,
    n_classes: int,
    tag: str,
    nodes: list[onnx.NodeProto],
    const: Any,
) -> str:
    """The graph twin of :func:`widen`: a 0/1 matrix product, exact in float32."""
    if len(classes) == n_classes:
        return name
    table = np.zeros((len(classes), n_classes), dtype=np.float32)
    table[np.arange(len(classes)), np.asarray(classes, dtype=np.int64)] = 1.0
    wide = f"stack_{tag}_wide"
    nodes.append(helper.make_node("MatMul", [name, const(f"{tag}_table", table)], [wide]))
    return wide
