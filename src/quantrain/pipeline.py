"""One symbol, end to end: features → labels → walk-forward folds → heads → export → package.

This is what a Ray task calls. It imports no Ray and parses no options; stages are functions of
(frame, config) with no hidden state, and every random choice comes from the job's seed.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantrain.config import JobConfig
from quantrain.data import DataSource, LoadedOHLCV, read_ohlcv
from quantrain.errors import (
    ConfigError,
    DataError,
    PromotionRefused,
    QuantrainError,
    StoreConflictError,
    StoreError,
)
from quantrain.evaluate.evaluation import (
    HeadOOS,
    evaluate_bars,
    train_risk_head,
)
from quantrain.evaluate.verdict import selection_bias
from quantrain.features import (
    FeatureRecipe,
    FeatureSpec,
    atr,
    compute_feature_matrix,
    history_to_converge,
    resolve_feature_set,
)
from quantrain.features.causality import refuse_lookahead
from quantrain.features.exogenous import merge_exogenous
from quantrain.features.journal_spec import journal_spec
from quantrain.fsmodes import as_umask_allows
from quantrain.labels import (
    BarLabelSettings,
    TripleBarrierParams,
    label_bars,
    minutes_to_event,
    news_override,
    taken_trade_r,
    target_def,
    volume_zscore,
)
from quantrain.models import ModelFamily
from quantrain.package.drift import fit_reference
from quantrain.package.manifest import parse_manifest
from quantrain.package.writer import write_package
from quantrain.policy import TradingPolicy
from quantrain.split import Fold, holdout, purged_kfold, walk_forward
from quantrain.store import ModelStore, open_store
from quantrain.suite.cascade import Upstream, cascade_order, fit_cascade_head, upstream_of
from quantrain.suite.dataset import Dataset
from quantrain.suite.family_choice import choose_family
from quantrain.suite.fit import (
    Fitter,
    fit_final,
    fold_transforms,
    head_folds,
    head_view,
    plain_fit,
    warm_start_models,
    warm_start_path,
    with_column_positions,
)
from quantrain.suite.heads import TrainedHead, TrainedSuite
from quantrain.suite.journal import JOURNAL_TIMEFRAME, build_journal_dataset, journal_fingerprint
from quantrain.suite.transforms import fit_transforms
from quantrain.tuning.search import TuneOutcome, with_params

log = logging.getLogger(__name__)

PARITY_ROWS = 2000

#: Told each stage of a symbol as it starts ("features", "direction fold 2/3", "push", ...):
#: a Ray task passes it back to the driver, so a long symbol is never silent.
StageCallback = Callable[[str], None]


def _no_stage(stage: str) -> None:
    """The default: nobody is listening."""


@dataclass(frozen=True)
class StageEvent:
    """One stage of one symbol starting, stamped by the process running it (plain data: it
    crosses process boundaries; durations come from two stamps of the same process)."""

    symbol: str
    stage: str
    at: float


@dataclass(frozen=True)
class SymbolResult:
    """What one symbol's run reports back (plain data: it crosses process boundaries)."""

    symbol: str
    ok: bool
    timeframe: str = ""
    rows: int = 0
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    node: str | None = None
    promotion: str | None = None
    backtest: dict[str, float | None] = field(default_factory=dict)
    #: The package's one-line verdict (edge after costs or not) and its untouched holdout's
    #: net return, when it has those.
    verdict: str | None = None
    holdout_return: float | None = None


def fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """Rows, span and sha256 of the exact OHLCV values a package was trained on."""
    nanos = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")
    digest = hashlib.sha256(nanos.astype(np.int64).tobytes())
    for column in ("open", "high", "low", "close", "volume"):
        digest.update(frame[column].to_numpy(dtype=np.float64).tobytes())
    return {
        "rows": len(frame),
        "first": frame["timestamp"].iloc[0].isoformat(),
        "last": frame["timestamp"].iloc[-1].isoformat(),
        "sha256": digest.hexdigest(),
    }


def build_dataset(frame: pd.DataFrame, spec: FeatureSpec, job: JobConfig) -> Dataset:
    """Features and every bar target, aligned on the bars where both exist."""
    high, low, close = (frame[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close"))
    cfg = job.labels
    labelled = label_bars(
        high,
        low,
        close,
        atr(high, low, close, cfg.atr_period),
        BarLabelSettings(
            barrier=TripleBarrierParams(
                k_tp=cfg.k_tp,
                k_sl=cfg.k_sl,
                horizon=cfg.horizon,
                r_min=cfg.r_min,
                r_max=cfg.r_max,
                entry=cfg.entry,
            ),
            direction_method=cfg.direction_method,
            neutral_band=cfg.neutral_band,
            tp_levels=cfg.tp_levels,
            timing_fast=cfg.timing_fast,
            timing_clean=cfg.timing_clean,
        ),
        open_=frame["open"].to_numpy(dtype=np.float64),
    )
    targets = dict(labelled.targets)
    news = cfg.news_override
    readers = [h.name for h in job.suite.heads if h.target == "direction"]
    if news.enabled and readers:
        try:
            minutes = minutes_to_event(frame)
        except ConfigError as error:
            raise ConfigError(f"head {readers[0]!r}: {error}") from None
        targets["direction"] = news_override(
            np.asarray(targets["direction"], dtype=np.int8),
            minutes,
            volume_zscore(frame["volume"].to_numpy(dtype=np.float64), news.volume_window),
            minutes=news.minutes,
            min_volume_z=news.volume_z,
        )
        # A forced HOLD takes no trade, so its size target follows (see taken_trade_r).
        targets["position_size"] = taken_trade_r(
            np.asarray(targets["direction"], dtype=np.int8), labelled.barrier
        )
    labels = labelled.barrier
    X, bars = training_matrix(compute_feature_matrix(frame, spec), labels.valid)
    label_end = np.searchsorted(bars, labels.label_end[bars], side="right") - 1
    return Dataset(
        X=X,
        targets={name: values[bars] for name, values in targets.items()},
        label_end=label_end.astype(np.int64),
        stamps=frame["timestamp"].iloc[bars].reset_index(drop=True),
        bars=bars,
        labels=labels,
        bins={
            name: getattr(cfg, binned_by)
            for name in targets
            if (binned_by := target_def(name).binned_by) is not None
        },
        columns=tuple(spec.columns()),
    )


def training_matrix(matrix: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float32 rows models train on (labelled, every feature finite) and their bar
    positions. Column by column: no float64 copy of the rows besides the features themselves
    (at five years of 5m bars each copy is 330 MB)."""
    finite = np.array(valid, dtype=bool)
    for j in range(matrix.shape[1]):
        finite &= np.isfinite(matrix[:, j])
    bars = np.flatnonzero(finite)
    X = np.empty((len(bars), matrix.shape[1]), dtype=np.float32)
    for j in range(matrix.shape[1]):
        X[:, j] = matrix[bars, j]
    return X, bars


def with_exogenous(frame: pd.DataFrame, job: JobConfig, symbol: str) -> pd.DataFrame:
    """The bars with the job's funding rates and event calendar merged as of each bar's close
    (unchanged when the job names neither). A bot serving the package merges the same way."""
    data = job.data
    if data.funding is None and data.events is None:
        return frame
    return merge_exogenous(
        frame,
        funding=None if data.funding is None else data.funding.replace("{symbol}", symbol),
        events=data.events,
        min_impact=data.min_impact,
    )


#: ``split.min_train: auto`` never asks folds for fewer training rows than this (bars) ...
AUTO_MIN_TRAIN = 200
#: ... or trades (a journal has far fewer rows), nor for more than AUTO_MIN_TRAIN_CAP.
AUTO_MIN_TRAIN_TRADES = 50
AUTO_MIN_TRAIN_CAP = 1000


def min_train_rows(job: JobConfig, rows: int) -> int:
    """The training rows every fold needs: ``split.min_train`` as given, or for ``auto`` half
    of what the first walk-forward fold trains on (``rows // (2 × (n_folds + 1))``: an eighth
    of the rows with 3 folds), clamped to [200 bars (50 trades for a journal), 1000]."""
    value = job.split.min_train
    return _auto_min_train(job, rows) if value == "auto" else int(value)


def _auto_min_train(job: JobConfig, rows: int) -> int:
    floor = AUTO_MIN_TRAIN_TRADES if job.data.kind == "journal" else AUTO_MIN_TRAIN
    return min(AUTO_MIN_TRAIN_CAP, max(floor, rows // (2 * (job.split.n_folds + 1))))


def _min_train_fix(job: JobConfig) -> str:
    if job.split.min_train == "auto":
        return f"supply more history (split.min_train: auto needs {AUTO_MIN_TRAIN} at least)"
    return "supply more history or lower split.min_train (or set it to auto)"


def bar_dataset(
    frame: pd.DataFrame, *, symbol: str, job: JobConfig, timeframe: str | None = None
) -> tuple[Dataset, FeatureSpec]:
    """One symbol's checked dataset and feature spec (the job's set adapted to the data's
    ``timeframe``): where training and tuning both start."""
    spec = resolve_feature_set(job.features, timeframe)
    frame = with_exogenous(frame, job, symbol)
    refuse_lookahead(frame, spec)
    data = build_dataset(frame, spec, job)
    needed = min_train_rows(job, len(data.X)) * 2
    if job.split.min_train == "auto" and job.split.mode != "purged_kfold":
        # the first walk-forward fold trains on 1 / (n_folds + 1) of the rows, less the purge
        reach = AUTO_MIN_TRAIN + job.labels.horizon + job.split.embargo
        needed = max(needed, reach * (job.split.n_folds + 1))
    if len(data.X) < needed:
        raise DataError(
            f"{symbol}: only {len(data.X)} usable rows after the feature warm-up "
            f"({spec.warmup_bars(timeframe)} bars) and the label horizon "
            f"({job.labels.horizon} bars); need at least {needed}. fix: {_min_train_fix(job)}."
        )
    return data, spec


def make_folds(data: Dataset, job: JobConfig) -> list[Fold]:
    """The job's purged folds over ``data``: walk-forward, or purged k-fold when asked."""
    min_train = min_train_rows(job, len(data.X))
    try:
        if job.split.mode == "purged_kfold":
            return purged_kfold(
                len(data.X),
                n_splits=job.split.n_folds,
                label_end=data.label_end,
                embargo=job.split.embargo,
                min_train=min_train,
            )
        return walk_forward(
            len(data.X),
            n_folds=job.split.n_folds,
            label_end=data.label_end,
            mode=job.split.mode,
            min_train=min_train,
            embargo=job.split.embargo,
        )
    except ConfigError as error:
        setting = job.split.min_train
        if setting == "auto" or f"expected ≥ {min_train} " not in str(error):
            raise
        raise ConfigError(
            f"{error}; or lower split.min_train (it is {setting}; `auto` would ask "
            f"{_auto_min_train(job, len(data.X))} of these {len(data.X)} rows)"
        ) from None


def tuning_inputs(
    frame: pd.DataFrame, *, symbol: str, job: JobConfig, timeframe: str | None = None
) -> tuple[Dataset, list[Fold]]:
    """The dataset and folds a search scores trials on: exactly the package's folds, on the
    development rows only (the holdout stays untouched by the search)."""
    data, _ = bar_dataset(frame, symbol=symbol, job=job, timeframe=timeframe)
    development, folds, _, _ = development_split(data, job)
    return development, folds


def train_suite(
    frame: pd.DataFrame,
    *,
    symbol: str,
    timeframe: str,
    job: JobConfig,
    n_jobs: int = 1,
    fit: Fitter = plain_fit,
    warm: Mapping[str, ModelFamily] | None = None,
    on_stage: StageCallback = _no_stage,
) -> TrainedSuite:
    """Walk-forward out-of-sample metrics for every head, then final models on all rows
    (continuing ``warm[head]``'s trees where given)."""
    on_stage("features and labels")
    data, spec = bar_dataset(frame, symbol=symbol, job=job, timeframe=timeframe)
    suite = fit_suite(
        data,
        symbol=symbol,
        timeframe=timeframe,
        job=job,
        spec=spec,
        fingerprint=fingerprint(frame),
        n_jobs=n_jobs,
        fit=fit,
        warm=warm,
        on_stage=on_stage,
    )
    bars = data.bars
    assert bars is not None
    del data  # the training matrix: the evaluation needs only its rows' bar positions
    on_stage("backtest")
    suite.history_bars = history_to_converge(
        with_exogenous(frame, job, symbol), spec, timeframe=timeframe
    )
    suite.policy = trading_policy(job)
    suite.evaluation = evaluate_bars(
        frame,
        bars,
        suite.fold_of_row,
        [head_oos(head) for head in suite.heads],
        timeframe=timeframe,
        policy=suite.policy,
        settings=job.evaluate,
        seed=job.seed,
    )
    risk = train_risk_head(suite.evaluation.trades, job.evaluate, seed=job.seed)
    suite.risk_model, suite.risk_heldout = risk.model, risk.heldout
    suite.evaluation.notes.append(risk.note)
    if suite.holdout_rows is not None:
        suite.holdout_evaluation = evaluate_bars(
            frame,
            bars,
            np.zeros(len(suite.holdout_rows), dtype=np.int64),
            [holdout_oos(head, suite.holdout_rows) for head in suite.heads],
            timeframe=timeframe,
            policy=suite.policy,
            settings=job.evaluate,
            seed=job.seed,
            baselines=False,
        )
    return suite


def trading_policy(job: JobConfig) -> TradingPolicy | None:
    """The policy a bar suite trades and its package serves (None without a direction head):
    the first direction head decides, the first position-size head sizes, and the first
    meta_label head reading that direction head gates its signals."""
    heads = job.suite.heads
    direction = next((h.name for h in heads if h.target == "direction"), None)
    if direction is None:
        return None
    meta = (h.name for h in heads if h.target == "meta_label" and direction in h.inputs)
    labels, evaluate = job.labels, job.evaluate
    return TradingPolicy(
        direction_head=direction,
        size_head=next((h.name for h in heads if h.target == "position_size"), None),
        threshold=evaluate.threshold,
        k_tp=labels.k_tp,
        k_sl=labels.k_sl,
        horizon=labels.horizon,
        atr_period=labels.atr_period,
        entry=labels.entry,
        r_max=labels.r_max,
        leverage_cap=evaluate.leverage_cap,
        fee_bps=evaluate.fee_bps,
        slippage_bps=evaluate.slippage_bps,
        meta_head=next(meta, None),
        meta_threshold=evaluate.meta_threshold,
    )


def head_oos(head: TrainedHead) -> HeadOOS:
    """A head's walk-forward out-of-sample outputs, as the evaluation reads them."""
    return _oos(head, head.oos_rows, head.oos_outputs, head.oos_truth)


def holdout_oos(head: TrainedHead, rows: np.ndarray) -> HeadOOS:
    """A head's outputs on the untouched holdout rows."""
    assert head.holdout_outputs is not None and head.holdout_truth is not None
    return _oos(head, rows, head.holdout_outputs, head.holdout_truth)


def _oos(head: TrainedHead, rows: np.ndarray, outputs: np.ndarray, truth: np.ndarray) -> HeadOOS:
    return HeadOOS(
        name=head.config.name,
        target=head.config.target,
        task=head.target.task,
        classes=head.target.classes,
        rows=rows,
        outputs=outputs,
        truth=truth,
    )


def train_journal_suite(
    frame: pd.DataFrame, *, symbol: str, job: JobConfig, n_jobs: int = 1
) -> TrainedSuite:
    """One asset's trades: the journal heads on purged walk-forward folds over trade order."""
    spec = journal_spec(job.data.journal_features)
    targets = [head.target for head in job.suite.heads]
    data, dropped = build_journal_dataset(frame, spec, targets, symbol=symbol)
    if len(data.X) < job.data.min_samples:
        raise DataError(
            f"{symbol}: only {len(data.X)} trades with outcomes for {', '.join(targets)} "
            f"({dropped} more lack one); need at least {job.data.min_samples} "
            "(data.min_samples), so training is skipped. fix: journal more trades, or lower "
            "data.min_samples if you accept noisier models"
        )
    min_train = min_train_rows(job, len(data.X))
    if len(data.X) < min_train * 2:
        raise DataError(
            f"{symbol}: {len(data.X)} trades cannot make walk-forward folds with "
            f"split.min_train {job.split.min_train} ({min_train} trades); fix: lower "
            f"split.min_train (e.g. {max(10, len(data.X) // (job.split.n_folds + 2))})"
        )
    return fit_suite(
        data,
        symbol=symbol,
        timeframe=JOURNAL_TIMEFRAME,
        job=job,
        spec=spec,
        fingerprint=journal_fingerprint(frame, data),
        n_jobs=n_jobs,
    )


def development_split(
    data: Dataset, job: JobConfig
) -> tuple[Dataset, list[Fold], Fold | None, str]:
    """The rows folds and tuning may use with their folds, the untouched final segment (its
    training rows are the development rows, purged so no label reaches into it), and why
    there is none."""
    fraction = job.split.holdout
    if fraction == 0:
        return data, make_folds(data, job), None, "no untouched holdout (split.holdout: 0)"
    kept_out = holdout(
        len(data.X), test_fraction=fraction, label_end=data.label_end, embargo=job.split.embargo
    )
    rows = int(kept_out.test[0])
    development = data.first(rows)
    try:
        folds = make_folds(development, job)
    except ConfigError as error:
        return (
            data,
            make_folds(data, job),
            None,
            (
                f"no untouched holdout: keeping {fraction:.0%} of {len(data.X)} rows back leaves "
                f"too few for the folds ({error}); supply more history, or lower split.min_train "
                "or split.n_folds"
            ),
        )
    return development, folds, kept_out, ""


def fit_suite(
    data: Dataset,
    *,
    symbol: str,
    timeframe: str,
    job: JobConfig,
    spec: FeatureRecipe,
    fingerprint: dict[str, Any],
    n_jobs: int = 1,
    fit: Fitter = plain_fit,
    warm: Mapping[str, ModelFamily] | None = None,
    on_stage: StageCallback = _no_stage,
) -> TrainedSuite:
    """Purged walk-forward folds over the development rows, each head scored out of sample on
    every fold and once on the untouched holdout rows after them, then each head's final model
    fit on all rows with the round budget the folds chose."""
    development, folds, kept_out, holdout_note = development_split(data, job)
    suite = TrainedSuite(
        symbol=symbol,
        timeframe=timeframe,
        job=job,
        spec=spec,
        fingerprint=fingerprint,
        folds=[
            {
                "fold": f.index,
                "train_rows": len(f.train),
                "test_rows": len(f.test),
                "purged": f.purged,
                "embargoed": f.embargoed,
                "test_start": data.stamps.iloc[f.test[0]].isoformat(),
                "test_end": data.stamps.iloc[f.test[-1]].isoformat(),
            }
            for f in folds
        ],
        holdout_rows=None if kept_out is None else kept_out.test,
        holdout_span=("", "")
        if kept_out is None
        else (
            data.stamps.iloc[kept_out.test[0]].isoformat(),
            data.stamps.iloc[kept_out.test[-1]].isoformat(),
        ),
        holdout_note=holdout_note,
        reference=fit_reference(data.X, spec.columns()),
    )
    for config in job.suite.heads:
        if config.target not in data.targets:
            raise ConfigError(
                f"head {config.name!r}: target {config.target!r} is not labelled from this data; "
                f"available: {', '.join(data.targets)}"
            )
    # Transforms fit once per fold (and for the holdout and the final models), shared by heads.
    transforms = fold_transforms(development, folds, job)
    held_transforms = None if kept_out is None else fold_transforms(data, [kept_out], job)
    if job.suite.transforms:
        suite.transforms = fit_transforms(job.suite.transforms, data, None, seed=job.seed)
        suite.transform_rows = data.X[-PARITY_ROWS:]
    upstream: dict[str, Upstream] = {}
    for config in cascade_order(job.suite.heads):
        if config.inputs:
            suite.heads.append(
                fit_cascade_head(
                    config,
                    data,
                    development,
                    folds,
                    kept_out,
                    upstream,
                    job,
                    parity_rows=PARITY_ROWS,
                    n_jobs=n_jobs,
                    fit=fit,
                    warm_from=(warm or {}).get(config.name),
                    on_stage=on_stage,
                )
            )
            continue
        config = with_column_positions(config, spec.columns())
        config, run, choice = choose_family(  # family: auto -> the winning candidate's config
            config,
            development,
            folds,
            job,
            n_jobs=n_jobs,
            fit=fit,
            on_fold=_fold_stage(on_stage, config.name, len(folds)),
            transforms=transforms,
        )
        held = None
        if kept_out is not None:
            on_stage(f"{config.name} holdout")
            held = head_folds(
                config,
                data,
                [kept_out],
                job,
                n_jobs=n_jobs,
                importance=False,
                fit=fit,
                transforms=held_transforms,
            )
        on_stage(f"{config.name} final fit")
        y_all, _ = data.fold_target(config.target)
        view, _ = head_view(config, data, y_all, None, job, suite.transforms)
        final = fit_final(
            config,
            view,
            job,
            run.budget(),
            n_jobs=n_jobs,
            fit=fit,
            warm_from=(warm or {}).get(config.name),
        )
        suite.heads.append(
            TrainedHead.from_runs(
                config,
                family=job.family_of(config),
                target=data.final_target(config.target),
                model=final,
                run=run,
                held=held,
                folds=folds,
                parity_rows=view.X[folds[-1].test[-PARITY_ROWS:]],
                input_columns=None if job.suite.select_of(config) is None else list(view.columns),
                family_selection=None if choice is None else choice.record(),
            )
        )
        if any(config.name in head.inputs for head in job.suite.heads):
            upstream[config.name] = upstream_of(suite.heads[-1], folds, kept_out)
    suite.fold_of_row = np.concatenate([np.full(len(f.test), f.index) for f in folds])
    return suite


def _fold_stage(on_stage: StageCallback, head: str, count: int) -> Callable[[int], None]:
    """``on_fold`` for one head: its fold's position becomes the stage ``head fold i/n``."""
    return lambda position: on_stage(f"{head} fold {position + 1}/{count}")


def run_symbol(
    source: DataSource,
    job: JobConfig,
    *,
    n_jobs: int = 1,
    version: str | None = None,
    loaded: LoadedOHLCV | pd.DataFrame | None = None,
    tuned: TuneOutcome | None = None,
    fit: Fitter = plain_fit,
    on_stage: StageCallback = _no_stage,
) -> SymbolResult:
    """Read, train, package and publish one symbol; user errors come back as a failed result.

    ``tuned`` (this symbol's search) sets each tuned head's params and puts the trial table in
    the package; ``job.warm_start`` continues a previous package's boosters in the final fits.

    With a ``version`` fixed by the caller the run is idempotent: if that version is already
    complete in the store (a retried task whose first attempt finished publishing before its
    node died), it is reported, not trained again.
    """
    started = time.perf_counter()
    rows = 0
    try:
        store = open_store(job.store)
        published = _published(store, source.symbol, job, version)
        if published is not None:
            return _result_from(published, store, job, started)
        if isinstance(loaded, pd.DataFrame):  # a journal asset's trade rows
            rows = len(loaded)
            on_stage("journal heads")
            suite = train_journal_suite(loaded, symbol=source.symbol, job=job, n_jobs=n_jobs)
        else:
            on_stage("read data")
            bars = loaded or read_ohlcv(source.path)
            rows = bars.report.rows
            timeframe = bars.report.timeframe
            if source.timeframe and source.timeframe != timeframe:
                raise DataError(
                    f"{source.path}: the file name says {source.timeframe} bars but the "
                    f"timestamps are {timeframe} apart; rename the file or fix the data"
                )
            if tuned is not None:
                job = with_params(job, tuned.best_params(), source=f"{source.symbol} tuning")
            warm = None
            if job.warm_start is not None:
                warm = warm_start_models(
                    warm_start_path(job.warm_start, source.symbol),
                    job,
                    source.symbol,
                    resolve_feature_set(job.features, timeframe),
                )
            suite = train_suite(
                bars.frame,
                symbol=source.symbol,
                timeframe=timeframe,
                job=job,
                n_jobs=n_jobs,
                fit=fit,
                warm=warm,
                on_stage=on_stage,
            )
        on_stage("export and package")
        staging = Path(tempfile.mkdtemp(prefix=f"quantrain-{source.symbol}-"))
        as_umask_allows(staging)  # mkdtemp made it 0700; the store copies its modes
        try:
            files, fields = package_extras(suite, tuned, job, source.symbol)
            # How long this symbol trained: the next run hands the longest symbols out first.
            fields["train_seconds"] = round(time.perf_counter() - started, 2)
            manifest = write_package(
                suite, staging, version=version, extra_files=files, extra_fields=fields
            )
            on_stage("push")
            try:
                store.push(staging)
            except StoreError:
                # A concurrent attempt of this same task may have completed the version.
                if (done := _published(store, source.symbol, job, version)) is None:
                    raise
                manifest = done
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return _result_from(manifest, store, job, started)
    except QuantrainError as error:
        return SymbolResult(
            symbol=source.symbol,
            ok=False,
            rows=rows,
            error=str(error),
            seconds=time.perf_counter() - started,
        )


def package_extras(
    suite: TrainedSuite, tuned: TuneOutcome | None, job: JobConfig, symbol: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """Files and manifest fields beyond the suite's: the tuning table and best params, and
    what a warm start continued (final fits only; the folds' metrics are from scratch)."""
    files: dict[str, str] = {}
    fields: dict[str, Any] = {}
    if tuned is not None:
        files = tuned.files()
        fields["tuning"] = {
            head: {k: entry[k] for k in ("metric", "score", "best_trial", "trials")}
            for head, entry in tuned.summary().items()
        }
    evaluation = suite.evaluation
    if evaluation is not None and len(evaluation.equity):
        searches = tuned.searches if tuned is not None else ()
        policy_heads = (
            {suite.policy.direction_head, suite.policy.size_head} if suite.policy else set()
        )
        fields["selection"] = selection_bias(
            evaluation.equity["model"].to_numpy(dtype=np.float64),
            n_trials=max(1, sum(len(s.trials) for s in searches if s.head in policy_heads)),
            trial_scores={s.head: s.score_matrix() for s in searches},
        )
    if job.warm_start is not None:
        fields["warm_start"] = {
            "package": warm_start_path(job.warm_start, symbol),
            "scope": "final fits only; walk-forward folds train from scratch",
            "heads": {
                head.config.name: {
                    "previous_rounds": getattr(head.model, "warm_start_rounds_", 0),
                    "rounds": head.model.best_iteration_,
                }
                for head in suite.heads
            },
        }
    return files, fields


def _published(
    store: ModelStore, symbol: str, job: JobConfig, version: str | None
) -> dict[str, Any] | None:
    """The manifest of ``version`` if it is already complete in the store."""
    if version is None:
        return None
    return store.manifest(symbol, job.suite.name, version)


def _result_from(
    manifest: dict[str, Any], store: ModelStore, job: JobConfig, started: float
) -> SymbolResult:
    package = parse_manifest(manifest, f"{manifest.get('symbol')}/{manifest.get('version')}")
    evaluation = package.evaluation or {}
    return SymbolResult(
        symbol=package.symbol,
        ok=True,
        timeframe=package.timeframe,
        rows=int(package.data["rows"]),
        version=package.version,
        metrics=package.summary_metrics,
        seconds=time.perf_counter() - started,
        promotion=promote_if_asked(store, manifest, job),
        backtest={
            key: value
            for key, value in evaluation.items()
            if value is None or isinstance(value, int | float)
        },
        verdict=evaluation.get("verdict"),
        holdout_return=((package.holdout or {}).get("backtest") or {}).get("total_return"),
    )


def promote_if_asked(store: ModelStore, manifest: dict[str, Any], job: JobConfig) -> str | None:
    """Promote a just-pushed package as the job says; a refusal is reported, not a failure
    (the package is published either way)."""
    if job.promote is None:
        return None
    channel = job.promote.channel
    try:
        pointer = store.promote(
            manifest["symbol"],
            manifest["version"],
            suite=manifest["suite"],
            channel=channel,
            if_better=job.promote.if_better,
            require=job.promote.require,
        )
    except (PromotionRefused, StoreConflictError) as error:
        return str(error)
    was = f" (was {pointer.previous})" if pointer.previous else ""
    return f"{pointer.symbol}/{pointer.suite}: promoted {pointer.version} to {channel}{was}"
