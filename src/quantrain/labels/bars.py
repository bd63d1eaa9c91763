"""Label OHLCV bars with every bar target of the catalogue (``labels.targets``).

The triple barrier runs first; the other targets read its labelled trade (side, exit) or the
same forward window, so every target is defined on exactly the triple barrier's valid rows and
reads no bar past ``label_end`` (= t + horizon). Distances are in ATR units of bar t, measured
from the trade's entry price (``open[t+1]`` by default, see ``labels.triple_barrier``). The
labelled side is the trade whose take-profit came first; for HOLD, the trade with the better R
(the long on a tie). What each target means is said once, in its catalogue entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from quantrain.labels.excursions import excursions
from quantrain.labels.fixed_horizon import fixed_horizon_direction
from quantrain.labels.targets import BarContext, target_def, target_names
from quantrain.labels.triple_barrier import (
    TripleBarrierLabels,
    TripleBarrierParams,
    entry_prices,
    triple_barrier,
)

DirectionMethod = Literal["triple_barrier", "fixed_horizon"]


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
    context = BarContext(
        barrier=tb,
        excursions=ex,
        direction=np.asarray(direction, dtype=np.int8),
        close=c,
        atr=a,
        entry=entry,
        horizon=p.horizon,
        k_sl=p.k_sl,
        timing_fast=settings.timing_fast,
        timing_clean=settings.timing_clean,
    )
    targets: dict[str, npt.NDArray[np.generic]] = {}
    for name in target_names("ohlcv"):
        recipe = target_def(name).from_bars
        assert recipe is not None  # register_target refuses an OHLCV target without one
        targets[name] = recipe(context)
    return BarLabels(barrier=tb, targets=targets)
