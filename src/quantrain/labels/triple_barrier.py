"""ATR-scaled triple-barrier labels: direction, R-multiple position size and exit timing.

A signal made at bar ``t``'s close can fill no earlier than the next bar's open, so by default
(``entry="next_open"``) a long and a short trade are entered at ``open[t+1]``; ``entry="close"``
enters at ``close[t]`` (optimistic: the same print whose features made the signal). Each trade
gets a take-profit ``k_tp × ATR[t]`` and a stop ``k_sl × ATR[t]`` away from its entry price and
is watched over bars ``t+1 .. t+horizon`` on their high/low (bar t+1 trades after its open). The
label says which trade (if any) reached its take-profit first; the R-multiple says how well a
trade did in units of its stop distance. Training-time only: labels look into the future.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from quantrain.errors import ConfigError, DataError

DIRECTION_CLASSES: Final = ("SELL", "HOLD", "BUY")
SELL: Final = 0
HOLD: Final = 1
BUY: Final = 2
INVALID: Final = -1

#: Where a signal made at bar t fills: the next bar's open (what a bot can do) or t's close.
EntryRule = Literal["next_open", "close"]
ENTRY_RULES: Final = get_args(EntryRule)

# Outcome codes of one simulated trade (kernel-internal).
_OPEN: Final = 0
_TAKE_PROFIT: Final = 1
_STOP: Final = 2


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class TripleBarrierParams:
    """Barrier multiples (of ATR), look-ahead horizon in bars and the clip range of R."""

    k_tp: float = 1.5
    k_sl: float = 0.8
    horizon: int = 48
    r_min: float = -2.0
    r_max: float = 3.0
    entry: EntryRule = "next_open"

    def __post_init__(self) -> None:
        validate_params(self)


def validate_params(params: TripleBarrierParams) -> None:
    """Refuse parameters that would make barriers meaningless, saying what was expected."""
    for name in ("k_tp", "k_sl"):
        value = getattr(params, name)
        if not _is_real(value) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"`{name}` must be a finite number > 0 (ATR multiple), got {value!r}")
    horizon = params.horizon
    if not isinstance(horizon, int | np.integer) or isinstance(horizon, bool) or horizon < 1:
        raise ConfigError(f"`horizon` must be an integer ≥ 1 (bars), got {horizon!r}")
    for name in ("r_min", "r_max"):
        value = getattr(params, name)
        if not _is_real(value) or math.isnan(value):
            raise ConfigError(f"`{name}` must be a number (R-multiple clip bound), got {value!r}")
    if params.entry not in ENTRY_RULES:
        raise ConfigError(f"`entry` must be one of {list(ENTRY_RULES)}, got {params.entry!r}")
    if not params.r_min < params.r_max:
        raise ConfigError(
            f"`r_min` must be < `r_max`, got r_min={params.r_min!r}, r_max={params.r_max!r}"
        )


#: The barrier rules' defaults, declared once (the job config and the backtest read them here).
BARRIER_DEFAULTS: Final = TripleBarrierParams()


@dataclass(frozen=True)
class TripleBarrierLabels:
    """Per-bar label arrays, all of the input length; invalid rows carry sentinels."""

    direction: npt.NDArray[np.int8]  # SELL=0, HOLD=1, BUY=2; -1 where invalid
    r_multiple: npt.NDArray[np.float64]  # R of the labelled trade, clipped; NaN where invalid
    r_long: npt.NDArray[np.float64]  # R of the long trade entered at t, clipped; NaN if invalid
    r_short: npt.NDArray[np.float64]  # R of the short trade entered at t, clipped; NaN if invalid
    exit_offset: npt.NDArray[np.int32]  # bars from t to the labelled trade's exit; -1 if invalid
    label_end: npt.NDArray[np.int64]  # t + horizon: last bar the label reads (for purging)
    valid: npt.NDArray[np.bool_]
    #: Side of the labelled trade: +1 long, -1 short (HOLD: the trade with the better R), 0 invalid
    side: npt.NDArray[np.int8]


@njit(cache=True)
def _simulate(
    high: np.ndarray,
    low: np.ndarray,
    t: int,
    horizon: int,
    take_profit: float,
    stop: float,
    is_long: bool,
) -> tuple[int, int]:
    """First barrier touched by one trade: (outcome, offset); the stop wins a same-bar tie."""
    for j in range(1, horizon + 1):
        h = high[t + j]
        lo = low[t + j]
        if is_long:
            hit_stop = lo <= stop
            hit_tp = h >= take_profit
        else:
            hit_stop = h >= stop
            hit_tp = lo <= take_profit
        if hit_stop:
            return _STOP, j
        if hit_tp:
            return _TAKE_PROFIT, j
    return _OPEN, horizon


@njit(cache=True)
def _r_multiple(outcome: int, reward_risk: float, mark_to_market: float) -> float:
    if outcome == _TAKE_PROFIT:
        return reward_risk
    if outcome == _STOP:
        return -1.0
    return mark_to_market


@njit(cache=True)
def _label_bar(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    c: float,
    t: int,
    a: float,
    k_tp: float,
    k_sl: float,
    horizon: int,
) -> tuple[int, float, int, int, float, float]:
    """One bar's label for trades entered at price ``c``: (direction, unclipped R, exit offset,
    side of the labelled trade, R of the long, R of the short)."""
    tp_dist = k_tp * a
    sl_dist = k_sl * a
    long_outcome, long_off = _simulate(high, low, t, horizon, c + tp_dist, c - sl_dist, True)
    short_outcome, short_off = _simulate(high, low, t, horizon, c - tp_dist, c + sl_dist, False)
    reward_risk = k_tp / k_sl
    move = (close[t + horizon] - c) / sl_dist
    long_r = _r_multiple(long_outcome, reward_risk, move)
    short_r = _r_multiple(short_outcome, reward_risk, -move)

    long_tp = long_outcome == _TAKE_PROFIT
    short_tp = short_outcome == _TAKE_PROFIT
    if long_tp and (not short_tp or long_off < short_off):
        return 2, long_r, long_off, 1, long_r, short_r
    if short_tp and (not long_tp or short_off < long_off):
        return 0, short_r, short_off, -1, long_r, short_r
    if long_r >= short_r:
        return 1, long_r, long_off, 1, long_r, short_r
    return 1, short_r, short_off, -1, long_r, short_r


@njit(cache=True, parallel=True)
def _triple_barrier_kernel(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    entry: np.ndarray,
    atr: np.ndarray,
    k_tp: float,
    k_sl: float,
    horizon: int,
    r_min: float,
    r_max: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every bar's forward scan is independent, so bars are spread over threads (prange)."""
    n = close.shape[0]
    direction = np.full(n, -1, dtype=np.int8)
    r_out = np.full(n, np.nan, dtype=np.float64)
    r_long = np.full(n, np.nan, dtype=np.float64)
    r_short = np.full(n, np.nan, dtype=np.float64)
    exit_offset = np.full(n, -1, dtype=np.int32)
    side = np.zeros(n, dtype=np.int8)
    valid = np.zeros(n, dtype=np.bool_)
    for t in prange(max(n - horizon, 0)):
        a = atr[t]
        if not (a > 0.0 and a < np.inf):
            continue
        label, r, off, s, rl, rs = _label_bar(high, low, close, entry[t], t, a, k_tp, k_sl, horizon)
        direction[t] = label
        r_out[t] = min(max(r, r_min), r_max)
        r_long[t] = min(max(rl, r_min), r_max)
        r_short[t] = min(max(rs, r_min), r_max)
        exit_offset[t] = off
        side[t] = s
        valid[t] = True
    return direction, r_out, exit_offset, side, valid, r_long, r_short


def entry_prices(
    open_: npt.ArrayLike | None, close: npt.ArrayLike, entry: EntryRule
) -> npt.NDArray[np.float64]:
    """The fill price of a signal made at each bar: ``open[t+1]`` (``next_open``) or
    ``close[t]``. The last bar has no next open; it gets its close, which no label or trade
    reads (a trade needs ``horizon ≥ 1`` bars after its signal)."""
    closes = np.ascontiguousarray(close, dtype=np.float64)
    if entry == "close":
        return closes
    if entry != "next_open":
        raise ConfigError(f"`entry` must be one of {list(ENTRY_RULES)}, got {entry!r}")
    if open_ is None:
        raise ConfigError("entry 'next_open' needs the bars' open prices (pass open_=...)")
    opens = np.ascontiguousarray(open_, dtype=np.float64)
    if opens.shape != closes.shape:
        raise DataError(
            f"open and close must have the same shape, got {opens.shape} and {closes.shape}"
        )
    out = np.empty_like(closes)
    out[:-1] = opens[1:]
    out[-1:] = closes[-1:]
    return out


def _as_price_array(name: str, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise DataError(f"`{name}` must be a 1-D array, got shape {array.shape}")
    return array


def triple_barrier(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    params: TripleBarrierParams,
    *,
    open_: npt.ArrayLike | None = None,
) -> TripleBarrierLabels:
    """Label every bar with the ATR triple barrier (see module docstring for the rules);
    ``open_`` is needed for the default ``entry="next_open"``.

    Rows whose horizon runs past the data end, or whose ATR is NaN/≤ 0 (indicator warm-up),
    get no label: ``valid`` is False there and the other outputs carry sentinels.
    """
    validate_params(params)
    arrays = {
        name: _as_price_array(name, values)
        for name, values in (("high", high), ("low", low), ("close", close), ("atr", atr))
    }
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"high, low, close and atr must have the same length, got {lengths}")
    for name in ("high", "low", "close"):
        bad = np.flatnonzero(~np.isfinite(arrays[name]))
        if bad.size:
            raise DataError(
                f"`{name}` has {bad.size} non-finite values (first at row {bad[0]}); "
                "clean or drop those bars before labelling"
            )

    n = lengths["close"]
    entry = entry_prices(open_, arrays["close"], params.entry)
    bad = np.flatnonzero(~np.isfinite(entry))
    if bad.size:
        raise DataError(
            f"`open` has {bad.size} non-finite values (first at row {bad[0] + 1}); "
            "clean or drop those bars before labelling"
        )
    direction, r_multiple, exit_offset, side, valid, r_long, r_short = _triple_barrier_kernel(
        arrays["high"],
        arrays["low"],
        arrays["close"],
        entry,
        arrays["atr"],
        float(params.k_tp),
        float(params.k_sl),
        int(params.horizon),
        float(params.r_min),
        float(params.r_max),
    )
    label_end = np.arange(n, dtype=np.int64) + int(params.horizon)
    return TripleBarrierLabels(
        direction=direction,
        r_multiple=r_multiple,
        r_long=r_long,
        r_short=r_short,
        exit_offset=exit_offset,
        label_end=label_end,
        valid=valid,
        side=side,
    )
