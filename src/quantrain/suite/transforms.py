"""Fold-fitted feature transforms (issue 20): fit on one fold's training rows, applied row by
row to every row, their columns appended to the feature matrix, shipped in the package as ONNX
graphs the ``Predictor`` runs before the heads (``package/transforms.py``).

One mechanism for every kind: a fitted step reads named columns and appends ``width`` columns
named ``<prefix>_<i>``. Once fitted, a step is a function of one row, so row t's outputs depend
only on row t's (causal) features and on the training rows the step was fit on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import onnx

from quantrain.config import TransformConfig
from quantrain.errors import ConfigError
from quantrain.suite.dataset import Dataset

#: The name of every transform graph's input; its output name is in the manifest entry.
TRANSFORM_INPUT = "input"


class TransformModel(Protocol):
    """What a kind fits: row-wise outputs and the ONNX graph that computes them."""

    output_name: str

    def outputs(self, X: np.ndarray) -> np.ndarray: ...

    def to_onnx(self, n_inputs: int, input_name: str) -> onnx.ModelProto: ...


@dataclass(frozen=True)
class FittedTransform:
    """One step fit on training rows: the columns it reads and the columns it appends."""

    config: TransformConfig
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    model: TransformModel
    #: Training rows the step was fit on (what the manifest records).
    rows: int

    def apply(self, X: np.ndarray, columns: tuple[str, ...]) -> np.ndarray:
        """Its appended columns for every row of ``X`` (whose columns are ``columns``)."""
        index = [columns.index(c) for c in self.inputs]
        out = self.model.outputs(np.ascontiguousarray(X[:, index], dtype=np.float32))
        return np.asarray(out, dtype=np.float32).reshape(len(X), len(self.outputs))

    def to_onnx(self) -> onnx.ModelProto:
        return self.model.to_onnx(len(self.inputs), TRANSFORM_INPUT)


@dataclass(frozen=True)
class FittedTransforms:
    """The suite's steps in order, fit on one set of training rows: a step may read the
    columns the steps before it appended."""

    base: tuple[str, ...]
    steps: tuple[FittedTransform, ...]

    def columns(self) -> tuple[str, ...]:
        """The base columns, then each step's appended columns."""
        return self.base + tuple(c for step in self.steps for c in step.outputs)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``X`` (base columns) with every step's columns appended, float32."""
        matrix = np.asarray(X, dtype=np.float32)
        columns = self.base
        for step in self.steps:
            matrix = np.concatenate([matrix, step.apply(matrix, columns)], axis=1)
            columns = columns + step.outputs
        return matrix


def fit_transforms(
    configs: tuple[TransformConfig, ...], data: Dataset, rows: np.ndarray | None, *, seed: int
) -> FittedTransforms:
    """Fit ``configs`` in order on ``rows`` of ``data`` (None: every row, the final model); no
    other row is read."""
    if not data.columns:
        raise ConfigError(
            "suite.transforms need named feature columns; this data has none (trade journals "
            "are not supported); fix: drop suite.transforms"
        )
    train = np.asarray(data.X if rows is None else data.X[rows], dtype=np.float32)
    columns = tuple(data.columns)
    steps: list[FittedTransform] = []
    for position, config in enumerate(configs):
        where = f"suite.transforms[{position}] ({config.prefix})"
        inputs = _inputs(config, columns, len(data.columns), where)
        index = [columns.index(c) for c in inputs]
        fit_rows = train[-config.max_rows :, index]
        if not np.isfinite(fit_rows).all():
            raise ConfigError(f"{where}: its input columns have missing values on training rows")
        model = _fit(config, fit_rows, seed=seed + position)
        outputs = tuple(f"{config.prefix}_{i}" for i in range(config.width))
        clash = sorted(set(outputs) & set(columns))
        if clash:
            raise ConfigError(f"{where}: columns {clash} exist already; fix: give it a name")
        step = FittedTransform(config, inputs, outputs, model, rows=len(fit_rows))
        train = np.concatenate([train, step.apply(train, columns)], axis=1)
        columns = columns + outputs
        steps.append(step)
    return FittedTransforms(tuple(data.columns), tuple(steps))


def _inputs(
    config: TransformConfig, columns: tuple[str, ...], n_base: int, where: str
) -> tuple[str, ...]:
    if not config.columns:
        return columns[:n_base]
    unknown = [c for c in config.columns if c not in columns]
    if unknown:
        raise ConfigError(
            f"{where}.columns: {unknown} are not feature columns; fix: name columns of the "
            f"feature set (e.g. {', '.join(columns[:6])}, ...) or an earlier transform's output"
        )
    return tuple(config.columns)


def _fit(config: TransformConfig, X: np.ndarray, *, seed: int) -> TransformModel:
    if config.kind == "gmm":
        return GaussianRegimes.fit(X, config.components, seed=seed)
    from quantrain.suite.vae import fit_vae

    return fit_vae(X, config, seed=seed)


class GaussianRegimes:
    """A Gaussian mixture over standardised columns: each row's posterior per regime."""

    output_name = "probabilities"

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    @classmethod
    def fit(cls, X: np.ndarray, components: int, *, seed: int) -> GaussianRegimes:
        from sklearn.mixture import GaussianMixture
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        mixture = GaussianMixture(
            components, covariance_type="full", reg_covar=1e-4, random_state=seed
        )
        return cls(make_pipeline(StandardScaler(), mixture).fit(X.astype(np.float64)))

    def outputs(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(X.astype(np.float64)))

    def to_onnx(self, n_inputs: int, input_name: str) -> onnx.ModelProto:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        return convert_sklearn(
            self.pipeline,
            initial_types=[(input_name, FloatTensorType([None, n_inputs]))],
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
