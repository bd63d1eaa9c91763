"""Indicator registry and spec → feature matrix.

Each indicator is a small function ``(bars, params) -> array`` plus its declared parameters and
warm-up; specs refer to indicators by key, so adding one is a registry entry, never an
``if kind == ...`` branch. Everything here is causal: numpy ops are elementwise or trailing
slices, recursive ones run through ``kernels``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quantrain.errors import ConfigError, DataError
from quantrain.features import kernels

if TYPE_CHECKING:
    from quantrain.features.spec import FeatureSpec

ParamValue = int | float | str
Params = Mapping[str, ParamValue]

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
_NS_PER_DAY = 86_400 * 1_000_000_000
_NS_PER_WEEK = 7 * _NS_PER_DAY
# 1970-01-01 was a Thursday; shifting by 3 days puts Monday at 0, as pandas' dayofweek does.
_EPOCH_WEEKDAY_SHIFT_NS = 3 * _NS_PER_DAY


class Bars:
    """Float64 OHLCV arrays of one frame plus a per-call memo for shared intermediates."""

    __slots__ = ("_memo", "_timestamp", "close", "high", "low", "open", "volume")

    def __init__(
        self,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        timestamp: object = None,
    ) -> None:
        self.open = open_
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self._timestamp = timestamp
        self._memo: dict[Hashable, np.ndarray] = {}

    @classmethod
    def from_frame(cls, ohlcv: pd.DataFrame) -> Bars:
        """Copy the columns out (writable, contiguous: one numba signature, input untouched)."""
        missing = [c for c in ("timestamp", *OHLCV_COLUMNS) if c not in ohlcv.columns]
        if missing:
            raise DataError(
                f"OHLCV frame lacks column(s) {missing}; expected timestamp, "
                f"{', '.join(OHLCV_COLUMNS)} (load it through quantrain.data to get aliases fixed)"
            )
        arrays: list[np.ndarray] = []
        for col in OHLCV_COLUMNS:
            values = _column_values(ohlcv, col)
            if isinstance(values, np.ndarray):
                arr = np.array(values, dtype=np.float64)
            else:  # nullable / arrow-backed floats
                arr = ohlcv[col].to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isnan(arr).any():
                rows = np.flatnonzero(np.isnan(arr))[:5].tolist()
                raise DataError(
                    f"column {col!r} has NaN at row(s) {rows}: features need clean bars"
                )
            arrays.append(arr)
        open_, high, low, close, volume = arrays
        return cls(open_, high, low, close, volume, timestamp=_column_values(ohlcv, "timestamp"))

    def memo(self, key: Hashable, make: Callable[[], np.ndarray]) -> np.ndarray:
        """Compute an intermediate once per call (e.g. EMA 26 shared by MACD line and signal)."""
        found = self._memo.get(key)
        if found is None:
            found = make()
            self._memo[key] = found
        return found

    def timestamp_ns(self) -> np.ndarray:
        """UTC epoch nanoseconds (only converted when a calendar feature asks)."""

        def make() -> np.ndarray:
            if self._timestamp is None:
                raise DataError("calendar features need a 'timestamp' column")
            ts = np.asarray(self._timestamp, dtype="datetime64[ns]")  # tz-aware: UTC instants
            return ts.view(np.int64)

        return self.memo("ts_ns", make)


def _column_values(frame: pd.DataFrame, name: str) -> object:
    """A column's values without building a Series (about 1 µs instead of 13 µs per column,
    which matters when a bot recomputes every bar); falls back to the public path."""
    getter = getattr(frame, "_get_column_array", None)
    loc = frame.columns.get_loc(name)
    if getter is not None and isinstance(loc, int):
        return getter(loc)
    return frame[name].array


@dataclass(frozen=True)
class Param:
    """A declared indicator parameter: its default fixes the type; minimum bounds numbers."""

    name: str
    default: ParamValue
    minimum: float | None = None


@dataclass(frozen=True)
class Indicator:
    """One registry entry: how to compute a column, its parameters, and its warm-up in bars."""

    key: str
    fn: Callable[[Bars, Params], np.ndarray]
    params: tuple[Param, ...]
    warmup: Callable[[Params], int]
    doc: str
    check: Callable[[Params], str | None] | None = None


def _i(p: Params, name: str) -> int:
    value = p[name]
    assert isinstance(value, int)
    return value


def _f(p: Params, name: str) -> float:
    value = p[name]
    assert isinstance(value, int | float)
    return float(value)


def _lag_ratio(x: np.ndarray, k: int) -> np.ndarray:
    """x[t] / x[t-k], NaN for the first k bars."""
    out = np.full(x.shape, np.nan)
    if k < x.shape[0]:
        out[k:] = x[k:] / x[:-k]
    return out


# --- shared intermediates (memoised per call) -------------------------------------------------


def _ema(b: Bars, n: int, seed_at: int = -1) -> np.ndarray:
    return b.memo(("ema", n, seed_at), lambda: kernels.ewm(b.close, n, 2.0 / (n + 1), seed_at))


def _sma(b: Bars, n: int) -> np.ndarray:
    return b.memo(("sma", n), lambda: kernels.rolling_mean(b.close, n))


def _log_ret1(b: Bars) -> np.ndarray:
    return b.memo("logret1", lambda: np.log(_lag_ratio(b.close, 1)))


def _close_diff(b: Bars) -> np.ndarray:
    def make() -> np.ndarray:
        diff = np.full(b.close.shape, np.nan)
        diff[1:] = b.close[1:] - b.close[:-1]
        return diff

    return b.memo("diff", make)


def _true_range(b: Bars) -> np.ndarray:
    def make() -> np.ndarray:
        tr = np.full(b.close.shape, np.nan)
        prev = b.close[:-1]
        tr[1:] = np.maximum(b.high[1:], prev) - np.minimum(b.low[1:], prev)
        return tr

    return b.memo("tr", make)


def _atr(b: Bars, n: int) -> np.ndarray:
    return b.memo(("atr", n), lambda: kernels.ewm(_true_range(b), n, 1.0 / n, -1))


def _macd_parts(b: Bars, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """MACD line and signal in price units; the fast EMA is seeded at the slow one's first bar
    (as TA-Lib does), so both start together."""
    fast, slow, sig = _i(p, "fast"), _i(p, "slow"), _i(p, "signal")

    def make() -> np.ndarray:
        line = _ema(b, fast, slow - 1) - _ema(b, slow)
        return np.stack((line, kernels.ewm(line, sig, 2.0 / (sig + 1), -1)))

    both = b.memo(("macd", fast, slow, sig), make)
    return both[0], both[1]


def _bbands(b: Bars, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Middle band and population std (TA-Lib's BBANDS uses ddof 0)."""
    n = _i(p, "period")
    std = b.memo(("std0", n), lambda: kernels.rolling_std(b.close, n, 0))
    return _sma(b, n), std


def _stoch_k(b: Bars, n: int) -> np.ndarray:
    def make() -> np.ndarray:
        hh = kernels.rolling_extreme(b.high, n, True)
        ll = kernels.rolling_extreme(b.low, n, False)
        return 100.0 * kernels.safe_div(b.close - ll, hh - ll, 0.5)

    return b.memo(("stoch_k", n), make)


def _adx(b: Bars, n: int) -> np.ndarray:
    return b.memo(("adx", n), lambda: kernels.adx(b.high, b.low, b.close, n))


def _time_angle(b: Bars, period_ns: int, shift_ns: int) -> np.ndarray:
    """Position within a day/week as an angle; floor-mod keeps pre-1970 stamps right."""

    def make() -> np.ndarray:
        frac = ((b.timestamp_ns() + shift_ns) % period_ns).astype(np.float64) / period_ns
        return 2.0 * np.pi * frac

    return b.memo(("angle", period_ns), make)


# --- indicator functions ----------------------------------------------------------------------


def _ret(b: Bars, p: Params) -> np.ndarray:
    k = _i(p, "period")
    return np.log(_lag_ratio(b.close, k)) if k > 1 else _log_ret1(b)


def _ema_dist(b: Bars, p: Params) -> np.ndarray:
    return b.close / _ema(b, _i(p, "period")) - 1.0


def _sma_dist(b: Bars, p: Params) -> np.ndarray:
    return b.close / _sma(b, _i(p, "period")) - 1.0


def _rsi(b: Bars, p: Params) -> np.ndarray:
    n = _i(p, "period")
    diff = _close_diff(b)
    gain = kernels.ewm(np.maximum(diff, 0.0), n, 1.0 / n, -1)  # NaN at bar 0 propagates
    loss = kernels.ewm(np.maximum(-diff, 0.0), n, 1.0 / n, -1)
    return 100.0 * kernels.safe_div(gain, gain + loss, 0.5)


def _macd(b: Bars, p: Params) -> np.ndarray:
    return _macd_parts(b, p)[0] / b.close


def _macd_signal(b: Bars, p: Params) -> np.ndarray:
    return _macd_parts(b, p)[1] / b.close


def _macd_hist(b: Bars, p: Params) -> np.ndarray:
    line, signal = _macd_parts(b, p)
    return (line - signal) / b.close


def _atr_frac(b: Bars, p: Params) -> np.ndarray:
    return _atr(b, _i(p, "period")) / b.close


def _bb_pctb(b: Bars, p: Params) -> np.ndarray:
    mid, std = _bbands(b, p)
    return 0.5 + kernels.safe_div(b.close - mid, 2.0 * _f(p, "nstd") * std, 0.0)


def _bb_width(b: Bars, p: Params) -> np.ndarray:
    mid, std = _bbands(b, p)
    return 2.0 * _f(p, "nstd") * std / mid


def _stoch_k_fn(b: Bars, p: Params) -> np.ndarray:
    return _stoch_k(b, _i(p, "period"))


def _stoch_d(b: Bars, p: Params) -> np.ndarray:
    return kernels.rolling_mean(_stoch_k(b, _i(p, "period")), _i(p, "smooth"))


def _plus_di(b: Bars, p: Params) -> np.ndarray:
    return _adx(b, _i(p, "period"))[0]


def _minus_di(b: Bars, p: Params) -> np.ndarray:
    return _adx(b, _i(p, "period"))[1]


def _adx_fn(b: Bars, p: Params) -> np.ndarray:
    return _adx(b, _i(p, "period"))[2]


def _vol_z(b: Bars, p: Params) -> np.ndarray:
    n = _i(p, "period")
    mean = kernels.rolling_mean(b.volume, n)
    return kernels.safe_div(b.volume - mean, kernels.rolling_std(b.volume, n, 0), 0.0)


def _obv_slope(b: Bars, p: Params) -> np.ndarray:
    """(OBV[t] - OBV[t-n]) / volume of those n bars: the signed-volume share, in [-1, 1]."""
    n = _i(p, "period")

    signed = b.memo("signed_volume", lambda: np.sign(_close_diff(b)) * b.volume)
    vol = b.volume.copy()
    vol[:1] = np.nan  # same n bars as the signed sum
    return kernels.safe_div(kernels.rolling_mean(signed, n), kernels.rolling_mean(vol, n), 0.0)


def _volatility(b: Bars, p: Params) -> np.ndarray:
    return kernels.rolling_std(_log_ret1(b), _i(p, "period"), 1)


def _hl_range(b: Bars, p: Params) -> np.ndarray:
    return (b.high - b.low) / b.close


def _hour_sin(b: Bars, p: Params) -> np.ndarray:
    return np.sin(_time_angle(b, _NS_PER_DAY, 0))


def _hour_cos(b: Bars, p: Params) -> np.ndarray:
    return np.cos(_time_angle(b, _NS_PER_DAY, 0))


def _dow_sin(b: Bars, p: Params) -> np.ndarray:
    return np.sin(_time_angle(b, _NS_PER_WEEK, _EPOCH_WEEKDAY_SHIFT_NS))


def _dow_cos(b: Bars, p: Params) -> np.ndarray:
    return np.cos(_time_angle(b, _NS_PER_WEEK, _EPOCH_WEEKDAY_SHIFT_NS))


def _check_macd(p: Params) -> str | None:
    if _i(p, "fast") >= _i(p, "slow"):
        return f"'fast' must be smaller than 'slow', got fast={p['fast']}, slow={p['slow']}"
    return None


_PERIOD = Param("period", 14, 1)
_MACD_PARAMS = (Param("fast", 12, 1), Param("slow", 26, 2), Param("signal", 9, 1))
_BB_PARAMS = (Param("period", 20, 2), Param("nstd", 2.0, 0.0))


def _macd_warmup(p: Params) -> int:
    return _i(p, "slow") + _i(p, "signal") - 2


def _period(offset: int) -> Callable[[Params], int]:
    return lambda p: _i(p, "period") + offset


def _zero(p: Params) -> int:
    return 0


_ENTRIES = (
    Indicator("ret", _ret, (Param("period", 1, 1),), _period(0), "log(close[t] / close[t-n])"),
    Indicator("ema_dist", _ema_dist, (Param("period", 20, 1),), _period(-1), "close / EMA(n) - 1"),
    Indicator("sma_dist", _sma_dist, (Param("period", 20, 1),), _period(-1), "close / SMA(n) - 1"),
    Indicator("rsi", _rsi, (_PERIOD,), _period(0), "Wilder RSI, 0..100"),
    Indicator(
        "macd", _macd, _MACD_PARAMS, lambda p: _i(p, "slow") - 1, "MACD line / close", _check_macd
    ),
    Indicator(
        "macd_signal", _macd_signal, _MACD_PARAMS, _macd_warmup, "MACD signal / close", _check_macd
    ),
    Indicator(
        "macd_hist", _macd_hist, _MACD_PARAMS, _macd_warmup, "MACD histogram / close", _check_macd
    ),
    Indicator("atr_frac", _atr_frac, (_PERIOD,), _period(0), "Wilder ATR / close"),
    Indicator("bb_pctb", _bb_pctb, _BB_PARAMS, _period(-1), "Bollinger %B (0.5 on a flat window)"),
    Indicator("bb_width", _bb_width, _BB_PARAMS, _period(-1), "(upper - lower) / middle band"),
    Indicator("stoch_k", _stoch_k_fn, (_PERIOD,), _period(-1), "fast stochastic %K, 0..100"),
    Indicator(
        "stoch_d",
        _stoch_d,
        (_PERIOD, Param("smooth", 3, 1)),
        lambda p: _i(p, "period") + _i(p, "smooth") - 2,
        "SMA(smooth) of %K",
    ),
    Indicator("adx", _adx_fn, (_PERIOD,), lambda p: 2 * _i(p, "period") - 1, "Wilder ADX"),
    Indicator("plus_di", _plus_di, (_PERIOD,), _period(0), "+DI, 0..100"),
    Indicator("minus_di", _minus_di, (_PERIOD,), _period(0), "-DI, 0..100"),
    Indicator("vol_z", _vol_z, (Param("period", 20, 2),), _period(-1), "volume z-score"),
    Indicator("obv_slope", _obv_slope, (Param("period", 20, 1),), _period(0), "ΔOBV(n) / Σvol(n)"),
    Indicator(
        "volatility", _volatility, (Param("period", 20, 2),), _period(0), "std of log returns"
    ),
    Indicator("hl_range", _hl_range, (), _zero, "(high - low) / close"),
    Indicator("hour_sin", _hour_sin, (), _zero, "time of day (UTC) on the unit circle"),
    Indicator("hour_cos", _hour_cos, (), _zero, "time of day (UTC) on the unit circle"),
    Indicator("dow_sin", _dow_sin, (), _zero, "day of week (UTC, Monday 0) on the unit circle"),
    Indicator("dow_cos", _dow_cos, (), _zero, "day of week (UTC, Monday 0) on the unit circle"),
)

INDICATORS: dict[str, Indicator] = {entry.key: entry for entry in _ENTRIES}


def available_indicators() -> list[str]:
    """Registry keys, sorted: what a ``FeatureDef.kind`` may name."""
    return sorted(INDICATORS)


def compute_feature_matrix(ohlcv: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Feature values as a (bars, features) float64 array: the hot path of a live bot.

    The spec was validated at construction, so this does no per-call checking beyond the
    frame's columns and NaNs; the input frame is only read.
    """
    bars = Bars.from_frame(ohlcv)
    plan = spec.plan()
    out = np.empty((len(ohlcv), len(plan)), dtype=np.float64, order="F")
    for j, (indicator, params) in enumerate(plan):
        out[:, j] = indicator.fn(bars, params)
    return out


def compute_features(ohlcv: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Feature matrix for ``spec``: float64 columns in spec order, input's index, NaN in warm-up."""
    return pd.DataFrame(
        compute_feature_matrix(ohlcv, spec),
        index=ohlcv.index,
        columns=_column_index(spec.column_tuple()),
        copy=False,
    )


@lru_cache(maxsize=64)
def _column_index(columns: tuple[str, ...]) -> pd.Index:
    """Built once per column list: a live bot calls compute_features every bar."""
    return pd.Index(columns)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder ATR in price units, NaN for the first ``period`` bars; labels scale barriers by it."""
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < 1:
        raise ConfigError(f"ATR period must be an integer >= 1, got {period!r}")
    arrays = [np.array(a, dtype=np.float64, copy=True) for a in (high, low, close)]
    if not arrays[0].shape == arrays[1].shape == arrays[2].shape or arrays[0].ndim != 1:
        raise DataError(
            f"high, low, close must be 1-D and equally long, got shapes {[a.shape for a in arrays]}"
        )
    bars = Bars(arrays[2], arrays[0], arrays[1], arrays[2], arrays[2])
    return _atr(bars, int(period))
