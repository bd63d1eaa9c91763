"""A realistic trade journal from real bars: a small, causal paper-trading backtest.

The bundled sample journal (``sample_data/journals/journal_ETH-BTC.jsonl``) is written by ``main()``
from the bundled ETH-BTC 5m bars, so the journal reader and the journal models have real data
to work on without a live bot. Regenerate it with::

    python -m quantrain.data.journal_sample

How trades are made (every bar index below is the *signal bar* ``t``):

* signals, from bars ``≤ t`` only: an EMA(12)/EMA(48) cross, RSI(14) leaving oversold (< 30,
  long) or overbought (> 70, short), and a close beyond the previous 48 bars' high (long) or
  low (short). Triggers on one bar in one direction make one trade; opposite triggers on one
  bar cancel. Every signal is paper-traded on its own, so positions may overlap (a journal of
  signals, as a bot evaluating each signal in paper mode keeps);
* ``signal.sources`` lists the indicators that agree with the direction at ``t`` (the trigger
  always does); ``signal.strength`` in [0, 1] averages their magnitudes;
* entry at the next bar's open; an ATR(14) triple barrier from the entry price: take-profit
  ``k_tp·ATR``, stop ``k_sl·ATR`` (the stop wins a bar that touches both, a gap through a
  barrier fills at the open), else a time exit at the close of bar ``t + horizon``. Trades the
  data ends before are not in the journal (they have no outcome yet);
* market fields at ``t``: ``volatility`` (std of 1-bar returns over 48 bars), ``atr_pct``
  (ATR / close), ``trend_strength`` (ADX(14) / 100), ``regime`` (``volatile`` when volatility
  is in the top 20% of the past day's, else ``trending`` when ADX ≥ 25, else ``ranging``),
  ``funding`` (null: the bars are spot, there is no funding rate);
* outcome: ``pnl`` (fractional return in the trade's direction less a 0.1% round trip),
  ``r_multiple`` (pnl over the initial risk ``k_sl·ATR / entry``, clipped to [-2, 3]), the
  maximum adverse and favourable excursions (fractions of entry), ``bars_held`` and
  ``tp_level``: how many of the levels 0.5, 1.0 and 1.5 ATR the favourable excursion reached.

Deterministic for a seed; entry-time fields never read a bar after ``t`` (the tests check this
by regenerating from truncated bars).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from quantrain.data.discover import symbol_key
from quantrain.errors import DataError
from quantrain.features import kernels
from quantrain.features.compute import atr as wilder_atr

SAMPLE_SYMBOL: Final = "ETH-BTC"
#: The bundled journal, relative to ``quantrain.jobs.sample_data_dir()``.
SAMPLE_FILE: Final = f"journals/journal_{SAMPLE_SYMBOL}.jsonl"

FAST, SLOW = 12, 48
RSI_PERIOD, RSI_LOW, RSI_HIGH = 14, 30.0, 70.0
BREAKOUT = 48
ATR_PERIOD = 14
ADX_PERIOD, ADX_TRENDING = 14, 25.0
VOL_WINDOW = 48
REGIME_WINDOW = 288  # one day of 5m bars: the volatility percentile's look-back
VOLATILE_PERCENTILE = 0.8
ROUND_TRIP_COST = 0.001
TP_LEVELS: Final = (0.5, 1.0, 1.5)  # ATR multiples of favourable excursion → tp_level 0..3
R_CLIP: Final = (-2.0, 3.0)
#: Share of records that lose one market field, so readers meet missing values in real data.
MISSING_FIELD_RATE = 0.02
MISSABLE_FIELDS: Final = ("regime", "volatility", "atr_pct", "trend_strength")
SOURCES: Final = ("ema_cross", "rsi_reversal", "breakout", "momentum")
MOMENTUM = 12


def _rsi(close: np.ndarray) -> np.ndarray:
    diff = np.full(close.shape, np.nan)
    diff[1:] = np.diff(close)
    gain = kernels.ewm(np.maximum(diff, 0.0), RSI_PERIOD, 1.0 / RSI_PERIOD, -1)
    loss = kernels.ewm(np.maximum(-diff, 0.0), RSI_PERIOD, 1.0 / RSI_PERIOD, -1)
    return np.asarray(100.0 * kernels.safe_div(gain, gain + loss, 0.5))


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x[t - k] at t (NaN for the first k bars): the value k bars ago."""
    out = np.full(x.shape, np.nan)
    out[k:] = x[:-k]
    return out


def _sig(value: float, digits: int = 5) -> float:
    """Rounded to significant digits, so the file stays small and its text stable."""
    return float(f"{value:.{digits}g}")


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


class _Indicators:
    """Every causal series the signals and market fields need (value at t reads bars ≤ t)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.open = frame["open"].to_numpy(dtype=np.float64)
        self.high = frame["high"].to_numpy(dtype=np.float64)
        self.low = frame["low"].to_numpy(dtype=np.float64)
        self.close = frame["close"].to_numpy(dtype=np.float64)
        c = np.ascontiguousarray(self.close)
        h = np.ascontiguousarray(self.high)
        lo = np.ascontiguousarray(self.low)
        self.ema_fast = kernels.ewm(c, FAST, 2.0 / (FAST + 1), -1)
        self.ema_slow = kernels.ewm(c, SLOW, 2.0 / (SLOW + 1), -1)
        self.rsi = _rsi(c)
        self.atr = wilder_atr(h, lo, c, ATR_PERIOD)
        self.adx = kernels.adx(h, lo, c, ADX_PERIOD)[2]
        returns = np.full(c.shape, np.nan)
        returns[1:] = c[1:] / c[:-1] - 1.0
        self.volatility = kernels.rolling_std(returns, VOL_WINDOW, 1)
        self.prior_high = _shift(kernels.rolling_extreme(h, BREAKOUT, True), 1)
        self.prior_low = _shift(kernels.rolling_extreme(lo, BREAKOUT, False), 1)
        self.momentum = c / _shift(c, MOMENTUM) - 1.0

    def triggers(self, t: int) -> dict[str, int]:
        """Trigger name → direction (+1/-1) of each signal firing at bar t (t ≥ 1)."""
        fired: dict[str, int] = {}
        gap_now = self.ema_fast[t] - self.ema_slow[t]
        gap_before = self.ema_fast[t - 1] - self.ema_slow[t - 1]
        if gap_now > 0 >= gap_before or gap_now < 0 <= gap_before:
            fired["ema_cross"] = 1 if gap_now > 0 else -1
        if self.rsi[t - 1] <= RSI_LOW < self.rsi[t]:
            fired["rsi_reversal"] = 1
        elif self.rsi[t - 1] >= RSI_HIGH > self.rsi[t]:
            fired["rsi_reversal"] = -1
        c = self.close
        up = c[t] > self.prior_high[t] and not c[t - 1] > self.prior_high[t - 1]
        down = c[t] < self.prior_low[t] and not c[t - 1] < self.prior_low[t - 1]
        if up != down:
            fired["breakout"] = 1 if up else -1
        return fired

    def agreement(self, t: int, direction: int) -> dict[str, float]:
        """Each indicator agreeing with ``direction`` at t → its magnitude in [0, 1]."""
        a = self.atr[t]
        found: dict[str, float] = {}
        gap = (self.ema_fast[t] - self.ema_slow[t]) * direction
        if gap >= 0:
            found["ema_cross"] = math.tanh(gap / a)
        stretch = (50.0 - self.rsi[t]) * direction  # below 40 agrees with a long, above 60 short
        if stretch > 10.0:
            found["rsi_reversal"] = min(1.0, stretch / 50.0)
        beyond = (
            self.close[t] - self.prior_high[t]
            if direction > 0
            else self.prior_low[t] - self.close[t]
        )
        if beyond > 0:
            found["breakout"] = math.tanh(0.5 + beyond / a)
        move = self.momentum[t] * direction
        if move > 0:
            found["momentum"] = math.tanh(move * self.close[t] / a)
        return found

    def regime(self, t: int) -> str:
        window = self.volatility[max(0, t - REGIME_WINDOW + 1) : t + 1]
        window = window[~np.isnan(window)]
        if (
            window.size >= VOL_WINDOW
            and np.mean(window <= self.volatility[t]) > VOLATILE_PERCENTILE
        ):
            return "volatile"
        return "trending" if self.adx[t] >= ADX_TRENDING else "ranging"


def _simulate(
    ind: _Indicators, t: int, direction: int, k_tp: float, k_sl: float, horizon: int
) -> tuple[int, float, float, float]:
    """(exit bar, exit price, max adverse, max favourable) in price units, entry at t+1 open."""
    entry = ind.open[t + 1]
    a = ind.atr[t]
    tp_dist, sl_dist = k_tp * a, k_sl * a
    adverse = favourable = 0.0
    for j in range(t + 1, t + horizon + 1):
        opening = (ind.open[j] - entry) * direction
        if j > t + 1 and opening <= -sl_dist:  # gapped through the stop
            return j, ind.open[j], max(adverse, -opening), favourable
        if j > t + 1 and opening >= tp_dist:  # gapped through the take-profit
            return j, ind.open[j], adverse, max(favourable, opening)
        best = (ind.high[j] - entry) if direction > 0 else (entry - ind.low[j])
        worst = (entry - ind.low[j]) if direction > 0 else (ind.high[j] - entry)
        if worst >= sl_dist:  # the stop wins a bar that touches both
            price = entry - direction * sl_dist
            return j, price, max(adverse, sl_dist), max(favourable, min(best, tp_dist))
        if best >= tp_dist:
            price = entry + direction * tp_dist
            return j, price, max(adverse, worst), max(favourable, tp_dist)
        adverse, favourable = max(adverse, worst), max(favourable, best)
    end = t + horizon
    return end, ind.close[end], adverse, favourable


def generate_journal(
    frame: pd.DataFrame,
    symbol: str,
    *,
    seed: int = 7,
    k_tp: float = 1.5,
    k_sl: float = 1.0,
    horizon: int = 48,
) -> list[dict[str, Any]]:
    """Journal records (oldest signal first) from a causal backtest on ``frame``'s bars.

    ``frame`` is a validated OHLCV frame (``quantrain.data.read_ohlcv(...).frame``). See the
    module docstring for the rules.
    """
    if not (k_tp > 0 and k_sl > 0 and horizon >= 1):
        raise DataError(f"need k_tp > 0, k_sl > 0, horizon >= 1; got {k_tp}, {k_sl}, {horizon}")
    asset = symbol_key(symbol)
    stamps = pd.DatetimeIndex(frame["timestamp"]).tz_convert("UTC")
    n = len(stamps)
    if n < 2:
        return []
    # Bar length from the first bars only, so truncating the data at the end changes nothing.
    step = pd.Timedelta(np.median(np.diff(stamps[: min(n, 1001)].asi8)), unit="ns")
    ind = _Indicators(frame)
    warmup = max(SLOW, BREAKOUT + 1, 2 * ADX_PERIOD, VOL_WINDOW + 1, MOMENTUM + 1)
    records: list[dict[str, Any]] = []
    for t in range(warmup, n - horizon):
        fired = ind.triggers(t)
        directions = set(fired.values())
        a = ind.atr[t]
        if len(directions) != 1 or not (a > 0 and math.isfinite(a)):
            continue
        direction = directions.pop()
        agree = ind.agreement(t, direction)
        sources = [name for name in SOURCES if name in fired or name in agree]
        strength = sum(agree.get(name, 0.5) for name in sources) / len(SOURCES)
        exit_bar, exit_price, adverse, favourable = _simulate(
            ind, t, direction, k_tp, k_sl, horizon
        )
        entry = ind.open[t + 1]
        pnl = direction * (exit_price - entry) / entry - ROUND_TRIP_COST
        risk = k_sl * a / entry
        reached = sum(favourable >= level * a * (1 - 1e-9) for level in TP_LEVELS)
        opened = stamps[t + 1]
        market: dict[str, Any] = {
            "regime": ind.regime(t),
            "volatility": _sig(ind.volatility[t]),
            "funding": None,  # spot bars: no funding rate, as a perps bot's journal may also lack
            "atr_pct": _sig(a / ind.close[t]),
            "trend_strength": _sig(ind.adx[t] / 100.0),
        }
        # About MISSING_FIELD_RATE of records lose one market field (a bot that failed to fetch
        # it), so the reader's missing-value path meets real data. The draw is keyed by the
        # signal time, so it does not depend on which other trades exist.
        rng = np.random.default_rng([seed, int(stamps[t].timestamp())])
        if rng.random() < MISSING_FIELD_RATE:
            del market[MISSABLE_FIELDS[int(rng.integers(len(MISSABLE_FIELDS)))]]
        records.append(
            {
                "id": f"{asset}-{len(records):06d}",
                "asset": asset,
                "opened_at": _iso(opened),
                "closed_at": _iso(stamps[exit_bar] + step),
                "signal": {
                    "direction": "long" if direction > 0 else "short",
                    "strength": round(min(1.0, strength), 3),
                    "sources": sources,
                },
                "market": market,
                "session": {"utcHour": int(opened.hour), "weekday": int(opened.weekday())},
                "outcome": {
                    "pnl": _sig(pnl),
                    "r_multiple": _sig(min(max(pnl / risk, R_CLIP[0]), R_CLIP[1]), 4),
                    "max_adverse_excursion": _sig(adverse / entry),
                    "max_favourable_excursion": _sig(favourable / entry),
                    "tp_level": int(reached),
                    "bars_held": int(exit_bar - t),
                },
            }
        )
    return records


def to_jsonl(records: Sequence[dict[str, Any]]) -> str:
    """JSON Lines text of the records, exactly as the sample file is written."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def sample_journal_path() -> Path:
    """Where the bundled sample journal lives."""
    from quantrain.data.samples import sample_data_dir

    return sample_data_dir() / SAMPLE_FILE


def sample_records() -> list[dict[str, Any]]:
    """The sample journal's records, regenerated from the bundled ETH-BTC bars."""
    from quantrain.data import read_ohlcv
    from quantrain.data.samples import sample_data_dir

    bars = read_ohlcv(sample_data_dir() / f"{SAMPLE_SYMBOL}_5m.parquet").frame
    return generate_journal(bars, SAMPLE_SYMBOL)


def main(argv: Sequence[str] | None = None) -> None:
    """Write the sample journal from the bundled ETH-BTC bars (to the bundled path by default;
    ``python -m quantrain.data.journal_sample OUT.jsonl`` writes elsewhere)."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else sample_journal_path()
    records = sample_records()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_jsonl(records), encoding="utf-8")
    wins = sum(record["outcome"]["pnl"] > 0 for record in records)
    print(f"{path}: {len(records)} trades, {wins} winners, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
