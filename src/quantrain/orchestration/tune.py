"""Ray Tune per symbol and head: Optuna TPE (seeded) proposes params, ASHA stops poor trials.

Execution shape, chosen for low overhead per trial:

- a *function* trainable; the symbol's feature matrix and folds go through the object store
  once per search (``tune.with_parameters``), not once per trial;
- ``reuse_actors``: a finished trial's worker process runs the next trial (no process start,
  no re-import of xgboost/lightgbm, no re-fetch of the data);
- no CSV/JSON/TensorBoard loggers, a silent reporter, no checkpoints, the experiment state in
  a temp dir that is removed afterwards; one in-process callback records every report;
- each trial gets ``tune.cpus_per_trial`` CPUs and trains with that many threads.

ASHA's resource is the *fold*: a trial reports the running mean of its out-of-sample score
after each walk-forward fold (``max_t`` = number of folds, grace period 1 by default). Rounds
are not the resource because early stopping on each fold's purged validation slice already
chooses them, and a per-round score would be an in-sample validation score, not an
out-of-sample one. No checkpoints are written: ASHA never pauses and resumes a trial (it only
stops it), the trial table is built from the reports themselves, and a trial that fails is
recorded as an error and costs at most its own few folds.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from quantrain.config import HeadConfig, JobConfig
from quantrain.data import DataSource, read_ohlcv
from quantrain.errors import ConfigError, QuantrainError
from quantrain.orchestration.fanout import connect
from quantrain.pipeline import tuning_inputs
from quantrain.split import Fold
from quantrain.suite.dataset import Dataset
from quantrain.tuning.search import (
    EARLY_STOPPED,
    FAILED,
    HeadSearch,
    SearchProgress,
    TrialRecord,
    TuneOutcome,
    fold_scores,
    head_metric,
    running_mean,
    space_for,
    status_of,
    tuned_heads,
)
from quantrain.tuning.space import Space, suggest

log = logging.getLogger(__name__)

SCORE = "score"  # the running mean over the folds so far: what ASHA and TPE compare
ProgressHook = Callable[[SearchProgress], None]


def _trial(
    config: dict[str, Any],
    *,
    head: HeadConfig,
    data: Dataset,
    folds: list[Fold],
    job: JobConfig,
    metric: str,
    n_jobs: int,
) -> None:
    """One trial: train and score fold after fold, reporting the running mean each time."""
    scores: list[float] = []
    for score in fold_scores(head, data, folds, job, config, metric=metric, n_jobs=n_jobs):
        scores.append(score)
        tune.report({SCORE: running_mean(scores), "fold_score": score, "folds": len(scores)})


@dataclass
class _TrialLog:
    params: dict[str, Any]
    scores: list[float] = field(default_factory=list)
    seconds: float = 0.0
    done: bool = False
    error: str | None = None


class _Recorder(tune.Callback):
    """Keeps every report in memory (no loggers needed) and feeds the progress display."""

    def __init__(
        self,
        symbol: str,
        head: str,
        metric: str,
        higher: bool,
        total: int,
        n_folds: int,
        on_progress: ProgressHook | None,
    ) -> None:
        self.symbol, self.head, self.metric = symbol, head, metric
        self.higher, self.total, self.n_folds = higher, total, n_folds
        self.on_progress = on_progress
        self.trials: dict[str, _TrialLog] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state; a display is not picklable
        # (and a resumed experiment would have its own).
        return {**self.__dict__, "on_progress": None}

    def _log(self, trial: Trial) -> _TrialLog:
        if trial.trial_id not in self.trials:
            self.trials[trial.trial_id] = _TrialLog(params=dict(trial.config))
        return self.trials[trial.trial_id]

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._log(trial)
        self._publish()

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        entry = self._log(trial)
        entry.scores.append(float(result["fold_score"]))
        entry.seconds = float(result.get("time_total_s", 0.0))
        self._publish()

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._log(trial).done = True
        self._publish()

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        entry = self._log(trial)
        entry.done = True
        entry.error = str(trial.error_file or "trial failed")
        self._publish()

    def records(self) -> list[TrialRecord]:
        return [
            TrialRecord(
                trial=trial_id,
                params=entry.params,
                fold_scores=tuple(entry.scores),
                status=status_of(len(entry.scores), self.n_folds, failed=entry.error is not None),
                seconds=entry.seconds,
                error=entry.error,
            )
            for trial_id, entry in self.trials.items()
        ]

    def _publish(self) -> None:
        if self.on_progress is None:
            return
        records = self.records()
        done = [r for r, e in zip(records, self.trials.values(), strict=True) if e.done]
        complete = [r for r in done if r.status not in (FAILED, EARLY_STOPPED)]
        means = [r.mean for r in complete if math.isfinite(r.mean)]
        best = (max(means) if self.higher else min(means)) if means else None
        self.on_progress(
            SearchProgress(
                symbol=self.symbol,
                head=self.head,
                total=self.total,
                done=len(done),
                running=len(records) - len(done),
                early_stopped=sum(r.status == EARLY_STOPPED for r in done),
                metric=self.metric,
                best=best,
            )
        )


@contextmanager
def _quiet_tune() -> Iterator[None]:
    """No automatic CSV/JSON/TensorBoard loggers for the searches run inside the block, no
    warning that the (deliberately absent) result files cannot be read back, and none of
    Tune's own printing on stdout (it prints an experiment banner even when silent): the
    progress display and the summary table are ours."""
    saved = os.environ.get("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS")
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    analysis_log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = analysis_log.level
    analysis_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        analysis_log.setLevel(level)
        if saved is None:
            os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)
        else:
            os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = saved


def _max_concurrent(job: JobConfig) -> int:
    if job.tune.max_concurrent_trials is not None:
        return job.tune.max_concurrent_trials
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(cpus // job.tune.cpus_per_trial))


def search_head(
    head: HeadConfig,
    data: Dataset,
    folds: list[Fold],
    job: JobConfig,
    *,
    symbol: str,
    space: Space | None = None,
    on_progress: ProgressHook | None = None,
) -> HeadSearch:
    """One head's search on Ray Tune (Ray must be initialised)."""
    settings = job.tune
    space = space if space is not None else space_for(job, head)
    metric, higher = head_metric(job, head)
    n_jobs = max(1, int(settings.cpus_per_trial))
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial, head=head, data=data, folds=folds, job=job, metric=metric, n_jobs=n_jobs
        ),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    import optuna

    # One "study created" line per head on stderr adds nothing to the progress display.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mode = "max" if higher else "min"
    searcher = OptunaSearch(
        space=functools.partial(suggest, space=space),  # picklable: Tune saves the searcher
        metric=SCORE,
        mode=mode,
        sampler=optuna.samplers.TPESampler(
            seed=settings.seed if settings.seed is not None else job.seed
        ),
    )
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            max_t=len(folds),
            grace_period=min(settings.grace_period, len(folds)),
            reduction_factor=settings.reduction_factor,
        )
        if settings.early_stopping and len(folds) > 1
        else FIFOScheduler()
    )
    recorder = _Recorder(
        symbol, head.name, metric, higher, settings.num_samples, len(folds), on_progress
    )
    storage = tempfile.mkdtemp(prefix="quantrain-tune-")
    started = time.perf_counter()
    try:
        with _quiet_tune():
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    metric=SCORE,
                    mode=mode,
                    search_alg=searcher,
                    scheduler=scheduler,
                    num_samples=settings.num_samples,
                    max_concurrent_trials=_max_concurrent(job),
                    time_budget_s=settings.time_budget_s,
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name=f"{symbol}-{head.name}",
                    storage_path=storage,
                    verbose=0,
                    callbacks=[recorder],
                    log_to_file=False,
                ),
            )
            tuner.fit()
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return HeadSearch(
        head=head.name,
        family=job.family_of(head),
        metric=metric,
        higher_is_better=higher,
        n_folds=len(folds),
        trials=tuple(recorder.records()),
        seconds=time.perf_counter() - started,
    )


def tune_symbol(
    source: DataSource,
    job: JobConfig,
    *,
    on_progress: ProgressHook | None = None,
) -> TuneOutcome:
    """Every tuned head of one symbol, on the same dataset and folds the pipeline uses."""
    loaded = read_ohlcv(source.path)
    data, folds = tuning_inputs(
        loaded.frame, symbol=source.symbol, job=job, timeframe=loaded.report.timeframe
    )
    searches = tuple(
        search_head(head, data, folds, job, symbol=source.symbol, on_progress=on_progress)
        for head in tuned_heads(job)
    )
    return TuneOutcome(source.symbol, searches)


def tune_symbols(
    sources: Sequence[DataSource],
    job: JobConfig,
    *,
    on_progress: ProgressHook | None = None,
    on_tuned: Callable[[TuneOutcome], None] | None = None,
) -> tuple[dict[str, TuneOutcome], dict[str, str]]:
    """Search every symbol in turn (the trials of one search run in parallel on the cluster);
    returns the outcomes and, per symbol that could not be tuned, why."""
    if job.data.kind != "ohlcv":
        raise ConfigError("tuning works on OHLCV jobs; journal jobs are trained without tune")
    connect(job.ray.address)
    outcomes: dict[str, TuneOutcome] = {}
    failures: dict[str, str] = {}
    for source in sources:
        try:
            outcomes[source.symbol] = tune_symbol(source, job, on_progress=on_progress)
        except QuantrainError as error:
            failures[source.symbol] = f"tuning failed: {error}"
            continue
        if on_tuned is not None:
            on_tuned(outcomes[source.symbol])
    return outcomes, failures
