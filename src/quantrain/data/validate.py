"""Validation of OHLCV frames: refuse what cannot be trusted, repair only what is unambiguous.

Every refusal names the source, the original 1-based data rows and a fix, so a user can correct
the file without a debugger. Repairs (sorting, dropping duplicate timestamps) are reported, and
gaps are counted but never filled: a model trained on invented bars would look better than it is.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantrain.data.aliases import (
    ALIASES,
    CANONICAL_COLUMNS,
    PRICE_COLUMNS,
    VALUE_COLUMNS,
    ParsedTimestamps,
    ResolvedColumns,
    parse_timestamps,
    resolve_columns,
)
from quantrain.errors import DataError

logger = logging.getLogger(__name__)

MAX_ROWS_LISTED = 5
MIN_STEP_SHARE = 0.5  # below this share of bars at the modal step, the file mixes timeframes
# This many consecutive bars at one coarser spacing are a second timeframe, not missing data:
# real gaps are runs of missing bars between normal bars, not a regular coarser grid.
COARSE_RUN = 24
# Duplicate timestamps with different values are a re-downloaded candle (kept last) when isolated;
# this many consecutive bar times of them are two series in one file or a clock that went back.
CONFLICT_RUN = 3
# Columns naming the instrument: more than one distinct value means several symbols in one file.
SYMBOL_COLUMNS: tuple[str, ...] = ("symbol", "ticker", "pair", "instrument", "asset", "code")

_NS = {
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
    "w": 7 * 86400 * 10**9,
}
_UNIT_WORDS = {"ms": "ms", "s": "s", "sec": "s", "m": "m", "min": "m", "h": "h", "d": "d", "w": "w"}
_TIMEFRAME = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
_TIMEFRAME_FIX = "use a whole number and a unit, e.g. 30s, 5m, 15m, 1h, 4h, 1d, 1w"


# --------------------------------------------------------------------------- timeframes


def parse_timeframe(text: str) -> pd.Timedelta:
    """Parse a bar size such as ``5m`` or ``4h``; months are refused (they have no fixed length)."""
    match = _TIMEFRAME.match(text) if isinstance(text, str) else None
    if match is None:
        raise DataError(f"timeframe {text!r} is not understood\n  fix: {_TIMEFRAME_FIX}")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        raise DataError(
            f"timeframe {text!r} means months, which have no fixed length\n"
            "  fix: use days or weeks (e.g. 30d, 4w), or 'm' for minutes"
        )
    canonical = _UNIT_WORDS.get(unit.lower())
    if canonical is None or count <= 0:
        raise DataError(f"timeframe {text!r} is not understood\n  fix: {_TIMEFRAME_FIX}")
    return pd.Timedelta(count * _NS[canonical], unit="ns")


def format_timeframe(step: pd.Timedelta) -> str:
    """Short form of a bar size in its largest whole unit: 300 s -> ``5m``, 7 days -> ``1w``."""
    ns = int(pd.Timedelta(step).value)
    if ns <= 0 or ns % _NS["ms"]:
        raise DataError(f"bar size {step} is not a positive whole number of milliseconds")
    for unit in ("w", "d", "h", "m", "s", "ms"):
        if ns % _NS[unit] == 0:
            return f"{ns // _NS[unit]}{unit}"
    raise AssertionError("unreachable: every whole millisecond count divides by 1 ms")


def format_duration(ns: int) -> str:
    """Compound human form of a span, e.g. ``2h45m`` or ``3d4h``, for gaps and step tables."""
    if ns <= 0:
        return "0s"
    parts: list[str] = []
    rest = int(ns)
    for unit in ("d", "h", "m", "s", "ms"):
        count, rest = divmod(rest, _NS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) if parts else f"{ns}ns"


def _format_instant(ns: int) -> str:
    stamp = pd.Timestamp(int(ns), unit="ns", tz="UTC")
    fmt = "%Y-%m-%d %H:%M:%S" if stamp.second or stamp.microsecond else "%Y-%m-%d %H:%M"
    return f"{stamp.strftime(fmt)} UTC"


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Problem:
    """One reason to refuse: what is wrong, where (0-based positions), and how to fix it."""

    text: str
    fix: str
    rows: np.ndarray | None = None  # 0-based positions in the data as read
    detail: str | None = None  # an extra line, e.g. the columns found


def format_rows(positions: np.ndarray) -> str:
    """``12, 57, 301 (and 40 more)`` from 0-based positions, listed 1-based."""
    rows = np.sort(positions)  # not np.unique: its hashing takes seconds on millions of rows
    rows = rows[np.r_[True, rows[1:] != rows[:-1]]] + 1
    listed = ", ".join(str(int(r)) for r in rows[:MAX_ROWS_LISTED])
    more = len(rows) - MAX_ROWS_LISTED
    return f"{listed} (and {more} more)" if more > 0 else listed


def format_problems(source: str, problems: Sequence[Problem]) -> str:
    """Each problem as ``<source>: <problem>`` then its data rows and its fix."""
    lines: list[str] = []
    for problem in problems:
        lines.append(f"{source}: {problem.text}")
        if problem.rows is not None and len(problem.rows):
            lines.append(f"  data rows: {format_rows(problem.rows)}")
        if problem.detail:
            lines.append(f"  {problem.detail}")
        lines.append(f"  fix: {problem.fix}")
    return "\n".join(lines)


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 gap``, ``3 gaps``, ``2 retries``."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def span_text(first: pd.Timestamp | None, last: pd.Timestamp | None) -> str:
    """``2018-01-10 04:55 .. 2018-01-30 04:50 UTC``, or ``no rows``."""
    if first is None or last is None:
        return "no rows"
    return f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ValidationReport:
    """What validation found and repaired in one source: the evidence behind a loaded frame."""

    source: str
    rows: int
    timeframe: str
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    repairs: tuple[str, ...]
    gaps: int
    missing_bars: int
    largest_gap: str | None
    #: ``24/7``, or ``weekdays`` for a market that closes at weekends (FX, exchanges): its
    #: closed sessions (weekends, holidays) are counted here, not as gaps.
    calendar: str = "24/7"
    closed_weekends: int = 0
    closed_holidays: int = 0

    @property
    def closed_sessions(self) -> int:
        """Gaps that are the market being closed (weekends, holidays), not missing data."""
        return self.closed_weekends + self.closed_holidays

    def closed_text(self) -> str:
        """``closed sessions: 40 weekends, 2 holidays`` ('' on a 24/7 series)."""
        if self.calendar == "24/7":
            return ""
        parts = [plural(self.closed_weekends, "weekend")]
        if self.closed_holidays:
            parts.append(plural(self.closed_holidays, "holiday"))
        return f"closed sessions: {', '.join(parts)}"

    def summary(self) -> str:
        """One line for a CLI table."""
        span = span_text(self.first, self.last)
        gaps = "no gaps"
        if self.gaps:
            gaps = (
                f"{plural(self.gaps, 'gap')} ({plural(self.missing_bars, 'bar')} missing, "
                f"largest {self.largest_gap})"
            )
        if self.closed_text():
            gaps += f", {self.closed_text()}"
        repairs = "; ".join(self.repairs) if self.repairs else "no repairs"
        return f"{self.source}: {self.rows} rows, {self.timeframe}, {span}, {gaps}, {repairs}"


@dataclass(frozen=True)
class LoadedOHLCV:
    """A frame that meets the OHLCV contract, with the report of how it got there."""

    frame: pd.DataFrame
    report: ValidationReport


# --------------------------------------------------------------------------- checks

_COLUMN_FIX = (
    "name the columns timestamp, open, high, low, close, volume (accepted aliases: "
    + "; ".join(f"{c}: {', '.join(a)}" for c, a in ALIASES.items())
    + "; any capitalisation)"
)


def _numeric(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and a mask of entries that are present but not numbers."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.full(len(values), np.nan), values.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(values), bool)
    numbers = pd.to_numeric(values, errors="coerce")
    non_numeric = (values.notna() & numbers.isna()).to_numpy(dtype=bool)
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan), non_numeric


def _per_column(masks: dict[str, np.ndarray]) -> tuple[str, np.ndarray] | None:
    """``open (2 data rows), close (1 data row)`` and the union of rows, or None if clean."""
    counts = {c: int(m.sum()) for c, m in masks.items()}
    hits = [f"{c} ({plural(n, 'data row')})" for c, n in counts.items() if n]
    if not hits:
        return None
    union = np.logical_or.reduce(list(masks.values()))
    return ", ".join(hits), np.flatnonzero(union)


def _value_problems(
    resolved: ResolvedColumns,
) -> tuple[dict[str, np.ndarray], list[Problem]]:
    """Convert price/volume columns to float64 and list every value that cannot be used."""
    values: dict[str, np.ndarray] = {}
    non_numeric: dict[str, np.ndarray] = {}
    for column in VALUE_COLUMNS:
        values[column], non_numeric[column] = _numeric(resolved.columns[column])
    problems: list[Problem] = []

    found = _per_column(non_numeric)
    if found:
        column = next(c for c, m in non_numeric.items() if m.any())
        example = resolved.columns[column].iloc[int(np.argmax(non_numeric[column]))]
        problems.append(
            Problem(
                f"non-numeric values in {found[0]}, e.g. {example!r} in {column}",
                "write plain numbers ('.' as decimal point, no thousands separators or "
                "units), or delete these rows",
                found[1],
            )
        )
    found = _per_column({c: np.isnan(v) & ~non_numeric[c] for c, v in values.items()})
    if found:
        problems.append(
            Problem(
                f"missing (NaN/empty) values in {found[0]}",
                "fill these values at the source or delete the rows; quantrain never "
                "invents prices or volume",
                found[1],
            )
        )
    found = _per_column({c: np.isinf(v) for c, v in values.items()})
    if found:
        problems.append(
            Problem(
                f"infinite values in {found[0]}",
                "fix these values at the source or delete the rows",
                found[1],
            )
        )
    found = _per_column({c: np.isfinite(values[c]) & (values[c] <= 0) for c in PRICE_COLUMNS})
    if found:
        problems.append(
            Problem(
                f"non-positive prices in {found[0]}",
                "prices must be > 0: fix these rows at the source or delete them",
                found[1],
            )
        )
    negative_volume = np.isfinite(values["volume"]) & (values["volume"] < 0)
    if negative_volume.any():
        problems.append(
            Problem(
                f"negative volume in {plural(int(negative_volume.sum()), 'data row')}",
                "volume must be >= 0 (0 is fine): fix these rows at the source or delete them",
                np.flatnonzero(negative_volume),
            )
        )

    o, h, low, c = (values[col] for col in PRICE_COLUMNS)
    # Rows already refused for a missing or non-positive price are not reported twice.
    usable = np.logical_and.reduce([np.isfinite(p) & (p > 0) for p in (o, h, low, c)])
    inverted = usable & (h < low)
    if inverted.any():
        problems.append(
            Problem(
                f"high < low in {plural(int(inverted.sum()), 'data row')}",
                "check that the high and low columns are not swapped or shifted; otherwise "
                "fix or delete these rows",
                np.flatnonzero(inverted),
            )
        )
    outside = usable & ~inverted & ((o < low) | (o > h) | (c < low) | (c > h))
    if outside.any():
        problems.append(
            Problem(
                f"open or close outside [low, high] in {plural(int(outside.sum()), 'data row')}",
                "check the column order (open, high, low, close); otherwise fix or delete "
                "these rows",
                np.flatnonzero(outside),
            )
        )
    return values, problems


def _timestamp_problem(resolved: ResolvedColumns, stamps: ParsedTimestamps) -> Problem | None:
    bad = np.flatnonzero(stamps.invalid)
    if not len(bad):
        return None
    example = resolved.columns["timestamp"].iloc[int(bad[0])]
    if stamps.how.startswith("epoch"):
        text = f"timestamps that are not {stamps.how} between 1970 and 2200"
        fix = (
            "use one epoch unit for the whole column (seconds, ms, us or ns since 1970), "
            "or delete these rows"
        )
    else:
        text = "unparseable timestamps"
        fix = (
            "write timestamps as ISO 8601 (e.g. 2018-01-10 04:55:00, naive means UTC, or "
            "with an offset such as +02:00) or as epoch numbers, or delete these rows"
        )
    column = resolved.sources["timestamp"]
    return Problem(
        f"{text} in {column!r} ({plural(len(bad), 'data row')}, read as {stamps.how}), "
        f"e.g. {example!r}",
        fix,
        bad,
    )


def _symbol_problems(raw: pd.DataFrame) -> list[Problem]:
    """Refuse a symbol-like column (``symbol``, ``ticker``, ...) holding several symbols."""
    problems: list[Problem] = []
    for position, name in enumerate(raw.columns):
        if str(name).strip().lower() not in SYMBOL_COLUMNS:
            continue
        codes, uniques = pd.factorize(raw.iloc[:, position], use_na_sentinel=True)
        if len(uniques) < 2:
            continue
        # " ETH-BTC" and "ETH-BTC" are one symbol; the first spelling names it.
        names: dict[str, int] = {}
        merged = np.array([names.setdefault(str(u).strip(), len(names)) for u in uniques])
        if len(names) < 2:
            continue
        present = np.flatnonzero(codes >= 0)
        _, first = np.unique(merged[codes[present]], return_index=True)
        listed = ", ".join(list(names)[:MAX_ROWS_LISTED])
        if len(names) > MAX_ROWS_LISTED:
            listed += f" (and {len(names) - MAX_ROWS_LISTED} more)"
        problems.append(
            Problem(
                f"{len(names)} symbols in one file (column {str(name)!r}): {listed}",
                "one file per symbol, named SYMBOL_TIMEFRAME.csv (e.g. ETH-BTC_5m.csv): "
                f"split this file by its {str(name)!r} column",
                present[first],
                detail="the data rows listed are where each symbol first appears",
            )
        )
    return problems


def _offset_problem(resolved: ResolvedColumns, stamps: ParsedTimestamps) -> Problem | None:
    """Refuse timestamp strings that switch between naive (UTC) and carrying a UTC offset."""
    if stamps.offsets is None:
        return None
    valid = np.flatnonzero(~stamps.invalid)
    offsets = stamps.offsets[valid]
    with_offset = int(offsets.sum())
    if with_offset in (0, len(valid)):
        return None  # all naive, or all with offsets (which may change: each is converted)
    switches = valid[1:][offsets[1:] != offsets[:-1]]
    raw = resolved.columns["timestamp"]
    naive_example = raw.iloc[int(valid[np.argmin(offsets)])]
    offset_example = raw.iloc[int(valid[np.argmax(offsets)])]
    return Problem(
        f"timestamps in {resolved.sources['timestamp']!r} mix naive values "
        f"({plural(len(valid) - with_offset, 'data row')}, read as UTC) and values with a UTC "
        f"offset ({plural(with_offset, 'data row')}), e.g. {naive_example!r} and "
        f"{offset_example!r}",
        "write every timestamp with its UTC offset (e.g. 2024-06-01 00:00:00+02:00), or every "
        "one in UTC without an offset; naive means UTC, so a file that switches between the "
        "two has changed its clock",
        switches,
        detail=f"the data rows listed are where the file switches "
        f"({plural(len(switches), 'switch', 'switches')})",
    )


@dataclass(frozen=True)
class _Ordered:
    """Valid-timestamp rows sorted and deduplicated, with what that took."""

    ns: np.ndarray  # int64, strictly increasing
    positions: np.ndarray  # 0-based positions in the data as read
    repairs: tuple[str, ...]
    problem: Problem | None = None  # runs of conflicting duplicates: refused


def _differs(values: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether rows ``a`` and ``b`` (positions as read) differ in any value (NaN equals NaN)."""
    out = np.zeros(len(a), bool)
    for column in VALUE_COLUMNS:
        x, y = values[column][a], values[column][b]
        out |= ~((x == y) | (np.isnan(x) & np.isnan(y)))
    return out


def _conflict_problem(
    ns: np.ndarray, positions: np.ndarray, group: np.ndarray, conflicting: np.ndarray
) -> Problem | None:
    """Refuse runs of ``CONFLICT_RUN`` or more consecutive bar times with conflicting duplicates.

    ``ns``/``positions`` are sorted (duplicates kept), ``group`` maps each row to its bar time
    (an index into the sorted unique timestamps) and ``conflicting`` flags each bar time.
    """
    edges = np.diff(np.r_[0, conflicting.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = (ends - starts) >= CONFLICT_RUN
    if not long.any():
        return None
    starts, ends = starts[long], ends[long]
    marks = np.zeros(len(conflicting) + 1, np.int64)
    np.add.at(marks, starts, 1)
    np.add.at(marks, ends, -1)
    in_run = np.cumsum(marks[:-1]) > 0
    first = group == starts[0]
    instant = _format_instant(int(ns[first][0]))
    longest = int((ends - starts).max())
    return Problem(
        f"conflicting duplicates: {int(in_run.sum())} timestamps repeated with different OHLCV "
        f"values, in {plural(len(starts), 'run')} of {CONFLICT_RUN} or more consecutive bar "
        f"times (longest {longest}, first from {instant})",
        "keep one symbol per file (named SYMBOL_TIMEFRAME.csv), and write timestamps in UTC or "
        "with their UTC offset (e.g. +02:00), not in a local clock time; an isolated "
        "re-downloaded bar is repaired (kept last), runs like these are not",
        positions[in_run[group]],
        detail=f"e.g. {instant} at data rows {format_rows(positions[first])}; likely two "
        "series in one file (stacked or interleaved), or a local clock that went back "
        "(daylight saving or a time-zone change)",
    )


def _order(stamps: ParsedTimestamps, values: dict[str, np.ndarray]) -> _Ordered:
    """Sort by timestamp (stable) and keep the last row of each duplicate timestamp.

    Identical duplicates are dropped; isolated duplicates with different values (a re-downloaded
    candle) keep the last row; runs of them over consecutive bar times are refused.
    """
    positions = np.flatnonzero(~stamps.invalid)
    ns = stamps.ns[positions]
    repairs: list[str] = []
    if len(ns) > 1:
        running_max = np.maximum.accumulate(ns)
        late = np.flatnonzero(ns[1:] < running_max[:-1]) + 1
        if len(late):
            late_rows = positions[late]
            order = np.argsort(ns, kind="stable")
            ns, positions = ns[order], positions[order]
            repairs.append(
                f"sorted {plural(len(late), 'out-of-order row')} by timestamp, first at "
                f"data rows {format_rows(late_rows)}"
            )
    problem = None
    if len(ns) > 1:
        keep = np.r_[ns[1:] != ns[:-1], True]  # the last row of each timestamp
        if not keep.all():
            group = np.cumsum(np.r_[True, keep[:-1]]) - 1  # each row's bar time
            dropped = np.flatnonzero(~keep)
            differs = _differs(
                values, positions[dropped], positions[np.flatnonzero(keep)[group[dropped]]]
            )
            conflicting = np.zeros(int(keep.sum()), bool)
            conflicting[group[dropped[differs]]] = True
            problem = _conflict_problem(ns, positions, group, conflicting)
            same, different = positions[dropped[~differs]], positions[dropped[differs]]
            if len(same):
                repairs.append(
                    f"dropped {plural(len(same), 'exact duplicate row')}, first at data rows "
                    f"{format_rows(same)}"
                )
            if len(different):
                repairs.append(
                    f"dropped {plural(len(different), 'duplicate timestamp')} with different "
                    f"values (kept last), first at data rows {format_rows(different)}"
                )
            ns, positions = ns[keep], positions[keep]
    if problem is None:
        for repair in repairs:
            logger.info("repaired: %s", repair)
    return _Ordered(ns, positions, tuple(repairs), problem)


@dataclass(frozen=True)
class _Steps:
    step: int  # ns
    gaps: int
    missing_bars: int
    largest_gap: str | None
    calendar: str = "24/7"
    closed_weekends: int = 0
    closed_holidays: int = 0


# --------------------------------------------------------------------------- market calendars
# A series with no bar opening on any Saturday (UTC) over at least MIN_WEEKENDS Saturdays is a
# weekday market (FX, an exchange); crypto trades every day and keeps every gap a gap.
MIN_WEEKENDS = 2
_DAY_NS = _NS["d"]
_WEEK_NS = _NS["w"]
_MONDAY_NS = 4 * _DAY_NS  # 1970-01-05, the first Monday after the epoch (a Thursday)
# Markets close from Friday evening: FX at 17:00 New York (21:00 or 22:00 UTC), the evening
# before a holiday likewise; allow from 20:00 UTC.
_EVENING_NS = 20 * _NS["h"]
# Exchange closures outside the rules below (NYSE): national mourning days, hurricane Sandy.
_SPECIAL_CLOSURES = (
    "2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14", "2004-06-11", "2007-01-02",
    "2012-10-29", "2012-10-30", "2018-12-05", "2025-01-09",
)  # fmt: skip


def _holiday_days(first_ns: int, last_ns: int) -> set[int]:
    """Days (ns since the epoch / day) that FX or US exchanges are closed: New Year, Christmas,
    the NYSE holidays (MLK, Presidents', Good Friday, Memorial, Juneteenth from 2022,
    Independence, Labor, Thanksgiving; observed on the nearest weekday) and special closures."""
    from pandas.tseries.holiday import (
        AbstractHolidayCalendar,
        GoodFriday,
        Holiday,
        USLaborDay,
        USMartinLutherKingJr,
        USMemorialDay,
        USPresidentsDay,
        USThanksgivingDay,
        nearest_workday,
    )

    class _Closed(AbstractHolidayCalendar):
        rules = [  # noqa: RUF012 (pandas reads a list)
            Holiday("New Year", month=1, day=1, observance=nearest_workday),
            USMartinLutherKingJr,
            USPresidentsDay,
            GoodFriday,
            USMemorialDay,
            Holiday(
                "Juneteenth",
                month=6,
                day=19,
                start_date="2022-01-01",
                observance=nearest_workday,
            ),
            Holiday("Independence", month=7, day=4, observance=nearest_workday),
            USLaborDay,
            USThanksgivingDay,
            Holiday("Christmas", month=12, day=25, observance=nearest_workday),
            Holiday("New Year (unobserved)", month=1, day=1),
            Holiday("Christmas (unobserved)", month=12, day=25),
        ]

    start = pd.Timestamp(first_ns, unit="ns") - pd.Timedelta(days=7)
    end = pd.Timestamp(last_ns, unit="ns") + pd.Timedelta(days=7)
    days = pd.DatetimeIndex(_Closed().holidays(start, end)).union(
        pd.DatetimeIndex(pd.to_datetime(list(_SPECIAL_CLOSURES)))
    )
    return {int(d) // _DAY_NS for d in days.as_unit("ns").asi8}


def _closes_at_weekends(ns: np.ndarray) -> bool:
    """No bar opens on a Saturday (UTC), and the data spans at least MIN_WEEKENDS of them."""
    day = (ns - _MONDAY_NS) // _DAY_NS % 7  # 0 = Monday
    saturdays = (int(ns[-1]) - _MONDAY_NS - 5 * _DAY_NS) // _WEEK_NS - (
        int(ns[0]) - _MONDAY_NS - 5 * _DAY_NS - 1
    ) // _WEEK_NS
    return saturdays >= MIN_WEEKENDS and not bool((day == 5).any())


def _closed_kind(start: int, end: int, holidays: set[int]) -> str | None:
    """``weekend`` / ``holiday`` when the missing span ``[start, end)`` lies wholly in closed
    time (Friday 20:00 to Monday 00:00 UTC, a holiday's day and the evening before), else
    None."""
    kind = "weekend"
    t = start
    while t < end:
        day = t // _DAY_NS
        weekday = (t - _MONDAY_NS) // _DAY_NS % 7
        evening = t - day * _DAY_NS >= _EVENING_NS
        if weekday in (5, 6) or (weekday == 4 and evening):
            t = (day + 7 - weekday) * _DAY_NS  # next Monday 00:00
        elif day in holidays:
            t, kind = (day + 1) * _DAY_NS, "holiday"
        elif evening and day + 1 in holidays:
            t, kind = (day + 2) * _DAY_NS, "holiday"
        else:
            return None
    return kind


def _coarse_runs(diffs: np.ndarray, step: int) -> np.ndarray:
    """Indices of the bars that start runs of ``COARSE_RUN`` equal steps other than ``step``."""
    starts = np.r_[0, np.flatnonzero(diffs[1:] != diffs[:-1]) + 1]
    lengths = np.diff(np.r_[starts, len(diffs)])
    coarse = (diffs[starts] > step) & (lengths >= COARSE_RUN)
    return starts[coarse]


def _steps(ordered: _Ordered) -> tuple[_Steps | None, list[Problem]]:
    """Infer the bar size (modal step), refuse mixed timeframes, and measure the gaps."""
    if len(ordered.ns) < 2:
        return None, [
            Problem(
                f"only {plural(len(ordered.ns), 'bar')} with a valid, distinct timestamp",
                "provide at least two bars so the timeframe can be inferred",
            )
        ]
    diffs = np.diff(ordered.ns)
    sizes, counts = np.unique(diffs, return_counts=True)
    step = int(sizes[int(np.argmax(counts))])  # ties go to the smaller step
    by_count = np.argsort(-counts, kind="stable")
    seen = ", ".join(
        f"{format_duration(int(sizes[i]))} × {counts[i]}" for i in by_count[:MAX_ROWS_LISTED]
    )
    if len(sizes) > MAX_ROWS_LISTED:
        seen += f" (and {len(sizes) - MAX_ROWS_LISTED} other steps)"
    problems: list[Problem] = []
    if step % _NS["ms"]:
        problems.append(
            Problem(
                f"bar size {step} ns is not a whole number of milliseconds",
                "use bars of at least 1 ms with timestamps on whole milliseconds",
            )
        )
        return None, problems
    off_grid = diffs % step != 0
    if off_grid.any():
        problems.append(
            Problem(
                f"mixed timeframes: {plural(int(off_grid.sum()), 'bar')} not on the "
                f"{format_duration(step)} grid",
                f"keep one timeframe per file (split it, or resample to one bar size); "
                f"the data rows listed start a step that is not a multiple of "
                f"{format_duration(step)}",
                ordered.positions[1:][off_grid],
                detail=f"steps seen: {seen}",
            )
        )
    share = counts.max() / len(diffs)
    if share < MIN_STEP_SHARE:
        problems.append(
            Problem(
                f"mixed timeframes: only {share:.0%} of steps are the most common step "
                f"{format_duration(step)}",
                "this looks like several timeframes (or very sparse data) in one file; keep one "
                "timeframe per file",
                detail=f"steps seen: {seen}",
            )
        )
    coarse = _coarse_runs(diffs, step)
    if len(coarse):
        problems.append(
            Problem(
                f"mixed timeframes: {plural(len(coarse), 'run')} of {COARSE_RUN} or more "
                f"consecutive bars on a coarser grid than {format_duration(step)}",
                "this looks like files of different timeframes concatenated; keep one "
                "timeframe per file",
                ordered.positions[coarse],
                detail=f"steps seen: {seen}; the data rows listed start each run",
            )
        )
    if problems:
        return None, problems

    multiples = diffs // step
    is_gap = multiples > 1
    calendar, closed = "24/7", {"weekend": 0, "holiday": 0}
    if step < _WEEK_NS and _closes_at_weekends(ordered.ns):
        calendar = "weekdays"
        if is_gap.any():
            holidays = _holiday_days(int(ordered.ns[0]), int(ordered.ns[-1]))
            for at in np.flatnonzero(is_gap):
                kind = _closed_kind(int(ordered.ns[at]) + step, int(ordered.ns[at + 1]), holidays)
                if kind is not None:
                    closed[kind] += 1
                    is_gap[at] = False
    largest = None
    if is_gap.any():
        i = int(np.flatnonzero(is_gap)[np.argmax(diffs[is_gap])])
        largest = (
            f"{format_duration(int(diffs[i]) - step)} from "
            f"{_format_instant(int(ordered.ns[i]) + step)}"
        )
    return _Steps(
        step,
        int(is_gap.sum()),
        int((multiples[is_gap] - 1).sum()),
        largest,
        calendar,
        closed["weekend"],
        closed["holiday"],
    ), []


def _frame(ordered: _Ordered, values: dict[str, np.ndarray]) -> pd.DataFrame:
    stamps = pd.DatetimeIndex(ordered.ns.view("datetime64[ns]")).tz_localize("UTC")
    data: dict[str, object] = {"timestamp": stamps}
    for column in VALUE_COLUMNS:
        data[column] = values[column][ordered.positions]
    return pd.DataFrame(data, columns=list(CANONICAL_COLUMNS))


def validate_ohlcv(raw: pd.DataFrame, source: str) -> LoadedOHLCV:
    """Alias, check and repair a raw frame; raise ``DataError`` listing every problem found.

    ``source`` labels messages and the report (the file path as given). ``raw`` is not modified.
    """
    source = str(source)
    if len(raw) == 0:
        found = ", ".join(map(str, raw.columns)) or "none"
        raise DataError(
            format_problems(
                source,
                [
                    Problem(
                        "empty file: no data rows",
                        "export the data again, or check that the path points at the right file",
                        detail=f"columns found: {found}",
                    )
                ],
            )
        )
    resolved = resolve_columns(raw)
    if resolved.missing or resolved.ambiguous:
        problems = [
            Problem(text, "rename or drop one of these columns") for text in resolved.ambiguous
        ]
        if resolved.missing:
            problems.insert(
                0,
                Problem(
                    f"missing required columns: {', '.join(resolved.missing)}",
                    _COLUMN_FIX,
                    detail=f"columns found: {', '.join(resolved.found) or 'none'}",
                ),
            )
        raise DataError(format_problems(source, problems))

    values, problems = _value_problems(resolved)
    problems.extend(_symbol_problems(raw))
    stamps = parse_timestamps(resolved.columns["timestamp"])
    logger.debug("%s: timestamps read as %s", source, stamps.how)
    for timestamp_problem in (
        _timestamp_problem(resolved, stamps),
        _offset_problem(resolved, stamps),
    ):
        if timestamp_problem:
            problems.append(timestamp_problem)
    ordered = _order(stamps, values)
    if ordered.problem:
        problems.append(ordered.problem)
    steps, step_problems = _steps(ordered)
    problems.extend(step_problems)
    if problems or steps is None:
        raise DataError(format_problems(source, problems))

    frame = _frame(ordered, values)
    report = ValidationReport(
        source=source,
        rows=len(frame),
        timeframe=format_timeframe(pd.Timedelta(steps.step, unit="ns")),
        first=frame["timestamp"].iloc[0],
        last=frame["timestamp"].iloc[-1],
        repairs=ordered.repairs,
        gaps=steps.gaps,
        missing_bars=steps.missing_bars,
        largest_gap=steps.largest_gap,
        calendar=steps.calendar,
        closed_weekends=steps.closed_weekends,
        closed_holidays=steps.closed_holidays,
    )
    if report.gaps:
        logger.info(
            "%s: %d gaps, %d missing bars (largest %s); not filled",
            source,
            report.gaps,
            report.missing_bars,
            report.largest_gap,
        )
    return LoadedOHLCV(frame, report)
