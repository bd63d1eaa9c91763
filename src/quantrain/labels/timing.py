"""When and how cleanly the labelled trade ended: time-to-hit and the timing class.

Both come from arrays the triple barrier and the excursions already hold, so they are plain
vectorised numpy (no forward scan of their own).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from quantrain.errors import ConfigError
from quantrain.labels.triple_barrier import HOLD

TIMING_CLASSES: Final = ("NONE", "SLOW", "FAST")
TIMING_NONE: Final = 0
TIMING_SLOW: Final = 1
TIMING_FAST: Final = 2


def time_to_hit(
    exit_offset: npt.NDArray[np.int32], valid: npt.NDArray[np.bool_], horizon: int
) -> npt.NDArray[np.float64]:
    """Bars until the barrier that ended the labelled trade as a fraction of the horizon,
    in (0, 1]; 1.0 when neither barrier was touched; NaN where there is no label."""
    out = exit_offset.astype(np.float64) / float(horizon)
    out[~valid] = np.nan
    return out


def timing(
    direction: npt.NDArray[np.int8],
    exit_offset: npt.NDArray[np.int32],
    adverse_before_tp: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    *,
    horizon: int,
    k_sl: float,
    fast_within: float,
    clean_below: float,
) -> npt.NDArray[np.int8]:
    """How soon and how cleanly the take-profit was hit (classes ``TIMING_CLASSES``):

    - NONE (0): no take-profit won, i.e. the triple-barrier direction is HOLD;
    - FAST (2): the labelled trade hit its take-profit within ``fast_within × horizon`` bars
      (``exit_offset ≤ fast_within · horizon``) *and* its adverse excursion up to and
      including that bar stayed below ``clean_below × k_sl`` ATR (less than that share of the
      stop distance);
    - SLOW (1): every other take-profit (later, or after a deeper pull-back).

    -1 where there is no label.
    """
    if not 0 < fast_within <= 1:
        raise ConfigError(f"`timing_fast` must be in (0, 1] (share of horizon), got {fast_within}")
    if not clean_below > 0:
        raise ConfigError(f"`timing_clean` must be > 0 (share of the stop), got {clean_below}")
    fast = (exit_offset <= fast_within * horizon) & (adverse_before_tp < clean_below * k_sl)
    out = np.where(fast, TIMING_FAST, TIMING_SLOW).astype(np.int8)
    out[direction == HOLD] = TIMING_NONE
    out[~valid] = -1
    return out
