"""Exogenous inputs merged as of each bar's close, never forward, and the features that read them.

``timestamp`` is a bar's OPEN time; a bar's values are used once it has closed, at
``open + bar size``. So a funding rate stamped at or before that close is usable at the bar (the
value stamped exactly at the close counts: it is known when the bar is), and one stamped later
is not: a backward as-of merge on the close time (``pandas.merge_asof(direction="backward")``
semantics, done with ``searchsorted``).

Economic calendars are published in advance, so the *scheduled* time of the next event is known
at every bar; that is the one deliberate exception, and only the schedule is used (never the
event's outcome). Events with equal or higher impact than ``min_impact`` count.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from quantrain.data.aliases import parse_timestamps
from quantrain.data.readers import read_raw
from quantrain.data.validate import parse_timeframe
from quantrain.errors import ConfigError, DataError
from quantrain.features import kernels
from quantrain.features.base import NAT_NS, Bars, Indicator, Param, Params, get_int

IMPACT_LEVELS = {"none": 0, "holiday": 0, "non-economic": 0, "low": 1, "medium": 2, "high": 3}
_FUNDING_NAMES = ("funding_rate", "fundingrate", "rate", "funding")
_TIME_NAMES = ("timestamp", "time", "date", "datetime", "fundingtime", "funding_time")
_NS_PER_MINUTE = 60 * 1_000_000_000
Source = pd.DataFrame | str | os.PathLike[str]


def _pick(frame: pd.DataFrame, names: tuple[str, ...], what: str, where: str) -> str:
    by_key = {str(c).strip().lower(): str(c) for c in frame.columns}
    for name in names:
        if name in by_key:
            return by_key[name]
    raise DataError(
        f"{where}: no {what} column; expected one of {list(names)}, got {list(frame.columns)}"
    )


def _stamps(frame: pd.DataFrame, where: str) -> np.ndarray:
    """UTC epoch ns of the ``timestamp`` column; ``DataError`` naming the unreadable rows."""
    column = _pick(frame, _TIME_NAMES, "timestamp", where)
    parsed = parse_timestamps(frame[column].reset_index(drop=True))
    if parsed.invalid.any():
        rows = (np.flatnonzero(parsed.invalid)[:5] + 1).tolist()
        raise DataError(
            f"{where}: field {column!r} cannot be read as a time in data row(s) {rows} "
            f"(read as {parsed.how})\n  fix: use ISO 8601 UTC times or epoch s/ms"
        )
    return np.asarray(parsed.ns, dtype=np.int64)


def _load(source: Source, what: str) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source, f"{what} table"
    return read_raw(source), os.fspath(source)


def read_funding(source: Source) -> pd.DataFrame:
    """Funding rates as ``timestamp`` (UTC) and ``funding_rate`` (float), sorted by time.

    Accepts a frame or a csv/parquet/... file (anything ``quantrain.data`` reads).
    """
    raw, where = _load(source, "funding")
    stamps = _stamps(raw, where)
    column = _pick(raw, _FUNDING_NAMES, "funding rate", where)
    values = pd.to_numeric(raw[column].reset_index(drop=True), errors="coerce").to_numpy(
        dtype=np.float64
    )
    bad = ~np.isfinite(values)
    if bad.any():
        rows = (np.flatnonzero(bad)[:5] + 1).tolist()
        raise DataError(
            f"{where}: field {column!r} is not a finite number in data row(s) {rows}\n"
            "  fix: remove those rows or fill them at the source"
        )
    order = np.argsort(stamps, kind="stable")  # equal stamps: the later row wins
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(stamps[order], utc=True),
            "funding_rate": values[order],
        }
    )


def read_events(source: Source) -> pd.DataFrame:
    """Scheduled events as ``timestamp`` (UTC), ``impact`` (0 none .. 3 high) and ``name``."""
    raw, where = _load(source, "events")
    stamps = _stamps(raw, where)
    column = _pick(raw, ("impact",), "impact", where)
    text = raw[column].reset_index(drop=True).astype(str).str.strip().str.lower()
    levels = text.map(IMPACT_LEVELS)
    bad = levels.isna().to_numpy()
    if bad.any():
        rows = (np.flatnonzero(bad)[:5] + 1).tolist()
        raise DataError(
            f"{where}: field {column!r} has unknown impact {sorted(set(text[bad]))[:5]} in data "
            f"row(s) {rows}; expected one of {sorted(IMPACT_LEVELS)}"
        )
    names = (
        raw["name"].reset_index(drop=True).astype(str)
        if "name" in raw.columns
        else pd.Series([""] * len(raw), dtype=str)
    )
    order = np.argsort(stamps, kind="stable")
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(stamps[order], utc=True),
            "impact": levels.to_numpy(dtype=np.int64)[order],
            "name": names.to_numpy()[order],
        }
    )


def _close_ns(frame: pd.DataFrame, timeframe: str | None) -> np.ndarray:
    if "timestamp" not in frame.columns:
        raise DataError("cannot merge exogenous data: the OHLCV frame has no 'timestamp' column")
    opens = pd.DatetimeIndex(frame["timestamp"])
    if opens.tz is None:
        raise DataError("cannot merge exogenous data: OHLCV timestamps must be timezone-aware")
    ns = np.asarray(opens.tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)
    if timeframe is not None:
        step = int(parse_timeframe(timeframe).value)
    elif len(ns) > 1:
        step = int(np.diff(ns).min())
    else:
        raise DataError(
            "cannot merge exogenous data into fewer than two bars without knowing the bar size\n"
            "  fix: pass timeframe='5m' (the data's timeframe)"
        )
    return ns + step


def _as_of(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the last ``times`` <= each ``at`` (-1: none yet)."""
    return np.searchsorted(times, at, side="right") - 1


def merge_exogenous(
    frame: pd.DataFrame,
    *,
    funding: Source | None = None,
    events: Source | None = None,
    min_impact: str = "high",
    timeframe: str | None = None,
) -> pd.DataFrame:
    """A copy of ``frame`` with ``funding_rate`` and/or ``event_last_at``/``event_next_at``.

    ``funding_rate``: the newest rate stamped at or before each bar's close (NaN before the
    first). ``event_last_at``: the newest event of at least ``min_impact`` scheduled at or
    before the close; ``event_next_at``: the first scheduled after it (NaT when none).
    ``timeframe`` is the bar size (default: the smallest step between bars).
    """
    if min_impact.lower() not in IMPACT_LEVELS:
        raise ConfigError(f"min_impact must be one of {sorted(IMPACT_LEVELS)}, got {min_impact!r}")
    out = frame.copy()
    closes = _close_ns(frame, timeframe)
    if funding is not None:
        table = read_funding(funding)
        times = table["timestamp"].dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)
        padded = np.append(table["funding_rate"].to_numpy(dtype=np.float64), np.nan)
        out["funding_rate"] = padded[_as_of(times, closes)]
    if events is not None:
        table = read_events(events)
        chosen = table[table["impact"] >= IMPACT_LEVELS[min_impact.lower()]]
        times = chosen["timestamp"].dt.as_unit("ns").to_numpy(dtype="datetime64[ns]")
        times = times.view(np.int64)
        padded = np.append(times, NAT_NS)  # -1 and len(times) both land on NaT
        last = _as_of(times, closes)
        out["event_last_at"] = _utc(padded[last])
        out["event_next_at"] = _utc(padded[last + 1])
    return out


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


# --- features ---------------------------------------------------------------------------------


def _closes(b: Bars) -> np.ndarray:
    step = b.step_ns()
    return b.timestamp_ns() + step if step else np.full(len(b), NAT_NS)


def _minutes(b: Bars, column: str, cap: float, ahead: bool) -> np.ndarray:
    """Minutes between each bar's close and a merged event time, capped; NaT counts as far."""
    times = b.extra(column)
    closes = _closes(b)
    delta = (times - closes) if ahead else (closes - times)
    minutes = np.minimum(delta.astype(np.float64) / _NS_PER_MINUTE, cap)
    minutes[times == NAT_NS] = cap
    minutes[closes == NAT_NS] = np.nan
    return minutes


def _funding_rate(b: Bars, p: Params) -> np.ndarray:
    return b.extra("funding_rate").copy()


def _funding_z(b: Bars, p: Params) -> np.ndarray:
    n = get_int(p, "period")
    rate = b.extra("funding_rate")
    mean = kernels.rolling_mean(rate, n)
    return kernels.safe_div(rate - mean, kernels.rolling_std(rate, n, 0), 0.0)


def _event_minutes_to(b: Bars, p: Params) -> np.ndarray:
    return _minutes(b, "event_next_at", float(get_int(p, "cap")), ahead=True)


def _event_minutes_since(b: Bars, p: Params) -> np.ndarray:
    return _minutes(b, "event_last_at", float(get_int(p, "cap")), ahead=False)


def _zero(p: Params) -> int:
    return 0


EXOGENOUS_ENTRIES: tuple[Indicator, ...] = (
    Indicator(
        "funding_rate",
        _funding_rate,
        (),
        _zero,
        "newest funding rate known at the bar's close (NaN before the first)",
        inputs="exogenous",
        reads=("funding_rate",),
    ),
    Indicator(
        "funding_z",
        _funding_z,
        (Param("period", 288, 2),),
        lambda p: get_int(p, "period") - 1,
        "z-score of the funding rate over n bars",
        inputs="exogenous",
        reads=("funding_rate",),
    ),
    Indicator(
        "event_minutes_to",
        _event_minutes_to,
        (Param("cap", 1440, 1),),
        _zero,
        "minutes from the bar's close to the next scheduled event, capped",
        inputs="exogenous",
        reads=("event_next_at",),
    ),
    Indicator(
        "event_minutes_since",
        _event_minutes_since,
        (Param("cap", 1440, 1),),
        _zero,
        "minutes since the last scheduled event at or before the bar's close, capped",
        inputs="exogenous",
        reads=("event_last_at",),
    ),
)
