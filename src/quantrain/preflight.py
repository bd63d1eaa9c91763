"""The preflight: every config, data and store problem of a job found at once, before Ray.

``run``, ``train`` and ``tune`` call :func:`preflight` before any Ray call, so a typo, an
unreadable file, a symbol too short for its folds or a store that cannot be written is reported
in a second or two with exit status 2, all problems in one message, instead of one FAILED row
after Ray's start-up. ``--dry-run`` stops after it and prints the :class:`JobPlan`.

Data files are read whole with the same reader training uses (the check must agree with the
task); the folds are made by ``pipeline.development_split`` on a row-count stand-in of the
dataset (usable rows estimated as rows − feature warm-up − label horizon), so they are the
folds training will make to within those few rows.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import math
import os
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from quantrain.config import HeadConfig, JobConfig
from quantrain.data import DataSource, discover, read_ohlcv
from quantrain.data.discover import one_timeframe_per_symbol
from quantrain.data.journal_sample import sample_journal_path
from quantrain.data.samples import sample_data_dir
from quantrain.errors import ConfigError, DataError, QuantrainError
from quantrain.features import FeatureSpec, resolve_feature_set
from quantrain.labels import target_def
from quantrain.models import ModelFamily, get_family
from quantrain.models.variants import variant_params
from quantrain.package import read_manifest
from quantrain.runtime.cloud import is_s3
from quantrain.store import is_remote, open_store
from quantrain.suite.dataset import target_of
from quantrain.suite.family_choice import candidates_of
from quantrain.suite.fit import warm_start_path, warm_start_problems

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The rough rule when no previous package records a training time: seconds per symbol.
ROUGH_FIXED_S = 2.0
#: ... plus this many seconds per row, head and fit (each fold's fit and the final one).
ROUGH_ROW_FIT_S = 1.2e-4
#: Starting a local Ray cluster and its workers, before the first symbol trains.
RAY_START_S = 5.0


@dataclass(frozen=True)
class SymbolPlan:
    """One symbol as the preflight saw it."""

    symbol: str
    path: str
    rows: int
    timeframe: str
    #: Rows left after the feature warm-up and the label horizon (an estimate for OHLCV).
    usable: int = 0
    #: (training rows, test rows) of each walk-forward fold.
    folds: tuple[tuple[int, int], ...] = ()
    #: Rows kept back as the untouched holdout (0: none).
    holdout: int = 0
    #: Estimated training seconds, and where the number comes from.
    seconds: float = 0.0
    basis: str = ""


@dataclass(frozen=True)
class HeadPlan:
    name: str
    target: str
    family: str


@dataclass(frozen=True)
class JobPlan:
    """What a job would do: its (resolved) config, symbols, heads, store and time estimate."""

    job: JobConfig
    symbols: tuple[SymbolPlan, ...]
    heads: tuple[HeadPlan, ...]
    store: str
    #: Wall-clock estimate of the whole run (parallel symbols, Ray start-up included).
    seconds: float
    basis: str
    notes: tuple[str, ...] = ()


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    data_problems: int = 0
    notes: list[str] = field(default_factory=list)

    def attempt(self, call: Callable[[], T], *, data: bool = False) -> T | None:
        """``call()``, or None with its error recorded as a problem."""
        try:
            return call()
        except QuantrainError as error:
            self.problems.append(str(error))
            self.data_problems += int(data or isinstance(error, DataError))
            return None


def preflight(
    job: JobConfig,
    *,
    check_data: bool = True,
    find_sources: Callable[[JobConfig], list[DataSource]] | None = None,
) -> JobPlan:
    """Check ``job`` (paths already absolute) without starting Ray: config (params file,
    families, feature set, warm start), every symbol's data (readable, its timeframe, rows
    enough for the folds), and the store (writable, or reachable for ``s3://``). Raise one
    ``ConfigError`` (``DataError`` when data is at fault) listing every problem found, each
    with what is wrong and the fix; else return the plan. ``check_data=False`` skips the data
    (it is downloaded from the job's exchange first). ``find_sources`` finds the job's data
    files as the run will (``jobs.job_sources``); by default, ``discover`` of ``data.path``."""
    from quantrain.tuning.search import resolve_params_from

    found = _Findings()
    resolved = found.attempt(lambda: resolve_params_from(job))
    job = resolved or job
    found.problems += job_problems(job)
    spec = None
    if job.data.kind == "ohlcv":
        with contextlib.suppress(QuantrainError):  # job_problems has reported it
            spec = resolve_feature_set(job.features)
    symbols: list[SymbolPlan] = []
    if not check_data:
        found.notes.append(
            "data: refreshed from the job's exchange source when the job runs, so not checked now"
        )
    elif job.data.kind == "journal":
        symbols = _journal_symbols(job, found)
    else:
        find = find_sources or _sources
        sources = found.attempt(lambda: find(job), data=True) or []
        symbols = _ohlcv_symbols(job, sources, spec, found)
        if sources and job.warm_start is not None:
            found.attempt(lambda: check_warm_start(job, sources))
    store_seconds = _store_problems(job, [s.symbol for s in symbols], found)
    if found.problems:
        count = len(found.problems)
        listed = "\n".join(
            f"  {i}. " + problem.replace("\n", "\n     ")
            for i, problem in enumerate(found.problems, 1)
        )
        error = DataError if found.data_problems else ConfigError
        raise error(
            f"preflight: {count} problem{'s' if count != 1 else ''} found before starting "
            f"anything (nothing was trained or written):\n{listed}"
        )
    symbols = _estimate(job, symbols, store_seconds)
    total, basis = _total(job, symbols)
    heads = tuple(HeadPlan(h.name, h.target, job.family_of(h)) for h in job.suite.heads)
    return JobPlan(job, tuple(symbols), heads, job.store, total, basis, tuple(found.notes))


def check_job(job: JobConfig) -> None:
    """Refuse what would fail in every symbol (unknown family or feature set) before fan-out."""
    problems = job_problems(job)
    if problems:
        raise ConfigError("\n".join(problems))


def job_problems(job: JobConfig) -> list[str]:
    """Every problem ``check_job`` refuses: the feature set, and each head's family, task and
    params (one message each)."""
    problems = []
    try:
        resolve_feature_set(job.features)
    except QuantrainError as error:
        problems.append(f"features: {error}")
    unknown_families: set[str] = set()
    tuned = set(job.tune.heads or [h.name for h in job.suite.heads]) if job.tune.enabled else set()
    for head in job.suite.heads:
        if head.weighting == "reward" and job.data.kind != "ohlcv":
            problems.append(
                f"head {head.name!r}: weighting: reward reads the triple-barrier R of each "
                f"row's trade, which {job.data.kind} data has not; fix: drop weighting"
            )
        candidates = candidates_of(job, head)
        if candidates and head.name in tuned:
            problems.append(
                f"head {head.name!r}: family: auto cannot be tuned (each trial would train "
                "every candidate); fix: tune a head with a fixed family, or leave it out of "
                "tune.heads"
            )
        for key in candidates or (job.family_of(head),):
            problems.extend(_family_problems(job, head, key, unknown_families))
    return problems


def _family_problems(
    job: JobConfig, head: HeadConfig, key: str, unknown_families: set[str]
) -> list[str]:
    """What stops ``head`` from training with family ``key`` (an auto head: each candidate)."""
    try:
        family = get_family(key)
    except QuantrainError as error:
        if key in unknown_families:  # once per family, not per head
            return []
        unknown_families.add(key)
        return [f"head {head.name!r}: {error}"]
    task = target_of(head.target).task
    if task not in family.tags.tasks:
        return [
            f"head {head.name!r}: family {family.key!r} cannot do {task} "
            f"(target {head.target!r}); pick another family"
        ]
    parts = target_def(head.target).columns
    if bool(parts) != family.tags.multi_target:
        return [
            f"head {head.name!r}: target {head.target!r} has parts {list(parts or ())}, which "
            "only a multi-target family learns; fix: family: mlp_multitask"
            if parts
            else f"head {head.name!r}: family {family.key!r} learns a composite target "
            "(one column per task); fix: target: trade_path, or another family"
        ]
    problems = []
    if family.key == "gmm_regime" and job.suite.select_of(head) is not None:
        problems.append(
            f"head {head.name!r}: gmm_regime reads params.columns by position in the whole "
            "feature matrix, which select reorders; fix: drop select for this head"
        )
    try:
        variant_params(family.key, job.variant_of(head), where=f"head {head.name!r}")
    except ConfigError as error:
        problems.append(str(error))
    unknown = family.unknown_params(task, head.params)
    if unknown:
        problems.append(
            f"head {head.name!r}: {family.key} does not know the param(s) "
            f"{', '.join(map(repr, unknown))}{_near_params(unknown, family)}; fix: correct "
            f"the name under suite.heads[{head.name}].params (it would be ignored)"
        )
    return problems


def _near_params(unknown: list[str], family: type[ModelFamily]) -> str:
    """' (did you mean max_depth?)' from the family's own defaults, or ''."""
    near = {
        match
        for key in unknown
        for match in difflib.get_close_matches(key, list(family.default_params), n=1, cutoff=0.7)
    }
    return f" (did you mean {', '.join(sorted(near))}?)" if near else ""


def check_warm_start(job: JobConfig, sources: list[DataSource]) -> None:
    """Refuse, before any training, a warm start whose package cannot continue this job:
    every difference (symbol, features, head target/family/task/classes) is named."""
    if job.warm_start is None:
        return
    if job.data.kind != "ohlcv":
        raise ConfigError("warm_start continues OHLCV packages; journal jobs train from scratch")
    messages = []
    for source in sources:
        path = warm_start_path(job.warm_start, source.symbol)
        spec = resolve_feature_set(job.features, source.timeframe or None)
        problems = warm_start_problems(read_manifest(path), job, source.symbol, spec)
        if problems:
            messages.append(f"{source.symbol} from {path}:\n    - " + "\n    - ".join(problems))
    if messages:
        raise ConfigError(
            "cannot warm-start:\n  "
            + "\n  ".join(messages)
            + "\n  fix: warm-start from a package trained with this job's features and heads "
            "(use {symbol} in the path for several symbols), or train from scratch"
        )


def _sources(job: JobConfig) -> list[DataSource]:
    path = job.data.path or sample_data_dir()
    sources = discover(path, job.data.symbols)
    one_timeframe_per_symbol(sources, str(path))
    return sources


def _read(source: DataSource) -> tuple[int, str]:
    report = read_ohlcv(source.path).report
    return report.rows, report.timeframe


def _ohlcv_symbols(
    job: JobConfig, sources: list[DataSource], spec: FeatureSpec | None, found: _Findings
) -> list[SymbolPlan]:
    """Read every file (in parallel: s3 objects are downloads), then check each one's timeframe
    against its name and the features, and its rows against the folds."""

    def read(source: DataSource) -> tuple[int, str] | str:
        try:
            return _read(source)
        except QuantrainError as error:
            return str(error)

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(sources)))) as pool:
        results = list(pool.map(read, sources))
    plans = []
    for source, result in zip(sources, results, strict=True):
        where = f"{source.symbol} ({source.path})"
        if isinstance(result, str):
            found.problems.append(f"{source.symbol}: {result}")
            found.data_problems += 1
            continue
        rows, timeframe = result
        if source.timeframe and source.timeframe != timeframe:
            found.problems.append(
                f"{where}: the file name says {source.timeframe} bars but the timestamps are "
                f"{timeframe} apart\n  fix: rename the file or fix the data"
            )
            found.data_problems += 1
            continue
        if spec is None:
            plans.append(SymbolPlan(source.symbol, str(source.path), rows, timeframe))
            continue
        try:  # the set as adapted to this timeframe, as training resolves it
            warmup = resolve_feature_set(job.features, timeframe).warmup_bars(timeframe)
        except QuantrainError as error:
            found.problems.append(
                f"{where}: features {spec.name!r} on {timeframe} bars: {error}\n"
                "  fix: choose a feature set for this timeframe (features: {base: ..., drop: "
                "[htf_*]}) or resample the data"
            )
            continue
        plan = _folds(job, source, rows, timeframe, warmup, found)
        if plan is not None:
            plans.append(plan)
    return plans


def _folds(
    job: JobConfig, source: DataSource, rows: int, timeframe: str, warmup: int, found: _Findings
) -> SymbolPlan | None:
    """The folds ``bar_dataset`` and ``development_split`` would make for ``rows`` bars."""
    from quantrain.pipeline import development_split, min_train_rows
    from quantrain.suite.dataset import Dataset

    horizon = job.labels.horizon
    usable = max(0, rows - max(warmup, job.labels.atr_period) - horizon)
    needed = min_train_rows(job, usable) * 2
    where = f"{source.symbol} ({source.path})"
    if usable < needed:
        found.problems.append(
            f"{where}: {rows} bars leave about {usable} usable rows after the feature warm-up "
            f"({warmup} bars of {timeframe}) and the label horizon ({horizon} bars); the folds "
            f"need at least {needed} (2 × split.min_train: {job.split.min_train})\n"
            f"  fix: supply more history (about {needed - usable} more bars)"
            + (
                ""
                if job.split.min_train == "auto"
                else f", or lower split.min_train (e.g. --set split.min_train="
                f"{max(10, usable // (2 * (job.split.n_folds + 1)))}) or set it to auto"
            )
        )
        found.data_problems += 1
        return None
    stand_in = Dataset(
        X=np.empty((usable, 0), dtype=np.float32),
        targets={},
        label_end=np.minimum(np.arange(usable, dtype=np.int64) + horizon, usable - 1),
        stamps=pd.Series(np.arange(usable)),
    )
    try:
        _, folds, kept_out, note = development_split(stand_in, job)
    except QuantrainError as error:
        found.problems.append(
            f"{where}: about {usable} usable rows cannot make the folds: {error}\n"
            "  fix: supply more history, or lower split.min_train or split.n_folds"
        )
        found.data_problems += 1
        return None
    if note and job.split.holdout > 0:
        found.notes.append(f"{source.symbol}: {note}")
    return SymbolPlan(
        source.symbol,
        str(source.path),
        rows,
        timeframe,
        usable=usable,
        folds=tuple((len(f.train), len(f.test)) for f in folds),
        holdout=0 if kept_out is None else len(kept_out.test),
    )


def _journal_symbols(job: JobConfig, found: _Findings) -> list[SymbolPlan]:
    from quantrain.suite.journal import journal_inputs

    path = job.data.path or str(sample_journal_path())
    loaded = found.attempt(lambda: journal_inputs(path, job.data.symbols), data=True)
    if loaded is None:
        return []
    sources, frames, _ = loaded
    plans = []
    for source in sources:
        rows = len(frames[source.symbol])
        if rows < job.data.min_samples:
            found.notes.append(
                f"{source.symbol}: {rows} trades, under data.min_samples "
                f"{job.data.min_samples}: skipped when the job runs"
            )
        plans.append(SymbolPlan(source.symbol, path, rows, "trades", usable=rows))
    return plans


def _store_problems(job: JobConfig, symbols: list[str], found: _Findings) -> dict[str, float]:
    """Check the store can take packages (an ``s3://`` one: one listing, which also reads
    the previous runs); return each symbol's previous training seconds (the newest package of
    this suite that records them)."""
    uri = job.store
    if not is_remote(uri) and "://" not in uri.removeprefix("file://"):
        local = Path(uri.removeprefix("file://"))
        problem = _local_store_problem(local)
        if problem is not None:
            found.problems.append(problem)
            return {}
        if not local.is_dir():
            return {}
    store = found.attempt(lambda: open_store(uri))
    if store is None:
        return {}
    try:
        manifests = store.newest_manifests(job.suite.name, symbols)
    except QuantrainError as error:
        if is_s3(uri):
            found.problems.append(
                f"store {uri}: not reachable: {error}\n  fix: check the bucket name, the "
                "endpoint (AWS_ENDPOINT_URL) and credentials"
            )
        else:
            found.notes.append(f"store {uri}: previous training times unreadable ({error})")
        return {}
    seconds = {}
    for symbol, manifest in manifests.items():
        value = manifest.get("train_seconds")
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf:
            seconds[symbol] = float(value)
    return seconds


def _local_store_problem(root: Path) -> str | None:
    """Why packages could not be written under ``root`` (a file, or no write permission)."""
    if root.exists() and not root.is_dir():
        return (
            f"store {root}: is a file, not a directory\n  fix: point --store (or the job's "
            "store:) at a directory, or at s3://BUCKET/PREFIX"
        )
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return (
            f"store {root}: cannot be created, {existing} is a file\n  fix: point --store (or "
            "the job's store:) at a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "cannot be written" if existing == root else f"cannot be created in {existing}"
        return (
            f"store {root}: {what} (no write permission)\n  fix: choose a store directory you "
            "can write, or fix its permissions"
        )
    return None


def _estimate(
    job: JobConfig, symbols: list[SymbolPlan], previous: dict[str, float]
) -> list[SymbolPlan]:
    """Each symbol's seconds: its newest package's ``train_seconds``, else its rows at the
    median seconds per row of the symbols that have both, else the rough rule."""
    rates = [previous[s.symbol] / s.rows for s in symbols if s.symbol in previous and s.rows]
    rate = statistics.median(rates) if rates else None
    fits = len(job.suite.heads) * (job.split.n_folds + 1)
    tuning = 1 + job.tune.num_samples / 2 if job.tune.enabled else 1.0
    out = []
    for plan in symbols:
        if plan.symbol in previous:
            seconds, basis = previous[plan.symbol], "previous package"
        elif rate is not None:
            seconds, basis = plan.rows * rate, "rows × other symbols' rate"
        else:
            seconds = (ROUGH_FIXED_S + ROUGH_ROW_FIT_S * plan.usable * fits) * tuning
            basis = "rough rule"
        out.append(SymbolPlan(**{**plan.__dict__, "seconds": round(seconds, 1), "basis": basis}))
    return out


def _total(job: JobConfig, symbols: list[SymbolPlan]) -> tuple[float, str]:
    """The run's wall clock: symbols spread over this machine's CPUs (a cluster: at least as
    fast), plus Ray's start-up."""
    from quantrain.runtime.cpus import usable_cpus

    if not symbols:
        return 0.0, "nothing to train"
    slots = max(1, int(usable_cpus() // job.ray.num_cpus_per_symbol))
    times = [s.seconds for s in symbols]
    total = max(max(times), sum(times) / slots) + RAY_START_S
    bases = sorted({s.basis for s in symbols})
    if "rough rule" in bases:  # spell the rule out: it is a guess, not a measurement
        bases[bases.index("rough rule")] = (
            f"rough rule ({ROUGH_FIXED_S:g} s + {ROUGH_ROW_FIT_S * 1000:g} ms per usable row × "
            "head × fit, folds + final"
            + (", × (1 + tune.num_samples / 2) when tuning" if job.tune.enabled else "")
            + "; no previous package in the store)"
        )
    basis = (
        f"{', '.join(bases)}; {len(symbols)} symbol(s) on {slots} parallel slot(s) + "
        f"~{RAY_START_S:g} s Ray start-up"
    )
    return round(total, 1), basis
