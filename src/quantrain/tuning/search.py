"""Hyperparameter search without Ray: search spaces per family, the walk-forward objective, the
trial table and the best params. ``orchestration/tune.py`` runs these on Ray Tune; a plain
Optuna loop (``benchmarks/bench_tune.py``) runs exactly the same pieces in one process.

The objective is the mean out-of-sample score over the purged walk-forward folds, produced one
fold at a time so an early-stopping scheduler can cut a poor trial after its first folds. It is
never a shuffled split: a trial trains with :func:`quantrain.suite.fit.head_folds`, the code that
trains the packaged head.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantrain.config import HeadConfig, JobConfig, read_yaml_file
from quantrain.errors import ConfigError
from quantrain.evaluate import higher_is_better
from quantrain.split import Fold
from quantrain.suite.dataset import Dataset, target_of
from quantrain.suite.fit import head_folds
from quantrain.tuning.space import (
    DEFAULT_SPACES,
    ParamSpec,
    Space,
    parse_space,
)

#: Files a tuned package holds: the full trial table and the best params per head.
TABLE_FILE = "tuning.csv"
BEST_FILE = "tuning.json"
COMPLETED, EARLY_STOPPED, FAILED = "completed", "early-stopped", "error"


def space_for(job: JobConfig, head: HeadConfig) -> Space:
    """The family's default space, overlaid with ``tune.space`` then ``tune.head_space``;
    a null entry takes a parameter out of the search."""
    family = job.family_of(head)
    if family == "auto":
        raise ConfigError(
            f"head {head.name!r}: family: auto cannot be tuned (each trial would train every "
            "candidate); fix: tune a head with a fixed family, or leave it out of tune.heads"
        )
    merged: dict[str, ParamSpec | None] = dict(DEFAULT_SPACES.get(family, {}))
    merged.update(parse_space(job.tune.space, where="tune.space"))
    merged.update(
        parse_space(job.tune.head_space.get(head.name, {}), where=f"tune.head_space.{head.name}")
    )
    space = {k: v for k, v in merged.items() if v is not None}
    if not any(spec.kind != "fixed" for spec in space.values()):
        raise ConfigError(
            f"head {head.name!r}: nothing to search for family {family!r} (it has no default "
            "space); give ranges in tune.space or tune.head_space"
        )
    return space


def head_metric(job: JobConfig, head: HeadConfig) -> tuple[str, bool]:
    """The score a head is tuned on and whether higher is better. A quantile head is tuned
    on its pinball loss unless the job names another metric for it: RMSE would pull a
    90th-percentile model towards the mean."""
    task = target_of(head.target).task
    quantile_head = task == "regression" and head.params.get("quantile") is not None
    default = "pinball" if quantile_head else job.tune.metric[task]
    metric = job.tune.head_metric.get(head.name) or default
    known = {"classification": ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")}.get(
        task, ("mae", "rmse", "pinball") if quantile_head else ("mae", "rmse")
    )
    if metric not in known:
        raise ConfigError(
            f"head {head.name!r} ({task}): metric {metric!r} is not computed for {task}; "
            f"choose one of {', '.join(known)}"
        )
    return metric, higher_is_better(metric)


def tuned_heads(job: JobConfig) -> list[HeadConfig]:
    """The suite's heads that ``tune.heads`` selects (all by default). Cascade heads are not
    searched: a trial would need the upstream's inner walk-forward per fold; they keep their
    params."""
    wanted = job.tune.heads
    cascade = [h.name for h in job.suite.heads if h.inputs and wanted and h.name in wanted]
    if cascade:
        raise ConfigError(
            f"tune.heads names cascade heads {cascade} (they read other heads' outputs), "
            "which quantrain does not search; fix: tune their upstream heads and set these "
            "heads' params by hand"
        )
    return [h for h in job.suite.heads if not h.inputs and (wanted is None or h.name in wanted)]


def fold_scores(
    head: HeadConfig,
    data: Dataset,
    folds: list[Fold],
    job: JobConfig,
    params: Mapping[str, Any],
    *,
    metric: str,
    n_jobs: int = 1,
) -> Iterator[float]:
    """The objective, one fold at a time: each fold trained and scored out of sample by the
    pipeline's own code, with ``params`` over the head's params and no importance."""
    for fold in folds:
        run = head_folds(head, data, [fold], job, n_jobs=n_jobs, params=params, importance=False)
        yield float(run.metrics[0][metric])


def running_mean(scores: list[float]) -> float:
    """The score reported after each fold: the mean over the folds so far (NaN folds skipped)."""
    finite = [s for s in scores if math.isfinite(s)]
    return float(np.mean(finite)) if finite else float("nan")


@dataclass(frozen=True)
class TrialRecord:
    """One trial: its params, the score of every fold it reached, and how it ended."""

    trial: str
    params: dict[str, Any]
    fold_scores: tuple[float, ...]
    status: str
    seconds: float
    error: str | None = None

    @property
    def mean(self) -> float:
        return running_mean(list(self.fold_scores))


def status_of(folds_reported: int, n_folds: int, *, failed: bool) -> str:
    """``completed`` (every fold), ``early-stopped`` (cut by the scheduler) or ``error``."""
    if failed:
        return FAILED
    return COMPLETED if folds_reported >= n_folds else EARLY_STOPPED


@dataclass(frozen=True)
class HeadSearch:
    """Every trial of one head's search and the metric it was scored on."""

    head: str
    family: str
    metric: str
    higher_is_better: bool
    n_folds: int
    trials: tuple[TrialRecord, ...]
    seconds: float = 0.0

    def best(self) -> TrialRecord:
        """The best trial among those that ran every fold (a trial cut after one fold has a
        mean over fewer folds, which is not comparable); failing that, the best of those that
        got furthest (a time budget can end a search before any trial completes)."""
        scored = [t for t in self.trials if t.status != FAILED and math.isfinite(t.mean)]
        if not scored:
            raise ConfigError(
                f"head {self.head!r}: no trial produced a score ({len(self.trials)} trials); "
                "see the errors in the trial table"
            )
        furthest = max(len(t.fold_scores) for t in scored)
        pool = [t for t in scored if len(t.fold_scores) == furthest]
        sign = 1.0 if self.higher_is_better else -1.0
        return max(pool, key=lambda t: sign * t.mean)

    def score_matrix(self) -> np.ndarray:
        """Trials × folds of fold scores, signed so higher is better; NaN where a trial stopped
        early or failed (what the probability of backtest overfitting is computed from)."""
        sign = 1.0 if self.higher_is_better else -1.0
        matrix = np.full((len(self.trials), self.n_folds), np.nan)
        for i, trial in enumerate(self.trials):
            if trial.status == COMPLETED:
                matrix[i, : len(trial.fold_scores)] = sign * np.asarray(trial.fold_scores)
        return matrix

    def counts(self) -> dict[str, int]:
        return {
            s: sum(t.status == s for t in self.trials) for s in (COMPLETED, EARLY_STOPPED, FAILED)
        }


@dataclass(frozen=True)
class TuneOutcome:
    """One symbol's searches: what goes into its package as ``tuning.csv`` + ``tuning.json``."""

    symbol: str
    searches: tuple[HeadSearch, ...] = field(default_factory=tuple)

    def best_params(self) -> dict[str, dict[str, Any]]:
        return {s.head: dict(s.best().params) for s in self.searches}

    def table(self) -> pd.DataFrame:
        """The full trial table: one row per trial and head."""
        rows = []
        for search in self.searches:
            for t in search.trials:
                row: dict[str, Any] = {
                    "head": search.head,
                    "trial": t.trial,
                    "status": t.status,
                    "metric": search.metric,
                    "mean": t.mean,
                    "folds": len(t.fold_scores),
                    **{
                        f"fold_{i}": t.fold_scores[i] if i < len(t.fold_scores) else None
                        for i in range(search.n_folds)
                    },
                    "seconds": round(t.seconds, 3),
                    "params": json.dumps(t.params, sort_keys=True),
                    **{f"param.{k}": v for k, v in sorted(t.params.items())},
                    "error": t.error,
                }
                rows.append(row)
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """``tuning.json``: per head the metric, the best trial, its fold scores and params."""
        out: dict[str, Any] = {}
        for s in self.searches:
            best = s.best()
            out[s.head] = {
                "family": s.family,
                "metric": s.metric,
                "higher_is_better": s.higher_is_better,
                "best_trial": best.trial,
                "score": best.mean,
                "fold_scores": list(best.fold_scores),
                "params": best.params,
                "trials": len(s.trials),
                **s.counts(),
                "seconds": round(s.seconds, 2),
            }
        return out

    def files(self) -> dict[str, str]:
        """``{file name: text}`` to write into the package before its manifest."""
        buffer = io.StringIO()
        self.table().to_csv(buffer, index=False)
        return {
            TABLE_FILE: buffer.getvalue(),
            BEST_FILE: json.dumps(self.summary(), indent=2, sort_keys=True, default=_plain),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- params from a package or a file ------------------------------------------------------


def load_params(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{head: {param: value}}`` from a tuned package directory (its ``tuning.json``), a
    ``tuning.json`` itself, or a YAML/JSON file of that shape."""
    source = Path(path)
    if source.is_dir():
        source = source / BEST_FILE
        if not source.is_file():
            raise ConfigError(
                f"{path}: this package was not tuned (no {BEST_FILE}); pass a tuned package "
                "or a YAML/JSON file {head: {param: value}}"
            )
    if not source.is_file():
        raise ConfigError(f"{path}: no such package directory or params file")
    raw = read_yaml_file(source, "params file")  # YAML is a superset of JSON
    return parse_params(raw, source=str(source))


def parse_params(raw: Any, *, source: str) -> dict[str, dict[str, Any]]:
    """Check the ``{head: {param: value}}`` shape; ``tuning.json`` entries give their params."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            f"{source}: expected a mapping {{head: {{param: value}}}}, got {type(raw).__name__}"
        )
    params: dict[str, dict[str, Any]] = {}
    for head, entry in raw.items():
        if isinstance(entry, Mapping) and isinstance(entry.get("params"), Mapping):
            entry = entry["params"]  # a tuning.json entry
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"{source}: head {head!r} must map to {{param: value}}, got {entry!r}"
            )
        bad = [k for k in entry if not isinstance(k, str)]
        if bad:
            raise ConfigError(f"{source}: head {head!r}: parameter names must be text, got {bad}")
        params[str(head)] = dict(entry)
    return params


def with_params(
    job: JobConfig, params: Mapping[str, Mapping[str, Any]], *, source: str = "params"
) -> JobConfig:
    """``job`` with ``params[head]`` merged over each named head's own params."""
    names = [h.name for h in job.suite.heads]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ConfigError(f"{source}: heads {unknown} are not in the suite; its heads: {names}")
    raw = job.model_dump(mode="json")
    for head in raw["suite"]["heads"]:
        head["params"] = {**head["params"], **params.get(head["name"], {})}
    return JobConfig.model_validate(raw)


def resolve_params_from(job: JobConfig) -> JobConfig:
    """Apply ``job.params_from`` (read here, on the driver, so workers need not see the file)."""
    if job.params_from is None:
        return job
    return with_params(job, load_params(job.params_from), source=job.params_from)


@dataclass(frozen=True)
class SearchProgress:
    """What a progress display shows for one running search."""

    symbol: str
    head: str
    total: int
    done: int
    running: int
    early_stopped: int
    metric: str
    best: float | None
