"""Resample an OHLCV frame to a coarser timeframe, causally and without inventing bars.

A target bar is labelled by its open time and covers ``[t, t + timeframe)``, so the bar stamped
``t`` only uses source bars stamped in that window: nothing from the future leaks into it. Bins
sit on a fixed UTC grid anchored at the epoch (4h bins open at 00:00, 04:00, ...; daily bins at
00:00 UTC); whole-week timeframes are anchored on Monday 00:00 UTC, as exchanges publish weekly
bars (the epoch itself was a Thursday).

The two edge bins are usually incomplete: the first one opened before the data starts and the
last one is still forming when it ends. They are dropped and counted, because their open or
close is not the real one. A bin inside the series that misses some source bars (a data gap) is
kept by default and counted as partial; a bin with no source bars does not exist: gaps stay gaps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantrain.data.aliases import CANONICAL_COLUMNS
from quantrain.data.validate import (
    format_duration,
    format_timeframe,
    parse_timeframe,
    validate_ohlcv,
)
from quantrain.errors import DataError

logger = logging.getLogger(__name__)

_WEEK_NS = 7 * 86400 * 10**9
# 1970-01-05 00:00 UTC, the first Monday after the epoch: the origin of whole-week bins.
_MONDAY_NS = 4 * 86400 * 10**9
# Timeframes offered when a target is refused, filtered down to multiples of the source.
_COMMON_TIMEFRAMES = (
    "1m",
    "3m",
    "5m",
    "10m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
)
_GAPPY_FIX = (
    "  fix: use a smaller timeframe, keep partial bins, or get the missing bars at the source"
)
_CONTRACT_FIX = "pass the frame that read_ohlcv() or validate_ohlcv() returns"


@dataclass(frozen=True)
class ResampleReport:
    """What resampling did: bar sizes, row counts, and the incomplete bins it found."""

    source_timeframe: str
    timeframe: str
    source_rows: int
    rows: int
    partial_bins: int  # bins inside the series with some, not all, source bars (data gaps)
    partial_kept: bool  # True: those bins are in the output; False: they were dropped
    dropped_edges: int  # incomplete first/last bins (before the data starts, still forming)

    def summary(self) -> str:
        """One line for a CLI table."""
        partial = "no partial bins"
        if self.partial_bins:
            fate = "kept" if self.partial_kept else "dropped"
            partial = f"{self.partial_bins} partial bins (gaps) {fate}"
        return (
            f"{self.source_rows} {self.source_timeframe} bars -> {self.rows} "
            f"{self.timeframe} bars, {partial}, {self.dropped_edges} incomplete edge bins dropped"
        )


def bin_origin(step_ns: int) -> int:
    """Origin (ns since the epoch) of the bin grid for a bar size: Monday for whole weeks."""
    return _MONDAY_NS if step_ns % _WEEK_NS == 0 else 0


def _timestamps_ns(frame: pd.DataFrame) -> np.ndarray:
    """int64 ns since the epoch of the contract's UTC timestamps; DataError if not the contract."""
    missing = [c for c in CANONICAL_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"cannot resample: missing columns {', '.join(missing)}\n  fix: {_CONTRACT_FIX}"
        )
    stamps = frame["timestamp"]
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        raise DataError(
            f"cannot resample: timestamps are {stamps.dtype}, not timezone-aware UTC\n"
            f"  fix: {_CONTRACT_FIX}"
        )
    index = pd.DatetimeIndex(stamps).tz_convert("UTC").as_unit("ns")
    ns = index.asi8
    if len(ns) > 1 and not bool((ns[1:] > ns[:-1]).all()):
        raise DataError(
            "cannot resample: timestamps are not sorted and unique\n"
            f"  fix: {_CONTRACT_FIX} (it sorts and drops duplicate timestamps)"
        )
    return np.asarray(ns, dtype=np.int64)


def _source_step(ns: np.ndarray, source_timeframe: str | None) -> int:
    """The source bar size in ns: as given (checked against the data) or the modal step."""
    diffs = np.diff(ns)
    if source_timeframe is None:
        if not len(diffs):
            raise DataError(
                f"cannot resample: {len(ns)} bar(s) are too few to infer the timeframe\n"
                "  fix: provide at least two bars, or pass source_timeframe"
            )
        # As validate_ohlcv infers it: the most common step, ties to the smaller one.
        sizes, counts = np.unique(diffs, return_counts=True)
        return int(sizes[int(np.argmax(counts))])
    step = int(parse_timeframe(source_timeframe).value)
    if len(diffs):
        off = diffs % step != 0
        if off.any():
            i = int(np.argmax(off))
            raise DataError(
                f"cannot resample: source_timeframe is {source_timeframe} but "
                f"{int(off.sum())} steps between bars are not multiples of it, first "
                f"{format_duration(int(diffs[i]))} after {_instant(int(ns[i]))}\n"
                "  fix: pass the data's real bar size, or leave source_timeframe unset to infer it"
            )
        closest = int(diffs.min())
        if closest != step:
            raise DataError(
                f"cannot resample: source_timeframe is {source_timeframe} but no two bars are "
                f"that close (the closest are {format_duration(closest)} apart)\n"
                "  fix: pass the data's real bar size, or leave source_timeframe unset to infer it"
            )
    return step


def _instant(ns: int) -> str:
    return f"{pd.Timestamp(ns, unit='ns', tz='UTC'):%Y-%m-%d %H:%M:%S} UTC"


def _check_target(step: int, target: int, timeframe: str) -> None:
    """Refuse a target that is not a whole multiple (> 1) of the source bar size."""
    source = format_timeframe(pd.Timedelta(step, unit="ns"))
    if target == step:
        raise DataError(
            f"cannot resample {source} bars to {timeframe}: they already are {source}\n"
            f"  fix: choose a larger timeframe, e.g. {_multiples(step)}"
        )
    if target < step:
        raise DataError(
            f"cannot resample {source} bars to {timeframe}: resampling only aggregates bars "
            "into larger ones, it never splits them\n"
            f"  fix: choose a larger timeframe, e.g. {_multiples(step)}"
        )
    if target % step:
        raise DataError(
            f"cannot resample {source} bars to {timeframe}: {timeframe} is not a whole "
            f"multiple of {source}\n"
            f"  fix: choose a multiple of {source}, e.g. {_multiples(step)}"
        )


def _multiples(step: int) -> str:
    """Common timeframes that are whole multiples (> 1) of ``step``, for a refusal's fix."""
    found = [
        tf
        for tf in _COMMON_TIMEFRAMES
        if (ns := int(parse_timeframe(tf).value)) > step and ns % step == 0
    ]
    if not found:
        found = [format_timeframe(pd.Timedelta(k * step, unit="ns")) for k in (2, 3, 4)]
    return ", ".join(found[:8]) + f" (any whole number of {format_duration(step)} bars)"


def resample_ohlcv(
    frame: pd.DataFrame,
    timeframe: str,
    *,
    source_timeframe: str | None = None,
    keep_partial: bool = True,
) -> tuple[pd.DataFrame, ResampleReport]:
    """Aggregate an OHLCV-contract frame into ``timeframe`` bars labelled by their open time.

    open = first, high = max, low = min, close = last, volume = sum over the source bars in
    ``[t, t + timeframe)``. ``source_timeframe`` defaults to the modal step between bars (as
    ``validate_ohlcv`` infers it). Incomplete edge bins are dropped; bins with a gap inside are
    kept unless ``keep_partial`` is False. The result meets the OHLCV contract at ``timeframe``.
    Raise ``DataError`` for a target that is not a larger whole multiple of the source, source
    bars off the target's grid, or a result too short or gappy to read back as ``timeframe``.
    """
    target = int(parse_timeframe(timeframe).value)
    ns = _timestamps_ns(frame)
    if not len(ns):
        raise DataError(f"cannot resample to {timeframe}: the frame has no rows")
    step = _source_step(ns, source_timeframe)
    _check_target(step, target, timeframe)
    source_tf = format_timeframe(pd.Timedelta(step, unit="ns"))
    target_tf = format_timeframe(pd.Timedelta(target, unit="ns"))

    origin = bin_origin(target)
    offset = ns - origin
    off_grid = offset % step != 0
    if off_grid.any():
        anchor = "Monday 00:00 UTC" if origin else "00:00 UTC"
        raise DataError(
            f"cannot resample {source_tf} bars to {target_tf}: {int(off_grid.sum())} bars are "
            f"not on the {source_tf} grid anchored at {anchor} (first at "
            f"{_instant(int(ns[int(np.argmax(off_grid))]))}), so {target_tf} bins would cut "
            "through them\n"
            "  fix: resample from bars aligned to UTC (e.g. re-export the data in UTC)"
        )

    # Sorted timestamps give non-decreasing bin ids: each run of equal ids is one bin.
    bins = offset // target
    starts = np.r_[0, np.flatnonzero(bins[1:] != bins[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(ns)])
    per_bin = target // step
    opens_at = bins[starts] * target + origin

    edge = np.zeros(len(starts), dtype=bool)
    edge[0] = ns[0] > opens_at[0]  # the first bin opened before the data starts
    edge[-1] |= ns[-1] < opens_at[-1] + target - step  # the last bin is still forming
    partial = ~edge & (counts < per_bin)
    keep = ~edge if keep_partial else ~edge & ~partial

    values = {c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")}
    volume = frame["volume"].to_numpy(dtype=np.float64)
    ends = np.r_[starts[1:], len(ns)] - 1
    kept = starts[keep]
    stamps = pd.DatetimeIndex(opens_at[keep].view("datetime64[ns]")).tz_localize("UTC")
    out = pd.DataFrame(
        {
            "timestamp": stamps,
            "open": values["open"][kept],
            "high": np.maximum.reduceat(values["high"], starts)[keep],
            "low": np.minimum.reduceat(values["low"], starts)[keep],
            "close": values["close"][ends[keep]],
            "volume": np.add.reduceat(volume, starts)[keep],
        },
        columns=list(CANONICAL_COLUMNS),
    )
    report = ResampleReport(
        source_timeframe=source_tf,
        timeframe=target_tf,
        source_rows=len(ns),
        rows=len(out),
        partial_bins=int(partial.sum()),
        partial_kept=keep_partial,
        dropped_edges=int(edge.sum()),
    )
    checked = _checked(out, report)
    logger.info("resampled %s", report.summary())
    return checked, report


def _checked(out: pd.DataFrame, report: ResampleReport) -> pd.DataFrame:
    """The output as ``validate_ohlcv`` returns it, refusing one it would not read as the target."""
    what = f"resampling {report.source_timeframe} bars to {report.timeframe}"
    if len(out) < 2:
        raise DataError(
            f"{what} leaves {len(out)} complete bar(s) ({report.dropped_edges} incomplete edge "
            f"bins dropped, {report.partial_bins} partial bins "
            f"{'kept' if report.partial_kept else 'dropped'}); at least 2 are needed\n"
            "  fix: use more data or a smaller timeframe"
        )
    try:
        loaded = validate_ohlcv(
            out, f"{report.timeframe} bars resampled from {report.source_timeframe}"
        )
    except DataError as exc:
        raise DataError(
            f"{what} gives a series that cannot be read back as {report.timeframe} bars:\n{exc}\n"
            + _GAPPY_FIX
        ) from exc
    if loaded.report.timeframe != report.timeframe:
        raise DataError(
            f"{what} gives bars whose most common spacing is {loaded.report.timeframe}, so the "
            f"result would not read back as {report.timeframe} ({loaded.report.gaps} gaps)\n"
            + _GAPPY_FIX
        )
    return loaded.frame
