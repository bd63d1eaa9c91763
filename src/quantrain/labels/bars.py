"""Every target an OHLCV bar can be labelled with, from one set of label settings.

The triple barrier runs first; the other targets read its labelled trade (side, exit) or the
same forward window, so every target is defined on exactly the triple barrier's valid rows and
reads no bar past ``label_end`` (= t + horizon). Distances are in ATR units of bar t, measured
from the trade's entry price (``open[t+1]`` by default, see ``labels.triple_barrier``).

=================  ==========================================================================
direction          SELL / HOLD / BUY: the first take-profit of the long and short trade
                   (triple_barrier), or the horizon's move outside ± neutral_band × ATR
                   (fixed_horizon); optionally HOLD near news (labels.news)
position_size      R-multiple of the trade the direction label takes: the long's R on BUY rows,
                   the short's on SELL rows, 0 on HOLD rows (no trade), clipped to
                   [r_min, r_max]; never the better side in hindsight
volatility_regime  LOW / NORMAL / HIGH / EXTREME: forward log-return std binned by quantiles
                   fitted on training rows only (raw value stored, binned per fold)
timing             NONE / SLOW / FAST: how soon and how cleanly the take-profit was hit
tp_level           TP0..TP3: how many of the three tp_levels the labelled side's favourable
                   excursion reached before its stop (take-profit ignored)
stop_loss          adverse excursion of the labelled side until its take-profit is touched
                   (stop ignored): the room a trade needed; heads learn its quantiles
mfe / mae          favourable / adverse excursion of the labelled side over the whole horizon
time_to_hit        bars until the labelled trade's exit / horizon, in (0, 1]
=================  ==========================================================================

The labelled side is the trade whose take-profit came first; for HOLD, the trade with the
better R (the long on a tie).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from quantrain.labels.excursions import excursions
from quantrain.labels.fixed_horizon import fixed_horizon_direction
from quantrain.labels.regime import forward_volatility
from quantrain.labels.timing import time_to_hit, timing
from quantrain.labels.triple_barrier import (
    BUY,
    SELL,
    TripleBarrierLabels,
    TripleBarrierParams,
    entry_prices,
    triple_barrier,
)

DirectionMethod = Literal["triple_barrier", "fixed_horizon"]


#: The targets OHLCV bars are labelled with (labels.bars.label_bars computes all of them).
BAR_TARGETS = (
    "direction",
    "position_size",
    "volatility_regime",
    "timing",
    "tp_level",
    "stop_loss",
    "mfe",
    "mae",
    "time_to_hit",
)


@dataclass(frozen=True)
class BarLabelSettings:
    """What the bar labels need beyond the triple barrier (values come from the job's labels
    section; no defaults here, so they live in one place)."""

    barrier: TripleBarrierParams
    direction_method: DirectionMethod
    neutral_band: float
    tp_levels: tuple[float, ...]
    timing_fast: float
    timing_clean: float


@dataclass(frozen=True)
class BarLabels:
    barrier: TripleBarrierLabels
    #: Full-length arrays keyed by target name; meaningful where ``barrier.valid``.
    #: ``volatility_regime`` holds the raw forward volatility (binned per fold later).
    targets: dict[str, npt.NDArray[np.generic]]


def label_bars(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    settings: BarLabelSettings,
    *,
    open_: npt.ArrayLike | None = None,
) -> BarLabels:
    """The triple barrier, then every other bar target (see each module for its definition).
    ``open_`` is needed for the default entry at the next bar's open."""
    p = settings.barrier
    tb = triple_barrier(high, low, close, atr, p, open_=open_)
    h, lo, c, a = (np.ascontiguousarray(x, dtype=np.float64) for x in (high, low, close, atr))
    entry = entry_prices(open_, c, p.entry)
    ex = excursions(
        h,
        lo,
        entry,
        a,
        tb.side,
        horizon=p.horizon,
        k_tp=p.k_tp,
        k_sl=p.k_sl,
        levels=settings.tp_levels,
    )
    if settings.direction_method == "fixed_horizon":
        direction = fixed_horizon_direction(
            c, a, horizon=p.horizon, neutral_band=settings.neutral_band, entry=entry
        )
    else:
        direction = tb.direction
    targets: dict[str, npt.NDArray[np.generic]] = {
        "direction": direction,
        "position_size": taken_trade_r(direction, tb),
        "volatility_regime": forward_volatility(c, p.horizon),
        "timing": timing(
            tb.direction,
            tb.exit_offset,
            ex.adverse_before_tp,
            tb.valid,
            horizon=p.horizon,
            k_sl=p.k_sl,
            fast_within=settings.timing_fast,
            clean_below=settings.timing_clean,
        ),
        "tp_level": ex.tp_level,
        "stop_loss": ex.adverse_before_tp,
        "mfe": ex.mfe,
        "mae": ex.mae,
        "time_to_hit": time_to_hit(tb.exit_offset, tb.valid, p.horizon),
    }
    return BarLabels(barrier=tb, targets=targets)


def taken_trade_r(
    direction: npt.NDArray[np.int8], barrier: TripleBarrierLabels
) -> npt.NDArray[np.float64]:
    """The R of the trade a direction label takes (BUY: the long, SELL: the short) and 0 where
    it takes none (HOLD); NaN where there is no label. A HOLD row used to carry the better
    side's R, which averages well above 0 even on a random walk: hindsight, not a trade."""
    out = np.where(barrier.valid, 0.0, np.nan)
    out = np.where(direction == BUY, barrier.r_long, out)
    return np.where(direction == SELL, barrier.r_short, out)
