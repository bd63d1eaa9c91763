"""Feature sets as data: validated definitions, deterministic column names, a content hash.

A spec is resolved at construction (defaults filled in, types normalised), so two ways of
writing the same recipe hash the same, and ``compute_features`` never re-validates per call.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from quantrain.errors import ConfigError, DataError
from quantrain.features.base import EXTRA_COLUMNS, Indicator, Param, Params, ParamValue
from quantrain.features.registry import INDICATORS
from quantrain.features.timeframes import base_warmup, timeframe_ns

# Bump whenever any kernel's output changes: it is hashed into every spec, so packages trained
# with other feature code are recognised instead of silently fed different numbers.
# Growing a set does not bump it (the spec hash already changes); the 38 columns of version 1
# still compute the same numbers, so packages written by it stay servable.
FEATURE_CODE_VERSION = "1"


def _near(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _resolve_param(kind: str, param: Param, value: object) -> ParamValue:
    """Check one value against its declaration; ints stay ints, floats become floats."""
    where = f"parameter {param.name!r} of indicator {kind!r}"
    default = param.default
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        expected = "an integer" if isinstance(default, int) else "a number"
        raise ConfigError(f"{where} must be {expected}, got {value!r} ({type(value).__name__})")
    resolved: int | float
    if isinstance(default, int):
        if not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r} ({type(value).__name__})")
        resolved = int(value)
    else:
        resolved = float(value)
        if not math.isfinite(resolved):
            raise ConfigError(f"{where} must be finite, got {value!r}")
    if param.minimum is not None and resolved < param.minimum:
        bound = int(param.minimum) if isinstance(default, int) else param.minimum
        raise ConfigError(f"{where} must be >= {bound}, got {value!r}")
    return resolved


def _resolve(kind: str, indicator: Indicator, raw: Mapping[str, object]) -> dict[str, ParamValue]:
    declared = {p.name: p for p in indicator.params}
    for key in raw:
        if key not in declared:
            allowed = sorted(declared) or "none"
            raise ConfigError(
                f"unknown parameter {key!r} for indicator {kind!r}; expected one of {allowed}"
                + _near(str(key), list(declared))
            )
    params = {
        name: _resolve_param(kind, p, raw.get(name, p.default)) for name, p in declared.items()
    }
    if indicator.check is not None:
        problem = indicator.check(params)
        if problem:
            raise ConfigError(f"indicator {kind!r}: {problem}")
    return params


def _fmt(value: ParamValue) -> str:
    """Parameter value as a column-name token: 20 -> '20', 2.0 -> '2', 2.5 -> '2p5'."""
    if isinstance(value, float):
        text = repr(value)
        text = text[:-2] if text.endswith(".0") else text
        return text.replace(".", "p").replace("-", "m").replace("+", "")
    return str(value)


class FeatureDef(BaseModel):
    """One feature column: an indicator key and its (resolved) parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    params: dict[str, int | float | str] = Field(default_factory=dict)
    _name: str = PrivateAttr(default="")

    @model_validator(mode="before")
    @classmethod
    def _fill_params(cls, data: Any) -> Any:
        """Unknown kinds/params fail here with near matches; defaults are filled in."""
        if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
            return data  # pydantic reports the shape error
        kind = data["kind"]
        indicator = INDICATORS.get(kind)
        if indicator is None:
            raise ConfigError(
                f"unknown feature indicator {kind!r}"
                + _near(kind, sorted(INDICATORS))
                + f"; available: {', '.join(sorted(INDICATORS))}"
            )
        raw = data.get("params") or {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"params of indicator {kind!r} must be a mapping, got {raw!r}")
        return {**data, "params": _resolve(kind, indicator, raw)}

    def model_post_init(self, context: Any, /) -> None:
        tokens = [_fmt(self.params[p.name]) for p in INDICATORS[self.kind].params]
        self._name = "_".join([self.kind, *tokens])

    @property
    def name(self) -> str:
        """Deterministic column name: kind then parameter values in declared order."""
        return self._name

    @property
    def warmup(self) -> int:
        """Leading bars that are NaN for this feature (higher-timeframe features: counted on
        the finest base, 1m, an upper bound; ``warmup_for`` gives the exact count)."""
        return self.warmup_for(None)

    def warmup_for(self, timeframe: str | None) -> int:
        """Leading NaN bars on data of ``timeframe`` (e.g. ``5m``)."""
        return base_warmup(INDICATORS[self.kind], self.params, timeframe)


class FeatureRecipe(Protocol):
    """What a package records about its inputs: a name, ordered columns and a hash that changes
    whenever the same inputs would be computed differently."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def columns(self) -> list[str]: ...

    def spec_hash(self) -> str: ...

    def warmup_bars(self, timeframe: str | None = None) -> int: ...

    def to_json_dict(self) -> dict[str, Any]: ...


class FeatureSpec(BaseModel):
    """A named, ordered feature set; hashed together with FEATURE_CODE_VERSION."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    features: tuple[FeatureDef, ...]
    _columns: tuple[str, ...] = PrivateAttr(default=())
    _plan: tuple[tuple[Indicator, Params], ...] = PrivateAttr(default=())
    _hash: str = PrivateAttr(default="")
    _reads: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="before")
    @classmethod
    def _check_stamp(cls, data: Any) -> Any:
        """Accept what ``to_json_dict`` wrote; refuse other feature code or a wrong hash."""
        if not isinstance(data, Mapping):
            return data
        body = dict(data)
        version = body.pop("feature_code_version", None)
        expected_hash = body.pop("spec_hash", None)
        if version is not None and version != FEATURE_CODE_VERSION:
            raise ConfigError(
                f"feature spec {body.get('name')!r} was written by feature code version "
                f"{version!r}, this quantrain computes version {FEATURE_CODE_VERSION!r}: the "
                "features would differ from training; retrain, or use the quantrain that wrote it"
            )
        if expected_hash is not None:
            got = cls.model_validate(body).spec_hash()
            if got != expected_hash:
                raise ConfigError(
                    f"feature spec {body.get('name')!r} does not match its spec_hash "
                    f"(recorded {expected_hash}, recomputed {got}): the file was edited or damaged"
                )
        return body

    def model_post_init(self, context: Any, /) -> None:
        if not self.name.strip():
            raise ConfigError("feature spec name must be a non-empty string")
        if not self.features:
            raise ConfigError(f"feature spec {self.name!r} has no features")
        columns = tuple(f.name for f in self.features)
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise ConfigError(f"feature spec {self.name!r} repeats column(s) {dupes}")
        self._columns = columns
        # Snapshots: the plan and hash stay consistent even if a caller mutates a params dict.
        self._plan = tuple(
            (INDICATORS[f.kind], MappingProxyType(dict(f.params))) for f in self.features
        )
        self._reads = tuple(sorted({c for ind, _ in self._plan for c in ind.reads}))
        canonical = json.dumps(self._canonical(), sort_keys=True, separators=(",", ":"))
        self._hash = hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def _canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "features": [{"kind": ind.key, "params": dict(params)} for ind, params in self._plan],
            "feature_code_version": FEATURE_CODE_VERSION,
        }

    @property
    def kind(self) -> str:
        """What the inputs are computed from: OHLCV bars (journal recipes say ``journal``)."""
        return "ohlcv"

    def columns(self) -> list[str]:
        """Feature column names in order."""
        return list(self._columns)

    def column_tuple(self) -> tuple[str, ...]:
        """Column names as the (immutable) tuple kept since construction; no copy."""
        return self._columns

    def plan(self) -> tuple[tuple[Indicator, Params], ...]:
        """(indicator, params) per column, resolved once at construction."""
        return self._plan

    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of name, features and FEATURE_CODE_VERSION."""
        return self._hash

    def warmup_bars(self, timeframe: str | None = None) -> int:
        """Bars before every feature is defined: rows >= this index have no warm-up NaN.

        Pass the data's timeframe for the exact count; without it higher-timeframe features
        are counted as if on 1m bars (an upper bound for any base of 1m or more).
        """
        return max(f.warmup_for(timeframe) for f in self.features)

    def required_columns(self) -> list[str]:
        """Merged (exogenous) columns the frame must carry besides OHLCV, sorted."""
        return list(self._reads)

    def check_columns(self, columns: Iterable[object]) -> None:
        """``DataError`` naming the features whose merged columns ``columns`` lacks."""
        if not self._reads:
            return
        present = set(columns)
        missing = [c for c in self._reads if c not in present]
        if missing:
            needing = [
                f.name
                for f, (ind, _) in zip(self.features, self._plan, strict=True)
                if set(ind.reads) & set(missing)
            ]
            merges = sorted({EXTRA_COLUMNS.get(c, "a merge") for c in missing})
            raise DataError(
                f"feature(s) {', '.join(needing)} read column(s) {missing}, which the frame "
                f"lacks\n  fix: add them with quantrain.features.exogenous."
                f"{' and '.join(merges)} before computing features (training and prediction)"
            )

    def to_json_dict(self) -> dict[str, Any]:
        """The features.json content; ``FeatureSpec.model_validate`` reads it back."""
        return {**self._canonical(), "spec_hash": self._hash}


def _periods(kind: str, periods: tuple[int, ...]) -> tuple[tuple[str, dict[str, ParamValue]], ...]:
    return tuple((kind, {"period": n}) for n in periods)


# The first 38 columns are version 1's standard set, unchanged in name, order and value.
_STANDARD: tuple[tuple[str, dict[str, ParamValue]], ...] = (
    *_periods("ret", (1, 3, 6, 12, 24, 48)),
    *_periods("ema_dist", (10, 20, 50, 100)),
    *_periods("sma_dist", (10, 20, 50, 100)),
    ("rsi", {"period": 14}),
    ("rsi", {"period": 7}),
    ("macd", {}),
    ("macd_signal", {}),
    ("macd_hist", {}),
    ("atr_frac", {"period": 14}),
    ("bb_pctb", {"period": 20, "nstd": 2.0}),
    ("bb_width", {"period": 20, "nstd": 2.0}),
    ("stoch_k", {"period": 14}),
    ("stoch_d", {"period": 14, "smooth": 3}),
    ("adx", {"period": 14}),
    ("plus_di", {"period": 14}),
    ("minus_di", {"period": 14}),
    ("vol_z", {"period": 20}),
    ("vol_z", {"period": 50}),
    ("obv_slope", {"period": 20}),
    ("obv_slope", {"period": 50}),
    ("volatility", {"period": 12}),
    ("volatility", {"period": 48}),
    ("hl_range", {}),
    ("hour_sin", {}),
    ("hour_cos", {}),
    ("dow_sin", {}),
    ("dow_cos", {}),
    # trend
    ("ema_slope", {"period": 20, "lag": 12}),
    ("ema_slope", {"period": 50, "lag": 12}),
    *_periods("aroon_osc", (14, 48)),
    ("cci", {"period": 20}),
    *_periods("vwap_dist", (48, 144)),
    ("linreg_slope", {"period": 48}),
    # momentum
    ("ret", {"period": 96}),
    ("rsi", {"period": 21}),
    ("willr", {"period": 48}),
    ("mfi", {"period": 14}),
    ("trix", {"period": 15}),
    ("ultosc", {}),
    # volatility
    *_periods("atr_frac", (5, 48)),
    ("parkinson", {"period": 20}),
    ("garman_klass", {"period": 20}),
    ("volatility", {"period": 144}),
    # volume
    ("vol_ratio", {"fast": 5, "slow": 50}),
    ("cmf", {"period": 20}),
    ("adosc", {"fast": 3, "slow": 10}),
    # bar structure
    ("swing_high_dist", {"period": 48, "atr": 14}),
    ("swing_low_dist", {"period": 48, "atr": 14}),
    ("swing_high_dist", {"period": 144, "atr": 14}),
    ("swing_low_dist", {"period": 144, "atr": 14}),
    *_periods("range_pos", (48, 144)),
    ("body", {}),
    ("upper_wick", {}),
    ("lower_wick", {}),
    ("gap_atr", {"atr": 14}),
    # session / calendar
    ("minute_sin", {}),
    ("minute_cos", {}),
    ("session", {"start": 0, "end": 8}),
    ("session", {"start": 7, "end": 16}),
    ("session", {"start": 13, "end": 21}),
    # higher timeframes: warm-ups stay under 200 bars on 5m data
    ("htf_rsi", {"tf": "1h", "period": 14}),
    ("htf_ret", {"tf": "1h", "period": 1}),
    ("htf_range_pos", {"tf": "1h", "period": 12}),
    ("htf_atr_frac", {"tf": "1h", "period": 14}),
    ("htf_ret", {"tf": "4h", "period": 1}),
    ("htf_hl_range", {"tf": "4h"}),
    ("htf_range_pos", {"tf": "4h", "period": 2}),
)

_EXOGENOUS: tuple[tuple[str, dict[str, ParamValue]], ...] = (
    ("funding_rate", {}),
    ("funding_z", {"period": 288}),
    ("event_minutes_to", {"cap": 1440}),
    ("event_minutes_since", {"cap": 1440}),
)


def _spec(name: str, defs: tuple[tuple[str, dict[str, ParamValue]], ...]) -> FeatureSpec:
    return FeatureSpec(name=name, features=tuple(FeatureDef(kind=k, params=p) for k, p in defs))


#: The standard set's two higher-timeframe views sit near these multiples of the base bar
#: (on 5m bars: 1h and 4h, the views the set was built with).
HTF_MULTIPLES: tuple[int, int] = (12, 48)
#: Bar sizes a view may round to: each divides a day (or is a whole week), so its bins sit
#: cleanly on the epoch-anchored grid of ``quantrain.data.resample``.
CLEAN_TIMEFRAMES: tuple[str, ...] = (
    *("1m", "2m", "3m", "5m", "10m", "15m", "20m", "30m"),
    *("1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d", "1w"),
)
_DESIGN_VIEWS = ("1h", "4h")  # the tf values written in _STANDARD, in HTF_MULTIPLES order
_MINUTE, _HOUR, _DAY, _WEEK = (60 * 10**9 * n for n in (1, 60, 1440, 10080))


def htf_views(timeframe: str | None) -> tuple[str | None, str | None]:
    """The standard set's higher timeframes on ``timeframe`` bars (None: the 5m design, 1h/4h).

    Each is the clean bar size (``CLEAN_TIMEFRAMES``, a whole multiple of the base) nearest,
    on a log scale, to base × 12 and base × 48; None where no view makes sense: on daily or
    coarser bases, beyond a week, or when both multiples round to the same size (the second
    is dropped).
    """
    if timeframe is None:
        return _DESIGN_VIEWS
    base = timeframe_ns(timeframe)
    if base >= _DAY:
        return None, None
    candidates = [(tf, timeframe_ns(tf)) for tf in CLEAN_TIMEFRAMES]
    views: list[str | None] = []
    for multiple in HTF_MULTIPLES:
        fits = [(tf, ns) for tf, ns in candidates if ns > base and ns % base == 0]
        if not fits:
            views.append(None)
            continue
        target = math.log(base * multiple)
        tf = min(fits, key=lambda item: abs(math.log(item[1]) - target))[0]
        views.append(None if tf in views else tf)
    return views[0], views[1]


def _constant_on(kind: str, base: int) -> bool:
    """Calendar features that take one value on every bar of this size."""
    if kind in ("minute_sin", "minute_cos"):
        return base % _HOUR == 0
    if kind in ("hour_sin", "hour_cos", "session"):
        return base % _DAY == 0
    if kind in ("dow_sin", "dow_cos"):
        return base % _WEEK == 0
    return False


def _for_timeframe(
    defs: tuple[tuple[str, dict[str, ParamValue]], ...], timeframe: str | None
) -> tuple[tuple[str, dict[str, ParamValue]], ...]:
    """``defs`` adapted to the base bar: htf views moved to ``htf_views``, the ones that make no
    sense dropped, and calendar features dropped where they would be constant."""
    if timeframe is None:
        return defs
    base = timeframe_ns(timeframe)
    views = dict(zip(_DESIGN_VIEWS, htf_views(timeframe), strict=True))
    adapted: list[tuple[str, dict[str, ParamValue]]] = []
    for kind, params in defs:
        if _constant_on(kind, base):
            continue
        if kind.startswith("htf_") and params.get("tf") in views:
            view = views[str(params["tf"])]
            if view is None:
                continue
            params = {**params, "tf": view}
        adapted.append((kind, params))
    return tuple(adapted)


def standard_spec(timeframe: str | None = None) -> FeatureSpec:
    """The default set: scale-free trend, momentum, volatility, volume and bar-structure
    features, UTC calendar/session cycles, and two higher-timeframe views.

    Given the data's ``timeframe`` it adapts (see ``htf_views``): on 5m bars (and with no
    timeframe) the views are 1h and 4h and the spec is version 1's, hash unchanged; on 15m
    bars 3h/12h, on 1h bars 12h/1d, on 4h bars 1d/1w, on daily or weekly bars none, and
    calendar features that would be constant (minute on hourly bars, time of day and sessions
    on daily ones, day of week on weekly ones) are left out.
    """
    return _spec("standard", _for_timeframe(_STANDARD, timeframe))


def standard_exo_spec(timeframe: str | None = None) -> FeatureSpec:
    """``standard`` plus funding and economic-calendar features (needs ``merge_exogenous``)."""
    return _spec("standard_exo", _for_timeframe(_STANDARD + _EXOGENOUS, timeframe))


FEATURE_SETS: dict[str, Callable[..., FeatureSpec]] = {
    "standard": standard_spec,
    "standard_exo": standard_exo_spec,
}
#: Sets whose factory takes the data's timeframe and adapts to it.
ADAPTIVE_SETS = frozenset({"standard", "standard_exo"})


def get_feature_set(name: str, timeframe: str | None = None) -> FeatureSpec:
    """A named feature set (adapted to ``timeframe`` when it adapts); unknown names list the
    near matches."""
    make = FEATURE_SETS.get(name)
    if make is None:
        raise ConfigError(
            f"unknown feature set {name!r}"
            + _near(name, sorted(FEATURE_SETS))
            + f"; available: {', '.join(sorted(FEATURE_SETS))}"
        )
    return make(timeframe) if timeframe and name in ADAPTIVE_SETS else make()


class FeatureSelection(BaseModel):
    """A feature set written in the job file: a named base, columns or kinds to drop (glob
    patterns allowed, e.g. ``htf_*``), indicators to add, and an optional name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: str = "standard"
    drop: tuple[str, ...] = ()
    add: tuple[FeatureDef, ...] = ()
    name: str | None = None


def _drop_matches(item: str, feature: FeatureDef) -> bool:
    if any(ch in item for ch in "*?["):
        return fnmatch.fnmatchcase(feature.name, item) or fnmatch.fnmatchcase(feature.kind, item)
    return item in (feature.name, feature.kind)


def resolve_feature_set(
    value: str | FeatureSelection | Mapping[str, Any], timeframe: str | None = None
) -> FeatureSpec:
    """The spec a job's ``features`` value means: a set name or a ``FeatureSelection``, on data
    of ``timeframe`` (adaptive sets adapt to it; None: as designed, for 5m bars).

    Every change (a drop, an added indicator or parameter, the name) changes the spec hash.
    """
    if isinstance(value, str):
        return get_feature_set(value, timeframe)
    if not isinstance(value, FeatureSelection):
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"features must be a set name or a mapping with base/drop/add/name, got {value!r}"
            )
        try:
            value = FeatureSelection.model_validate(dict(value))
        except ValidationError as error:
            problems = "; ".join(
                f"features.{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in error.errors()
            )
            raise ConfigError(
                f"{problems} (a feature selection has keys base, drop, add, name)"
            ) from None
    base = get_feature_set(value.base, timeframe)
    # Drops are checked against the set as designed: ``htf_*`` stays valid where the adapted
    # set has no higher-timeframe view left to drop.
    designed = get_feature_set(value.base) if timeframe else base
    for item in value.drop:
        if not any(_drop_matches(item, f) for f in designed.features):
            known = sorted(
                {f.name for f in designed.features} | {f.kind for f in designed.features}
            )
            raise ConfigError(
                f"features.drop: {item!r} is neither a column nor a kind of feature set "
                f"{value.base!r}" + _near(item, known)
            )
    kept = tuple(f for f in base.features if not any(_drop_matches(i, f) for i in value.drop))
    changed = bool(value.drop or value.add)
    name = value.name or (f"{value.base}-custom" if changed else base.name)
    return FeatureSpec(name=name, features=kept + value.add)
