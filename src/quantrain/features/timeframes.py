"""Higher-timeframe features, computed only from higher-timeframe bars already complete at bar t.

``timestamp`` is a bar's open time. The base bars are binned on the epoch-anchored grid of
``quantrain.data.resample`` (4h bins open at 00:00, 04:00, ... UTC; whole weeks on Monday) and
aggregated the same way (open first, high max, low min, close last, volume sum). A higher bar
``[T, T + tf)`` is complete at the base bar whose close time (open + base step) reaches
``T + tf`` — for 1h over 5m, the bar opening at 10:55 completes the 10:00 bar — or, if that bar
is missing (a gap), at the first base bar of a later bin. Until then the previous completed
higher bar's value is used. As in resampling, a first bin that opened before the data starts is
dropped and bins with gaps are kept.

Any OHLCV indicator ``kind`` gets a variant ``htf_<kind>`` with a leading ``tf`` parameter
(``htf_rsi_1h_14``): the inner indicator runs unchanged on the higher bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantrain.data.resample import bin_origin
from quantrain.data.validate import format_timeframe, parse_timeframe
from quantrain.errors import ConfigError, DataError
from quantrain.features.base import Bars, Indicator, Param, Params

#: Spec-level warm-ups of higher-timeframe features assume this base bar size when the data's
#: timeframe is not given: an upper bound for any base of 1 minute or more.
FINEST_BASE = "1m"


@dataclass(frozen=True)
class HigherBars:
    """Higher-timeframe bars of a call and, per base bar, the newest complete one (-1: none)."""

    bars: Bars
    last_complete: np.ndarray
    ratio: int  # higher bar size / base bar size


def timeframe_ns(text: str) -> int:
    """A timeframe such as ``1h`` in ns."""
    return int(parse_timeframe(text).value)


def _name(ns: int) -> str:
    import pandas as pd

    return format_timeframe(pd.Timedelta(ns, unit="ns"))


def check_ratio(base_ns: int, target_ns: int, tf: str) -> int:
    """tf / base as an integer > 1; ``DataError`` naming both timeframes otherwise."""
    base = _name(base_ns)
    if target_ns <= base_ns:
        raise DataError(
            f"higher-timeframe feature asks for {tf} bars but the data already has {base} bars "
            f"({tf} is not coarser than {base})\n"
            f"  fix: drop the htf_* features with tf={tf} from the feature set, or use finer data"
        )
    if target_ns % base_ns:
        raise DataError(
            f"higher-timeframe feature asks for {tf} bars, which is not a whole multiple of the "
            f"data's {base} bars\n  fix: choose a timeframe that is a multiple of {base}"
        )
    return target_ns // base_ns


def higher_bars(b: Bars, tf: str) -> HigherBars:
    """The completed-bar view of ``b`` at ``tf`` (memoised: features on one tf share it)."""
    target = timeframe_ns(tf)
    return b.memo(("htf", target), lambda: _build(b, target, tf))


def _build(b: Bars, target: int, tf: str) -> HigherBars:
    n = len(b)
    if n < 2:  # no step to go by; no higher bar can be known complete
        empty = np.empty(0)
        return HigherBars(
            Bars(empty, empty, empty, empty, empty, timestamp=np.empty(0, "datetime64[ns]")),
            np.full(n, -1, dtype=np.int64),
            0,
        )
    step = b.step_ns()
    ratio = check_ratio(step, target, tf)
    ns = b.timestamp_ns()
    origin = bin_origin(target)
    offset = ns - origin
    if (offset % step).any():
        i = int(np.argmax(offset % step != 0))
        raise DataError(
            f"cannot build {tf} bars: bar {i} is not on the {_name(step)} grid anchored at "
            "00:00 UTC, so it would straddle two bins\n"
            "  fix: use bars aligned to UTC (e.g. re-export the data in UTC)"
        )
    bins = offset // target
    starts = np.r_[0, np.flatnonzero(bins[1:] != bins[:-1]) + 1]
    ends = np.r_[starts[1:], n] - 1
    opens_at = bins[starts] * target + origin
    done = ns[ends] + step >= opens_at + target
    complete_at = np.where(done, ends, ends + 1)  # ends + 1 is the next bin's first bar (or n)
    first = 1 if ns[0] > opens_at[0] else 0  # opened before the data starts: never complete
    counts = np.bincount(complete_at[first:], minlength=n + 1)[:n]
    last_complete = np.cumsum(counts) - 1
    keep = slice(first, None)
    higher = Bars(
        np.ascontiguousarray(b.open[starts][keep]),
        np.ascontiguousarray(np.maximum.reduceat(b.high, starts)[keep]),
        np.ascontiguousarray(np.minimum.reduceat(b.low, starts)[keep]),
        np.ascontiguousarray(b.close[ends][keep]),
        np.ascontiguousarray(np.add.reduceat(b.volume, starts)[keep]),
        timestamp=opens_at[keep].view("datetime64[ns]"),
    )
    return HigherBars(higher, last_complete.astype(np.int64), ratio)


def spread(view: HigherBars, values: np.ndarray, inner_warmup: int) -> np.ndarray:
    """Each base bar gets the value of its newest complete higher bar; NaN for the first
    ``htf_warmup`` bars whatever the start time, so the warm-up is one fixed number."""
    padded = np.append(values, np.nan)  # last_complete == -1 reads the NaN
    out = padded[view.last_complete]
    out[: htf_warmup(inner_warmup, view.ratio)] = np.nan
    return out


def htf_warmup(inner_warmup: int, ratio: int) -> int:
    """Base bars until the inner value exists for any start time: the first complete higher bar
    may start ratio - 1 bars in, and higher bar w completes (w + 1) * ratio - 1 bars later."""
    return (inner_warmup + 2) * ratio - 2 if ratio else 0


def base_warmup(indicator: Indicator, params: Params, timeframe: str | None) -> int:
    """An indicator's warm-up in bars of the data's timeframe (``FINEST_BASE`` when unknown)."""
    warmup = indicator.warmup(params)
    if indicator.inputs != "htf":
        return warmup
    tf = str(params["tf"])
    try:
        ratio = check_ratio(timeframe_ns(timeframe or FINEST_BASE), timeframe_ns(tf), tf)
    except DataError as error:
        raise ConfigError(str(error)) from None
    return htf_warmup(warmup, ratio)


def higher_timeframe(inner: Indicator) -> Indicator:
    """``htf_<kind>``: ``inner`` computed on completed ``tf`` bars, spread over the base bars."""
    names = tuple(p.name for p in inner.params)

    def fn(b: Bars, p: Params) -> np.ndarray:
        view = higher_bars(b, str(p["tf"]))
        inner_params = {name: p[name] for name in names}
        values = inner.fn(view.bars, inner_params) if len(view.bars) else np.empty(0)
        return spread(view, values, inner.warmup(inner_params))

    def check(p: Params) -> str | None:
        try:
            timeframe_ns(str(p["tf"]))
        except DataError as error:
            return f"parameter 'tf': {error}"
        return inner.check(p) if inner.check is not None else None

    return Indicator(
        key=f"htf_{inner.key}",
        fn=fn,
        params=(Param("tf", "1h"), *inner.params),
        warmup=inner.warmup,
        doc=f"{inner.doc}, on the newest complete higher-timeframe bar",
        check=check,
        inputs="htf",
    )
