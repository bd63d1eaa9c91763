"""A symbol's trained suite: each head's final model, its out-of-sample record and what the
package is written from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantrain.config import HeadConfig, JobConfig
from quantrain.evaluate.evaluation import Evaluation
from quantrain.export import ParityResult
from quantrain.features import FeatureRecipe
from quantrain.models import ModelFamily
from quantrain.policy import TradingPolicy
from quantrain.split import Fold
from quantrain.suite.dataset import Target
from quantrain.suite.fit import HeadFolds
from quantrain.suite.transforms import FittedTransforms


@dataclass
class TrainedHead:
    config: HeadConfig
    family: str
    target: Target
    model: ModelFamily
    oos: dict[str, float]
    folds: list[dict[str, float]]
    parity_rows: np.ndarray  # held-out rows the ONNX graph must reproduce
    oos_rows: np.ndarray  # dataset rows predicted out of sample, in time order
    oos_outputs: np.ndarray  # the fold models' probabilities (n, classes) or values (n,)
    oos_truth: np.ndarray
    importance: np.ndarray  # per input column, measured on the folds' held-out rows
    importance_method: str
    parity: ParityResult | None = None
    #: Scored once on the untouched holdout rows by a model fit on the rows before them.
    holdout: dict[str, float] | None = None
    holdout_outputs: np.ndarray | None = None
    holdout_truth: np.ndarray | None = None
    #: The columns the final model reads when its features were selected (issue 20).
    input_columns: list[str] | None = None
    #: Cascade heads: the upstream heads read (``HeadConfig.inputs``) and the output columns
    #: of theirs appended after the features, in that order (``suite.cascade``).
    upstream: tuple[str, ...] = ()
    upstream_columns: tuple[str, ...] = ()
    #: Test rows per walk-forward fold (how ``oos_outputs`` splits back into folds).
    fold_sizes: tuple[int, ...] = ()
    #: ``family: auto``: the winner, the metric and every candidate's pooled fold score.
    family_selection: dict[str, Any] | None = None

    @classmethod
    def from_runs(
        cls,
        config: HeadConfig,
        *,
        family: str,
        target: Target,
        model: ModelFamily,
        run: HeadFolds,
        held: HeadFolds | None,
        folds: list[Fold],
        parity_rows: np.ndarray,
        **extra: Any,
    ) -> TrainedHead:
        """A head from its walk-forward run (``run``), its holdout run (``held``, one fold)
        and its final model; ``extra``: the optional fields above."""
        assert run.importance is not None
        return cls(
            config=config,
            family=family,
            target=target,
            model=model,
            oos=run.pooled(),
            folds=run.metrics,
            parity_rows=parity_rows,
            oos_rows=np.concatenate([f.test for f in folds]),
            oos_outputs=np.concatenate(run.outputs),
            oos_truth=np.concatenate(run.truth),
            importance=run.importance,
            importance_method=run.importance_method,
            holdout=None if held is None else held.metrics[0],
            holdout_outputs=None if held is None else held.outputs[0],
            holdout_truth=None if held is None else held.truth[0],
            fold_sizes=tuple(len(f.test) for f in folds),
            **extra,
        )


@dataclass
class TrainedSuite:
    symbol: str
    timeframe: str
    job: JobConfig
    spec: FeatureRecipe
    fingerprint: dict[str, Any]
    folds: list[dict[str, Any]]
    heads: list[TrainedHead] = field(default_factory=list)
    fold_of_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    evaluation: Evaluation | None = None
    risk_model: ModelFamily | None = None
    risk_heldout: dict[str, float] | None = None  # the risk head's held-out replay
    policy: TradingPolicy | None = None  # what the backtest traded and the package serves
    holdout_rows: np.ndarray | None = None  # dataset rows of the untouched final segment
    holdout_span: tuple[str, str] = ("", "")  # its first and last row's time
    holdout_note: str = ""  # why there is no holdout, when there is none
    holdout_evaluation: Evaluation | None = None
    #: The training rows' feature distribution (``package.drift``): bots score live rows on it.
    reference: dict[str, Any] | None = None
    #: Bars of history a window needs before its features equal training's (bar suites).
    history_bars: int | None = None
    #: The suite's transforms fit on every row: shipped with the package (issue 20).
    transforms: FittedTransforms | None = None
    transform_rows: np.ndarray | None = None  # feature rows the transform graphs must reproduce
