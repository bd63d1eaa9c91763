"""``family: auto``: a head whose family is chosen per symbol by its walk-forward score.

Every candidate family runs the head's folds (the same folds, rows and weights); the one with
the best pooled out-of-sample score on the head's metric (``tune.head_metric`` / ``tune.metric``,
as tuning scores it) wins and goes on to the holdout and the final fit. Only fold scores take
part: the untouched holdout is scored once, by the winner, after the choice. The package
records the winner and every candidate's score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from quantrain.config import HeadConfig, JobConfig
from quantrain.split import Fold
from quantrain.suite.dataset import Dataset
from quantrain.suite.fit import Fitter, HeadFolds, head_folds, plain_fit
from quantrain.suite.transforms import FittedTransforms
from quantrain.tuning.search import head_metric

AUTO = "auto"
#: What ``family: auto`` tries when a head names no candidates: two boosters and a linear model.
DEFAULT_CANDIDATES = ("xgboost", "lightgbm", "ftrl")


@dataclass(frozen=True)
class FamilyChoice:
    """The winner of ``family: auto`` and the pooled fold score every candidate got."""

    winner: str
    metric: str
    higher_is_better: bool
    scores: dict[str, float]

    def record(self) -> dict[str, Any]:
        """What the manifest keeps (NaN scores as null)."""
        return {
            "winner": self.winner,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "scores": {k: (v if math.isfinite(v) else None) for k, v in self.scores.items()},
        }


def candidates_of(job: JobConfig, head: HeadConfig) -> tuple[str, ...]:
    """The families an auto head chooses from; () for a head with a fixed family."""
    if job.family_of(head) != AUTO:
        return ()
    return head.candidates or DEFAULT_CANDIDATES


def pick(scores: dict[str, float], higher_is_better: bool) -> str:
    """The best finite score (the first candidate on a tie); the first candidate if none is."""
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    if not finite:
        return next(iter(scores))
    best = max if higher_is_better else min
    return best(finite, key=lambda k: finite[k])


def choose_family(
    config: HeadConfig,
    data: Dataset,
    folds: list[Fold],
    job: JobConfig,
    *,
    n_jobs: int = 1,
    fit: Fitter = plain_fit,
    on_fold: Callable[[int], None] | None = None,
    transforms: Sequence[FittedTransforms | None] | None = None,
) -> tuple[HeadConfig, HeadFolds, FamilyChoice | None]:
    """The head's folds, and for an auto head the winning candidate's: its config (family
    fixed), its folds and the choice. A head with a fixed family gets ``None`` as its choice.
    ``transforms``: the suite's, fit once per fold."""
    candidates = candidates_of(job, config)
    if not candidates:
        run = head_folds(
            config, data, folds, job, n_jobs=n_jobs, fit=fit, on_fold=on_fold, transforms=transforms
        )
        return config, run, None
    metric, higher = head_metric(job, config)
    runs: dict[str, tuple[HeadConfig, HeadFolds]] = {}
    for family in candidates:
        fixed = config.model_copy(update={"family": family, "candidates": ()})
        run = head_folds(
            fixed, data, folds, job, n_jobs=n_jobs, fit=fit, on_fold=on_fold, transforms=transforms
        )
        runs[family] = (fixed, run)
    scores = {family: float(run.pooled()[metric]) for family, (_, run) in runs.items()}
    winner = pick(scores, higher)
    chosen, run = runs[winner]
    return chosen, run, FamilyChoice(winner, metric, higher, scores)
