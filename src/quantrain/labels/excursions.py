"""How far price travelled for and against the labelled trade's side: MFE / MAE over the whole
horizon, the adverse excursion before its take-profit (the stop-loss target) and the take-profit
levels its favourable excursion reached before its stop (the TP-level target).

All distances are measured from the entry price (``entry``) in units of the signal bar's ATR
(scale-free, ≥ 0). Barrier touches use the same inclusive price-level tests as the triple
barrier, and the stop wins a same-bar tie there, so it does here: a stop bar's favourable
extreme never counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from quantrain.errors import ConfigError


@dataclass(frozen=True)
class Excursions:
    """Per-bar excursions of the labelled trade's side; NaN (tp_level: -1) where invalid."""

    mfe: npt.NDArray[np.float64]  # max favourable excursion over t+1..t+horizon
    mae: npt.NDArray[np.float64]  # max adverse excursion over t+1..t+horizon
    #: Max adverse excursion over t+1 .. the bar the take-profit is first touched (inclusive),
    #: or t+horizon; the stop is ignored: how much room the trade needed before it worked.
    adverse_before_tp: npt.NDArray[np.float64]
    #: How many of the ``levels`` the favourable excursion reached before the stop was first
    #: touched (the stop bar excluded) or within the horizon; the take-profit is ignored.
    tp_level: npt.NDArray[np.int8]


def validate_levels(levels: tuple[float, ...]) -> None:
    """TP levels: finite, > 0 and strictly increasing ATR multiples."""
    values = np.asarray(levels, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all() or (values <= 0).any():
        raise ConfigError(f"`tp_levels` must be finite ATR multiples > 0, got {list(levels)}")
    if (np.diff(values) <= 0).any():
        raise ConfigError(f"`tp_levels` must be strictly increasing, got {list(levels)}")


@njit(cache=True)
def _excursions_of_bar(
    high: np.ndarray,
    low: np.ndarray,
    c: float,
    a: float,
    t: int,
    is_long: bool,
    horizon: int,
    k_tp: float,
    k_sl: float,
    levels: np.ndarray,
) -> tuple[float, float, float, int]:
    if is_long:
        take_profit = c + k_tp * a
        stop = c - k_sl * a
    else:
        take_profit = c - k_tp * a
        stop = c + k_sl * a
    fav_max = 0.0
    adv_max = 0.0
    adv_before_tp = 0.0
    # Best favourable price before the stop: highest high (long) / lowest low (short).
    best = -np.inf if is_long else np.inf
    stopped = False
    tp_hit = False
    for j in range(1, horizon + 1):
        h = high[t + j]
        lo = low[t + j]
        if is_long:
            fav = h - c
            adv = c - lo
            hit_stop = lo <= stop
            hit_tp = h >= take_profit
        else:
            fav = c - lo
            adv = h - c
            hit_stop = h >= stop
            hit_tp = lo <= take_profit
        fav_max = max(fav_max, fav)
        adv_max = max(adv_max, adv)
        if not stopped:
            if hit_stop:
                stopped = True
            elif is_long:
                best = max(best, h)
            else:
                best = min(best, lo)
        if not tp_hit:
            adv_before_tp = max(adv_before_tp, adv)
            tp_hit = hit_tp
    reached = 0
    for level in levels:
        if (is_long and best >= c + level * a) or (not is_long and best <= c - level * a):
            reached += 1
    return fav_max / a, adv_max / a, adv_before_tp / a, reached


@njit(cache=True, parallel=True)
def _excursion_kernel(
    high: np.ndarray,
    low: np.ndarray,
    entry: np.ndarray,
    atr: np.ndarray,
    side: np.ndarray,
    horizon: int,
    k_tp: float,
    k_sl: float,
    levels: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = entry.shape[0]
    mfe = np.full(n, np.nan)
    mae = np.full(n, np.nan)
    adverse_before_tp = np.full(n, np.nan)
    tp_level = np.full(n, -1, dtype=np.int8)
    for t in prange(max(n - horizon, 0)):
        if side[t] == 0:
            continue
        f, d, b, k = _excursions_of_bar(
            high, low, entry[t], atr[t], t, side[t] > 0, horizon, k_tp, k_sl, levels
        )
        mfe[t] = f
        mae[t] = d
        adverse_before_tp[t] = b
        tp_level[t] = k
    return mfe, mae, adverse_before_tp, tp_level


def excursions(
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    entry: npt.NDArray[np.float64],
    atr: npt.NDArray[np.float64],
    side: npt.NDArray[np.int8],
    *,
    horizon: int,
    k_tp: float,
    k_sl: float,
    levels: tuple[float, ...],
) -> Excursions:
    """Excursions of the side each bar's triple-barrier label chose (``side``: +1 long,
    -1 short, 0 = no label), entered at ``entry`` (each bar's fill price: ``close`` or the next
    bar's open, see ``entry_prices``). Arrays must be the triple barrier's (validated there)."""
    validate_levels(levels)
    mfe, mae, adverse, tp_level = _excursion_kernel(
        np.ascontiguousarray(high, dtype=np.float64),
        np.ascontiguousarray(low, dtype=np.float64),
        np.ascontiguousarray(entry, dtype=np.float64),
        np.ascontiguousarray(atr, dtype=np.float64),
        np.ascontiguousarray(side, dtype=np.int8),
        int(horizon),
        float(k_tp),
        float(k_sl),
        np.asarray(levels, dtype=np.float64),
    )
    return Excursions(mfe=mfe, mae=mae, adverse_before_tp=adverse, tp_level=tp_level)
