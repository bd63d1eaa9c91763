"""Fixed-horizon direction with a neutral band: the alternative to the triple barrier.

The move ``close[t+horizon] − entry[t]`` (entry: the fill price, ``close[t]`` unless given,
e.g. the next bar's open) is compared with ``± neutral_band × ATR[t]``:
above the band BUY, below it SELL, inside it (bounds included) HOLD. Same classes, same valid
rows (ATR > 0 and finite, horizon inside the data) and same ``label_end`` as the triple barrier.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from quantrain.errors import ConfigError


@njit(cache=True, parallel=True)
def _fixed_horizon_kernel(
    close: np.ndarray, entry: np.ndarray, atr: np.ndarray, horizon: int, band: float
) -> np.ndarray:
    n = close.shape[0]
    direction = np.full(n, -1, dtype=np.int8)
    for t in prange(max(n - horizon, 0)):
        a = atr[t]
        if not (a > 0.0 and a < np.inf):
            continue
        move = close[t + horizon] - entry[t]
        width = band * a
        if move > width:
            direction[t] = 2
        elif move < -width:
            direction[t] = 0
        else:
            direction[t] = 1
    return direction


def fixed_horizon_direction(
    close: npt.NDArray[np.float64],
    atr: npt.NDArray[np.float64],
    *,
    horizon: int,
    neutral_band: float,
    entry: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.int8]:
    """SELL=0 / HOLD=1 / BUY=2 per bar, -1 where there is no label."""
    if not (math.isfinite(neutral_band) and neutral_band >= 0):
        raise ConfigError(f"`neutral_band` must be a finite ATR multiple ≥ 0, got {neutral_band}")
    closes = np.ascontiguousarray(close, dtype=np.float64)
    return _fixed_horizon_kernel(
        closes,
        closes if entry is None else np.ascontiguousarray(entry, dtype=np.float64),
        np.ascontiguousarray(atr, dtype=np.float64),
        int(horizon),
        float(neutral_band),
    )
