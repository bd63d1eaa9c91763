"""Column aliasing and timestamp interpretation: map what exporters write onto the OHLCV contract.

Exchanges, brokers and pandas itself name and encode the same six columns in many ways
(``Date``, ``open_time``, ``o``; ISO strings, epoch milliseconds, tz-aware datetimes). This module
turns any of them into canonical columns and UTC nanoseconds, and says which values it could not
interpret instead of guessing.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger(__name__)

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
CANONICAL_COLUMNS: tuple[str, ...] = ("timestamp", *VALUE_COLUMNS)

# Per canonical column, aliases in priority order (compared case-insensitively, spaces trimmed).
# Several levels may match (``close`` and ``adj close``): the first level wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "datetime",
        "open_time",
        "opentime",
        "open time",
        "gmt time",
        "ts",
        "date",
        "time",
    ),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "adj close", "adj_close"),
    "volume": ("volume", "vol", "v"),
}

# Epoch values are read in the coarsest unit that keeps them before this instant; values outside
# 1970..2200 in the chosen unit are refused rather than read as another unit.
_EPOCH_LIMIT_NS = int(pd.Timestamp("2200-01-01", tz="UTC").value)
_EPOCH_UNITS: tuple[tuple[str, int], ...] = (("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1))
_NS_MIN = pd.Timestamp.min.tz_localize("UTC")
_NS_MAX = pd.Timestamp.max.tz_localize("UTC")
_ISO_START = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")
_DOTTED_DAY_FIRST = re.compile(r"^\s*\d{1,2}\.\d{1,2}\.\d{4}")
# A time of day followed by its own UTC offset: ``+02:00``, ``-0500``, ``+02``, ``Z``, ``UTC``.
# Matched with pyarrow (RE2): Python's re takes seconds on millions of rows.
_EXPLICIT_OFFSET = (
    r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*"
    r"(?:z|(?:utc|gmt)?\s*[+-]\d{2}(?::?\d{2})?|utc|gmt)\s*$"
)


@dataclass(frozen=True)
class ResolvedColumns:
    """Raw columns matched to canonical names, before any value is interpreted."""

    columns: dict[str, pd.Series]  # canonical name -> raw values, positional RangeIndex
    sources: dict[str, str]  # canonical name -> column name as found in the file
    missing: tuple[str, ...]
    ambiguous: tuple[str, ...]  # one sentence per canonical column matched twice at one level
    found: tuple[str, ...]  # every column name as found, for error messages


@dataclass(frozen=True)
class ParsedTimestamps:
    """Timestamps as UTC epoch nanoseconds; ``invalid`` marks values that could not be read."""

    ns: np.ndarray  # int64, 0 where invalid
    invalid: np.ndarray  # bool
    how: str  # e.g. "epoch ms", "datetime strings"
    # Strings only: which values carry their own UTC offset (the others are naive, read as UTC).
    offsets: np.ndarray | None = None  # bool


def _key(name: object) -> str:
    return str(name).strip().lower()


def _index_as_column(raw: pd.DataFrame) -> pd.Series | None:
    """A DatetimeIndex (unnamed or named like a timestamp) or an index named like a timestamp."""
    index = raw.index
    if isinstance(index, pd.MultiIndex):
        return None
    named_like_timestamp = index.name is not None and _key(index.name) in ALIASES["timestamp"]
    if named_like_timestamp or (index.name is None and isinstance(index, pd.DatetimeIndex)):
        return pd.Series(index.to_numpy(), dtype=index.dtype, name=index.name)
    return None


def _date_only(columns: dict[str, pd.Series]) -> bool:
    """Whether the ``date`` column holds dates without a time of day (so ``time`` completes it)."""
    non_null = columns["timestamp"].dropna()
    return bool(len(non_null)) and ":" not in str(non_null.iloc[0])


def resolve_columns(raw: pd.DataFrame) -> ResolvedColumns:
    """Match the frame's columns (and a timestamp-like index) to the canonical OHLCV names."""
    by_key: dict[str, list[int]] = {}
    for position, name in enumerate(raw.columns):
        by_key.setdefault(_key(name), []).append(position)

    columns: dict[str, pd.Series] = {}
    sources: dict[str, str] = {}
    ambiguous: list[str] = []
    for canonical, aliases in ALIASES.items():
        for alias in aliases:
            positions = by_key.get(alias, [])
            if len(positions) > 1:
                names = ", ".join(repr(str(raw.columns[p])) for p in positions)
                ambiguous.append(f"columns {names} all mean {canonical}")
            if positions:
                series = raw.iloc[:, positions[0]].reset_index(drop=True)
                columns[canonical] = series
                sources[canonical] = str(raw.columns[positions[0]])
                break

    if _key(sources.get("timestamp", "")) == "date" and "time" in by_key and _date_only(columns):
        # Separate date and time columns (MetaTrader-style exports): neither alone is the bar time.
        time_col = raw.iloc[:, by_key["time"][0]].reset_index(drop=True)
        columns["timestamp"] = columns["timestamp"].astype(str) + " " + time_col.astype(str)
        sources["timestamp"] = f"{sources['timestamp']} + {raw.columns[by_key['time'][0]]}"
    if "timestamp" not in columns:
        from_index = _index_as_column(raw)
        if from_index is not None:
            columns["timestamp"] = from_index
            sources["timestamp"] = f"index {from_index.name!r}" if from_index.name else "index"

    missing = tuple(c for c in CANONICAL_COLUMNS if c not in columns)
    found = tuple(str(c) for c in raw.columns)
    return ResolvedColumns(columns, sources, missing, tuple(ambiguous), found)


def _epoch_to_ns(values: pd.Series) -> ParsedTimestamps:
    """Epoch numbers to ns, choosing s/ms/us/ns from the median magnitude."""
    isna = values.isna().to_numpy()
    if pd.api.types.is_integer_dtype(values.dtype):
        ints = values.to_numpy(dtype=np.int64, na_value=0)
        floats = ints.astype(np.float64)
    else:
        floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
        ints = None
    finite = np.isfinite(floats) & ~isna
    magnitude = float(np.median(np.abs(floats[finite]))) if finite.any() else 0.0
    unit, factor = next(
        ((u, f) for u, f in _EPOCH_UNITS if magnitude * f < _EPOCH_LIMIT_NS), _EPOCH_UNITS[-1]
    )
    valid = finite & (floats >= 0) & (floats * factor < _EPOCH_LIMIT_NS)
    if ints is not None:
        ns = np.where(valid, ints, 0) * factor
    else:
        safe = np.where(valid, floats, 0.0)
        whole = np.floor(safe)
        ns = whole.astype(np.int64) * factor + np.round((safe - whole) * factor).astype(np.int64)
    return ParsedTimestamps(ns.astype(np.int64), ~valid, f"epoch {unit}")


def _datetimes_to_ns(values: pd.Series, how: str) -> ParsedTimestamps:
    """tz-aware datetimes (already UTC) to ns; NaT and out-of-range values are invalid."""
    in_range = values.notna()
    if values.dt.unit != "ns":  # coarser units can hold instants that ns cannot
        in_range &= (values >= _NS_MIN) & (values <= _NS_MAX)
    valid = in_range.to_numpy(dtype=bool)
    safe = values.where(in_range, pd.Timestamp(0, tz="UTC")).dt.as_unit("ns")
    ns = safe.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return ParsedTimestamps(np.where(valid, ns, 0), ~valid, how)


def _parse_strings(values: pd.Series) -> pd.Series:
    """Parse datetime strings to UTC; naive strings are UTC, ``dd.mm.yyyy`` is day-first."""
    non_null = values.dropna()
    sample = str(non_null.iloc[0]) if len(non_null) else ""
    fmt: str | None = "ISO8601" if _ISO_START.match(sample) else None
    dayfirst = bool(_DOTTED_DAY_FIRST.match(sample))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": we report NaTs
        return pd.to_datetime(values, utc=True, errors="coerce", format=fmt, dayfirst=dayfirst)


def _explicit_offsets(values: pd.Series) -> np.ndarray:
    """Which values are strings that end in a UTC offset (``+02:00``, ``Z``) rather than naive."""
    try:
        strings = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers or dates mixed in with the strings
        strings = pa.array(values.astype(str), type=pa.string())
    found = pc.match_substring_regex(strings, _EXPLICIT_OFFSET, ignore_case=True)
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def parse_timestamps(values: pd.Series) -> ParsedTimestamps:
    """Interpret a raw timestamp column as UTC nanoseconds, marking what cannot be read."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        n = len(values)
        return ParsedTimestamps(np.zeros(n, np.int64), np.ones(n, bool), "booleans")
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _datetimes_to_ns(values.dt.tz_convert("UTC"), f"datetimes ({dtype.tz})")
    if pd.api.types.is_datetime64_dtype(dtype):
        return _datetimes_to_ns(values.dt.tz_localize("UTC"), "naive datetimes (UTC)")
    if pd.api.types.is_numeric_dtype(dtype):
        return _epoch_to_ns(values)
    numbers = pd.to_numeric(values, errors="coerce")
    non_null = int(values.notna().sum())
    if non_null and int(numbers.notna().sum()) == non_null:
        return _epoch_to_ns(numbers)
    parsed = _datetimes_to_ns(_parse_strings(values), "datetime strings")
    return replace(parsed, offsets=_explicit_offsets(values))
