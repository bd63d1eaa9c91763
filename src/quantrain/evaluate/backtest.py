"""Trading backtest that executes the exact triple-barrier rules the labels were made with.

A signal made at bar ``t``'s close fills at ``open[t+1]`` (``entry="next_open"``, the default:
the earliest a bot can act) or, optimistically, at ``close[t]`` (``entry="close"``). The trade
gets take-profit ``k_tp × ATR[t]`` and stop ``k_sl × ATR[t]`` away from its fill and is watched
over bars ``t+1 .. t+horizon`` on their high/low. The first-touch search is the label kernel's
own ``_simulate`` (imported, not copied), so a bar touching both barriers is a stop, barrier
exits fill at the barrier price, and an untouched trade exits at ``close[t+horizon]`` — exactly
what the labels assumed. Consequences shared with the labels:

* a bar that gaps through a barrier still fills at the barrier (a gap-aware fill would break the
  label/execution match);
* a trade whose horizon runs past the last bar, or whose ATR is NaN/≤ 0 (indicator warm-up), is
  not taken — it could not have been labelled either.

``entry_bar`` in the trade table is the signal bar ``t`` (the fill is at the next bar's open).
One position at a time: a signal at bar ``t`` is taken only when ``t ≥`` the previous trade's
exit bar (a trade exiting at bar ``e`` frees the signal of ``e`` for the next entry).

Costs are ``fee_bps + slippage_bps`` per side on notional, charged as returns:
``net = size·side·(exit/entry − 1) − size·2·(fee + slippage)/1e4``. Prices in the trade table are
the un-slipped fill prices; slippage lives only in ``costs``.

Equity (one value per input bar, ``equity[0] == 1``) is marked to market at every close over
the bars a trade is held, ``entry < k < exit``: ``equity[k] = E0·(1 + size·side·(close[k]/entry
− 1) − size·cost_per_side)`` with ``E0`` the equity before the trade (the signal bar itself
still shows ``E0``), and at the exit bar ``E0·(1 + net)``. Trades compound. Intra-bar extremes
are not marked. Equity is floored at 0 (ruin) and stays there; that can only happen with
``leverage_cap > 1``.

The trade loop is a small ``numba`` kernel (one pass over the bars, ``horizon`` steps per trade):
it reuses the label kernel and keeps 100 random baselines on large series cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from numba import njit

from quantrain.data import parse_timeframe
from quantrain.errors import ConfigError, DataError
from quantrain.labels.triple_barrier import (
    _STOP,
    _TAKE_PROFIT,
    BARRIER_DEFAULTS,
    EntryRule,
    TripleBarrierParams,
    _simulate,
    entry_prices,
)
from quantrain.policy import (
    DEFAULT_FEE_BPS,
    DEFAULT_LEVERAGE_CAP,
    DEFAULT_SLIPPAGE_BPS,
    DEFAULT_THRESHOLD,
    check_number,
    signals_from_probabilities,
    sizes_from_r_multiple,
)

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "bar_returns",
    "bars_per_year",
    "buy_and_hold",
    "flat",
    "percentile_of",
    "performance_metrics",
    "random_baselines",
    "random_strategies",
    "run_backtest",
    "signals_from_probabilities",
    "sizes_from_r_multiple",
]

#: Exit reason codes of the trade kernel → names in the trade table.
EXIT_REASONS: Final = ("time", "take_profit", "stop")  # index = kernel outcome (_OPEN=0, 1, 2)

#: Reported instead of an infinite profit factor (winners and no losers).
PROFIT_FACTOR_CAP: Final = 99.0

#: Spans shorter than this are not annualised: a 20-day Sharpe times sqrt(365/20) is noise
#: dressed up as a yearly figure. ``annual_return``, ``sharpe`` and ``sortino`` are then None
#: and ``total_return`` / ``sharpe_period`` (over the span) say what happened.
MIN_ANNUALISE_DAYS: Final = 90

#: Days in the year used by ``bars_per_year``: crypto trades around the clock, every day.
DAYS_PER_YEAR: Final = 365

TRADE_COLUMNS: Final = (
    "entry_bar",
    "exit_bar",
    "side",
    "size",
    "entry_price",
    "exit_price",
    "gross_return",
    "costs",
    "net_return",
    "exit_reason",
)

METRIC_KEYS: Final = (
    "total_return",
    "annual_return",
    "sharpe",
    "sortino",
    "sharpe_period",
    "days",
    "max_drawdown",
    "hit_rate",
    "profit_factor",
    "avg_win",
    "avg_loss",
    "trades",
    "exposure",
    "turnover",
)


@dataclass(frozen=True)
class BacktestConfig:
    """Entry threshold, barrier rules (same meaning as ``TripleBarrierParams``) and costs."""

    threshold: float = DEFAULT_THRESHOLD  # enter at P(BUY) or P(SELL) ≥ it, the larger of two
    k_tp: float = BARRIER_DEFAULTS.k_tp
    k_sl: float = BARRIER_DEFAULTS.k_sl
    horizon: int = BARRIER_DEFAULTS.horizon
    fee_bps: float = DEFAULT_FEE_BPS  # per side, on notional
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS  # per side, adverse
    leverage_cap: float = DEFAULT_LEVERAGE_CAP  # |size| is clipped to this
    entry: EntryRule = BARRIER_DEFAULTS.entry  # where a signal at t fills: open[t+1] or close[t]

    def __post_init__(self) -> None:
        check_number("threshold", self.threshold, minimum=0.0, strict=False)
        if self.threshold > 1.0:
            raise ConfigError(f"`threshold` must be a probability in [0, 1], got {self.threshold}")
        # The barrier rules are the label's: validate them the label's way.
        TripleBarrierParams(k_tp=self.k_tp, k_sl=self.k_sl, horizon=self.horizon, entry=self.entry)
        check_number("fee_bps", self.fee_bps, minimum=0.0, strict=False)
        check_number("slippage_bps", self.slippage_bps, minimum=0.0, strict=False)
        check_number("leverage_cap", self.leverage_cap, minimum=0.0, strict=True)

    @property
    def cost_per_side(self) -> float:
        """Fee plus slippage per side as a fraction of notional."""
        return (float(self.fee_bps) + float(self.slippage_bps)) / 1e4


@dataclass(frozen=True)
class BacktestResult:
    """Trade table (``TRADE_COLUMNS``), per-bar equity from 1.0, and ``METRIC_KEYS`` metrics."""

    trades: pd.DataFrame
    equity: npt.NDArray[np.float64]
    metrics: dict[str, float | None]


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _trade_kernel(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    entry: np.ndarray,
    atr: np.ndarray,
    signal: np.ndarray,
    size: np.ndarray,
    k_tp: float,
    k_sl: float,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walk the bars once; take a signal only when flat; return the trades' columns."""
    n = close.shape[0]
    entry_bar = np.empty(n, dtype=np.int64)
    exit_bar = np.empty(n, dtype=np.int64)
    exit_price = np.empty(n, dtype=np.float64)
    reason = np.empty(n, dtype=np.int8)
    side = np.empty(n, dtype=np.int8)
    m = 0
    free_from = 0
    for t in range(n - horizon):  # as the label kernel: t + horizon must be a bar
        if t < free_from:
            continue
        s = signal[t]
        if s == 0 or not size[t] > 0.0:
            continue
        a = atr[t]
        if not (a > 0.0 and a < np.inf):  # as the label kernel: no ATR, no label, no trade
            continue
        c = entry[t]
        tp_dist = k_tp * a
        sl_dist = k_sl * a
        if s > 0:
            take_profit = c + tp_dist
            stop = c - sl_dist
            outcome, off = _simulate(high, low, t, horizon, take_profit, stop, True)
        else:
            take_profit = c - tp_dist
            stop = c + sl_dist
            outcome, off = _simulate(high, low, t, horizon, take_profit, stop, False)
        if outcome == _TAKE_PROFIT:
            price = take_profit
        elif outcome == _STOP:
            price = stop
        else:
            price = close[t + horizon]
        entry_bar[m] = t
        exit_bar[m] = t + off
        exit_price[m] = price
        reason[m] = outcome
        side[m] = 1 if s > 0 else -1
        m += 1
        free_from = t + off
    return entry_bar[:m], exit_bar[:m], exit_price[:m], reason[:m], side[:m]


@njit(cache=True)
def _exit_offsets(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    entry: np.ndarray,
    atr: np.ndarray,
    k_tp: float,
    k_sl: float,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Bars to exit of a long and of a short entered at each bar; -1 where none can be taken."""
    n = close.shape[0]
    long_off = np.full(n, -1, dtype=np.int64)
    short_off = np.full(n, -1, dtype=np.int64)
    for t in range(n - horizon):
        a = atr[t]
        if not (a > 0.0 and a < np.inf):
            continue
        c = entry[t]
        tp_dist = k_tp * a
        sl_dist = k_sl * a
        _, off_long = _simulate(high, low, t, horizon, c + tp_dist, c - sl_dist, True)
        _, off_short = _simulate(high, low, t, horizon, c - tp_dist, c + sl_dist, False)
        long_off[t] = off_long
        short_off[t] = off_short
    return long_off, short_off


@njit(cache=True)
def _pick_disjoint(
    order: np.ndarray,
    is_long: np.ndarray,
    long_off: np.ndarray,
    short_off: np.ndarray,
    n_trades: int,
    n: int,
) -> np.ndarray:
    """Accept candidate entries in ``order`` whose [entry, exit) spans overlap no accepted one."""
    signal = np.zeros(n, dtype=np.int8)
    busy = np.zeros(n, dtype=np.bool_)
    accepted = 0
    for i in range(order.shape[0]):
        if accepted >= n_trades:
            break
        t = order[i]
        off = long_off[t] if is_long[i] else short_off[t]
        if off < 1:
            continue
        free = True
        for k in range(t, t + off):
            if busy[k]:
                free = False
                break
        if not free:
            continue
        for k in range(t, t + off):
            busy[k] = True
        signal[t] = 1 if is_long[i] else -1
        accepted += 1
    return signal


# --------------------------------------------------------------------------- inputs


def _check_bars_per_year(value: float) -> float:
    check_number("bars_per_year", value, minimum=0.0, strict=True)
    return float(value)


def _prices(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    **extra: npt.ArrayLike,
) -> dict[str, npt.NDArray[np.float64]]:
    """Float64, 1-D, equally long; prices finite (ATR may be NaN during warm-up)."""
    named = {"open": open_, "high": high, "low": low, "close": close, "atr": atr, **extra}
    arrays: dict[str, npt.NDArray[np.float64]] = {}
    for name, values in named.items():
        array = np.ascontiguousarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise DataError(f"`{name}` must be a 1-D array, got shape {array.shape}")
        arrays[name] = array
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"backtest inputs must all have the same length, got {lengths}")
    for name in ("open", "high", "low", "close"):
        bad = np.flatnonzero(~np.isfinite(arrays[name]))
        if bad.size:
            raise DataError(
                f"`{name}` has {bad.size} non-finite values (first at row {bad[0]}); "
                "clean or drop those bars before backtesting"
            )
    bad = np.flatnonzero(arrays["close"] <= 0)
    if bad.size:
        raise DataError(f"`close` must be > 0, got {arrays['close'][bad[0]]} at row {bad[0]}")
    return arrays


def _signal_array(signal: npt.ArrayLike, n: int) -> npt.NDArray[np.int8]:
    raw = np.asarray(signal)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise DataError(f"`signal` must be 1-D with one value per bar ({n}), got shape {raw.shape}")
    bad = np.flatnonzero(~np.isin(raw, (-1, 0, 1)))
    if bad.size:
        raise DataError(
            f"`signal` must hold only -1, 0, +1; got {raw[bad[0]]!r} at row {bad[0]} "
            f"({bad.size} such values)"
        )
    return np.ascontiguousarray(raw, dtype=np.int8)


def _size_array(size: npt.ArrayLike | None, n: int, cap: float) -> npt.NDArray[np.float64]:
    if size is None:
        return np.full(n, min(1.0, cap))
    array = np.ascontiguousarray(size, dtype=np.float64)
    if array.ndim != 1 or array.shape[0] != n:
        raise DataError(f"`size` must be 1-D with one value per bar ({n}), got shape {array.shape}")
    bad = np.flatnonzero(~(array >= 0) | ~np.isfinite(array))
    if bad.size:
        raise DataError(
            f"`size` must be finite and ≥ 0 (a magnitude; the side comes from `signal`), "
            f"got {array[bad[0]]!r} at row {bad[0]}"
        )
    return np.minimum(array, cap)


# --------------------------------------------------------------------------- public API


def bars_per_year(timeframe: str) -> float:
    """Bars in a 365-day year of round-the-clock trading (crypto): ``'5m'`` → 105 120.

    Markets with sessions (FX ≈ 260 days, stocks ≈ 252 days of 6.5 h) should pass their own
    number wherever ``bars_per_year`` is asked for.
    """
    step_ns = parse_timeframe(timeframe).value
    return DAYS_PER_YEAR * 86_400 * 1_000_000_000 / step_ns


def _equity_curve(
    close: npt.NDArray[np.float64],
    entry_bar: npt.NDArray[np.int64],
    exit_bar: npt.NDArray[np.int64],
    signed_size: npt.NDArray[np.float64],
    entry_price: npt.NDArray[np.float64],
    net: npt.NDArray[np.float64],
    cost_per_side: float,
) -> npt.NDArray[np.float64]:
    """Compounded equity marked to each close (see module docstring), floored at 0."""
    n = close.shape[0]
    factor = np.ones(n)
    factor[exit_bar] = 1.0 + net  # exits never share a bar: one position at a time
    realised = np.cumprod(np.maximum(factor, 0.0), dtype=np.float64)
    equity = realised.copy()
    if entry_bar.size:
        bars = np.arange(n)
        which = np.searchsorted(entry_bar, bars, side="right") - 1
        held = np.maximum(which, 0)
        inside = (which >= 0) & (bars > entry_bar[held]) & (bars < exit_bar[held])
        i = which[inside]
        mark = 1.0 + signed_size[i] * (close[inside] / entry_price[i] - 1.0)
        mark -= np.abs(signed_size[i]) * cost_per_side
        equity[inside] = realised[inside] * mark  # realised[k] = equity before that trade
    ruined = np.flatnonzero(equity <= 0.0)
    if ruined.size:
        equity[ruined[0] :] = 0.0
    return equity


def _trade_frame(
    entry_bar: npt.NDArray[np.int64],
    exit_bar: npt.NDArray[np.int64],
    side: npt.NDArray[np.int8],
    size: npt.NDArray[np.float64],
    entry_price: npt.NDArray[np.float64],
    exit_price: npt.NDArray[np.float64],
    reason: npt.NDArray[np.int8],
    cost_per_side: float,
) -> pd.DataFrame:
    gross = size * side * (exit_price / entry_price - 1.0)
    costs = size * 2.0 * cost_per_side
    return pd.DataFrame(
        {
            "entry_bar": entry_bar.astype(np.int64),
            "exit_bar": exit_bar.astype(np.int64),
            "side": side.astype(np.int8),
            "size": size.astype(np.float64),
            "entry_price": entry_price.astype(np.float64),
            "exit_price": exit_price.astype(np.float64),
            "gross_return": gross,
            "costs": costs,
            "net_return": gross - costs,
            "exit_reason": np.asarray(EXIT_REASONS, dtype=object)[reason.astype(np.int64)],
        },
        columns=list(TRADE_COLUMNS),
    )


def _result(
    close: npt.NDArray[np.float64],
    trades: pd.DataFrame,
    *,
    bars_per_year: float,
    cost_per_side: float,
) -> BacktestResult:
    equity = _equity_curve(
        close,
        trades["entry_bar"].to_numpy(np.int64),
        trades["exit_bar"].to_numpy(np.int64),
        trades["size"].to_numpy(np.float64) * trades["side"].to_numpy(np.float64),
        trades["entry_price"].to_numpy(np.float64),
        trades["net_return"].to_numpy(np.float64),
        cost_per_side,
    )
    metrics = performance_metrics(
        equity, trades, bars_per_year=bars_per_year, n_bars=close.shape[0]
    )
    return BacktestResult(trades=trades, equity=equity, metrics=metrics)


def run_backtest(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    signal: npt.ArrayLike,
    *,
    size: npt.ArrayLike | None,
    bars_per_year: float,
    config: BacktestConfig,
) -> BacktestResult:
    """Execute ``signal`` (-1/0/+1 per bar) under the label's barrier rules; see module docstring.

    ``size`` is the position magnitude per bar (fraction of equity), clipped to
    ``config.leverage_cap``; 0 means no trade; ``None`` trades ``min(1, leverage_cap)``.
    ``atr`` must be the ATR the labels used (NaN during warm-up is fine: no trade there).
    """
    bpy = _check_bars_per_year(bars_per_year)
    arrays = _prices(open_, high, low, close, atr)
    n = arrays["close"].shape[0]
    sig = _signal_array(signal, n)
    sizes = _size_array(size, n, float(config.leverage_cap))
    entry = entry_prices(arrays["open"], arrays["close"], config.entry)
    entry_bar, exit_bar, exit_price, reason, side = _trade_kernel(
        arrays["high"],
        arrays["low"],
        arrays["close"],
        entry,
        arrays["atr"],
        sig,
        sizes,
        float(config.k_tp),
        float(config.k_sl),
        int(config.horizon),
    )
    trades = _trade_frame(
        entry_bar,
        exit_bar,
        side,
        sizes[entry_bar],
        entry[entry_bar],
        exit_price,
        reason,
        config.cost_per_side,
    )
    return _result(arrays["close"], trades, bars_per_year=bpy, cost_per_side=config.cost_per_side)


def bar_returns(equity: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-bar returns of an equity curve (0 after ruin, where the curve stays at 0)."""
    curve = np.asarray(equity, dtype=np.float64)
    prev = curve[:-1]
    return np.where(prev > 0, curve[1:] / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)


def performance_metrics(
    equity: npt.ArrayLike, trades: pd.DataFrame, *, bars_per_year: float, n_bars: int
) -> dict[str, float | None]:
    """``METRIC_KEYS`` from a per-bar equity curve and its trade table.

    Sharpe and Sortino use per-bar equity returns (population std; Sortino's downside deviation
    is the root mean square of the negative returns) annualised by ``sqrt(bars_per_year)``, and
    are 0 when the deviation is 0. ``annual_return`` is geometric over ``n_bars / bars_per_year``
    years (-1 after ruin). Over fewer than ``MIN_ANNUALISE_DAYS`` days these three are None;
    ``sharpe_period`` (scaled by ``sqrt(n_bars)``: the Sharpe of the span itself) and ``days``
    are always given. ``profit_factor`` is capped at ``PROFIT_FACTOR_CAP`` (winners and no
    losers would be infinite); a trade with a net return of exactly 0 is neither win nor loss.
    ``exposure`` counts the bars a position is held over, ``exit − entry`` per trade, over
    ``n_bars``; ``turnover`` is ``2·Σ|size|`` per year.
    """
    bpy = _check_bars_per_year(bars_per_year)
    curve = np.asarray(equity, dtype=np.float64)
    if n_bars < 1:
        raise DataError(f"`n_bars` must be ≥ 1, got {n_bars}")
    years = n_bars / bpy
    final = float(curve[-1]) if curve.size else 1.0
    total_return = final - 1.0
    annual_return = final ** (1.0 / years) - 1.0 if final > 0 else -1.0

    returns = bar_returns(curve)
    scale = math.sqrt(bpy)
    sharpe = sortino = sharpe_period = 0.0
    if returns.size:
        mean = float(returns.mean())
        std = float(returns.std())
        downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
        sharpe = mean / std * scale if std > 0 else 0.0
        sortino = mean / downside * scale if downside > 0 else 0.0
        sharpe_period = mean / std * math.sqrt(returns.size) if std > 0 else 0.0
    peak = np.maximum.accumulate(curve) if curve.size else curve
    safe_peak = np.where(peak > 0, peak, 1.0)
    max_drawdown = float(np.max(1.0 - curve / safe_peak)) if curve.size else 0.0

    net = trades["net_return"].to_numpy(np.float64)
    wins, losses = net[net > 0], net[net < 0]
    n_trades = net.size
    if n_trades == 0:
        profit_factor = 0.0
    elif losses.size == 0:
        profit_factor = PROFIT_FACTOR_CAP if wins.size else 0.0
    else:
        profit_factor = min(float(wins.sum() / -losses.sum()), PROFIT_FACTOR_CAP)
    held = (trades["exit_bar"].to_numpy(np.int64) - trades["entry_bar"].to_numpy(np.int64)).sum()
    days = years * DAYS_PER_YEAR
    annualise = days >= MIN_ANNUALISE_DAYS
    return {
        "total_return": float(total_return),
        "annual_return": float(annual_return) if annualise else None,
        "sharpe": float(sharpe) if annualise else None,
        "sortino": float(sortino) if annualise else None,
        "sharpe_period": float(sharpe_period),
        "days": float(days),
        "max_drawdown": max(max_drawdown, 0.0),
        "hit_rate": float(wins.size / n_trades) if n_trades else 0.0,
        "profit_factor": float(profit_factor),
        "avg_win": float(wins.mean()) if wins.size else 0.0,
        "avg_loss": float(losses.mean()) if losses.size else 0.0,
        "trades": float(n_trades),
        "exposure": float(held / n_bars),
        "turnover": float(2.0 * np.abs(trades["size"].to_numpy(np.float64)).sum() / years),
    }


def random_strategies(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    *,
    n_trades: int,
    long_fraction: float,
    size: float,
    bars_per_year: float,
    config: BacktestConfig,
    n: int = 100,
    seed: int = 0,
) -> list[BacktestResult]:
    """``n`` seeded random strategies with the model's activity on the same bars.

    Each draws candidate entries in random order over the bars where a trade can be taken, with
    side long at probability ``long_fraction``, and keeps those whose [entry, exit) span overlaps
    no kept one (the one-position rule) until ``n_trades`` are kept — fewer only when the bars
    cannot hold that many. Every trade has the fixed ``size`` and runs through ``run_backtest``.
    """
    if isinstance(n_trades, bool) or not isinstance(n_trades, int | np.integer) or n_trades < 0:
        raise ConfigError(f"`n_trades` must be an integer ≥ 0, got {n_trades!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"`n` must be an integer ≥ 1, got {n!r}")
    check_number("long_fraction", long_fraction, minimum=0.0, strict=False)
    if long_fraction > 1.0:
        raise ConfigError(f"`long_fraction` must be in [0, 1], got {long_fraction}")
    check_number("size", size, minimum=0.0, strict=False)
    bpy = _check_bars_per_year(bars_per_year)
    arrays = _prices(open_, high, low, close, atr)
    n_bars = arrays["close"].shape[0]
    long_off, short_off = _exit_offsets(
        arrays["high"],
        arrays["low"],
        arrays["close"],
        entry_prices(arrays["open"], arrays["close"], config.entry),
        arrays["atr"],
        float(config.k_tp),
        float(config.k_sl),
        int(config.horizon),
    )
    eligible = np.flatnonzero(long_off > 0)  # same bars for shorts: ATR valid, horizon inside
    sizes = np.full(n_bars, float(size))
    rng = np.random.default_rng(seed)
    out: list[BacktestResult] = []
    for _ in range(n):
        order = rng.permutation(eligible)
        is_long = rng.random(order.size) < long_fraction
        signal = _pick_disjoint(order, is_long, long_off, short_off, int(n_trades), n_bars)
        result = run_backtest(
            arrays["open"],
            arrays["high"],
            arrays["low"],
            arrays["close"],
            arrays["atr"],
            signal,
            size=sizes,
            bars_per_year=bpy,
            config=config,
        )
        out.append(result)
    return out


def random_baselines(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    *,
    n_trades: int,
    long_fraction: float,
    size: float,
    bars_per_year: float,
    config: BacktestConfig,
    n: int = 100,
    seed: int = 0,
) -> list[dict[str, float | None]]:
    """The metrics of ``random_strategies`` (same arguments)."""
    results = random_strategies(
        open_,
        high,
        low,
        close,
        atr,
        n_trades=n_trades,
        long_fraction=long_fraction,
        size=size,
        bars_per_year=bars_per_year,
        config=config,
        n=n,
        seed=seed,
    )
    return [result.metrics for result in results]


def buy_and_hold(
    close: npt.ArrayLike, *, bars_per_year: float, config: BacktestConfig
) -> BacktestResult:
    """One long of size ``min(1, leverage_cap)`` from the first close to the last, costs on both
    sides, equity marked to every close; reported with exit reason ``'time'``."""
    bpy = _check_bars_per_year(bars_per_year)
    prices = np.ascontiguousarray(close, dtype=np.float64)
    _prices(prices, prices, prices, prices, np.zeros_like(prices))
    if prices.shape[0] < 2:
        raise DataError(f"buy-and-hold needs at least 2 bars, got {prices.shape[0]}")
    last = prices.shape[0] - 1
    trades = _trade_frame(
        np.array([0], dtype=np.int64),
        np.array([last], dtype=np.int64),
        np.array([1], dtype=np.int8),
        np.array([min(1.0, float(config.leverage_cap))]),
        prices[[0]],
        prices[[last]],
        np.array([0], dtype=np.int8),
        config.cost_per_side,
    )
    return _result(prices, trades, bars_per_year=bpy, cost_per_side=config.cost_per_side)


def flat(n_bars: int, *, bars_per_year: float) -> BacktestResult:
    """Never trading: equity stays 1.0, every metric is 0."""
    if isinstance(n_bars, bool) or not isinstance(n_bars, int | np.integer) or n_bars < 1:
        raise DataError(f"`n_bars` must be an integer ≥ 1, got {n_bars!r}")
    bpy = _check_bars_per_year(bars_per_year)
    empty = np.empty(0, dtype=np.int64)
    trades = _trade_frame(
        empty,
        empty,
        np.empty(0, dtype=np.int8),
        np.empty(0),
        np.empty(0),
        np.empty(0),
        np.empty(0, dtype=np.int8),
        0.0,
    )
    equity = np.ones(int(n_bars))
    metrics = performance_metrics(equity, trades, bars_per_year=bpy, n_bars=int(n_bars))
    return BacktestResult(trades=trades, equity=equity, metrics=metrics)


def percentile_of(value: float, population: Sequence[float]) -> float:
    """Where ``value`` falls in ``population``, 0..100: share strictly below plus half the ties."""
    pop = np.asarray(population, dtype=np.float64)
    if pop.size == 0:
        raise ValueError("percentile_of needs a non-empty population")
    below = np.count_nonzero(pop < value)
    ties = np.count_nonzero(pop == value)
    return float(100.0 * (below + 0.5 * ties) / pop.size)
