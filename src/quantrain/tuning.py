"""Hyperparameter search without Ray: search spaces per family, the walk-forward objective, the
trial table and the best params. ``orchestration/tune.py`` runs these on Ray Tune; a plain
Optuna loop (``benchmarks/bench_tune.py``) runs exactly the same pieces in one process.

The objective is the mean out-of-sample score over the purged walk-forward folds, produced one
fold at a time so an early-stopping scheduler can cut a poor trial after its first folds. It is
never a shuffled split: a trial trains with :func:`quantrain.training.head_folds`, the code that
trains the packaged head.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import yaml

from quantrain.config import HeadConfig, JobConfig
from quantrain.dataset import TARGETS, Dataset
from quantrain.errors import ConfigError
from quantrain.evaluate import higher_is_better
from quantrain.split import Fold
from quantrain.training import head_folds

if TYPE_CHECKING:
    import optuna

SpecKind = Literal["uniform", "loguniform", "int", "logint", "choice", "fixed"]
SPEC_KINDS: tuple[str, ...] = ("uniform", "loguniform", "int", "logint", "choice")
#: Files a tuned package holds: the full trial table and the best params per head.
TABLE_FILE = "tuning.csv"
BEST_FILE = "tuning.json"
COMPLETED, EARLY_STOPPED, FAILED = "completed", "early-stopped", "error"


class SpaceError(ConfigError, ValueError):
    """A search-space entry is malformed (a ``ValueError`` too, so pydantic reports it with
    the job file's name)."""


@dataclass(frozen=True)
class ParamSpec:
    """How one parameter is searched: a range (``uniform``, ``loguniform``, ``int``,
    ``logint``), a list to pick from (``choice``), or a value held fixed."""

    name: str
    kind: SpecKind
    low: float = 0.0
    high: float = 0.0
    values: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """The value an Optuna trial proposes for this parameter."""
        if self.kind in ("uniform", "loguniform"):
            return trial.suggest_float(
                self.name, self.low, self.high, log=self.kind == "loguniform"
            )
        if self.kind in ("int", "logint"):
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.kind == "logint"
            )
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        return self.values[0]


Space = dict[str, ParamSpec]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_param(name: str, raw: Any, *, where: str = "tune.space") -> ParamSpec | None:
    """One entry of a job file's space: ``{loguniform: [0.01, 0.3]}``, ``{int: [2, 8]}``,
    ``{choice: [a, b]}``, a plain value (held fixed), or null (not searched)."""
    at = f"{where}.{name}"
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        if isinstance(raw, list | tuple):
            raise SpaceError(
                f"{at}: a bare list is ambiguous, got {list(raw)!r}; write "
                f"{{uniform: [lo, hi]}}, {{int: [lo, hi]}} or {{choice: [...]}}"
            )
        return ParamSpec(name, "fixed", values=(raw,))
    if len(raw) != 1:
        raise SpaceError(
            f"{at}: expected one of {', '.join(SPEC_KINDS)} with its arguments, e.g. "
            f"{{loguniform: [0.01, 0.3]}}, got {dict(raw)!r}"
        )
    ((kind, args),) = raw.items()
    if kind not in SPEC_KINDS:
        raise SpaceError(f"{at}: unknown kind {kind!r}; kinds: {', '.join(SPEC_KINDS)}")
    if kind == "choice":
        if not isinstance(args, list | tuple) or not args:
            raise SpaceError(f"{at}: choice needs a non-empty list of values, got {args!r}")
        return ParamSpec(name, "choice", values=tuple(args))
    if not isinstance(args, list | tuple) or len(args) != 2 or not all(map(_number, args)):
        raise SpaceError(f"{at}: {kind} needs [low, high] (two numbers), got {args!r}")
    low, high = args
    if low >= high:
        raise SpaceError(f"{at}: {kind} needs low < high, got [{low}, {high}]")
    if kind in ("int", "logint") and not all(
        isinstance(v, int) or float(v).is_integer() for v in (low, high)
    ):
        raise SpaceError(f"{at}: {kind} bounds must be integers, got [{low}, {high}]")
    if kind in ("loguniform", "logint") and low <= 0:
        raise SpaceError(f"{at}: {kind} needs low > 0 (it samples the logarithm), got {low}")
    return ParamSpec(name, kind, low=float(low), high=float(high))


def parse_space(
    raw: Mapping[str, Any], *, where: str = "tune.space"
) -> dict[str, ParamSpec | None]:
    """Every entry of ``raw`` checked (None marks a parameter taken out of the search)."""
    if not isinstance(raw, Mapping):
        raise SpaceError(f"{where}: expected a mapping of parameter -> spec, got {raw!r}")
    return {str(name): parse_param(str(name), spec, where=where) for name, spec in raw.items()}


def _spaces(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, Space]:
    parsed: dict[str, Space] = {}
    for family, entries in raw.items():
        specs = parse_space(entries, where=f"default space of {family}")
        parsed[family] = {k: v for k, v in specs.items() if v is not None}
    return parsed


#: Default search spaces per family: wide enough to matter, narrow enough for ~20 trials.
#: Round counts are not searched: early stopping on each fold's purged validation slice
#: chooses them.
DEFAULT_SPACES: dict[str, Space] = _spaces(
    {
        "xgboost": {
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "max_depth": {"int": [2, 8]},
            "min_child_weight": {"loguniform": [1.0, 50.0]},
            "subsample": {"uniform": [0.5, 1.0]},
            "colsample_bytree": {"uniform": [0.4, 1.0]},
            "reg_lambda": {"loguniform": [0.1, 20.0]},
        },
        "lightgbm": {
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "num_leaves": {"logint": [4, 64]},
            "min_data_in_leaf": {"logint": [10, 200]},
            "feature_fraction": {"uniform": [0.4, 1.0]},
            "bagging_fraction": {"uniform": [0.5, 1.0]},
            "lambda_l2": {"loguniform": [0.1, 20.0]},
        },
        "random_forest": {
            "max_depth": {"int": [4, 16]},
            "min_samples_leaf": {"logint": [5, 100]},
            "max_features": {"uniform": [0.2, 1.0]},
        },
        "extra_trees": {
            "max_depth": {"int": [4, 16]},
            "min_samples_leaf": {"logint": [5, 100]},
            "max_features": {"uniform": [0.2, 1.0]},
        },
    }
)


def space_for(job: JobConfig, head: HeadConfig) -> Space:
    """The family's default space, overlaid with ``tune.space`` then ``tune.head_space``;
    a null entry takes a parameter out of the search."""
    family = job.family_of(head)
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


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Define-by-run: ask ``trial`` for every searched parameter; returns the fixed ones
    (what Ray Tune's ``OptunaSearch`` expects from a define-by-run function)."""
    fixed: dict[str, Any] = {}
    for spec in space.values():
        value = spec.suggest(trial)
        if spec.kind == "fixed":
            fixed[spec.name] = value
    return fixed


def trial_params(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Every parameter of one trial (searched and fixed), for a plain Optuna loop."""
    fixed = suggest(trial, space)
    return {**trial.params, **fixed}


def head_metric(job: JobConfig, head: HeadConfig) -> tuple[str, bool]:
    """The score a head is tuned on and whether higher is better. A quantile head is tuned
    on its pinball loss unless the job names another metric for it: RMSE would pull a
    90th-percentile model towards the mean."""
    task = TARGETS[head.target].task
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
    """The suite's heads that ``tune.heads`` selects (all by default)."""
    wanted = job.tune.heads
    return [h for h in job.suite.heads if wanted is None or h.name in wanted]


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
    try:
        raw = yaml.safe_load(source.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML/JSON: {error}") from None
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
