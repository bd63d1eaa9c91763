"""Volatility regime: forward realised volatility, binned into quantile classes.

The raw target is the standard deviation (ddof 0) of the ``horizon`` log returns after bar t,
``log(c[t+j] / c[t+j-1])`` for j = 1..horizon: scale-free, so one threshold set suits any
price level. Its class boundaries are quantiles of the *training* rows, fitted per fold (and on
all rows for the final model) by :func:`quantile_thresholds`, never on the rows being scored.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from quantrain.errors import ConfigError, DataError

REGIME_CLASSES: Final = ("LOW", "NORMAL", "HIGH", "EXTREME")


@njit(cache=True, parallel=True)
def _forward_volatility_kernel(close: np.ndarray, horizon: int) -> np.ndarray:
    n = close.shape[0]
    out = np.full(n, np.nan)
    if n < 2:
        return out
    returns = np.log(close[1:] / close[:-1])  # returns[i] = log(c[i+1] / c[i])
    for t in prange(max(n - horizon, 0)):
        total = 0.0
        for j in range(horizon):
            total += returns[t + j]
        mean = total / horizon
        squares = 0.0
        for j in range(horizon):
            d = returns[t + j] - mean
            squares += d * d
        out[t] = np.sqrt(squares / horizon)
    return out


def forward_volatility(close: npt.ArrayLike, horizon: int) -> npt.NDArray[np.float64]:
    """Std of the next ``horizon`` log returns at every bar; NaN where they run past the end."""
    prices = np.ascontiguousarray(close, dtype=np.float64)
    if prices.ndim != 1:
        raise DataError(f"`close` must be a 1-D array, got shape {prices.shape}")
    if not (np.isfinite(prices) & (prices > 0)).all():
        raise DataError("`close` must be finite and > 0 for log returns")
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(f"`horizon` must be an integer ≥ 1 (bars), got {horizon!r}")
    return _forward_volatility_kernel(prices, int(horizon))


def validate_quantiles(quantiles: tuple[float, ...]) -> None:
    values = np.asarray(quantiles, dtype=np.float64)
    if values.size == 0 or not ((values > 0) & (values < 1)).all() or (np.diff(values) <= 0).any():
        raise ConfigError(
            "`regime_quantiles` must be strictly increasing values in (0, 1), "
            f"got {list(quantiles)}"
        )


def quantile_thresholds(
    values: npt.NDArray[np.float64], quantiles: tuple[float, ...]
) -> npt.NDArray[np.float64]:
    """Class boundaries: the ``quantiles`` of ``values`` (the training rows' raw target)."""
    validate_quantiles(quantiles)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise DataError("cannot fit regime thresholds: no finite training values")
    return np.quantile(finite, np.asarray(quantiles, dtype=np.float64))


def bin_by_thresholds(
    values: npt.NDArray[np.float64], thresholds: npt.NDArray[np.float64]
) -> npt.NDArray[np.int8]:
    """Class ``i`` = ``thresholds[i-1] ≤ value < thresholds[i]`` (0 below the first)."""
    return np.searchsorted(thresholds, values, side="right").astype(np.int8)
