"""Run a job: find its symbols' data, fan out one task per symbol, collect the results."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import pandas as pd

import quantrain
from quantrain.config import JobConfig
from quantrain.data import DataSource, ValidationReport, discover, read_ohlcv
from quantrain.data.discover import one_timeframe_per_symbol
from quantrain.data.exchange import DownloadReport, download_ohlcv, open_exchange
from quantrain.data.journal_sample import sample_journal_path
from quantrain.data.samples import sample_data_dir
from quantrain.errors import DataError
from quantrain.pipeline import StageEvent, SymbolResult
from quantrain.preflight import JobPlan, check_warm_start, preflight
from quantrain.redact import redact, redact_value
from quantrain.runtime.cloud import is_s3
from quantrain.store import open_store
from quantrain.store.runs import RECORD_FORMAT, new_run_id
from quantrain.suite.journal import journal_inputs
from quantrain.tuning.search import SearchProgress, TuneOutcome

log = logging.getLogger(__name__)


@overload
def absolute_path(uri: str) -> str: ...
@overload
def absolute_path(uri: None) -> None: ...
def absolute_path(uri: str | None) -> str | None:
    """A local path or ``file://`` URI as an absolute path of this machine; ``s3://`` and other
    URIs unchanged (their readers refuse what they do not support)."""
    if uri is None or ("://" in uri and not uri.startswith("file://")):
        return uri
    return os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))


def absolute_paths(job: JobConfig) -> JobConfig:
    """``job`` with every local path made absolute here, on the driver, before anything is
    submitted: a Ray task runs in its worker's directory (on a joined cluster, where the head
    was started), so a relative store or data path would write or read somewhere else there.
    Store, data, funding, events, warm start, params file and Ray Train storage alike."""
    data = job.data.model_copy(
        update={
            "path": absolute_path(job.data.path),
            "funding": absolute_path(job.data.funding),
            "events": absolute_path(job.data.events),
        }
    )
    cluster = job.ray.model_copy(update={"train_storage": absolute_path(job.ray.train_storage)})
    return job.model_copy(
        update={
            "store": absolute_path(job.store),
            "data": data,
            "ray": cluster,
            "warm_start": absolute_path(job.warm_start),
            "params_from": absolute_path(job.params_from),
        }
    )


def job_sources(job: JobConfig) -> list[DataSource]:
    """The data files a job trains on, one per symbol."""
    path = job.data.path or sample_data_dir()
    sources = discover(path, job.data.symbols)
    one_timeframe_per_symbol(sources, str(path))
    return sources


def _now() -> datetime:
    return datetime.now(UTC)


def _record_head(job: JobConfig, kind: str, run_id: str, started: datetime) -> dict[str, Any]:
    """The fields every run record starts with: which job, when, the config it resolved to
    (credentials masked: the record is read by everyone who reads the store)."""
    finished = _now()
    config = job.model_dump(mode="json")
    config["tracking"] = job.tracking.model_dump(mode="json") if job.tracking else None
    return {
        "format": RECORD_FORMAT,
        "run_id": run_id,
        "kind": kind,
        "job": job.name,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 2),
        "quantrain_version": quantrain.__version__,
        "store": redact(job.store),
        "suite": job.suite.name,
        "config": redact_value(config),
    }


def _symbol_entry(r: SymbolResult, suite: str) -> dict[str, Any]:
    return {
        "symbol": r.symbol,
        "status": "ok" if r.ok else "failed",
        "timeframe": r.timeframe or None,
        "rows": r.rows,
        "suite": suite,
        "version": r.version,
        "metrics": r.metrics,
        "backtest": r.backtest,
        "verdict": r.verdict,
        "holdout_return": r.holdout_return,
        "seconds": round(r.seconds, 2),
        "node": r.node,
        "promotion": r.promotion,
        "error": None if r.error is None else redact(r.error),
    }


def store_record(job: JobConfig, record: dict[str, Any]) -> str:
    """Keep a run's record in the job's store (``runs/<run_id>.json``); where it went."""
    return open_store(job.store).record_run(record)


def track_run(job: JobConfig, record: dict[str, Any]) -> str | None:
    """Report the run to the job's experiment tracker, if it names one; where it went."""
    if job.tracking is None:
        return None
    from quantrain.tracking import log_run

    return log_run(record, job.tracking.mlflow, job.tracking.experiment)


@dataclass(frozen=True)
class RunSummary:
    job: JobConfig
    results: list[SymbolResult]
    run_id: str = field(default_factory=new_run_id)
    started_at: datetime = field(default_factory=_now)

    def record(self) -> dict[str, Any]:
        """The run as the store keeps it: job, config, times, every symbol's outcome."""
        kind = "tune+train" if self.job.tune.enabled else "train"
        return {
            **_record_head(self.job, kind, self.run_id, self.started_at),
            "symbols": [_symbol_entry(r, self.job.suite.name) for r in self.results],
        }

    @property
    def failed(self) -> list[SymbolResult]:
        return [r for r in self.results if not r.ok]

    def save(self, directory: Path) -> Path:
        """Write the run summary (one row per symbol, every key metric) as CSV."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.job.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"
        rows = [
            {
                "symbol": r.symbol,
                "ok": r.ok,
                "rows": r.rows,
                "version": r.version,
                **r.metrics,
                **{f"backtest.{k}": v for k, v in r.backtest.items()},
                "seconds": round(r.seconds, 2),
                "node": r.node,
                "error": r.error,
            }
            for r in self.results
        ]
        pd.DataFrame(rows).to_csv(path, index=False)
        return path


@dataclass(frozen=True)
class TuneSummary:
    """What ``quantrain tune --no-train`` found: each symbol's searches, and failures."""

    job: JobConfig
    outcomes: dict[str, TuneOutcome]
    failures: dict[str, str]
    run_id: str = field(default_factory=new_run_id)
    started_at: datetime = field(default_factory=_now)

    def record(self) -> dict[str, Any]:
        """The search as the store keeps it: each symbol's best score and params per head."""
        symbols: list[dict[str, Any]] = [
            {"symbol": s, "status": "ok", "suite": self.job.suite.name, "tuning": o.summary()}
            for s, o in sorted(self.outcomes.items())
        ]
        symbols += [
            {"symbol": s, "status": "failed", "suite": self.job.suite.name, "error": redact(e)}
            for s, e in sorted(self.failures.items())
        ]
        return {**_record_head(self.job, "tune", self.run_id, self.started_at), "symbols": symbols}

    def save(self, directory: Path) -> Path:
        """Each symbol's ``tuning.csv`` and ``tuning.json`` under one folder per run; the
        ``tuning.json`` files feed ``quantrain train --params-from``."""
        folder = directory / f"{self.job.name}-tuning-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        for symbol, outcome in self.outcomes.items():
            (folder / symbol).mkdir(parents=True, exist_ok=True)
            for name, text in outcome.files().items():
                (folder / symbol / name).write_text(text)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def tune_job(
    job: JobConfig,
    *,
    on_progress: Callable[[SearchProgress], None] | None = None,
    on_tuned: Callable[[TuneOutcome], None] | None = None,
) -> TuneSummary:
    """Search every symbol's heads on Ray Tune without training packages."""
    from quantrain.orchestration.tune import tune_symbols  # Ray starts only when a job runs

    started = _now()
    # Every problem at once, before Ray starts.
    job = preflight(absolute_paths(job), find_sources=job_sources).job
    _check_tracking(job)
    outcomes, failures = tune_symbols(
        job_sources(job), job, on_progress=on_progress, on_tuned=on_tuned
    )
    return TuneSummary(job, outcomes, failures, new_run_id(started), started)


def _check_tracking(job: JobConfig) -> None:
    """A tracked job without mlflow installed stops here, before anything trains."""
    if job.tracking is not None:
        from quantrain.tracking import require_mlflow

        require_mlflow()


def plan_job(job: JobConfig) -> JobPlan:
    """``--dry-run``: the preflight alone (nothing is downloaded, trained or written, Ray never
    starts) and the plan it found; raises one error listing every problem."""
    job = absolute_paths(job)
    refresh = job.data.kind == "ohlcv" and job.data.exchange is not None
    return preflight(job, check_data=not refresh, find_sources=job_sources)


def run_job(
    job: JobConfig,
    *,
    on_result: Callable[[SymbolResult], None] | None = None,
    on_start: Callable[[list[DataSource]], None] | None = None,
    on_refresh: Callable[[DownloadReport], None] | None = None,
    on_tune: Callable[[SearchProgress], None] | None = None,
    on_tuned: Callable[[TuneOutcome], None] | None = None,
    on_stage: Callable[[StageEvent], None] | None = None,
) -> RunSummary:
    """Train every symbol of ``job`` on Ray and return one result per symbol (after refreshing
    its data from the job's exchange source, if it names one). With ``tune.enabled`` each
    symbol is searched first and trained with its best params. The summary's job has its
    local paths absolute (``absolute_paths``): where the packages really went. ``on_stage``
    hears each symbol's stages as its task reaches them."""
    from quantrain.orchestration import run_symbols  # Ray starts only when a job runs

    started = _now()
    refresh = job.data.kind == "ohlcv" and job.data.exchange is not None
    # Every config, data and store problem at once, before Ray starts (the data of an
    # exchange job once it is refreshed).
    job = preflight(absolute_paths(job), check_data=not refresh, find_sources=job_sources).job
    _check_tracking(job)
    preloaded: dict[str, Any] | None = None
    if job.data.kind == "journal":
        path = job.data.path or str(sample_journal_path())
        sources, frames, journal = journal_inputs(path, job.data.symbols)
        for field in journal.incomplete_fields():
            log.warning(
                "%s: %s missing in %d of %d trades, unusable in %d",
                journal.source,
                field.name,
                field.missing,
                journal.records,
                field.invalid,
            )
        preloaded = dict(frames)
    else:
        if job.data.exchange is not None:
            for report in refresh_from_exchange(job):
                log.info("refreshed %s", report.summary())
                if on_refresh is not None:
                    on_refresh(report)
            preflight(job, find_sources=job_sources)
        sources = job_sources(job)
    check_warm_start(job, sources)
    tuned: dict[str, TuneOutcome] | None = None
    failed: list[SymbolResult] = []
    if job.tune.enabled:
        from quantrain.orchestration.tune import tune_symbols

        tuned, failures = tune_symbols(sources, job, on_progress=on_tune, on_tuned=on_tuned)
        failed = [SymbolResult(symbol=s, ok=False, error=why) for s, why in failures.items()]
        sources = [s for s in sources if s.symbol not in failures]
    if on_start is not None:
        on_start(sources)
    for result in failed:
        if on_result is not None:
            on_result(result)
    results = run_symbols(
        sources, job, on_result=on_result, on_stage=on_stage, preloaded=preloaded, tuned=tuned
    )
    ordered = sorted(results + failed, key=lambda r: r.symbol)
    return RunSummary(job, ordered, new_run_id(started), started)


def refresh_from_exchange(job: JobConfig) -> list[DownloadReport]:
    """Bring ``data.path`` up to date from ``data.exchange`` for every job symbol (only new bars
    are fetched), before the symbols are discovered and trained."""
    source = job.data.exchange
    assert source is not None and job.data.path and job.data.symbols  # the config checks these
    venue = open_exchange(source.name)
    reports = []
    for symbol in job.data.symbols:
        reports.append(
            download_ohlcv(
                venue,
                symbol,
                source.timeframe,
                dataset=Path(job.data.path),
                since=source.since,
            )
        )
    return reports


@dataclass(frozen=True)
class FileCheck:
    """One file's validation: its report, or the refusal message."""

    path: str
    report: ValidationReport | None
    error: str | None


def validate_paths(paths: Iterable[str | Path]) -> list[FileCheck]:
    """Validate every data file named (directories expand to their ``SYMBOL_tf`` files)."""
    checks: list[FileCheck] = []
    for path in paths:
        try:
            many = is_s3(str(path)) or Path(path).is_dir()  # discover handles one s3 object too
            targets = [s.path for s in discover(path)] if many else [path]
        except DataError as error:
            checks.append(FileCheck(str(path), None, str(error)))
            continue
        for target in targets:
            try:
                checks.append(FileCheck(str(target), read_ohlcv(target).report, None))
            except DataError as error:
                checks.append(FileCheck(str(target), None, str(error)))
    return checks
