"""Job configuration: the pydantic models of a job file, its YAML loading and ``--set`` overrides.

Every job-level default lives here and nowhere else, so a job file only says what differs.
Models are frozen and refuse unknown keys; errors name the key, the file and what is allowed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from quantrain.errors import ConfigError
from quantrain.features.spec import FeatureSelection
from quantrain.labels import BARRIER_DEFAULTS, EntryRule, target_def, target_names
from quantrain.names import DEFAULT_CHANNEL, DEFAULT_STORE, SAFE_NAME_RULE, is_safe_name
from quantrain.policy import (
    DEFAULT_FEE_BPS,
    DEFAULT_LEVERAGE_CAP,
    DEFAULT_META_THRESHOLD,
    DEFAULT_SLIPPAGE_BPS,
    DEFAULT_THRESHOLD,
)

Device = Literal["auto", "cpu", "cuda", "rocm"]
#: Parameter presets per family (``quantrain.models.variants``); head params override them.
Variant = Literal["conservative", "balanced", "aggressive"]
DataKind = Literal["ohlcv", "journal"]


def _not_bool(value: Any) -> Any:
    """YAML's ``true`` is not a number, though pydantic would read it as 1."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


#: Integer and real settings that refuse booleans (``n_folds: true``).
Count = Annotated[int, BeforeValidator(_not_bool)]
Number = Annotated[float, BeforeValidator(_not_bool)]


class _Frozen(BaseModel):
    # No setting is NaN or infinite (``.nan`` / ``.inf`` in YAML): they pass every bound
    # unnoticed and would land in the manifest as JSON other languages cannot parse.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _path_safe(value: str) -> str:
    """A name that becomes a directory or file name (suite, job): never a path of its own."""
    if not is_safe_name(value):
        raise ValueError(
            f"not a safe name (it names files and directories); fix: use {SAFE_NAME_RULE}"
        )
    return value


class ExchangeSourceConfig(_Frozen):
    """Refresh ``data.path`` from an exchange before training (ccxt; public candles need no
    keys). The first run downloads from ``since``; later runs append only new bars."""

    name: str
    timeframe: str = "1h"
    since: str | None = None


class DataConfig(_Frozen):
    """Where the data comes from; ``path: null`` means the bundled samples.

    ``kind: journal`` reads a trade journal (JSON / JSON Lines of trade records) instead of
    OHLCV bars, and trains one suite per asset in it (``path: null``: the bundled journal).
    """

    kind: DataKind = "ohlcv"
    path: str | None = None
    symbols: tuple[str, ...] | None = None
    exchange: ExchangeSourceConfig | None = None
    #: Journal jobs: fewer usable trades than this and an asset is skipped with a message.
    min_samples: Count = Field(100, ge=1)
    #: Journal jobs: the flattened fields used as inputs (null: the standard journal fields).
    journal_features: tuple[str, ...] | None = None
    #: Exogenous inputs merged as of each bar's close (never forward) before features: a
    #: funding-rate table (``{symbol}`` in the path is replaced by each symbol) and an
    #: economic-calendar file (timestamp, impact) for the ``event_minutes_*`` features.
    funding: str | None = None
    events: str | None = None
    min_impact: Literal["low", "medium", "high"] = "high"

    @model_validator(mode="after")
    def _sources(self) -> DataConfig:
        if self.exchange is not None and (not self.path or not self.symbols):
            raise ValueError(
                "data.exchange needs data.path (the dataset directory to refresh) and "
                "data.symbols (the exchange's symbols, e.g. [BTC/USDT])"
            )
        if self.kind == "journal" and self.exchange is not None:
            raise ValueError("data.exchange downloads OHLCV bars; it cannot feed a journal job")
        return self

    @model_validator(mode="after")
    def _journal_features_known_at_entry(self) -> DataConfig:
        """Refused here too, so a leaking job stops before any symbol trains."""
        from quantrain.data.journal import check_known_at_entry

        try:
            check_known_at_entry(self.journal_features or (), "journal_features")
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return self


class NewsOverrideConfig(_Frozen):
    """Force HOLD (direction target) where a high-impact event is within ``minutes`` of the bar
    and the bar's volume z-score (trailing ``volume_window`` bars) is at least ``volume_z``.
    Needs an event column in the bars (``event_next_at`` / ``event_last_at``, written by
    ``quantrain.features.exogenous.merge_exogenous``)."""

    enabled: bool = False
    minutes: Number = Field(30.0, ge=0)
    volume_z: Number = 2.0
    volume_window: Count = Field(96, ge=2)


def _three_increasing(values: tuple[float, ...], low: float, high: float, what: str) -> None:
    """Exactly three strictly increasing values inside (low, high): the class boundaries of a
    four-class target (its class names are fixed, so the count is too)."""
    inside = all(low < v < high for v in values)
    increasing = all(b > a for a, b in pairwise(values))
    if len(values) != 3 or not inside or not increasing:
        raise PydanticCustomError(
            "three_increasing",
            "expected 3 strictly increasing values in ({low}, {high}) ({what})",
            {"low": f"{low:g}", "high": f"{high:g}", "what": what},
        )


class LabelConfig(_Frozen):
    """ATR triple barrier: take-profit ATR×k_tp, stop ATR×k_sl, watched for ``horizon`` bars;
    plus the settings of the other bar targets (see ``quantrain.labels``)."""

    k_tp: Number = Field(BARRIER_DEFAULTS.k_tp, gt=0)
    k_sl: Number = Field(BARRIER_DEFAULTS.k_sl, gt=0)
    horizon: Count = Field(BARRIER_DEFAULTS.horizon, ge=1)
    atr_period: Count = Field(14, ge=1)
    #: Where a signal made at bar t's close fills, in labels, backtest and the served policy:
    #: the next bar's open (what a bot can do) or t's own close (optimistic, for comparison).
    entry: EntryRule = BARRIER_DEFAULTS.entry
    r_min: Number = BARRIER_DEFAULTS.r_min
    r_max: Number = BARRIER_DEFAULTS.r_max
    #: The direction target: first take-profit of the triple barrier, or the sign of the
    #: horizon's move outside ``± neutral_band × ATR`` (fixed_horizon).
    direction_method: Literal["triple_barrier", "fixed_horizon"] = "triple_barrier"
    neutral_band: Number = Field(1.0, ge=0)
    #: tp_level: the three ATR multiples whose count reached before the stop is the class (TP0-3).
    tp_levels: tuple[float, ...] = (1.0, 2.0, 3.0)
    #: volatility_regime: quantiles of the training rows' forward volatility splitting the four
    #: classes LOW / NORMAL / HIGH / EXTREME.
    regime_quantiles: tuple[float, ...] = (0.25, 0.5, 0.75)
    #: timing FAST: take-profit within this share of the horizon ...
    timing_fast: Number = Field(1 / 3, gt=0, le=1)
    #: ... with an adverse excursion below this share of the stop distance.
    timing_clean: Number = Field(0.5, gt=0)
    news_override: NewsOverrideConfig = Field(default_factory=NewsOverrideConfig)

    @field_validator("tp_levels")
    @classmethod
    def _tp_levels(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        _three_increasing(value, 0.0, float("inf"), "ATR multiples; classes TP0-TP3")
        return value

    @field_validator("regime_quantiles")
    @classmethod
    def _regime_quantiles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        _three_increasing(value, 0.0, 1.0, "quantiles; classes LOW, NORMAL, HIGH, EXTREME")
        return value

    @model_validator(mode="after")
    def _clip_range(self) -> LabelConfig:
        if self.r_min >= self.r_max:
            raise ValueError(f"r_min must be below r_max, got {self.r_min} >= {self.r_max}")
        return self


class SplitConfig(_Frozen):
    """Folds for out-of-sample metrics, purged by label horizon, then embargoed.

    ``expanding`` / ``sliding`` are walk-forward: ``n_folds`` test blocks, each trained only on
    earlier rows, and ``embargo`` drops that many training rows just before each block.
    ``purged_kfold`` splits all rows into ``n_folds`` (≥ 2) blocks and trains on every other
    row, including rows after the test block (``embargo`` drops that many just after it), so
    its backtest is not a walk-forward deployment simulation. ``sample_weights: uniqueness``
    weights overlapping labels by their average uniqueness (López de Prado, AFML ch. 4).

    ``holdout`` keeps the newest share of rows untouched: folds, tuning and early stopping
    never see it; it is scored once, by models fit on the rows before it (purged), and
    reported apart from the folds. The package's final models still train on every row.
    """

    n_folds: Count = Field(3, ge=1)
    mode: Literal["expanding", "sliding", "purged_kfold"] = "expanding"
    embargo: Count = Field(0, ge=0)
    #: Rows each fold must train on at least. ``auto`` (default): an eighth of the usable rows
    #: for 3 folds (``rows // (2 × (n_folds + 1))``, half the first walk-forward fold's
    #: training rows), at least 200 (50 trades for journals) and at most 1000; a number is
    #: honoured as given.
    min_train: int | Literal["auto"] = "auto"
    validation_fraction: Number = Field(0.15, gt=0, lt=0.5)
    sample_weights: Literal["none", "uniqueness"] = "none"
    holdout: Number = Field(0.15, ge=0, lt=0.5)

    @field_validator("min_train", mode="before")
    @classmethod
    def _auto_or_rows(cls, value: object) -> object:
        if value == "auto" or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 10
        ):
            return value
        raise ValueError(f"split.min_train must be 'auto' or an integer ≥ 10, got {value!r}")

    @model_validator(mode="after")
    def _kfold_needs_two_splits(self) -> SplitConfig:
        if self.mode == "purged_kfold" and self.n_folds < 2:
            raise ValueError(
                "split.n_folds must be an integer ≥ 2 with split.mode 'purged_kfold' "
                f"(it is the number of splits), got {self.n_folds}"
            )
        return self


class SelectConfig(_Frozen):
    """Feature selection fit on each fold's training rows only (issue 20): the ``top`` columns
    by a quick extra-trees model's importance, or kept by recursive feature elimination."""

    method: Literal["importance", "rfe"] = "importance"
    top: int = Field(ge=1)


class TransformConfig(_Frozen):
    """A feature transform fit on each fold's training rows, applied to every row and shipped
    in the package (ONNX) so a bot appends the same columns: a Gaussian mixture's regime
    posteriors (``gmm``) or a small VAE's latent means (``vae``, needs torch)."""

    kind: Literal["gmm", "vae"]
    #: Prefix of the appended columns (``<name>_0`` ...); the kind when not given.
    name: str | None = None
    #: Input feature columns; empty: every column of the feature set.
    columns: tuple[str, ...] = ()
    #: gmm: mixture components (one posterior column each).
    components: int = Field(3, ge=2, le=16)
    #: vae: latent size (one column each), hidden width and training epochs.
    latent: int = Field(4, ge=1, le=64)
    hidden: int = Field(32, ge=2, le=1024)
    epochs: int = Field(30, ge=1, le=1000)
    #: Training rows fit at most (the newest of them), bounding the fit's time per fold.
    max_rows: int = Field(20_000, ge=100)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.replace("_", "").isalnum() or not is_safe_name(value)):
            raise ValueError(f"transform names use letters, digits and '_', got {value!r}")
        return value

    @property
    def prefix(self) -> str:
        return self.name or self.kind

    @property
    def width(self) -> int:
        """How many columns it appends."""
        return self.components if self.kind == "gmm" else self.latent


class HeadConfig(_Frozen):
    """One head of a suite: which label it learns and which model family learns it."""

    name: str
    #: A name from the target catalogue (``quantrain.labels.targets``).
    target: str
    family: str | None = None
    #: A preset of the family's params (``quantrain.models.variants``); ``params`` override it.
    variant: Variant | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    #: Feature selection fit on each fold's training rows (overrides ``suite.select``).
    select: SelectConfig | None = None
    #: Upstream heads of the same suite whose out-of-fold outputs are appended to this head's
    #: feature columns (a cascade; ``quantrain.suite.cascade``).
    inputs: tuple[str, ...] = ()
    #: ``reward``: weight training rows by exp(reward_beta * R / std(R)) of the trade each row
    #: would open (reward-weighted regression), times the other sample weights.
    weighting: Literal["none", "reward"] = "none"
    reward_beta: Number = Field(1.0, gt=0)
    #: ``family: auto``: the families whose walk-forward folds compete for this head (empty:
    #: ``quantrain.suite.family_choice.DEFAULT_CANDIDATES``); the best pooled fold score wins.
    candidates: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _candidates_for_auto(self) -> HeadConfig:
        if self.candidates and self.family not in (None, "auto"):
            raise ValueError(
                f"head {self.name!r}: candidates are for family: auto, not {self.family!r}; "
                "fix: set family: auto or drop candidates"
            )
        if "auto" in self.candidates or len(set(self.candidates)) != len(self.candidates):
            raise ValueError(
                f"head {self.name!r}: candidates must be distinct families other than auto, "
                f"got {list(self.candidates)}"
            )
        return self

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or not is_safe_name(value):
            raise ValueError(f"head names use letters, digits and '_', got {value!r}")
        return value

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        try:
            target_def(value)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return value


def _default_heads() -> tuple[HeadConfig, ...]:
    return NAMED_SUITES["core"]


#: Suites a job can name (``suite: full``) instead of listing heads. ``core`` is the default.
#: ``full`` leaves out mfe / mae / time_to_hit (trainable as heads, but each one costs as
#: much as a direction head and they mostly restate stop_loss / tp_level / timing).
NAMED_SUITES: dict[str, tuple[HeadConfig, ...]] = {
    "core": (
        HeadConfig(name="direction", target="direction"),
        HeadConfig(name="position_size", target="position_size"),
    ),
    "full": (
        HeadConfig(name="direction", target="direction"),
        HeadConfig(name="position_size", target="position_size"),
        HeadConfig(name="volatility_regime", target="volatility_regime"),
        HeadConfig(name="timing", target="timing"),
        HeadConfig(name="tp_level", target="tp_level"),
        HeadConfig(name="stop_loss_q50", target="stop_loss", params={"quantile": 0.5}),
        HeadConfig(name="stop_loss_q90", target="stop_loss", params={"quantile": 0.9}),
    ),
}


class SuiteConfig(_Frozen):
    """The heads trained together for one symbol on one feature matrix; a job may give just
    a name from ``NAMED_SUITES`` (``suite: full``)."""

    name: str = "core"
    heads: tuple[HeadConfig, ...] = Field(default_factory=_default_heads)
    #: Fold-fitted transforms whose columns are appended for every head (``suite/transforms``).
    transforms: tuple[TransformConfig, ...] = ()
    #: Feature selection for every head that has no ``select`` of its own.
    select: SelectConfig | None = None

    @field_validator("transforms")
    @classmethod
    def _unique_transforms(cls, value: tuple[TransformConfig, ...]) -> tuple[TransformConfig, ...]:
        prefixes = [t.prefix for t in value]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"transform names must be unique (give each a name), got {prefixes}")
        return value

    @model_validator(mode="after")
    def _cascade_reads_plain_features(self) -> SuiteConfig:
        """A cascade head reads the features plus its inputs' outputs; fold-fitted transforms
        and selection are not threaded through the cascade's inner folds yet."""
        cascades = [h.name for h in self.heads if h.inputs]
        if cascades and (self.transforms or any(self.select_of(h) for h in self.heads)):
            raise ValueError(
                f"cascade heads ({', '.join(cascades)}) cannot be combined with "
                "suite.transforms or select yet; fix: drop one of them"
            )
        return self

    def select_of(self, head: HeadConfig) -> SelectConfig | None:
        """The selection a head trains with: its own, else the suite's."""
        return head.select or self.select

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return _path_safe(value)

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data not in NAMED_SUITES:
                raise PydanticCustomError(
                    "unknown_suite",
                    "unknown suite name; named suites: {names} (or a mapping of name and heads)",
                    {"names": ", ".join(NAMED_SUITES)},
                )
            return {"name": data, "heads": NAMED_SUITES[data]}
        return data

    @field_validator("heads")
    @classmethod
    def _unique_heads(cls, heads: tuple[HeadConfig, ...]) -> tuple[HeadConfig, ...]:
        names = [h.name for h in heads]
        if not heads:
            raise ValueError("a suite needs at least one head")
        if len(set(names)) != len(names):
            raise ValueError(f"head names must be unique, got {names}")
        for problem in cascade_problems(heads):
            raise ValueError(problem)
        return heads


def cascade_problems(heads: Sequence[HeadConfig]) -> list[str]:
    """What is wrong with the heads' ``inputs``: a name not in the suite, a head reading
    itself, an upstream head that itself reads one (cascades are one level deep), a
    ``meta_label`` head without a direction head to take its side from."""
    by_name = {h.name: h for h in heads}
    problems = []
    for head in heads:
        for name in head.inputs:
            if name == head.name:
                problems.append(f"head {head.name!r}: inputs names the head itself")
            elif name not in by_name:
                problems.append(
                    f"head {head.name!r}: inputs names {name!r}, not a head of this suite "
                    f"(heads: {', '.join(by_name)})"
                )
            elif target_def(by_name[name].target).columns:
                problems.append(
                    f"head {head.name!r}: its input {name!r} has the composite target "
                    f"{by_name[name].target!r}; fix: read single-output heads only"
                )
            elif by_name[name].inputs:
                problems.append(
                    f"head {head.name!r}: its input {name!r} reads heads itself "
                    f"({', '.join(by_name[name].inputs)}); cascades are one level deep "
                    "(a cycle or chain): let both read the base heads directly"
                )
        if head.inputs and head.family == "auto":
            problems.append(
                f"head {head.name!r}: a cascade head cannot use family: auto yet; fix: name "
                "one family"
            )
        if len(set(head.inputs)) != len(head.inputs):
            problems.append(f"head {head.name!r}: inputs repeat a head: {list(head.inputs)}")
        if head.target == "meta_label" and not any(
            by_name[n].target == "direction" for n in head.inputs if n in by_name
        ):
            problems.append(
                f"head {head.name!r}: target meta_label takes the side of a direction head; "
                "fix: name one in inputs (e.g. inputs: [direction])"
            )
    return problems


class ModelConfig(_Frozen):
    """Defaults every head inherits unless it names its own family."""

    family: str = "xgboost"
    #: The preset every head without its own ``variant`` uses (null: the family defaults).
    variant: Variant | None = None
    device: Device = "auto"
    parity_tolerance: Number = Field(1e-4, gt=0)


class RayConfig(_Frozen):
    """Per-symbol fan-out: resources of one symbol's task and the cluster to join."""

    address: str | None = None
    num_cpus_per_symbol: Number = Field(1.0, gt=0)
    num_gpus_per_symbol: Number = Field(0.0, ge=0)
    #: Re-runs of a symbol's task after its worker or node dies (not after a user error).
    max_retries: Count = Field(3, ge=0)
    #: Accept local data/store paths on a multi-node cluster (they are on a shared filesystem).
    allow_local: bool = False
    #: Ray Train workers for a data-parallel xgboost/lightgbm fit (1 = never distributed).
    train_workers: Count = Field(1, ge=1)
    #: A fit on at least this many rows trains data-parallel (null: never; ``auto``: only
    #: above the measured crossover and with CPUs beyond one node, orchestration/crossover.py).
    distributed_rows_threshold: int | Literal["auto"] | None = "auto"
    #: Where Ray Train hands the booster back (null: a local temp dir; a multi-node cluster
    #: needs a URI every node reaches, e.g. s3://bucket/ray-train).
    train_storage: str | None = None

    @field_validator("distributed_rows_threshold", mode="before")
    @classmethod
    def _rows_auto_or_never(cls, value: object) -> object:
        if value is None or value == "auto":
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ValueError(
            "must be an integer ≥ 1 (rows from which a fit trains data-parallel), 'auto' "
            "(from the measured crossover, with CPUs beyond one node) or null (never)"
        )


def _default_tune_metric() -> dict[str, str]:
    return {"classification": "balanced_accuracy", "regression": "rmse"}


class TuneSettings(_Frozen):
    """Hyperparameter search per symbol and head: Optuna TPE (seeded) proposes, ASHA stops
    trials whose running out-of-sample score after a fold is poor; the objective is the mean
    score over the purged walk-forward folds. ``enabled`` makes ``quantrain run`` tune first."""

    enabled: bool = False
    num_samples: Count = Field(20, ge=1)
    #: Trials at once (null: as many as the cluster's CPUs hold at ``cpus_per_trial``).
    max_concurrent_trials: Count | None = Field(None, ge=1)
    #: Wall-clock limit of one head's search in seconds (null: none).
    time_budget_s: Number | None = Field(None, gt=0)
    cpus_per_trial: Number = Field(1.0, gt=0)
    gpus_per_trial: Number = Field(0.0, ge=0)
    #: The heads to tune (null: all of the suite's).
    heads: tuple[str, ...] | None = None
    #: The score per task; ``head_metric`` overrides it per head (direction: higher_is_better).
    metric: dict[str, str] = Field(default_factory=_default_tune_metric)
    head_metric: dict[str, str] = Field(default_factory=dict)
    #: Search space overlaid on the family's default for every tuned head, e.g.
    #: ``{learning_rate: {loguniform: [0.01, 0.3]}, max_depth: {int: [2, 8]}, subsample: 0.9}``.
    space: dict[str, Any] = Field(default_factory=dict)
    #: Per-head spaces, overlaid after ``space``: ``{direction: {max_depth: {int: [2, 4]}}}``.
    head_space: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: ASHA early stopping over folds (false: every trial runs every fold).
    early_stopping: bool = True
    grace_period: Count = Field(1, ge=1)
    reduction_factor: Number = Field(2.0, gt=1)
    #: Seed of the TPE sampler (null: the job's seed).
    seed: Count | None = None

    @field_validator("metric")
    @classmethod
    def _task_metrics(cls, value: dict[str, str]) -> dict[str, str]:
        from quantrain.evaluate import higher_is_better

        unknown = sorted(set(value) - {"classification", "regression"})
        if unknown:
            raise ValueError(
                f"tune.metric is keyed by task (classification, regression), got {unknown}; "
                "per-head metrics go in tune.head_metric"
            )
        for metric in value.values():
            higher_is_better(metric)  # ValueError names the comparable metrics
        return {**_default_tune_metric(), **value}

    @field_validator("head_metric")
    @classmethod
    def _known_metrics(cls, value: dict[str, str]) -> dict[str, str]:
        from quantrain.evaluate import higher_is_better

        for metric in value.values():
            higher_is_better(metric)
        return value

    @model_validator(mode="after")
    def _spaces_parse(self) -> TuneSettings:
        if not self.space and not self.head_space:
            return self  # tuning (and the model libraries it imports) is not loaded for nothing
        from quantrain.tuning.space import parse_space

        parse_space(self.space, where="tune.space")
        for head, space in self.head_space.items():
            parse_space(space, where=f"tune.head_space.{head}")
        return self


class RiskSettings(_Frozen):
    """The risk-multiplier head (seed 002): learnt from the replayed out-of-sample trades."""

    enabled: bool = True
    profile: Count = Field(3, ge=1, le=5)  # 1 = most careful; sets the drawdown ceiling
    #: Override the profile's drawdown ceiling (profiles 1-5: 5, 10, 15, 20, 30 %).
    max_drawdown: Number | None = Field(None, gt=0, lt=1)
    lookahead: Count = Field(20, ge=2)  # trades each candidate multiplier is judged over


class EvaluateConfig(_Frozen):
    """The out-of-sample backtest: when a direction head enters, and what trading costs."""

    threshold: Number = Field(DEFAULT_THRESHOLD, gt=0, lt=1)  # P(BUY) or P(SELL) to enter
    #: A meta_label head on the traded direction head takes a signal where P(TAKE) ≥ this.
    meta_threshold: Number = Field(DEFAULT_META_THRESHOLD, ge=0, le=1)
    fee_bps: Number = Field(DEFAULT_FEE_BPS, ge=0)  # per side
    slippage_bps: Number = Field(DEFAULT_SLIPPAGE_BPS, ge=0)  # per side
    leverage_cap: Number = Field(DEFAULT_LEVERAGE_CAP, gt=0)
    random_strategies: Count = Field(100, ge=0)  # seeded random baselines with the model's activity
    risk: RiskSettings = Field(default_factory=RiskSettings)


class PromoteConfig(_Frozen):
    """Promote each symbol's new package at the end of a run (optionally only if better)."""

    channel: str = DEFAULT_CHANNEL
    if_better: str | None = None
    #: Bounds the new package must meet on its own, whatever the incumbent:
    #: ``{selection.deflated_sharpe: 0.95, selection.pbo.direction: 0.5,
    #: backtest.total_return: 0}`` (higher-is-better metrics at least, others at most).
    require: dict[str, float] = Field(default_factory=dict)

    @field_validator("channel")
    @classmethod
    def _channel_name(cls, value: str) -> str:
        if not is_safe_name(value) or not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("channel names use letters, digits, '-' and '_'")
        return value

    @field_validator("if_better")
    @classmethod
    def _known_direction(cls, value: str | None) -> str | None:
        from quantrain.evaluate import higher_is_better

        if value is not None:
            higher_is_better(value)  # ValueError names the comparable metrics
        return value

    @field_validator("require")
    @classmethod
    def _known_requirements(cls, value: dict[str, float]) -> dict[str, float]:
        from quantrain.evaluate import higher_is_better

        for metric in value:
            higher_is_better(metric)
        return value


class TrackingConfig(_Frozen):
    """Also report each run to an experiment tracker (needs ``pip install 'quantrain[mlflow]'``).

    ``mlflow`` is a tracking URI: ``sqlite:///path/mlflow.db`` (a local store), or a tracking
    server ``http(s)://HOST:PORT``. MLflow 3 keeps plain ``file:`` stores in maintenance mode
    and refuses them unless ``MLFLOW_ALLOW_FILE_STORE=true`` is set."""

    mlflow: str = Field(min_length=1)
    #: The MLflow experiment the runs go to (null: the job's name).
    experiment: str | None = Field(None, min_length=1)


class JobConfig(_Frozen):
    """A whole job file. ``quantrain run`` and ``quantrain train`` both end up here."""

    name: str = "train"
    seed: Count = 42
    data: DataConfig = Field(default_factory=DataConfig)
    #: A named feature set, or a selection: ``{base: standard, drop: [...], add: [...]}``.
    features: str | FeatureSelection = "standard"
    labels: LabelConfig = Field(default_factory=LabelConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    suite: SuiteConfig = Field(default_factory=SuiteConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    store: str = DEFAULT_STORE
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    promote: PromoteConfig | None = None
    ray: RayConfig = Field(default_factory=RayConfig)
    tune: TuneSettings = Field(default_factory=TuneSettings)
    #: Head params to train with: a tuned package directory or a YAML/JSON file
    #: ``{head: {param: value}}``; merged over each head's own params when the job runs.
    params_from: str | None = None
    #: A previous package whose boosters the final fits continue (``{symbol}`` is replaced by
    #: each symbol); refused when its features or head definitions differ.
    warm_start: str | None = None
    #: Where runs are also reported (MLflow). Not part of the model: left out of
    #: ``model_dump`` and so of the manifest and the config hash (a tracking URI may hold a
    #: password, and the same model tracked elsewhere is the same model).
    tracking: TrackingConfig | None = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return _path_safe(value)

    @model_validator(mode="before")
    @classmethod
    def _journal_suite_by_default(cls, data: Any) -> Any:
        """A journal job that names no suite trains the journal heads, not the bar heads."""
        if isinstance(data, Mapping) and "suite" not in data:
            kind = (
                (data.get("data") or {}).get("kind")
                if isinstance(data.get("data"), Mapping)
                else None
            )
            if kind == "journal":
                heads = [{"name": t, "target": t} for t in target_names("journal")]
                return {**data, "suite": {"name": "journal", "heads": heads}}
        return data

    @model_validator(mode="after")
    def _targets_match_data(self) -> JobConfig:
        allowed = target_names(self.data.kind)
        wrong = [h for h in self.suite.heads if h.target not in allowed]
        if wrong:
            raise ValueError(
                f"head {wrong[0].name!r}: target {wrong[0].target!r} cannot be labelled from "
                f"{self.data.kind} data; targets for {self.data.kind}: {', '.join(allowed)}"
            )
        return self

    @model_validator(mode="after")
    def _tuned_heads_exist(self) -> JobConfig:
        names = [h.name for h in self.suite.heads]
        tune = self.tune
        for where, given in (
            ("tune.heads", tune.heads or ()),
            ("tune.head_metric", tune.head_metric),
            ("tune.head_space", tune.head_space),
        ):
            unknown = [h for h in given if h not in names]
            if unknown:
                raise ValueError(f"{where} names {unknown}; the suite's heads: {names}")
        return self

    def family_of(self, head: HeadConfig) -> str:
        """The family a head trains with: its own, else the job's default."""
        return head.family or self.model.family

    def variant_of(self, head: HeadConfig) -> str | None:
        """The preset a head trains with: its own, else the job's default."""
        return head.variant or self.model.variant

    def config_hash(self) -> str:
        """sha256 of the resolved configuration, recorded in every package manifest."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_requirements(pairs: Sequence[str]) -> dict[str, float]:
    """``["selection.pbo.direction=0.5"]`` -> ``{"selection.pbo.direction": 0.5}``, each metric
    one with a known direction (``--require`` of ``models promote``)."""
    from quantrain.evaluate import higher_is_better

    out: dict[str, float] = {}
    for pair in pairs:
        metric, sep, raw = pair.partition("=")
        try:
            bound = float(raw)
        except ValueError:
            bound = float("nan")
        if not sep or not metric.strip() or bound != bound:
            raise ConfigError(
                f"--require expects METRIC=NUMBER, got {pair!r} "
                "(e.g. --require selection.deflated_sharpe=0.95)"
            )
        try:
            higher_is_better(metric.strip())
        except ValueError as error:
            raise ConfigError(f"--require {pair}: {error}") from None
        out[metric.strip()] = bound
    return out


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``["split.n_folds=4", "data.symbols=[ETH-BTC]"]`` into a nested dict (YAML values)."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r} (e.g. --set split.n_folds=4)")
        value = load_yaml(raw, f"--set {key.strip()}") if raw.strip() else None
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is set twice as a value and a section")
        node[parts[-1]] = value
    return nested


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(
    error: ValidationError, source: str, overrides: Mapping[str, Any] | None = None
) -> str:
    """One line per problem naming its key, and who set it: ``source`` (the job file) or the
    ``--set`` option (``overrides``, nested as ``parse_overrides`` returns them)."""
    items = _without_other_branches(error.errors())
    blamed = [_set_by(item["loc"], overrides or {}) for item in items]
    origin = source if not all(blamed) else "--set"
    lines = [f"{origin}: invalid job configuration"]
    for item, by_set in zip(items, blamed, strict=True):
        loc = _field_loc(item["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        where = f"--set {where}" if by_set else where
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(item["loc"])
            near = difflib.get_close_matches(str(loc[-1]), allowed.split(", "), n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(near)}? " if near else ""
            lines.append(f"  {where}: unknown key ({hint}allowed here: {allowed})")
        elif item["type"] == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            lines.append(f"  {where}: got {item['input']!r}, allowed values: {expected}")
        elif isinstance(item["input"], Mapping):  # a whole section: the message says it all
            lines.append(f"  {where}: {item['msg'].removeprefix('Value error, ')}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"  {where}: {message}, got {item['input']!r}")
    places = [f"the --set option{'s' if len(overrides or {}) > 1 else ''}"] if any(blamed) else []
    places += [source] if not all(blamed) else []
    lines.append(
        f"  fix: correct the key(s) above in {' and '.join(places)} (README.md, 'Job files')"
    )
    return "\n".join(lines)


def _union_tags(model: type[BaseModel], name: str) -> dict[str, bool]:
    """The names pydantic gives the members of a union field in error locations
    (``str``, ``FeatureSelection``), each True when it is a model."""
    field = model.model_fields.get(name)
    members = getattr(field.annotation, "__args__", ()) if field is not None else ()
    return {
        getattr(m, "__name__", str(m)): isinstance(m, type) and issubclass(m, BaseModel)
        for m in members
        if m is not type(None)
    }


def _field_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """``loc`` without the union member names pydantic inserts (``features.FeatureSelection
    .top_n`` -> ``features.top_n``), as the user wrote the keys."""
    model: type[BaseModel] | None = JobConfig
    kept: list[int | str] = []
    tags: dict[str, bool] = {}
    for part in loc:
        if isinstance(part, str) and part in tags:
            tags = {}
            continue
        kept.append(part)
        tags = _union_tags(model, part) if model is not None and isinstance(part, str) else {}
        if model is not None and isinstance(part, str):
            field = model.model_fields.get(part)
            inner = getattr(field.annotation, "__args__", (field.annotation,)) if field else ()
            found = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
            model = found[0] if found else None
    return tuple(kept)


def _without_other_branches(items: list[Any]) -> list[Any]:
    """Drop a union's non-model branch errors (``features.str: Input should be a valid
    string``) when a mapping was given and its model branch reports what is really wrong."""
    modelled = {tuple(_field_loc(i["loc"][:1])) for i in items if len(i["loc"]) > 2}
    kept = []
    for item in items:
        loc = item["loc"]
        if len(loc) == 2 and isinstance(item["input"], Mapping) and (loc[0],) in modelled:
            tags = _union_tags(JobConfig, str(loc[0]))
            if tags.get(str(loc[1])) is False:
                continue
        kept.append(item)
    return kept


def _set_by(loc: tuple[int | str, ...], overrides: Mapping[str, Any]) -> bool:
    """True when the value at ``loc`` came from ``--set`` (its key path is in ``overrides``)."""
    node: Any = overrides
    parts = _field_loc(loc)
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return bool(parts)


def _allowed_keys(loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] = JobConfig
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a list index, or the union member tried ('features' -> FeatureSelection)
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        found = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not found:
            break
        model = found[0]
    return ", ".join(model.model_fields)


def build_job(
    raw: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    source: str = "<options>",
) -> JobConfig:
    """Validate a job mapping plus ``--set`` overrides into a :class:`JobConfig`."""
    nested = parse_overrides(overrides)
    merged = _merge(raw or {}, nested)
    _check_numbers(merged, source)
    try:
        return JobConfig.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(_describe(error, source, nested)) from None
    except ConfigError as error:  # raised as is by a nested reader (a feature definition)
        raise ConfigError(f"{source}: invalid job configuration\n  {error}") from None


#: The largest integer a job may hold anywhere: what numpy, the model libraries and the
#: samplers accept (int64). Larger ones overflow far from the job file, with a traceback.
MAX_INT = 2**63 - 1


def _check_numbers(value: Any, source: str, where: str = "") -> None:
    """Refuse, under any key (head params and tuning spaces included), an integer beyond
    :data:`MAX_INT` and a NaN or infinite number: no setting means them, and a NaN would reach
    the manifest as JSON that other languages cannot parse."""
    at = where or "(top level)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ConfigError(
            f"{source}: invalid job configuration\n  {at}: an integer of "
            f"{len(str(abs(value)))} digits is out of range\n"
            f"  fix: use a number between -{MAX_INT} and {MAX_INT}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{source}: invalid job configuration\n  {at}: {value} is not a finite number\n"
            "  fix: use a finite number (or null where the setting allows none)"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_numbers(item, source, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_numbers(item, source, f"{where}.{index}" if where else str(index))


def job_from_options(
    data: str,
    *,
    symbols: str | None = None,
    store: str | None = None,
    suite: str | None = None,
    family: str | None = None,
    params_from: str | None = None,
    warm_start: str | None = None,
    overrides: Sequence[str] = (),
) -> JobConfig:
    """The job ``quantrain train`` runs: the defaults plus what its options name
    (``symbols`` comma-separated)."""
    raw: dict[str, Any] = {"data": {"path": data}}
    if symbols:
        raw["data"]["symbols"] = [s.strip() for s in symbols.split(",") if s.strip()]
    optional = {"params_from": params_from, "warm_start": warm_start, "store": store}
    raw.update({key: value for key, value in optional.items() if value})
    if suite:
        raw["suite"] = {"name": suite}
    if family:
        raw["model"] = {"family": family}
    return build_job(raw, overrides)


def load_job(path: str | Path, overrides: Sequence[str] = ()) -> JobConfig:
    """Read a YAML job file; relative data and store paths stay relative to the working dir."""
    file = Path(path)
    raw = read_yaml_file(file, "job file") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: a job file is a mapping of keys, got {type(raw).__name__}")
    return build_job(raw, overrides, source=str(file))


#: A job file is a page of settings: anything larger is a mistake or an attack.
MAX_YAML_BYTES = 1 << 20
#: Sections nested deeper than this are refused (a job file needs about five levels).
MAX_YAML_DEPTH = 32


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` without anchors, aliases or deep nesting: a job file never needs them,
    and expanding aliases is how a few hundred bytes become gigabytes (a "billion laughs")."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            self._refuse(
                event,
                "anchors (&name) and aliases (*name) are not allowed",
                "write each value out in full",
            )
        if self.depth >= MAX_YAML_DEPTH:
            self._refuse(
                event, f"nested deeper than {MAX_YAML_DEPTH} levels", "flatten the nesting"
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _refuse(self, event: yaml.Event, problem: str, fix: str) -> None:
        mark = event.start_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(f"{self.name}: {problem} ({where})\n  fix: {fix}")


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text`` from ``source`` (a file name or an option) with the bounded loader."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(
            f"{source}: more than {MAX_YAML_BYTES} characters of YAML is refused\n"
            "  fix: pass a job file or a shorter value"
        )
    try:
        loader = _BoundedLoader(text)  # reads every character first
    except yaml.YAMLError as error:
        raise ConfigError(
            f"{source}: not valid YAML: {error}\n"
            "  fix: remove the control characters (YAML allows tab, newline and printable text)"
        ) from None
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        raise ConfigError(
            f"{source}: not valid YAML: {error}\n  fix: correct the YAML where marked (quote "
            "values that hold ':', '[', '{' or '#')"
        ) from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as error:
        # A scalar PyYAML cannot construct: a date like 2020-13-45, ``!!int x``, ``!!bool x``
        # (KeyError), an integer of more than 4,300 digits (Python refuses to read it).
        raise ConfigError(
            f"{source}: a value YAML cannot read: {error}\n"
            "  fix: quote it to make it a string, or correct the date or number"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{source}: nested too deeply to read\n  fix: flatten the nesting"
        ) from None
    finally:
        loader.dispose()


def read_yaml_file(path: Path, what: str) -> Any:
    """A YAML file's content, refusing what is not a regular file or is over the size limit
    (a FIFO would block the read forever, a huge file would fill memory)."""
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found")
    if not path.is_file():
        raise ConfigError(
            f"{path}: not a regular file (a directory, FIFO or device), so not a {what}\n"
            f"  fix: pass the {what} itself"
        )
    with path.open("rb") as handle:
        data = handle.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(
            f"{path}: a {what} of more than {MAX_YAML_BYTES} bytes is refused\n"
            f"  fix: check that this is the {what} you meant"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}); fix: give a YAML job file saved as "
            "UTF-8 text"
        ) from None
    return load_yaml(text, str(path))
