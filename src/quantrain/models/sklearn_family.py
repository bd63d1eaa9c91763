"""scikit-learn ensembles: ``random_forest``, ``extra_trees`` and a time-ordered ``stacking``.

Native format (``model.skops``): skops, which stores fitted scikit-learn estimators as arrays
plus a JSON schema and loads them without running code, unlike pickle (which this project
refuses). Load trusts only scikit-learn, numpy and builtin types, and refuses a file written by
another scikit-learn minor version (fitted attributes are its internals); predictions after
load are bit-identical to before save. The package's ``model.onnx`` is the portable artifact.

Missing values: a median ``SimpleImputer`` fitted on the training rows sits in front of every
random forest / extra trees (skl2onnx ignores the trees' own ``missing_go_to_left``, so native
NaN routing would not survive export); it exports as an ONNX ``Imputer``. HistGradientBoosting
routes NaN natively and its graph keeps the routing.

Forests train with the family's ``n_jobs`` and predict by summing their trees in a fixed
order (scikit-learn's threaded ``predict`` sums them in completion order, which can change the
last bit between calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import sklearn
from onnx import helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from quantrain.errors import ModelError
from quantrain.models.base import FamilyTags
from quantrain.models.gbdt import ONNX_OPSET, RoundBudget
from quantrain.models.onnx_outputs import INPUT_NAME, normalise_outputs, output_names
from quantrain.models.registry import register

NATIVE_FILE = "model.skops"
#: Types a native file may name: scikit-learn's own and numpy's.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")
_ML_DOMAIN = "ai.onnx.ml"
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


def _configured(estimator: BaseEstimator, params: Mapping[str, Any], key: str) -> None:
    """Apply and check library params now, turning scikit-learn's errors (unknown name, value
    out of range) into ours instead of a traceback from deep inside ``fit``."""
    try:
        estimator.set_params(**params)
        estimator._validate_params()
    except ValueError as exc:  # scikit-learn's InvalidParameterError is a ValueError
        raise ModelError(f"{key}: {exc}") from None


def _widen(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over ``classes`` (those seen in training) as columns 0..n_classes-1."""
    if len(classes) == n_classes:
        return proba
    wide = np.zeros((len(proba), n_classes), dtype=proba.dtype)
    wide[:, np.asarray(classes, dtype=np.int64)] = proba
    return wide


class _SklearnFamily(RoundBudget):
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


# -- random forest and extra trees ----------------------------------------------------------


class _ForestFamily(_SklearnFamily):
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
        _configured(forest, library, self.key)
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
        mean = _forest_mean(self.forest_, self.imputer_.transform(X))
        if self.task == "classification":
            assert self.n_classes is not None
            return _widen(mean, self.forest_.classes_, self.n_classes)
        return mean

    def _estimators(self) -> dict[str, Any]:
        return {"imputer": self.imputer_, "forest": self.forest_}

    def _importance(self) -> np.ndarray:
        """Impurity decrease per column, averaged over trees (``feature_importances_``)."""
        return np.asarray(self.forest_.feature_importances_, dtype=np.float64)

    def _convert_onnx(self, n_features: int) -> onnx.ModelProto:
        model = _convert_forest(self.imputer_, self.forest_, n_features, self.task)
        if self.task == "classification":
            assert self.n_classes is not None
            _widen_output(model, 1, self.forest_.classes_, self.n_classes)
        return normalise_outputs(model, output_names(self.task))


def _forest_mean(forest: Any, X: np.ndarray) -> np.ndarray:
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


def _convert_forest(
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
    zeros for classes absent from training, as :func:`_widen` does natively."""
    if len(classes) == n_classes:
        return
    graph = model.graph
    narrow, wide = "forest_narrow_probabilities", "forest_wide_probabilities"
    _rename_value(graph, graph.output[index].name, narrow)  # the final name is normalise's
    table = np.zeros((len(classes), n_classes), dtype=np.float32)
    table[np.arange(len(classes)), np.asarray(classes, dtype=np.int64)] = 1.0
    graph.initializer.append(numpy_helper.from_array(table, f"{wide}_table"))
    graph.node.append(helper.make_node("MatMul", [narrow, f"{wide}_table"], [wide]))
    graph.output[index].name = wide
    dims = graph.output[index].type.tensor_type.shape.dim
    if len(dims) > 1:
        dims[1].ClearField("dim_param")
        dims[1].dim_value = n_classes


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


# -- stacking ---------------------------------------------------------------------------------


@register
class StackingFamily(_SklearnFamily):
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
        _configured(hgb, groups["hgb"], self.key)
        forest_cls = RandomForestClassifier if classify else RandomForestRegressor
        forest = forest_cls(random_state=self.seed, n_jobs=self.n_jobs)
        _configured(forest, groups["forest"], self.key)
        meta = LogisticRegression(max_iter=1000) if classify else Ridge()
        _configured(meta, groups["meta"], self.key)
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
        forest_out = _forest_mean(forest, imputer.transform(X))
        if self.task == "regression":
            return np.column_stack([hgb.predict(X), forest_out]).astype(np.float64)
        assert self.n_classes is not None
        parts = [
            _widen(np.asarray(hgb.predict_proba(X), np.float64), hgb.classes_, self.n_classes),
            _widen(forest_out, forest.classes_, self.n_classes),
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
        return _widen(proba, self.meta_.classes_, self.n_classes)

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
        model = _convert_forest(self.imputer_, self.forest_, n_features, self.task)
        graph = model.graph
        classify = self.task == "classification"
        for i, out in enumerate(graph.output):  # free the final names for the meta outputs
            _rename_value(graph, out.name, f"stack_forest_out{i}")
        forest_out = graph.output[1 if classify else 0].name
        nodes: list[onnx.NodeProto] = []
        inits: list[onnx.TensorProto] = []

        def const(name: str, value: np.ndarray) -> str:
            inits.append(numpy_helper.from_array(value, f"stack_{name}"))
            return f"stack_{name}"

        nodes.append(_hgb_tree_node(self.hgb_, INPUT_NAME, "stack_hgb_raw"))
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
            nodes += _probabilities(self.hgb_, "stack_hgb_raw", "stack_hgb_proba", const)
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
                nodes += _binary_from_logit("stack_logit", "stack_meta_proba", const)
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


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for out in graph.output:
        if out.name == old:
            out.name = new


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


def _float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 ``w`` with ``w <= threshold``: for float32 ``x``, ``x <= threshold``
    (scikit-learn compares in float64) holds exactly when ``x <= w``."""
    rounded = threshold.astype(np.float32)
    above = rounded.astype(np.float64) > threshold
    return np.where(above, np.nextafter(rounded, np.float32(-np.inf)), rounded)


def _hgb_tree_node(hgb: Any, input_name: str, output_name: str) -> onnx.NodeProto:
    """HistGradientBoosting's raw scores ``(N, trees per iteration)`` as one
    ``TreeEnsembleRegressor``, NaN routing included.

    skl2onnx's own converter is not used: with this onnx it fails on a boolean attribute, and
    it rounds thresholds to the nearest float32, which can move a row across a split.
    """
    per_iteration = int(hgb.n_trees_per_iteration_)
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            *("tree", "node", "feature", "value", "true", "false", "missing", "leaf"),
            *("t_tree", "t_node", "t_id", "t_weight"),
        )
    }
    for iteration, trees in enumerate(hgb._predictors):
        for k, predictor in enumerate(trees):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ModelError("categorical HistGradientBoosting splits are not exported")
            tree_id = iteration * per_iteration + k
            leaf = nodes["is_leaf"].astype(bool)
            ids = np.arange(len(nodes), dtype=np.int64)
            cols["tree"].append(np.full(len(nodes), tree_id, dtype=np.int64))
            cols["node"].append(ids)
            cols["feature"].append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
            threshold = _float32_at_most(nodes["num_threshold"].astype(np.float64))
            cols["value"].append(np.where(leaf, np.float32(0), threshold).astype(np.float32))
            cols["true"].append(np.where(leaf, 0, nodes["left"]).astype(np.int64))
            cols["false"].append(np.where(leaf, 0, nodes["right"]).astype(np.int64))
            cols["missing"].append(np.where(leaf, 0, nodes["missing_go_to_left"]).astype(np.int64))
            cols["leaf"].append(leaf)
            cols["t_tree"].append(np.full(int(leaf.sum()), tree_id, dtype=np.int64))
            cols["t_node"].append(ids[leaf])
            cols["t_id"].append(np.full(int(leaf.sum()), k, dtype=np.int64))
            cols["t_weight"].append(nodes["value"][leaf].astype(np.float32))
    flat = {k: np.concatenate(v) for k, v in cols.items()}
    return helper.make_node(
        "TreeEnsembleRegressor",
        [input_name],
        [output_name],
        domain=_ML_DOMAIN,
        n_targets=per_iteration,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[float(v) for v in np.asarray(hgb._baseline_prediction).ravel()],
        nodes_treeids=flat["tree"].tolist(),
        nodes_nodeids=flat["node"].tolist(),
        nodes_featureids=flat["feature"].tolist(),
        nodes_modes=["LEAF" if leaf else "BRANCH_LEQ" for leaf in flat["leaf"]],
        nodes_values=flat["value"].tolist(),
        nodes_truenodeids=flat["true"].tolist(),
        nodes_falsenodeids=flat["false"].tolist(),
        nodes_missing_value_tracks_true=flat["missing"].tolist(),
        target_treeids=flat["t_tree"].tolist(),
        target_nodeids=flat["t_node"].tolist(),
        target_ids=flat["t_id"].tolist(),
        target_weights=flat["t_weight"].tolist(),
    )


def _binary_from_logit(logit: str, output: str, const: Any) -> list[onnx.NodeProto]:
    """``[1 - σ(z), σ(z)]``, as scikit-learn's binary losses compute probabilities."""
    one = const(f"{output}_one", np.array([1.0], dtype=np.float32))
    return [
        helper.make_node("Sigmoid", [logit], [f"{output}_p1"]),
        helper.make_node("Sub", [one, f"{output}_p1"], [f"{output}_p0"]),
        helper.make_node("Concat", [f"{output}_p0", f"{output}_p1"], [output], axis=1),
    ]


def _probabilities(hgb: Any, raw: str, output: str, const: Any) -> list[onnx.NodeProto]:
    if int(hgb.n_trees_per_iteration_) == 1:
        return _binary_from_logit(raw, output, const)
    return [helper.make_node("Softmax", [raw], [output], axis=1)]


def _widen_nodes(
    name: str,
    classes: np.ndarray,
    n_classes: int,
    tag: str,
    nodes: list[onnx.NodeProto],
    const: Any,
) -> str:
    """The graph twin of :func:`_widen`: a 0/1 matrix product, exact in float32."""
    if len(classes) == n_classes:
        return name
    table = np.zeros((len(classes), n_classes), dtype=np.float32)
    table[np.arange(len(classes)), np.asarray(classes, dtype=np.int64)] = 1.0
    wide = f"stack_{tag}_wide"
    nodes.append(helper.make_node("MatMul", [name, const(f"{tag}_table", table)], [wide]))
    return wide
