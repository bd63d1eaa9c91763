"""The manifest, typed: what a package promises a bot, read by one reader per ``format_version``.

``manifest.json`` stays plain JSON (a bot in any language reads it); these models are how
quantrain reads it. A field a reader needs and cannot find, or finds with the wrong type, is a
``PackageError`` naming the field, not a ``KeyError`` three calls later. Fields added without a
format bump are optional here, so packages written before them still load (the v1 fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quantrain.errors import PackageError, QuantrainError


class _Model(BaseModel):
    # Unknown keys are kept, not refused: a newer writer may add optional fields.
    model_config = ConfigDict(frozen=True, extra="allow")


class FileEntry(_Model):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class HeadEntry(_Model):
    """One head: enough for a bot to run its ONNX graph without quantrain."""

    name: str
    target: str
    task: Literal["classification", "regression"]
    family: str
    classes: list[str] | None = None
    files: list[str]
    onnx_input: str
    onnx_outputs: list[str]
    opset: dict[str, int]
    parity_max_abs_diff: float
    parity_rows: int
    metrics: dict[str, Any]
    #: What the graph reads: the feature recipe, or (the risk head) the bot's equity state.
    inputs: Literal["features", "equity_state"] = "features"
    input_columns: list[str] | None = None
    #: Sequence heads read ``(N, sequence_length, F)`` lookback windows of the feature rows
    #: (``quantrain.models.windows.lookback_windows``); None for heads that read one row each.
    sequence_length: int | None = Field(None, ge=1)
    #: Binned targets (volatility_regime): the class boundaries on the raw target, fitted on
    #: all training rows; class i holds values in [thresholds[i-1], thresholds[i]).
    thresholds: list[float] | None = None
    #: Cascade heads: the heads whose outputs the graph reads after the features, in order,
    #: and those outputs' column names (``<head>_p_<class>`` / ``<head>``); None otherwise.
    upstream: list[str] | None = None
    upstream_columns: list[str] | None = None
    #: The final model's resolved params (family defaults, variant preset, head params) and
    #: the variant named, if any; None in packages written before they were recorded.
    params: dict[str, Any] | None = None
    variant: str | None = None
    #: ``family: auto``: {winner, metric, higher_is_better, scores per candidate} (fold scores).
    family_selection: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _what_a_reader_needs(self) -> HeadEntry:
        """The fields the Predictor builds its outputs from, consistent with the head's task."""
        if self.task == "classification" and (
            not self.classes or len(set(self.classes)) != len(self.classes)
        ):
            raise ValueError(
                f"a classification head lists its distinct classes, got {self.classes!r}"
            )
        if self.inputs == "equity_state" and not self.input_columns:
            raise ValueError("a head that reads the equity state lists its input_columns")
        return self


class TransformEntry(_Model):
    """A fold-fitted feature transform (issue 20): its ONNX graph reads ``inputs`` (feature
    or earlier transform columns) and appends ``outputs`` for every row."""

    name: str
    kind: str
    inputs: list[str]
    outputs: list[str]
    file: str
    sha256: str
    onnx_input: str
    onnx_output: str
    config: dict[str, Any]
    rows: int
    parity_max_abs_diff: float


class FeaturesEntry(_Model):
    kind: str = "bars"
    name: str
    #: The recipe hash: the spec's, or with transforms, the spec's and theirs (``spec_hash``
    #: is then the spec's own).
    hash: str
    columns: list[str]
    warmup_bars: int
    #: Bars a window needs before its features equal training's (None: not measured).
    history_bars: int | None = None
    transforms: list[TransformEntry] = Field(default_factory=list)
    spec_hash: str | None = None


class JobEntry(_Model):
    config: dict[str, Any]
    hash: str


class Manifest(_Model):
    """A whole manifest of format 1."""

    format_version: Literal[1]
    version: str
    symbol: str
    suite: str
    timeframe: str
    created_at: str
    code_version: str
    job: JobEntry
    features: FeaturesEntry
    data: dict[str, Any]
    folds: list[dict[str, Any]]
    summary_metrics: dict[str, float]
    heads: dict[str, HeadEntry]
    files: dict[str, FileEntry]
    #: Since the backtest: the model's out-of-sample trading summary, verdict and intervals.
    evaluation: dict[str, Any] | None = None
    #: Since the honest verdict (issue 16): the untouched holdout, the trading policy the
    #: package serves, and what selecting among trials could explain.
    holdout: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None
    selection: dict[str, Any] | None = None
    tuning: dict[str, Any] | None = None
    warm_start: dict[str, Any] | None = None
    #: A scheduling hint only (longest first): the scheduler ignores one that is not a positive
    #: number, so a bad value does not make the package unreadable.
    train_seconds: Any = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Manifest:
        """Every head is filed under its own name, and the policy's heads are heads that can
        play their part (a classifier to trade on, a regressor to size with)."""
        for key, head in self.heads.items():
            if head.name != key:
                raise ValueError(
                    f"heads.{key} is filed under another name than its own ({head.name!r})"
                )
        policy = self.policy or {}
        heads = self.feature_heads()
        wanted = (
            ("direction_head", "classification", False),
            ("size_head", "regression", True),
            ("meta_head", "classification", True),
        )
        for field, task, optional in wanted:
            if field not in policy or (optional and policy[field] is None):
                continue  # a missing field is the policy reader's to name
            name = policy[field]
            if not isinstance(name, str) or name not in heads or heads[name].task != task:
                raise ValueError(
                    f"policy.{field} {name!r} is not a {task} head of this package "
                    f"(its heads: {', '.join(heads) or 'none'})"
                )
        meta = policy.get("meta_head")
        if isinstance(meta, str) and "TAKE" not in (heads[meta].classes or ()):
            raise ValueError(f"policy.meta_head {meta!r} has no TAKE class to gate trades with")
        if self.policy is not None:
            _check_policy(self.policy)
        if self.features.kind != "journal":  # journal packages' timeframe is "trades"
            _check_timeframe(self.timeframe)
        return self

    def feature_heads(self) -> dict[str, HeadEntry]:
        """The heads that read the feature recipe (not the risk head)."""
        return {name: h for name, h in self.heads.items() if h.inputs == "features"}

    def risk_head(self) -> HeadEntry | None:
        return next((h for h in self.heads.values() if h.inputs == "equity_state"), None)


#: The largest integer a policy field may hold (numpy's and numba's int64).
_MAX_INT = 2**63 - 1


def _check_policy(policy: dict[str, Any]) -> None:
    """The policy the Predictor serves, read as it will read it: refused here, naming the
    field, rather than as an overflow or a type error at the first prediction."""
    from quantrain.policy import TradingPolicy

    for key, value in policy.items():
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
            raise ValueError(f"policy.{key}: {value} is out of range")
    try:
        TradingPolicy.from_dict(policy, where="policy")
    except (QuantrainError, TypeError, ValueError, ArithmeticError) as error:
        raise ValueError(str(error)) from None


def _check_timeframe(timeframe: str) -> None:
    """A bar package's timeframe: the bar size its features' warm-up is counted in."""
    from quantrain.features.timeframes import timeframe_ns

    try:
        timeframe_ns(timeframe)
    except (QuantrainError, ValueError, ArithmeticError) as error:  # pandas: out of bounds
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"timeframe {timeframe!r} is not a bar size ({first})") from None


#: One reader per format version: a format bump adds a reader and keeps the old one.
READERS: dict[int, Callable[[dict[str, Any]], Manifest]] = {1: Manifest.model_validate}


def parse_manifest(raw: dict[str, Any], source: str) -> Manifest:
    """The typed manifest, or a ``PackageError`` naming every field that is missing or wrong."""
    version = raw.get("format_version")
    reader = READERS.get(version) if isinstance(version, int) else None
    if reader is None:
        raise PackageError(
            f"{source}: package format_version {version!r}; this quantrain reads "
            f"{', '.join(map(str, READERS))}. Upgrade quantrain or re-train the package."
        )
    try:
        return reader(raw)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in item['loc']) or '(top level)'}: "
            + item["msg"].removeprefix("Value error, ")
            for item in error.errors()[:8]
        ]
        raise PackageError(
            f"{source}: the manifest is not a quantrain package manifest: "
            + "; ".join(problems)
            + "\n  fix: use a package written by quantrain (this one is damaged or tampered with)"
        ) from None
