"""Excursions, TP level, stop-loss target, timing and time-to-hit: numba kernels vs plain-Python
references on the six bundled pairs, and the rules by hand."""

from __future__ import annotations

import numpy as np
import pytest

from quantrain.errors import ConfigError
from quantrain.labels import (
    HOLD,
    TIMING_CLASSES,
    Excursions,
    TripleBarrierLabels,
    TripleBarrierParams,
    excursions,
    time_to_hit,
    timing,
    triple_barrier,
)
from quantrain.labels.timing import TIMING_FAST, TIMING_NONE, TIMING_SLOW
from tests.unit.test_triple_barrier import PAIRS, bars, load_pair

LEVELS = [(1.0, 2.0, 3.0), (0.5, 1.5), (1.0, 1.5, 2.0, 3.0)]
PARAMS = [
    TripleBarrierParams(
        entry="close",
    ),
    TripleBarrierParams(entry="close", k_tp=1.0, k_sl=2.0, horizon=24),
    TripleBarrierParams(entry="close", k_tp=3.0, k_sl=0.5, horizon=7),
]


def reference_excursions(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    side: np.ndarray,
    p: TripleBarrierParams,
    levels: tuple[float, ...],
) -> dict[str, np.ndarray]:
    """The definitions, one list at a time."""
    n = len(close)
    out = {name: np.full(n, np.nan) for name in ("mfe", "mae", "adverse_before_tp")}
    out["tp_level"] = np.full(n, -1, dtype=np.int8)
    h, lo, c_, a_ = high.tolist(), low.tolist(), close.tolist(), atr.tolist()
    for t in range(n):
        if side[t] == 0:
            continue
        c, a, long = c_[t], a_[t], side[t] > 0
        take_profit = c + p.k_tp * a if long else c - p.k_tp * a
        stop = c - p.k_sl * a if long else c + p.k_sl * a
        window = range(t + 1, t + p.horizon + 1)
        fav = [(h[i] - c) if long else (c - lo[i]) for i in window]
        adv = [(c - lo[i]) if long else (h[i] - c) for i in window]
        tp_touched = [(h[i] >= take_profit) if long else (lo[i] <= take_profit) for i in window]
        stop_touched = [(lo[i] <= stop) if long else (h[i] >= stop) for i in window]
        out["mfe"][t] = max(0.0, *fav) / a
        out["mae"][t] = max(0.0, *adv) / a
        until_tp = tp_touched.index(True) + 1 if True in tp_touched else p.horizon
        out["adverse_before_tp"][t] = max(0.0, *adv[:until_tp]) / a
        before_stop = stop_touched.index(True) if True in stop_touched else p.horizon
        prices = [h[i] if long else lo[i] for i in window][:before_stop]
        reached = 0
        if prices:
            best = max(prices) if long else min(prices)
            reached = sum(best >= c + k * a if long else best <= c - k * a for k in levels)
        out["tp_level"][t] = reached
    return out


def reference_timing(
    tb: TripleBarrierLabels, adverse: np.ndarray, p: TripleBarrierParams, fast: float, clean: float
) -> np.ndarray:
    out = np.full(len(tb.valid), -1, dtype=np.int8)
    for t in np.flatnonzero(tb.valid):
        if tb.direction[t] == HOLD:
            out[t] = TIMING_NONE
        elif tb.exit_offset[t] <= fast * p.horizon and adverse[t] < clean * p.k_sl:
            out[t] = TIMING_FAST
        else:
            out[t] = TIMING_SLOW
    return out


@pytest.mark.parametrize("pair", PAIRS)
def test_excursion_kernel_matches_reference_on_real_data(pair: str) -> None:
    high, low, close, atr = load_pair(pair)
    for params, levels in zip(PARAMS, LEVELS, strict=True):
        tb = triple_barrier(high, low, close, atr, params)
        got = excursions(
            high,
            low,
            close,
            atr,
            tb.side,
            horizon=params.horizon,
            k_tp=params.k_tp,
            k_sl=params.k_sl,
            levels=levels,
        )
        want = reference_excursions(high, low, close, atr, tb.side, params, levels)
        for name, values in want.items():
            np.testing.assert_array_equal(getattr(got, name), values, err_msg=name)
        assert got.tp_level.dtype == np.int8
        assert (got.tp_level[tb.valid] >= 0).all() and not np.isnan(got.mfe[tb.valid]).any()
        # Every class occurs: the levels are not all out of reach.
        assert len(np.unique(got.tp_level[tb.valid])) == len(levels) + 1

        for fast, clean in ((1 / 3, 0.5), (0.5, 0.25)):
            np.testing.assert_array_equal(
                timing(
                    tb.direction,
                    tb.exit_offset,
                    got.adverse_before_tp,
                    tb.valid,
                    horizon=params.horizon,
                    k_sl=params.k_sl,
                    fast_within=fast,
                    clean_below=clean,
                ),
                reference_timing(tb, want["adverse_before_tp"], params, fast, clean),
            )
        fraction = time_to_hit(tb.exit_offset, tb.valid, params.horizon)
        expected = [
            tb.exit_offset[t] / params.horizon if tb.valid[t] else np.nan for t in range(len(close))
        ]
        np.testing.assert_array_equal(fraction, expected)


def test_every_timing_class_occurs_on_real_data() -> None:
    high, low, close, atr = load_pair(PAIRS[0])
    p = TripleBarrierParams(
        entry="close",
    )
    tb = triple_barrier(high, low, close, atr, p)
    ex = excursions(
        high, low, close, atr, tb.side, horizon=p.horizon, k_tp=p.k_tp, k_sl=p.k_sl, levels=(1.0,)
    )
    classes = timing(
        tb.direction,
        tb.exit_offset,
        ex.adverse_before_tp,
        tb.valid,
        horizon=p.horizon,
        k_sl=p.k_sl,
        fast_within=1 / 3,
        clean_below=0.5,
    )
    shares = np.bincount(classes[tb.valid], minlength=3) / tb.valid.sum()
    assert (shares > 0.15).all(), dict(zip(TIMING_CLASSES, shares, strict=True))


# ------------------------------------------------------------------------------ rules by hand
# Entry 100, ATR 1, k_tp 2, k_sl 1: long TP 102 / stop 99, short TP 98 / stop 101.
SMALL = TripleBarrierParams(entry="close", k_tp=2.0, k_sl=1.0, horizon=4)
FLAT = (100.5, 99.5, 100.0)


def first_bar(
    rows: list[tuple[float, float, float]], levels: tuple[float, ...] = (1.0, 2.0, 3.0)
) -> tuple[TripleBarrierLabels, Excursions]:
    high, low, close = bars(*rows)
    atr = np.ones(len(rows))
    tb = triple_barrier(high, low, close, atr, SMALL)
    ex = excursions(high, low, close, atr, tb.side, horizon=4, k_tp=2.0, k_sl=1.0, levels=levels)
    return tb, ex


def test_long_winner_excursions() -> None:
    # Pull-back to 99.4, TP (102) at bar 2, then a run to 103.5 and a drop to 98.
    rows = [(100, 100, 100), (100.5, 99.4, 100.2), (102.2, 100.1, 102.0), (103.5, 101.0, 103.0),
            (103.0, 98.0, 98.5)]  # fmt: skip
    tb, ex = first_bar(rows)
    assert tb.side[0] == 1 and tb.exit_offset[0] == 2
    assert ex.mfe[0] == pytest.approx(3.5)  # over the whole horizon
    assert ex.mae[0] == pytest.approx(2.0)  # the drop after the TP counts for MAE
    assert ex.adverse_before_tp[0] == pytest.approx(0.6)  # but not for the stop-loss target
    # 103.5 is before the stop bar (bar 4 touches 99): three levels reached.
    assert ex.tp_level[0] == 3


def test_stop_bar_favourable_extreme_does_not_count_for_tp_level() -> None:
    # Bar 1 reaches 101.5 then bar 2 touches the long stop (99) *and* 103 in the same bar.
    rows = [(100, 100, 100), (101.5, 100.0, 101.0), (103.0, 98.5, 99.0), (99.5, 98.8, 99.0),
            (99.5, 98.8, 99.0)]  # fmt: skip
    tb, ex = first_bar(rows)
    assert tb.side[0] == 1  # both trades end at -1 or worse: the tie goes to the long
    assert ex.tp_level[0] == 1  # 101.5 reached level 1.0; the stop bar's 103 is ignored
    assert ex.mfe[0] == pytest.approx(3.0)  # MFE over the horizon does see it


def test_level_touch_is_inclusive_and_no_favourable_move_is_zero() -> None:
    rows = [(100, 100, 100), (100.0, 99.5, 99.8), (101.0, 99.6, 99.9), FLAT, FLAT]
    _, ex = first_bar(rows, levels=(1.0, 1.5, 2.0))
    assert ex.tp_level[0] == 1  # high 101.0 is exactly level 1.0
    falling = [(100, 100, 100), (99.9, 99.5, 99.6), (99.8, 99.4, 99.5), (99.7, 99.3, 99.4),
               (99.6, 99.2, 99.3)]  # fmt: skip
    tb, ex = first_bar(falling)
    assert tb.side[0] == -1  # the short ends better
    assert ex.tp_level[0] == 0 and ex.mae[0] == 0.0  # never above 100: no adverse move


def test_invalid_rows_carry_sentinels() -> None:
    _, ex = first_bar([FLAT] * 6)
    assert np.isnan(ex.mfe[-4:]).all() and (ex.tp_level[-4:] == -1).all()


def test_timing_rules_by_hand() -> None:
    direction = np.array([2, 0, 2, 1, 2, -1], dtype=np.int8)
    exit_offset = np.array([4, 3, 5, 2, 4, -1], dtype=np.int32)
    adverse = np.array([0.39, 0.1, 0.1, 0.0, 0.4, np.nan])
    valid = direction >= 0
    got = timing(
        direction,
        exit_offset,
        adverse,
        valid,
        horizon=12,
        k_sl=0.8,
        fast_within=1 / 3,
        clean_below=0.5,
    )
    # 4 ≤ 12/3 and 0.39 < 0.4: FAST; row 2 exits at 5 > 4: SLOW; row 4: 0.4 is not < 0.4.
    np.testing.assert_array_equal(got, [TIMING_FAST, TIMING_FAST, TIMING_SLOW, TIMING_NONE,
                                        TIMING_SLOW, -1])  # fmt: skip
    with pytest.raises(ConfigError, match="timing_fast"):
        timing(direction, exit_offset, adverse, valid, horizon=12, k_sl=0.8, fast_within=0.0,
               clean_below=0.5)  # fmt: skip


def test_bad_levels_are_refused() -> None:
    high, low, close = bars(FLAT, FLAT)
    side = np.zeros(2, dtype=np.int8)
    for levels in ((), (1.0, 1.0), (2.0, 1.0), (-1.0,), (float("nan"),)):
        with pytest.raises(ConfigError, match="tp_levels"):
            excursions(high, low, close, np.ones(2), side, horizon=1, k_tp=1, k_sl=1, levels=levels)
