"""Seeded synthetic OHLCV series with known truth: no edge, a planted edge, and a fill trap.

Each returns a frame in the OHLCV contract (UTC 5m timestamps, float64 prices and volume), so it
goes through the same pipeline as real data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01", tz="UTC")


def _frame(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = len(close)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(START, periods=n, freq="5min"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.lognormal(3.0, 0.5, n),
        }
    )


def _bars_from_path(path: np.ndarray, rng: np.random.Generator, wick: float) -> pd.DataFrame:
    """Bars whose open is the previous close and whose wicks reach past both."""
    close = path[1:]
    open_ = path[:-1]
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * (1 + np.abs(rng.normal(0, wick, len(close))))
    low = bottom * (1 - np.abs(rng.normal(0, wick, len(close))))
    return _frame(open_, high, low, close, rng)


def random_walk(n: int, seed: int, *, sigma: float = 0.004) -> pd.DataFrame:
    """Geometric random walk: nothing to predict, so every honest metric sits at chance."""
    rng = np.random.default_rng(seed)
    path = 100.0 * np.exp(np.cumsum(np.r_[0.0, rng.normal(0.0, sigma, n)]))
    return _bars_from_path(path, rng, sigma / 2)


def planted_trend(
    n: int, seed: int, *, sigma: float = 0.004, drift: float = 0.0015
) -> pd.DataFrame:
    """Persistent trend regimes (drift ±``drift`` per bar, switching on average every 300 bars):
    the recent move predicts the next ones, which causal momentum features can see."""
    rng = np.random.default_rng(seed)
    switches = rng.random(n) < 1 / 300
    sign = np.where(np.cumsum(switches) % 2 == 0, 1.0, -1.0)
    steps = sign * drift + rng.normal(0.0, sigma, n)
    path = 100.0 * np.exp(np.cumsum(np.r_[0.0, steps]))
    return _bars_from_path(path, rng, sigma / 2)


def close_bounce(n: int, seed: int, *, sigma: float = 0.002, bounce: float = 0.004) -> pd.DataFrame:
    """A random-walk mid price whose closing print is off the mid by ±``bounce`` (a bid-ask
    style bounce) while the next bar opens back at the mid. Trading at the close looks
    profitable (the print reverts); a bot filling at the next open earns nothing."""
    rng = np.random.default_rng(seed)
    mid = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma, n + 1)))
    close = mid[1:] * (1 + bounce * rng.choice([-1.0, 1.0], n))
    open_ = mid[:-1]
    top = np.maximum(np.maximum(open_, close), mid[1:])
    bottom = np.minimum(np.minimum(open_, close), mid[1:])
    high = top * (1 + np.abs(rng.normal(0, sigma / 2, n)))
    low = bottom * (1 - np.abs(rng.normal(0, sigma / 2, n)))
    return _frame(open_, high, low, close, rng)
