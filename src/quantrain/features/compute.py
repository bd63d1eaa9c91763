"""Spec → feature matrix: the hot path of training and of a live bot.

Indicators come from the registry (``features.registry``) by key. Everything here is causal:
numpy ops are elementwise or trailing slices, recursive ones run through ``kernels``,
higher-timeframe ones read completed bars only.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quantrain.errors import ConfigError, DataError
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
]

# Below this many bars threads cost more than they save (a live bot's window is ~1,000 bars).
PARALLEL_MIN_BARS = 100_000


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
    out = np.empty((len(ohlcv), len(plan)), dtype=np.float64, order="F")
    workers = _threads(len(ohlcv), len(plan), threads)
    if workers == 1:
        for j, (indicator, params) in enumerate(plan):
            out[:, j] = indicator.fn(bars, params)
        return out
    bars.enable_threads()

    def fill(j: int) -> None:
        indicator, params = plan[j]
        out[:, j] = indicator.fn(bars, params)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fill, range(len(plan))))  # list() re-raises the first error
    return out


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
