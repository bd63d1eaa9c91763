"""Spec → feature matrix: the hot path of training and of a live bot.

Indicators come from the registry (``features.registry``) by key. Everything here is causal:
numpy ops are elementwise or trailing slices, recursive ones run through ``kernels``,
higher-timeframe ones read completed bars only.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quantrain.errors import ConfigError, DataError, QuantrainError
from quantrain.features.base import (
    OHLCV_COLUMNS,
    Bars,
    Indicator,
    Param,
    Params,
    ParamValue,
)
from quantrain.features.indicators import wilder_atr
from quantrain.features.registry import INDICATORS, available_indicators
from quantrain.runtime.cpus import usable_cpus

if TYPE_CHECKING:
    from quantrain.features.spec import FeatureSpec

__all__ = [
    "INDICATORS",
    "OHLCV_COLUMNS",
    "Bars",
    "Indicator",
    "Param",
    "ParamValue",
    "Params",
    "atr",
    "available_indicators",
    "compute_feature_matrix",
    "compute_features",
    "history_to_converge",
]

# Below this many bars threads cost more than they save (a live bot's window is ~1,000 bars).
PARALLEL_MIN_BARS = 100_000
#: What a kernel raises on numbers it cannot take (a zero divisor, an overflow, a bad domain).
NUMERIC_ERRORS: tuple[type[Exception], ...] = (ArithmeticError, ValueError)


def _threads(rows: int, columns: int, threads: int | None) -> int:
    if threads is not None:
        return max(1, threads)
    if rows < PARALLEL_MIN_BARS or columns < 2:
        return 1
    return max(1, min(usable_cpus(), 8))


def compute_feature_matrix(
    ohlcv: pd.DataFrame, spec: FeatureSpec, *, threads: int | None = None
) -> np.ndarray:
    """Feature values as a (bars, features) float64 array: the hot path of a live bot.

    The spec was validated at construction, so this does no per-call checking beyond the
    frame's columns and NaNs; the input frame is only read. ``threads`` (default: one below
    ``PARALLEL_MIN_BARS`` bars, else the usable cores) runs independent columns in threads;
    kernels release the GIL and the memo computes shared intermediates once either way.
    """
    bars = Bars.from_frame(ohlcv)
    spec.check_columns(ohlcv.columns)
    plan = spec.plan()
    names = spec.column_tuple()
    out = np.empty((len(ohlcv), len(plan)), dtype=np.float64, order="F")
    workers = _threads(len(ohlcv), len(plan), threads)
    if workers == 1:
        for j, (indicator, params) in enumerate(plan):
            out[:, j] = _column(ohlcv, bars, indicator, params, names[j])
        return out
    bars.enable_threads()

    def fill(j: int) -> None:
        indicator, params = plan[j]
        out[:, j] = _column(ohlcv, bars, indicator, params, names[j])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fill, range(len(plan))))  # list() re-raises the first error
    return out


def _column(
    ohlcv: pd.DataFrame, bars: Bars, indicator: Indicator, params: Params, name: str
) -> np.ndarray:
    """One feature column; a numeric failure inside its kernel becomes a ``DataError`` that
    names the column and the first row it fails on, instead of a bare ``ZeroDivisionError``."""
    try:
        return indicator.fn(bars, params)
    except QuantrainError:
        raise
    except NUMERIC_ERRORS as error:
        raise numeric_failure(ohlcv, indicator, params, name, error) from error


def numeric_failure(
    ohlcv: pd.DataFrame, indicator: Indicator, params: Params, name: str, error: Exception
) -> DataError:
    """The error for feature ``name`` failing with ``error``: where, on what values, the fix."""
    row = _first_failing_row(ohlcv, indicator, params, type(error))
    if row is None:
        where = f"on rows 0..{len(ohlcv) - 1}"
    else:
        bar = ohlcv.iloc[row]
        values = ", ".join(f"{c}={float(bar[c]):.6g}" for c in OHLCV_COLUMNS)
        where = f"on rows {row}.. (first at row {row}, {bar['timestamp']}: {values})"
    return DataError(
        f"feature {name!r} failed {where}: {type(error).__name__}: {error}"
        f"{_subnormal_rows(ohlcv)}\n"
        "  fix: check the prices there (zero or subnormal values usually mean a unit or "
        f"scaling error in the data), or drop the feature (features: {{drop: [{name}]}})"
    )


def _first_failing_row(
    ohlcv: pd.DataFrame, indicator: Indicator, params: Params, kind: type[Exception]
) -> int | None:
    """The first row whose value cannot be computed, by binary search over prefixes: a
    feature is causal, so a prefix fails exactly when it reaches that row (log2(rows) calls).
    None if the full frame does not fail the same way again."""

    def fails(rows: int) -> bool:
        try:
            indicator.fn(Bars.from_frame(ohlcv.iloc[:rows]), params)
        except kind:
            return True
        except Exception:  # another failure on a short prefix (too few bars): not this one
            return False
        return False

    good, bad = 0, len(ohlcv)
    if not fails(bad):
        return None
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (good, middle) if fails(middle) else (middle, bad)
    return bad - 1


def _subnormal_rows(ohlcv: pd.DataFrame) -> str:
    """A note naming the rows whose prices are subnormal floats (below 2.2e-308), if any."""
    prices = ohlcv[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
    tiny = np.abs(prices) < np.finfo(np.float64).tiny
    rows = np.flatnonzero((tiny & (prices != 0.0)).any(axis=1))
    if not len(rows):
        return ""
    return (
        f"\n  {len(rows)} row(s) have subnormal prices (below 2.2e-308, where float division "
        f"loses precision), the first at row(s) {rows[:5].tolist()}"
    )


def compute_features(
    ohlcv: pd.DataFrame, spec: FeatureSpec, *, threads: int | None = None
) -> pd.DataFrame:
    """Feature matrix for ``spec``: float64 columns in spec order, input's index, NaN in warm-up."""
    return pd.DataFrame(
        compute_feature_matrix(ohlcv, spec, threads=threads),
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
    return wilder_atr(bars, int(period))


def history_to_converge(
    ohlcv: pd.DataFrame,
    spec: FeatureSpec,
    *,
    tolerance: float = 1e-6,
    timeframe: str | None = None,
) -> int | None:
    """Bars of history after which features computed from a later start agree with the
    features training computed from the data's first bar (to ``tolerance`` of each column's
    standard deviation). Recursive indicators (EMAs, Wilder smoothing) remember their seed, so
    a bot's short window is not what training saw until this many bars in. None when the data
    is too short to tell (the two never agreed). ``timeframe``: the data's, for exact warm-ups
    of higher-timeframe features (without it they are counted on 1m bars, an upper bound)."""
    bars = len(ohlcv)
    start = max(spec.warmup_bars(timeframe), bars // 3)
    if bars - start < 2:
        return None
    # A column at a time, never both matrices: at five years of 5m bars they and their
    # differences were the training job's peak memory (1.5 GB).
    late = feature_columns(ohlcv.iloc[start:].reset_index(drop=True), spec)
    off = np.zeros(bars - start, dtype=bool)
    for truth, other in zip(feature_columns(ohlcv, spec), late, strict=True):
        off |= _column_differs(truth[start:], other, tolerance)
    differs = np.flatnonzero(off)
    if not len(differs):
        return spec.warmup_bars(timeframe)
    if differs[-1] == bars - start - 1:
        return None
    return max(int(differs[-1]) + 1, spec.warmup_bars(timeframe))


def feature_columns(ohlcv: pd.DataFrame, spec: FeatureSpec) -> Iterator[np.ndarray]:
    """The columns of :func:`compute_feature_matrix` one at a time (float64, the same values),
    in one thread: for passes over all features that need not hold the whole matrix."""
    bars = Bars.from_frame(ohlcv)
    spec.check_columns(ohlcv.columns)
    names = spec.column_tuple()
    for j, (indicator, params) in enumerate(spec.plan()):
        values = _column(ohlcv, bars, indicator, params, names[j])
        yield np.broadcast_to(np.asarray(values, dtype=np.float64), (len(ohlcv),))


def _column_differs(truth: np.ndarray, other: np.ndarray, tolerance: float) -> np.ndarray:
    """Rows where ``other`` is off ``truth`` by more than ``tolerance`` of ``truth``'s standard
    deviation (NaN in both: equal; NaN in one, or inf - inf: off)."""
    with np.errstate(invalid="ignore"):
        scale = float(np.nanstd(truth)) if len(truth) else 1.0
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    with np.errstate(invalid="ignore"):
        close = np.abs(other - truth) / scale <= tolerance
    return ~close & ~(np.isnan(truth) & np.isnan(other))
