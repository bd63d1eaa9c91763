"""Fixed-horizon direction with a neutral band: kernel vs reference on real data, rules by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantrain.errors import ConfigError
from quantrain.labels import (
    BUY,
    DIRECTION_CLASSES,
    HOLD,
    SELL,
    TripleBarrierParams,
    fixed_horizon_direction,
    triple_barrier,
)
from tests.unit.test_triple_barrier import PAIRS, load_pair


def reference_direction(
    close: np.ndarray, atr: np.ndarray, horizon: int, band: float
) -> np.ndarray:
    c, a = close.tolist(), atr.tolist()
    out = np.full(len(c), -1, dtype=np.int8)
    for t in range(len(c) - horizon):
        if math.isnan(a[t]) or a[t] <= 0:
            continue
        move = c[t + horizon] - c[t]
        out[t] = BUY if move > band * a[t] else SELL if move < -band * a[t] else HOLD
    return out


@pytest.mark.parametrize("pair", PAIRS)
def test_kernel_matches_reference_on_real_data(pair: str) -> None:
    high, low, close, atr = load_pair(pair)
    for horizon, band in ((48, 1.0), (12, 0.0), (24, 2.5)):
        got = fixed_horizon_direction(close, atr, horizon=horizon, neutral_band=band)
        np.testing.assert_array_equal(got, reference_direction(close, atr, horizon, band))
        # The same rows are labelled as by the triple barrier with that horizon.
        tb = triple_barrier(
            high, low, close, atr, TripleBarrierParams(entry="close", horizon=horizon)
        )
        np.testing.assert_array_equal(got >= 0, tb.valid)
    default = fixed_horizon_direction(close, atr, horizon=48, neutral_band=1.0)
    shares = np.bincount(default[default >= 0], minlength=3) / (default >= 0).sum()
    assert (shares > 0.2).all(), dict(zip(DIRECTION_CLASSES, shares, strict=True))


def test_band_edges_by_hand() -> None:
    close = np.array([100.0, 101.0, 102.0, 98.0, 100.0, 100.0])
    atr = np.array([1.0, 1.0, 2.0, 1.0, np.nan, 1.0])
    got = fixed_horizon_direction(close, atr, horizon=1, neutral_band=1.0)
    # +1 = band (HOLD, bounds included), +1 < 2 (HOLD), -4 (SELL), ATR NaN, last: no future.
    np.testing.assert_array_equal(got, [HOLD, HOLD, SELL, BUY, -1, -1])
    wide = fixed_horizon_direction(close, atr, horizon=1, neutral_band=0.5)
    assert wide[0] == BUY
    with pytest.raises(ConfigError, match="neutral_band"):
        fixed_horizon_direction(close, atr, horizon=1, neutral_band=-1.0)
