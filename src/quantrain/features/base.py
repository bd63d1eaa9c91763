"""What every indicator module shares: ``Bars`` (arrays + per-call memo), ``Param``, ``Indicator``.

Kept apart from ``compute`` so indicator modules (price, calendar, higher timeframe, exogenous)
can import it without importing the registry that collects them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np
import pandas as pd

from quantrain.errors import DataError

ParamValue = int | float | str
Params = Mapping[str, ParamValue]
T = TypeVar("T")

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
#: Optional columns ``Bars.from_frame`` keeps, each with the merge that provides it. Time
#: columns are kept as int64 epoch ns (NaT as ``NAT_NS``), the rest as float64.
EXTRA_COLUMNS: dict[str, str] = {
    "funding_rate": "merge_exogenous(frame, funding=...)",
    "event_last_at": "merge_exogenous(frame, events=...)",
    "event_next_at": "merge_exogenous(frame, events=...)",
}
NAT_NS = np.iinfo(np.int64).min
_MISSING = object()


class Bars:
    """Float64 OHLCV arrays of one frame, optional merged columns, and a per-call memo.

    The memo is thread-safe (a lock per key), so independent indicators may run in threads and
    still compute a shared intermediate (true range, an EMA) exactly once.
    """

    __slots__ = (
        "_extras",
        "_lock",
        "_locks",
        "_memo",
        "_timestamp",
        "close",
        "high",
        "low",
        "open",
        "volume",
    )

    def __init__(
        self,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        timestamp: object = None,
        extras: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.open = open_
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self._timestamp = timestamp
        self._extras = dict(extras or {})
        self._memo: dict[Hashable, object] = {}
        self._lock: threading.Lock | None = None
        self._locks: dict[Hashable, threading.Lock] = {}

    @classmethod
    def from_frame(cls, ohlcv: pd.DataFrame) -> Bars:
        """Copy the columns out (writable, contiguous: one numba signature, input untouched).

        Columns named in ``EXTRA_COLUMNS`` (merged exogenous data) are kept too.
        """
        missing = [c for c in ("timestamp", *OHLCV_COLUMNS) if c not in ohlcv.columns]
        if missing:
            raise DataError(
                f"OHLCV frame lacks column(s) {missing}; expected timestamp, "
                f"{', '.join(OHLCV_COLUMNS)} (load it through quantrain.data to get aliases fixed)"
            )
        arrays: list[np.ndarray] = []
        for col in OHLCV_COLUMNS:
            values = _column_values(ohlcv, col)
            if isinstance(values, np.ndarray):
                arr = np.array(values, dtype=np.float64)
            else:  # nullable / arrow-backed floats
                arr = ohlcv[col].to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isnan(arr).any():
                rows = np.flatnonzero(np.isnan(arr))[:5].tolist()
                raise DataError(
                    f"column {col!r} has NaN at row(s) {rows}: features need clean bars"
                )
            arrays.append(arr)
        extras = {
            name: _extra_values(ohlcv[name]) for name in EXTRA_COLUMNS if name in ohlcv.columns
        }
        open_, high, low, close, volume = arrays
        return cls(
            open_,
            high,
            low,
            close,
            volume,
            timestamp=_column_values(ohlcv, "timestamp"),
            extras=extras,
        )

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def enable_threads(self) -> None:
        """Make ``memo`` safe for concurrent callers (off by default: a lock costs per call)."""
        if self._lock is None:
            self._lock = threading.Lock()

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """Compute an intermediate once per call (e.g. EMA 26 shared by MACD line and signal)."""
        found = self._memo.get(key, _MISSING)
        if found is not _MISSING:
            return cast(T, found)
        if self._lock is None:
            value = make()
            self._memo[key] = value
            return value
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:  # intermediates depend on others acyclically, so this cannot deadlock
            found = self._memo.get(key, _MISSING)
            if found is _MISSING:
                found = make()
                self._memo[key] = found
        return cast(T, found)

    def timestamp_ns(self) -> np.ndarray:
        """UTC epoch nanoseconds (only converted when a time-based feature asks)."""

        def make() -> np.ndarray:
            if self._timestamp is None:
                raise DataError("calendar and higher-timeframe features need a 'timestamp' column")
            ts = np.asarray(self._timestamp, dtype="datetime64[ns]")  # tz-aware: UTC instants
            return ts.view(np.int64)

        return self.memo("ts_ns", make)

    def step_ns(self) -> int:
        """The bar size: the smallest step between bars (0 with fewer than two bars).

        The smallest, not the modal step: O(n), and under the one-timeframe-per-frame contract
        gaps are only ever larger, so appending bars cannot change it.
        """

        def make() -> int:
            ns = self.timestamp_ns()
            return int(np.diff(ns).min()) if ns.shape[0] > 1 else 0

        return self.memo("step_ns", make)

    def extra(self, name: str) -> np.ndarray:
        """A merged column; ``DataError`` naming the merge that provides it when absent."""
        found = self._extras.get(name)
        if found is None:
            merge = EXTRA_COLUMNS.get(name, "a merge that adds it")
            raise DataError(
                f"this feature reads column {name!r}, which the frame lacks\n"
                f"  fix: add it with quantrain.features.exogenous.{merge} before computing "
                "features (training and prediction alike)"
            )
        return found


def _column_values(frame: pd.DataFrame, name: str) -> object:
    """A column's values without building a Series (about 1 µs instead of 13 µs per column,
    which matters when a bot recomputes every bar); falls back to the public path."""
    getter = getattr(frame, "_get_column_array", None)
    loc = frame.columns.get_loc(name)
    if getter is not None and isinstance(loc, int):
        return getter(loc)
    return frame[name].array


def _extra_values(column: pd.Series) -> np.ndarray:
    """Float64 values, or int64 epoch ns (NaT as ``NAT_NS``) for a datetime column."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        stamps = pd.DatetimeIndex(column)
        if stamps.tz is not None:
            stamps = stamps.tz_convert("UTC").tz_localize(None)
        return np.array(stamps.as_unit("ns").asi8, dtype=np.int64)
    try:
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise DataError(
            f"column {column.name!r} must be numeric, got {column.dtype} ({error})"
        ) from None


@dataclass(frozen=True)
class Param:
    """A declared indicator parameter: its default fixes the type; minimum bounds numbers."""

    name: str
    default: ParamValue
    minimum: float | None = None


@dataclass(frozen=True)
class Indicator:
    """One registry entry: how to compute a column, its parameters, and its warm-up in bars.

    ``inputs`` says what the values depend on: ``ohlcv`` (prices/volume), ``time`` (timestamps
    only), ``exogenous`` (merged columns in ``reads``) or ``htf`` (higher-timeframe bars, whose
    timeframe is the ``tf`` parameter and whose ``warmup`` counts higher-timeframe bars).
    """

    key: str
    fn: Callable[[Bars, Params], np.ndarray]
    params: tuple[Param, ...]
    warmup: Callable[[Params], int]
    doc: str
    check: Callable[[Params], str | None] | None = None
    inputs: str = "ohlcv"
    reads: tuple[str, ...] = ()


def get_int(p: Params, name: str) -> int:
    value = p[name]
    assert isinstance(value, int)
    return value


def get_float(p: Params, name: str) -> float:
    value = p[name]
    assert isinstance(value, int | float)
    return float(value)


def period(offset: int) -> Callable[[Params], int]:
    """Warm-up ``period + offset`` bars."""
    return lambda p: get_int(p, "period") + offset


def zero(p: Params) -> int:
    return 0
