"""``ftrl``: an online linear model trained by FTRL-proximal (McMahan et al. 2013, "Ad Click
Prediction: a View from the Trenches"): a per-coordinate learning rate
``alpha / (beta + sqrt(n))``, L1 and L2, and each weight in closed form from its ``z`` and ``n``
accumulators. A cheap baseline that keeps learning bar by bar after deployment.

Classification is one multinomial (softmax) model with a ``z``/``n`` pair per class and column,
not one-vs-rest: one loss means the probabilities are calibrated together and sum to 1 without
a renormalisation that no per-class model was trained for, and the graph is the same
``MatMul``/``Softmax`` for two classes or ten. Regression is linear with the squared loss (the
target is not rescaled: ``alpha`` is in the target's units, which suits R multiples). The
intercept is an always-on column with no L1 or L2. ``l1`` and ``l2`` weigh the norms against
the loss summed over every row seen (McMahan's objective), so their pull fades as rows
accumulate; the default ``l2`` (1000) is a firm prior for a few thousand noisy bars, and a
strong ``l1`` sets the weights of uninformative columns to exactly 0.

Inputs: every column is standardised with the mean and standard deviation of the rows the model
has trained on, kept as running (Welford) accumulators that the first pass updates row by row
before it standardises the row, so training never reads a later row and :meth:`update` continues
the scaler exactly as it continues the weights. A missing value (NaN, also ±inf) is 0 after
standardising: the column adds nothing to that row and its weights get no gradient from it. A
column with no spread yet is 0 too. The scaler is in the native file and in the ONNX graph.

Online: :meth:`FTRLFamily.update` runs one more pass over new rows from the stored accumulators;
``fit(X[:n])`` then ``update(X[n:m])`` equals ``fit(X[:m])`` bit for bit when ``epochs`` is 1.
Rows are visited in time order, never shuffled, so ``seed`` changes nothing. ``epochs`` > 1
revisits the rows with the scaler frozen after the first pass; with an ``eval_set`` and
``early_stopping_rounds`` > 0 the accumulators of the epoch with the lowest validation loss
(log loss / squared error) are kept and ``best_iteration_`` is that epoch.

Native file (``model.npz``): the accumulators and scaler as float64 arrays, read back with
``allow_pickle=False``; params live in ``meta.json``. ONNX (opset 15, plain ai.onnx ops):
``IsNaN``/``IsInf``/``Or`` mark missing inputs, ``Sub``/``Mul`` standardise, ``Where`` imputes 0,
``MatMul``/``Add`` give the margins, then ``Softmax`` and ``ArgMax`` (or the margin as ``value``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import onnx
from numba import njit
from onnx import TensorProto, helper, numpy_helper

from quantrain.errors import ModelError
from quantrain.models.base import FamilyTags, ModelFamily, Task, _as_matrix
from quantrain.models.onnx_outputs import BATCH_DIM, INPUT_NAME
from quantrain.models.registry import register

NATIVE_FILE = "model.npz"
ONNX_OPSET = 15
#: The IR version onnxruntime ≥ 1.10 reads; ``make_model`` would write the newest one.
ONNX_IR_VERSION = 8
#: The fitted state in the native file, all float64.
_ARRAYS = ("z", "n", "count", "mean", "m2")
_PROBABILITY_FLOOR = 1e-15


# -- the kernel -------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _ftrl_pass(
    X: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    z: np.ndarray,
    n: np.ndarray,
    count: np.ndarray,
    mean: np.ndarray,
    m2: np.ndarray,
    alpha: float,
    beta: float,
    l1: float,
    l2: float,
    classify: bool,
    learn_scaler: bool,
) -> None:
    """One pass over ``X`` in row order, updating ``z``, ``n`` (classes × columns + intercept)
    and, when ``learn_scaler``, the running ``count``/``mean``/``m2`` of every column, in place.

    Per row: scaler update, standardise (missing or flat → 0), weights of the non-zero
    coordinates from ``z``/``n``, softmax or linear output, then McMahan's Algorithm 1 step."""
    rows, columns = X.shape
    outputs = z.shape[0]
    s = np.empty(columns + 1)
    w = np.zeros((outputs, columns + 1))
    residual = np.empty(outputs)
    for r in range(rows):
        for j in range(columns):
            x = float(X[r, j])
            if not math.isfinite(x):
                s[j] = 0.0
                continue
            if learn_scaler:
                count[j] += 1.0
                delta = x - mean[j]
                mean[j] += delta / count[j]
                m2[j] += delta * (x - mean[j])
            inverse = 1.0 / math.sqrt(m2[j] / count[j]) if m2[j] > 0.0 else 0.0
            s[j] = (x - mean[j]) * inverse
        s[columns] = 1.0
        for k in range(outputs):
            margin = 0.0
            for j in range(columns + 1):
                if s[j] == 0.0:
                    continue
                zj = z[k, j]
                rate = (beta + math.sqrt(n[k, j])) / alpha
                if j == columns:
                    w[k, j] = -zj / rate
                elif abs(zj) <= l1:
                    w[k, j] = 0.0
                else:
                    w[k, j] = -(zj - math.copysign(l1, zj)) / (rate + l2)
                margin += w[k, j] * s[j]
            residual[k] = margin
        if classify:
            top = residual.max()
            total = 0.0
            for k in range(outputs):
                residual[k] = math.exp(residual[k] - top)
                total += residual[k]
            label = int(target[r])
            for k in range(outputs):
                residual[k] = residual[k] / total - (1.0 if k == label else 0.0)
        else:
            residual[0] -= target[r]
        for k in range(outputs):
            step = weight[r] * residual[k]
            for j in range(columns + 1):
                if s[j] == 0.0:
                    continue
                g = step * s[j]
                sigma = (math.sqrt(n[k, j] + g * g) - math.sqrt(n[k, j])) / alpha
                z[k, j] += g - sigma * w[k, j]
                n[k, j] += g * g


# -- the family ------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@register
class FTRLFamily(ModelFamily):
    """FTRL-proximal linear model; see the module docstring for the scaler, missing values and
    the online :meth:`update`."""

    key = "ftrl"
    tags = FamilyTags(
        tasks=frozenset({"classification", "regression"}),
        gpu=False,
        warm_start=True,
        sequence=False,
        native_file=NATIVE_FILE,
    )
    default_params: ClassVar[Mapping[str, Any]] = {
        "alpha": 0.05,
        "beta": 1.0,
        "l1": 1.0,
        "l2": 1000.0,
        "epochs": 1,
        "early_stopping_rounds": 2,
    }

    z_: np.ndarray
    n_: np.ndarray
    count_: np.ndarray
    mean_: np.ndarray
    m2_: np.ndarray

    # -- params ------------------------------------------------------------------------------
    @classmethod
    def unknown_params(cls, task: Task, params: Mapping[str, Any]) -> list[str]:
        del task
        return sorted(set(params) - set(cls.default_params))

    def _checked_params(self) -> dict[str, Any]:
        """Defaults overlaid with the caller's params, every value checked, unknown keys refused."""
        params = self.resolved_params()
        unknown = sorted(set(params) - set(self.default_params))
        if unknown:
            hint = " (quantile heads need xgboost or lightgbm)" if "quantile" in unknown else ""
            raise ModelError(
                f"{self.key}: unknown params {unknown}{hint}; "
                f"known: {', '.join(sorted(self.default_params))}"
            )
        for key, allowed, rule in (
            ("alpha", "> 0", lambda v: v > 0),
            ("beta", ">= 0", lambda v: v >= 0),
            ("l1", ">= 0", lambda v: v >= 0),
            ("l2", ">= 0", lambda v: v >= 0),
        ):
            if not (_is_number(params[key]) and rule(params[key])):
                raise ModelError(
                    f"{self.key}: {key} must be a number {allowed}, got {params[key]!r}"
                )
        for key, minimum in (("epochs", 1), ("early_stopping_rounds", 0)):
            if not _is_int(params[key], minimum):
                raise ModelError(
                    f"{self.key}: {key} must be an integer >= {minimum}, got {params[key]!r}"
                )
        return params

    def fixed_budget(self, iterations: int) -> dict[str, Any]:
        return {"epochs": max(1, iterations), "early_stopping_rounds": 0}

    # -- training ----------------------------------------------------------------------------
    def _start_state(self, columns: int) -> None:
        """Zero accumulators, or a copy of the warm-start model's (its scaler included)."""
        previous = self.init_model
        if previous is None:
            self.z_ = np.zeros((self._n_outputs(), columns + 1))
            self.n_ = np.zeros((self._n_outputs(), columns + 1))
            self.count_, self.mean_, self.m2_ = (np.zeros(columns) for _ in range(3))
            return
        if not isinstance(previous, FTRLFamily):
            raise ModelError(f"ftrl cannot warm start from a {previous.key!r} model")
        for name in _ARRAYS:
            setattr(self, f"{name}_", getattr(previous, f"{name}_").copy())

    def _pass(
        self,
        params: Mapping[str, Any],
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        *,
        learn_scaler: bool,
    ) -> None:
        weight = (
            np.ones(len(X))
            if sample_weight is None
            else np.ascontiguousarray(sample_weight, dtype=np.float64)
        )
        if weight.shape != (len(X),) or not np.all(np.isfinite(weight)):
            raise ModelError(
                f"sample_weight must be {len(X)} finite numbers, got shape {weight.shape}"
            )
        _ftrl_pass(
            X,
            np.ascontiguousarray(y, dtype=np.float64),
            weight,
            self.z_,
            self.n_,
            self.count_,
            self.mean_,
            self.m2_,
            float(params["alpha"]),
            float(params["beta"]),
            float(params["l1"]),
            float(params["l2"]),
            self.task == "classification",
            learn_scaler,
        )

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
    ) -> None:
        params = self._checked_params()
        epochs, patience = int(params["epochs"]), int(params["early_stopping_rounds"])
        self._start_state(X.shape[1])
        watch = eval_set is not None and patience > 0 and epochs > 1
        best_loss, best_epoch, best_state, waited = math.inf, 0, None, 0
        epoch = 0
        for epoch in range(1, epochs + 1):
            self._pass(params, X, y, sample_weight, learn_scaler=epoch == 1)
            if not watch:
                continue
            assert eval_set is not None
            loss = self._loss(*eval_set)
            if loss < best_loss:
                best_loss, best_epoch, waited = loss, epoch, 0
                best_state = (self.z_.copy(), self.n_.copy())
            else:
                waited += 1
                if waited >= patience:
                    break
        if best_state is not None:
            self.z_, self.n_ = best_state
            self.best_iteration_ = best_epoch
        else:
            self.best_iteration_ = epoch

    def update(
        self, X: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> Self:
        """Learn from new rows (e.g. each closed bar) where the last pass stopped: one pass that
        continues the weights' and the scaler's accumulators. Inputs are not modified."""
        if not hasattr(self, "z_"):
            raise ModelError("update needs a fitted ftrl model: call fit (or load) first")
        X = _as_matrix(X)
        y = np.asarray(y)
        if X.shape[1] != self.n_features_in_:
            raise ModelError(f"the model reads {self.n_features_in_} columns, X has {X.shape[1]}")
        if len(X) != len(y):
            raise ModelError(f"X has {len(X)} rows but y has {len(y)}")
        if self.task == "classification" and len(y):
            assert self.n_classes is not None
            if y.min() < 0 or y.max() >= self.n_classes:
                raise ModelError(f"class ids must lie in 0..{self.n_classes - 1}")
        self._pass(self._checked_params(), X, y, sample_weight, learn_scaler=True)
        return self

    def _loss(self, X: np.ndarray, y: np.ndarray) -> float:
        """Mean validation loss: log loss for classifiers, squared error for regressors."""
        out = self._raw_predict(X)
        if self.task == "classification":
            picked = out[np.arange(len(y)), np.asarray(y, dtype=np.int64)]
            return float(-np.mean(np.log(np.maximum(picked, _PROBABILITY_FLOOR))))
        return float(np.mean((out - y) ** 2))

    # -- the fitted linear model -------------------------------------------------------------
    def _scaler(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, 1 / std)`` per column; 0 for a column with no spread (never seen or flat)."""
        spread = np.divide(self.m2_, self.count_, out=np.zeros_like(self.m2_), where=self.m2_ > 0)
        inverse = np.divide(1.0, np.sqrt(spread), out=np.zeros_like(spread), where=spread > 0)
        return self.mean_, inverse

    def _weights(self) -> np.ndarray:
        """Weights (classes × columns + intercept) in closed form from ``z`` and ``n``."""
        params = self._checked_params()
        alpha, beta = float(params["alpha"]), float(params["beta"])
        l1, l2 = float(params["l1"]), float(params["l2"])
        rate = (beta + np.sqrt(self.n_)) / alpha
        z = self.z_
        w = np.where(np.abs(z) <= l1, 0.0, -(z - np.sign(z) * l1) / (rate + l2))
        w[:, -1] = -z[:, -1] / rate[:, -1]  # the intercept: no L1, no L2
        return w

    @property
    def coef_(self) -> np.ndarray:
        """Weights on the standardised columns, ``(classes or 1, columns)``."""
        return self._weights()[:, :-1]

    @property
    def intercept_(self) -> np.ndarray:
        return self._weights()[:, -1]

    def _standardised(self, X: np.ndarray) -> np.ndarray:
        mean, inverse = self._scaler()
        with np.errstate(invalid="ignore"):  # inf × 0 on a flat column: masked just below
            s = (X.astype(np.float64) - mean) * inverse
        s[~np.isfinite(X)] = 0.0
        return s

    def _margins(self, X: np.ndarray) -> np.ndarray:
        w = self._weights()
        return self._standardised(X) @ w[:, :-1].T + w[:, -1]

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        margins = self._margins(X)
        if self.task == "regression":
            return margins[:, 0]
        margins -= margins.max(axis=1, keepdims=True)
        e = np.exp(margins)
        return e / e.sum(axis=1, keepdims=True)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact SHAP of a linear model, per class margin: weight × standardised input (the
        training mean is the reference, where a column contributes 0)."""
        s = self._standardised(_as_matrix(X))
        return s[:, None, :] * self.coef_[None, :, :]

    def _importance(self) -> np.ndarray:
        """|weight| per standardised column, summed over classes (0 for columns L1 zeroed)."""
        return np.abs(self.coef_).sum(axis=0)

    # -- native file -------------------------------------------------------------------------
    def _save_native(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, **{name: getattr(self, f"{name}_") for name in _ARRAYS})

    def _load_native(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as arrays:
            missing = sorted(set(_ARRAYS) - set(arrays.files))
            if missing:
                raise ModelError(f"{path}: not an ftrl model file (missing {missing})")
            for name in _ARRAYS:
                setattr(self, f"{name}_", np.array(arrays[name], dtype=np.float64))
        expected = (self._n_outputs(), self.n_features_in_ + 1)
        if self.z_.shape != expected or self.n_.shape != expected:
            raise ModelError(
                f"{path}: accumulators have shape {self.z_.shape}, expected {expected}"
            )

    def _state(self) -> dict[str, Any]:
        return {"best_iteration": self.best_iteration_}

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        self.best_iteration_ = int(state.get("best_iteration", 0))

    # -- ONNX --------------------------------------------------------------------------------
    def _convert_onnx(self, n_features: int) -> onnx.ModelProto:
        mean, inverse = self._scaler()
        w = self._weights()
        consts = {
            "ftrl_mean": mean.reshape(1, -1),
            "ftrl_inverse_std": inverse.reshape(1, -1),
            "ftrl_zero": np.zeros(1),
            "ftrl_coef": w[:, :-1].T,
            "ftrl_intercept": w[:, -1],
        }
        inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in consts.items()]
        nodes = [
            helper.make_node("IsNaN", [INPUT_NAME], ["ftrl_nan"]),
            helper.make_node("IsInf", [INPUT_NAME], ["ftrl_inf"]),
            helper.make_node("Or", ["ftrl_nan", "ftrl_inf"], ["ftrl_missing"]),
            helper.make_node("Sub", [INPUT_NAME, "ftrl_mean"], ["ftrl_centred"]),
            helper.make_node("Mul", ["ftrl_centred", "ftrl_inverse_std"], ["ftrl_scaled"]),
            helper.make_node(
                "Where", ["ftrl_missing", "ftrl_zero", "ftrl_scaled"], ["ftrl_standardised"]
            ),
            helper.make_node("MatMul", ["ftrl_standardised", "ftrl_coef"], ["ftrl_dot"]),
        ]
        if self.task == "classification":
            nodes += [
                helper.make_node("Add", ["ftrl_dot", "ftrl_intercept"], ["ftrl_margin"]),
                helper.make_node("Softmax", ["ftrl_margin"], ["probabilities"], axis=1),
                helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
            ]
            outputs = [
                helper.make_tensor_value_info("label", TensorProto.INT64, [BATCH_DIM]),
                helper.make_tensor_value_info(
                    "probabilities", TensorProto.FLOAT, [BATCH_DIM, self._n_outputs()]
                ),
            ]
        else:
            nodes.append(helper.make_node("Add", ["ftrl_dot", "ftrl_intercept"], ["value"]))
            outputs = [helper.make_tensor_value_info("value", TensorProto.FLOAT, [BATCH_DIM, 1])]
        graph = helper.make_graph(
            nodes,
            "ftrl",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, n_features])],
            outputs,
            initializer=inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
            ir_version=ONNX_IR_VERSION,
            producer_name="quantrain",
        )
        onnx.checker.check_model(model)
        return model
