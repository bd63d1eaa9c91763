"""A stand-in for a live exchange's candle API (which tests cannot reach), replaying real
candles page by page the way Binance's klines endpoint serves them."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import ccxt
import pandas as pd

STEP_MS = 5 * 60 * 1000
MAX_CALLS = 100  # far more than any test needs: a loop fails instead of hanging


class FakeVenue:
    """Stands in for a live venue's candle API, which cannot be reached from tests.

    The pages are realistic: the bundled real candles (ETH/BTC 5m from Binance, January 2018)
    as ccxt rows ``[ms, open, high, low, close, volume]``, served the way Binance's klines
    endpoint does: the first ``limit`` candles (capped at ``max_limit``) whose open time is at or
    after ``since``, the latest page when ``since`` is None, never a candle opening after
    ``now`` but including the one still forming at ``now``. Switches make it misbehave the way
    real venues do: transient errors, interruptions, overlapping pages, a last page repeated
    forever. Like ccxt, ``symbols`` is empty until ``load_markets()``.
    """

    id = "fakebinance"

    def __init__(
        self, rows: Sequence[list[Any]], *, now_ms: int | None = None, max_limit: int = 1000
    ) -> None:
        self.timeframes = {t: t for t in ("1m", "3m", "5m", "15m", "30m", "1h", "4h", "1d", "1M")}
        self.rows = rows
        self.ms = [int(row[0]) for row in rows]
        self.now_ms = self.ms[-1] + STEP_MS if now_ms is None else now_ms
        self.max_limit = max_limit
        self.markets = ["ETH/BTC", "ETH/USDT", "BTC/USDT", "LTC/BTC"]
        self.symbols: list[str] = []
        self.calls: list[int | None] = []
        self.served = 0  # pages answered so far
        self.failures: dict[int, list[BaseException]] = {}  # page index -> raised, one per try
        self.always_fail_at: int | None = None
        self.fail_with: BaseException = ccxt.RateLimitExceeded("fakebinance 429 Too Many Requests")
        self.interrupt_after: int | None = None
        self.overlap = 0  # re-serve this many bars before since, volume revised by +1
        self.repeat_last_page = False
        self.load_markets_error: BaseException | None = None

    def milliseconds(self) -> int:
        return self.now_ms

    def load_markets(self) -> dict[str, Any]:
        if self.load_markets_error is not None:
            raise self.load_markets_error
        self.symbols = list(self.markets)
        return {symbol: {"symbol": symbol} for symbol in self.markets}

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> list[list[float]]:
        self.calls.append(since)
        if len(self.calls) > MAX_CALLS:
            raise AssertionError(f"{MAX_CALLS} requests: the download does not terminate")
        if symbol not in self.markets:
            raise ccxt.BadSymbol(f"{self.id} does not have market symbol {symbol}")
        if self.interrupt_after is not None and self.served >= self.interrupt_after:
            raise KeyboardInterrupt
        if self.always_fail_at is not None and self.served >= self.always_fail_at:
            raise self.fail_with
        queued = self.failures.get(self.served)
        if queued:
            raise queued.pop(0)
        self.served += 1
        count = min(limit or 500, self.max_limit)
        visible = bisect.bisect_right(self.ms, self.now_ms)
        if since is None:
            return [list(row) for row in self.rows[max(visible - count, 0) : visible]]
        first = bisect.bisect_left(self.ms, since)
        page = [list(row) for row in self.rows[first : min(first + count, visible)]]
        if not page and self.repeat_last_page:
            return [list(row) for row in self.rows[max(visible - count, 0) : visible]]
        if self.overlap and page:
            start = max(first - self.overlap, 0)
            again = [[*row[:5], row[5] + 1.0] for row in self.rows[start:first]]
            page = (again + page)[:count]
        return page


def to_rows(frame: pd.DataFrame) -> list[list[float]]:
    ms = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8 // 10**6
    values = frame[["open", "high", "low", "close", "volume"]].to_numpy()
    return [[int(m), *map(float, v)] for m, v in zip(ms, values, strict=True)]
