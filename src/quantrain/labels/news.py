"""News override: force HOLD where a high-impact event is near and volume surges.

Scheduled events reach the OHLCV frame as columns merged by
``quantrain.features.exogenous.merge_exogenous``; this module reads them, either or both:

- ``event_next_at``: the first event (of the merge's ``min_impact``) scheduled after the bar's
  close (NaT: none known);
- ``event_last_at``: the newest one scheduled at or before the bar's close (NaT: none).

A bar's distance to news is the smaller of the two gaps from its close (where the labelled
trade enters), in minutes (NaN: no event). Training time only: the label says "do not trade
this"; it never changes features.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantrain.errors import ConfigError
from quantrain.features import kernels
from quantrain.labels.triple_barrier import HOLD

EVENT_COLUMNS: Final = ("event_next_at", "event_last_at")


def news_override(
    direction: npt.NDArray[np.int8],
    minutes_to_event: npt.NDArray[np.float64],
    volume_z: npt.NDArray[np.float64],
    *,
    minutes: float,
    min_volume_z: float,
) -> npt.NDArray[np.int8]:
    """A copy of ``direction`` with HOLD wherever ``|minutes_to_event| ≤ minutes`` and
    ``volume_z ≥ min_volume_z`` (NaN in either never overrides); invalid rows (-1) stay."""
    if not (len(direction) == len(minutes_to_event) == len(volume_z)):
        raise ValueError("direction, minutes_to_event and volume_z must have the same length")
    with np.errstate(invalid="ignore"):
        near = np.abs(minutes_to_event) <= minutes
        surge = volume_z >= min_volume_z
    out = direction.copy()
    out[near & surge & (direction >= 0)] = HOLD
    return out


def volume_zscore(volume: npt.ArrayLike, window: int) -> npt.NDArray[np.float64]:
    """z-score of each bar's volume against the trailing ``window`` bars (itself included,
    ddof 0); NaN for the first ``window - 1`` bars, 0 where the window's volume is constant."""
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 2:
        raise ConfigError(f"`volume_window` must be an integer ≥ 2 (bars), got {window!r}")
    values = np.ascontiguousarray(volume, dtype=np.float64)
    window = int(window)
    # The same trailing statistics as the ``vol_z`` feature (O(n) running kernels).
    mean = kernels.rolling_mean(values, window)
    return kernels.safe_div(values - mean, kernels.rolling_std(values, window, 0), 0.0)


def minutes_to_event(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Minutes from each bar's close to the nearest known event (NaN: none), from
    ``EVENT_COLUMNS``; a bar closes one step (the smallest gap between bars) after it opens.

    Raises ConfigError when the frame has neither column (the override was asked for but no
    event calendar was merged into the bars).
    """
    present = [c for c in EVENT_COLUMNS if c in frame.columns]
    if not present:
        raise ConfigError(
            "labels.news_override is enabled but the bars have no event column "
            f"({' or '.join(EVENT_COLUMNS)}); merge an event calendar into the data "
            "(quantrain.features.exogenous.merge_exogenous) or set "
            "labels.news_override.enabled: false"
        )
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    steps = stamps.diff().dropna()
    closes = stamps + (steps[steps > pd.Timedelta(0)].min() if len(steps) else pd.Timedelta(0))
    gaps = []
    for column in present:
        events = pd.to_datetime(frame[column], utc=True, errors="coerce")
        gaps.append(((events - closes).dt.total_seconds() / 60.0).abs().to_numpy(np.float64))
    nearest: npt.NDArray[np.float64] = np.fmin.reduce(np.vstack(gaps), axis=0)  # NaN: none
    return nearest
