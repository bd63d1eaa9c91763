"""Calendar and session features: functions of the bar's UTC open time only.

Cycles go on the unit circle (sin, cos) so 23:55 sits next to 00:00; sessions are 0/1 flags for
UTC hour ranges (exchanges' local hours move with daylight saving; UTC ranges are the stable,
documented approximation).
"""

from __future__ import annotations

import numpy as np

from quantrain.features.base import Bars, Indicator, Param, Params, get_int, zero

_NS_PER_HOUR = 3_600 * 1_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR
_NS_PER_WEEK = 7 * _NS_PER_DAY
# 1970-01-01 was a Thursday; shifting by 3 days puts Monday at 0, as pandas' dayofweek does.
_EPOCH_WEEKDAY_SHIFT_NS = 3 * _NS_PER_DAY


def _time_angle(b: Bars, period_ns: int, shift_ns: int) -> np.ndarray:
    """Position within an hour/day/week as an angle; floor-mod keeps pre-1970 stamps right."""

    def make() -> np.ndarray:
        frac = ((b.timestamp_ns() + shift_ns) % period_ns).astype(np.float64) / period_ns
        return 2.0 * np.pi * frac

    return b.memo(("angle", period_ns), make)


def _hour_of_day(b: Bars) -> np.ndarray:
    return b.memo("hour_of_day", lambda: (b.timestamp_ns() % _NS_PER_DAY) // _NS_PER_HOUR)


def _hour_sin(b: Bars, p: Params) -> np.ndarray:
    return np.sin(_time_angle(b, _NS_PER_DAY, 0))


def _hour_cos(b: Bars, p: Params) -> np.ndarray:
    return np.cos(_time_angle(b, _NS_PER_DAY, 0))


def _dow_sin(b: Bars, p: Params) -> np.ndarray:
    return np.sin(_time_angle(b, _NS_PER_WEEK, _EPOCH_WEEKDAY_SHIFT_NS))


def _dow_cos(b: Bars, p: Params) -> np.ndarray:
    return np.cos(_time_angle(b, _NS_PER_WEEK, _EPOCH_WEEKDAY_SHIFT_NS))


def _minute_sin(b: Bars, p: Params) -> np.ndarray:
    return np.sin(_time_angle(b, _NS_PER_HOUR, 0))


def _minute_cos(b: Bars, p: Params) -> np.ndarray:
    return np.cos(_time_angle(b, _NS_PER_HOUR, 0))


def _session(b: Bars, p: Params) -> np.ndarray:
    """1.0 when the bar opens in [start, end) UTC hours; a range past midnight wraps."""
    start, end = get_int(p, "start"), get_int(p, "end")
    hour = _hour_of_day(b)
    inside = (hour >= start) & (hour < end) if start < end else (hour >= start) | (hour < end)
    return inside.astype(np.float64)


def _check_session(p: Params) -> str | None:
    start, end = get_int(p, "start"), get_int(p, "end")
    if start > 23 or end > 24 or start == end:
        return f"need 0 <= start <= 23, 1 <= end <= 24 and start != end, got {start}, {end}"
    return None


TIME_ENTRIES: tuple[Indicator, ...] = (
    Indicator(
        "hour_sin", _hour_sin, (), zero, "time of day (UTC) on the unit circle", inputs="time"
    ),
    Indicator(
        "hour_cos", _hour_cos, (), zero, "time of day (UTC) on the unit circle", inputs="time"
    ),
    Indicator(
        "dow_sin",
        _dow_sin,
        (),
        zero,
        "day of week (UTC, Monday 0) on the unit circle",
        inputs="time",
    ),
    Indicator(
        "dow_cos",
        _dow_cos,
        (),
        zero,
        "day of week (UTC, Monday 0) on the unit circle",
        inputs="time",
    ),
    Indicator(
        "minute_sin", _minute_sin, (), zero, "minute of the hour on the unit circle", inputs="time"
    ),
    Indicator(
        "minute_cos", _minute_cos, (), zero, "minute of the hour on the unit circle", inputs="time"
    ),
    Indicator(
        "session",
        _session,
        (Param("start", 0, 0), Param("end", 8, 1)),
        zero,
        "1 inside [start, end) UTC hours (Asia 0-8, Europe 7-16, US 13-21)",
        _check_session,
        inputs="time",
    ),
)
