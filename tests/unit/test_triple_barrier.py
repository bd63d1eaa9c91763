"""Triple-barrier labels: numba kernel vs a plain-Python reference, and the rules by hand."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantrain.errors import ConfigError, DataError
from quantrain.labels import (
    BUY,
    DIRECTION_CLASSES,
    HOLD,
    SELL,
    TripleBarrierLabels,
    TripleBarrierParams,
    triple_barrier,
)

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "src" / "quantrain" / "sample_data"
PAIRS = sorted(p.name.removesuffix("_5m.parquet") for p in SAMPLE_DIR.glob("*_5m.parquet"))
ATR_PERIOD = 14

# ---------------------------------------------------------------- helpers written for clarity


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder ATR: first value = mean of the first `period` true ranges, then smoothed."""
    n = len(close)
    tr = np.full(n, np.nan)
    for i in range(1, n):
        tr[i] = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    out = np.full(n, np.nan)
    if n <= period:
        return out
    out[period] = float(np.mean(tr[1 : period + 1]))
    for i in range(period + 1, n):
        out[i] = (out[i - 1] * (period - 1) + tr[i]) / period
    return out


@dataclass
class Trade:
    outcome: str  # "tp", "stop" or "open"
    offset: int
    r: float


def simulate_trade(
    high: list[float],
    low: list[float],
    close: list[float],
    atr: float,
    t: int,
    p: TripleBarrierParams,
    side: str,
    entry: float | None = None,
) -> Trade:
    entry = close[t] if entry is None else entry
    risk = p.k_sl * atr
    if side == "long":
        take_profit, stop = entry + p.k_tp * atr, entry - p.k_sl * atr
    else:
        take_profit, stop = entry - p.k_tp * atr, entry + p.k_sl * atr
    for offset in range(1, p.horizon + 1):
        h, lo = high[t + offset], low[t + offset]
        stop_touched = lo <= stop if side == "long" else h >= stop
        tp_touched = h >= take_profit if side == "long" else lo <= take_profit
        if stop_touched:  # checked first: a bar touching both counts as a stop
            return Trade("stop", offset, -1.0)
        if tp_touched:
            return Trade("tp", offset, p.k_tp / p.k_sl)
    exit_price = close[t + p.horizon]
    pnl = exit_price - entry if side == "long" else entry - exit_price
    return Trade("open", p.horizon, pnl / risk)


def reference_labels(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    p: TripleBarrierParams,
    open_: np.ndarray | None = None,
) -> TripleBarrierLabels:
    """Plain-loop statement of the labelling rules; the kernel must agree bit for bit."""
    h, lo, c, a = high.tolist(), low.tolist(), close.tolist(), atr.tolist()
    n = len(c)
    r_long = np.full(n, np.nan)
    r_short = np.full(n, np.nan)
    direction = np.full(n, -1, dtype=np.int8)
    r_multiple = np.full(n, np.nan)
    exit_offset = np.full(n, -1, dtype=np.int32)
    valid = np.zeros(n, dtype=bool)
    side = np.zeros(n, dtype=np.int8)
    for t in range(n):
        if t + p.horizon > n - 1 or math.isnan(a[t]) or a[t] <= 0:
            continue
        fill = float(open_[t + 1]) if p.entry == "next_open" and open_ is not None else c[t]
        long = simulate_trade(h, lo, c, a[t], t, p, "long", fill)
        short = simulate_trade(h, lo, c, a[t], t, p, "short", fill)
        r_long[t] = min(max(long.r, p.r_min), p.r_max)
        r_short[t] = min(max(short.r, p.r_min), p.r_max)
        if long.outcome == "tp" and short.outcome == "tp":
            if long.offset < short.offset:
                label, trade = BUY, long
            elif short.offset < long.offset:
                label, trade = SELL, short
            else:
                label, trade = HOLD, long  # same bar: ambiguous, and both R are equal
        elif long.outcome == "tp":
            label, trade = BUY, long
        elif short.outcome == "tp":
            label, trade = SELL, short
        else:
            label, trade = HOLD, (long if long.r >= short.r else short)
        direction[t] = label
        r_multiple[t] = min(max(trade.r, p.r_min), p.r_max)
        exit_offset[t] = trade.offset
        valid[t] = True
        side[t] = 1 if trade is long else -1
    return TripleBarrierLabels(
        direction=direction,
        r_multiple=r_multiple,
        r_long=r_long,
        r_short=r_short,
        exit_offset=exit_offset,
        label_end=np.arange(n, dtype=np.int64) + p.horizon,
        valid=valid,
        side=side,
    )


def assert_labels_equal(got: TripleBarrierLabels, want: TripleBarrierLabels) -> None:
    names = ("direction", "r_multiple", "r_long", "r_short", "exit_offset", "label_end", "valid")
    for name in (*names, "side"):
        g, w = getattr(got, name), getattr(want, name)
        assert g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)  # NaN == NaN here


def load_pair(pair: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    frame = pd.read_parquet(SAMPLE_DIR / f"{pair}_5m.parquet")
    high, low, close = (frame[col].to_numpy(dtype=np.float64) for col in ("high", "low", "close"))
    return high, low, close, wilder_atr(high, low, close, ATR_PERIOD)


def bars(*rows: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) rows -> three arrays; row 0 is the entry bar."""
    high, low, close = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    return high, low, close


def label_first(
    rows: list[tuple[float, float, float]], params: TripleBarrierParams, atr: float = 1.0
) -> tuple[int, float, int]:
    high, low, close = bars(*rows)
    labels = triple_barrier(high, low, close, np.full(len(rows), atr), params)
    assert labels.valid[0]
    return int(labels.direction[0]), float(labels.r_multiple[0]), int(labels.exit_offset[0])


# Barriers for entry 100, ATR 1: long TP 102 / stop 99, short TP 98 / stop 101.
SMALL = TripleBarrierParams(entry="close", k_tp=2.0, k_sl=1.0, horizon=3)
FLAT = (100.5, 99.5, 100.0)

# ------------------------------------------------------------------------- kernel == reference

REAL_PARAMS = [
    TripleBarrierParams(
        entry="close",
    ),
    TripleBarrierParams(entry="close", k_tp=1.0, k_sl=1.0, horizon=12),
    TripleBarrierParams(entry="close", k_tp=1.0, k_sl=2.0, horizon=24, r_min=-0.5, r_max=0.4),
]


@pytest.mark.parametrize("pair", PAIRS)
def test_kernel_matches_reference_on_real_data(pair: str) -> None:
    high, low, close, atr = load_pair(pair)
    for params in REAL_PARAMS:
        assert_labels_equal(
            triple_barrier(high, low, close, atr, params),
            reference_labels(high, low, close, atr, params),
        )


@pytest.mark.parametrize("pair", PAIRS)
def test_next_open_entry_matches_reference_on_real_data(pair: str) -> None:
    """The default fill: a signal at t's close enters at open[t+1], barriers around that."""
    high, low, close, atr = load_pair(pair)
    open_ = pd.read_parquet(SAMPLE_DIR / f"{pair}_5m.parquet")["open"].to_numpy(np.float64)
    params = TripleBarrierParams()
    assert params.entry == "next_open"
    got = triple_barrier(high, low, close, atr, params, open_=open_)
    assert_labels_equal(got, reference_labels(high, low, close, atr, params, open_))
    at_close = triple_barrier(high, low, close, atr, TripleBarrierParams(entry="close"))
    assert not np.array_equal(got.r_multiple, at_close.r_multiple, equal_nan=True)


def test_next_open_entry_needs_open_prices() -> None:
    high, low, close = bars(FLAT, FLAT, FLAT, FLAT)
    with pytest.raises(ConfigError, match="open"):
        triple_barrier(high, low, close, np.ones(4), TripleBarrierParams(horizon=2))


def test_next_open_entry_fills_at_the_next_open_by_hand() -> None:
    """Signal bar 0 closes at 100; bar 1 opens at 101 (gap up). The long enters at 101, so
    its take-profit is 103 (ATR 1, k_tp 2), not 102: bar 1's high of 102.5 does not reach it."""
    high, low, close = bars(FLAT, (102.5, 100.9, 102.0), (103.2, 101.5, 103.0), FLAT)
    open_ = np.array([100.0, 101.0, 102.0, 100.0])
    params = TripleBarrierParams(k_tp=2.0, k_sl=1.0, horizon=2)
    labels = triple_barrier(high, low, close, np.ones(4), params, open_=open_)
    assert labels.direction[0] == BUY
    assert labels.exit_offset[0] == 2  # the take-profit at 103 is touched on bar 2, not bar 1
    at_close = triple_barrier(
        high,
        low,
        close,
        np.ones(4),
        TripleBarrierParams(entry="close", k_tp=2.0, k_sl=1.0, horizon=2),
    )
    assert at_close.exit_offset[0] == 1  # from the signal close, 102 is touched on bar 1


def test_six_sample_pairs_are_present() -> None:
    assert len(PAIRS) == 6


def test_both_take_profits_occur_on_real_data_when_stop_is_wider() -> None:
    """With k_sl > k_tp both trades can win; make sure the tie-break path is really exercised."""
    params = TripleBarrierParams(entry="close", k_tp=1.0, k_sl=2.0, horizon=24)
    both_tp = 0
    for pair in PAIRS:
        high, low, close, atr = load_pair(pair)
        h, lo, c = high.tolist(), low.tolist(), close.tolist()
        for t in range(ATR_PERIOD, len(c) - params.horizon):
            long = simulate_trade(h, lo, c, float(atr[t]), t, params, "long")
            short = simulate_trade(h, lo, c, float(atr[t]), t, params, "short")
            both_tp += long.outcome == short.outcome == "tp"
    assert both_tp > 100


@pytest.mark.parametrize("pair", PAIRS)
def test_class_balance_on_real_data_is_reasonable(pair: str) -> None:
    high, low, close, atr = load_pair(pair)
    labels = triple_barrier(
        high,
        low,
        close,
        atr,
        TripleBarrierParams(
            entry="close",
        ),
    )
    shares = np.bincount(labels.direction[labels.valid], minlength=3) / labels.valid.sum()
    assert len(shares) == len(DIRECTION_CLASSES)
    assert (shares > 0.15).all(), dict(zip(DIRECTION_CLASSES, shares, strict=True))
    # Warm-up (ATR NaN) and the last `horizon` bars are the only unlabelled rows.
    assert labels.valid.sum() == len(close) - ATR_PERIOD - 48


# ------------------------------------------------------------------------------ rules by hand


def test_long_take_profit_first_is_buy() -> None:
    rows = [(100, 100, 100), (101, 99.5, 100.5), (102.0, 100.2, 101.8), FLAT]
    assert label_first(rows, SMALL) == (BUY, 2.0, 2)


def test_short_take_profit_first_is_sell() -> None:
    rows = [(100, 100, 100), (100.8, 98.0, 98.5), FLAT, FLAT]
    assert label_first(rows, SMALL) == (SELL, 2.0, 1)


def test_take_profit_and_stop_in_the_same_bar_counts_as_stop() -> None:
    # Bar 1 touches the long TP (102) and the long stop (99): the long trade is stopped.
    # The same bar also stops the short (high ≥ 101), so nobody wins.
    rows = [(100, 100, 100), (102.5, 98.5, 100.0), FLAT, FLAT]
    direction, r, offset = label_first(rows, SMALL)
    assert (direction, r, offset) == (HOLD, -1.0, 1)


def test_stop_before_take_profit_is_not_a_win() -> None:
    # Long stopped at bar 1 (low 99), TP reached at bar 2: too late. Short stopped at bar 2.
    rows = [(100, 100, 100), (100.5, 99.0, 99.5), (102.5, 99.6, 102.0), FLAT]
    direction, r, offset = label_first(rows, SMALL)
    assert direction == HOLD
    assert r == -1.0
    assert offset == 1  # both lost 1 R: the tie goes to the long trade, stopped at bar 1


def test_neither_barrier_marks_to_market_at_horizon_close() -> None:
    # Stays within (99, 101): both trades open; long R = (100.6 - 100) / (1 × ATR) = 0.6.
    rows = [(100, 100, 100), (100.4, 99.7, 100.2), (100.7, 99.9, 100.5), (100.8, 100.3, 100.6)]
    direction, r, offset = label_first(rows, SMALL)
    assert direction == HOLD
    assert r == pytest.approx(0.6)
    assert offset == SMALL.horizon


def test_hold_takes_the_better_trade() -> None:
    # Long is stopped at bar 1 (R = -1); the short is never stopped and ends at +0.7 R.
    rows = [(100, 100, 100), (100.5, 98.9, 99.0), (99.5, 98.6, 99.2), (99.6, 99.1, 99.3)]
    direction, r, offset = label_first(rows, SMALL)
    assert direction == HOLD
    assert r == pytest.approx(0.7)
    assert offset == SMALL.horizon


def test_both_take_profits_earlier_one_wins_and_same_bar_is_hold() -> None:
    # k_sl > k_tp: long TP 101 / stop 98, short TP 99 / stop 102.
    wide = TripleBarrierParams(entry="close", k_tp=1.0, k_sl=2.0, horizon=3)
    short_first = [(100, 100, 100), (100.2, 98.8, 99.0), (101.5, 99.5, 101.2), FLAT]
    assert label_first(short_first, wide) == (SELL, 0.5, 1)
    long_first = [(100, 100, 100), (101.1, 99.5, 101.0), (100.2, 98.9, 99.0), FLAT]
    assert label_first(long_first, wide) == (BUY, 0.5, 1)
    same_bar = [(100, 100, 100), (101.2, 98.8, 100.0), FLAT, FLAT]
    assert label_first(same_bar, wide) == (HOLD, 0.5, 1)


def test_barrier_touch_is_inclusive() -> None:
    rows = [(100, 100, 100), (102.0, 99.5, 101.0), FLAT, FLAT]  # high exactly at long TP
    assert label_first(rows, SMALL)[0] == BUY


def test_r_multiple_is_clipped() -> None:
    tight = TripleBarrierParams(entry="close", k_tp=2.0, k_sl=1.0, horizon=3, r_min=-0.5, r_max=1.5)
    win = [(100, 100, 100), (102.5, 99.5, 102.0), FLAT, FLAT]
    assert label_first(win, tight) == (BUY, 1.5, 1)  # 2.0 clipped to r_max
    both_stopped = [(100, 100, 100), (101.5, 98.5, 100.0), FLAT, FLAT]
    assert label_first(both_stopped, tight) == (HOLD, -0.5, 1)  # -1 clipped to r_min


def test_horizon_past_end_and_bad_atr_are_invalid() -> None:
    n = 10
    high, low, close = bars(*([FLAT] * n))
    atr = np.ones(n)
    atr[2] = np.nan
    atr[3] = 0.0
    atr[4] = -1.0
    labels = triple_barrier(high, low, close, atr, SMALL)
    expected_valid = np.ones(n, dtype=bool)
    expected_valid[[2, 3, 4]] = False
    expected_valid[n - SMALL.horizon :] = False  # t + 3 > 9 for t ≥ 7
    np.testing.assert_array_equal(labels.valid, expected_valid)
    invalid = ~expected_valid
    assert (labels.direction[invalid] == -1).all()
    assert np.isnan(labels.r_multiple[invalid]).all()
    assert (labels.exit_offset[invalid] == -1).all()
    assert not np.isnan(labels.r_multiple[expected_valid]).any()
    np.testing.assert_array_equal(labels.label_end, np.arange(n) + SMALL.horizon)
    assert labels.direction.dtype == np.int8
    assert labels.exit_offset.dtype == np.int32
    assert labels.label_end.dtype == np.int64


def test_series_shorter_than_horizon_has_no_labels() -> None:
    high, low, close = bars(FLAT, FLAT)
    labels = triple_barrier(high, low, close, np.ones(2), SMALL)
    assert not labels.valid.any()


def test_inputs_are_not_mutated() -> None:
    high, low, close, atr = load_pair(PAIRS[0])
    copies = [a.copy() for a in (high, low, close, atr)]
    triple_barrier(
        high,
        low,
        close,
        atr,
        TripleBarrierParams(
            entry="close",
        ),
    )
    for before, after in zip(copies, (high, low, close, atr), strict=True):
        np.testing.assert_array_equal(before, after)


# ------------------------------------------------------------------------------ no look-ahead


def random_walk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    high = close * np.exp(np.abs(rng.normal(0.0, 0.003, n)))
    low = close * np.exp(-np.abs(rng.normal(0.0, 0.003, n)))
    return high, low, close, wilder_atr(high, low, close, 5)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(20, 120),
    horizon=st.integers(1, 15),
    k_tp=st.sampled_from([0.5, 1.0, 1.5, 3.0]),
    k_sl=st.sampled_from([0.5, 0.8, 2.0]),
    cut_fraction=st.floats(0.0, 1.0),
)
def test_label_never_reads_past_label_end(
    seed: int, n: int, horizon: int, k_tp: float, k_sl: float, cut_fraction: float
) -> None:
    """Rewriting every bar after `cut` leaves each label with label_end ≤ cut unchanged."""
    rng = np.random.default_rng(seed)
    params = TripleBarrierParams(entry="close", k_tp=k_tp, k_sl=k_sl, horizon=horizon)
    high, low, close, atr = random_walk(rng, n)
    cut = int(cut_fraction * (n - 1))
    high2, low2, close2, _ = random_walk(rng, n)
    for original, other in ((high, high2), (low, low2), (close, close2)):
        other[: cut + 1] = original[: cut + 1]
    atr2 = wilder_atr(high2, low2, close2, 5)
    before = triple_barrier(high, low, close, atr, params)
    after = triple_barrier(high2, low2, close2, atr2, params)
    reads_only_past = before.label_end <= cut
    for name in ("direction", "r_multiple", "exit_offset", "valid"):
        np.testing.assert_array_equal(
            getattr(before, name)[reads_only_past], getattr(after, name)[reads_only_past]
        )
    # Truncating the data at `cut` gives the same labels for those rows as well.
    keep = slice(0, cut + 1)
    truncated = triple_barrier(high[keep], low[keep], close[keep], atr[keep], params)
    rows = reads_only_past[keep]
    for name in ("direction", "r_multiple", "exit_offset"):
        np.testing.assert_array_equal(
            getattr(truncated, name)[rows], getattr(before, name)[keep][rows]
        )
    np.testing.assert_array_equal(truncated.valid, before.valid[keep] & rows)


# -------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("horizon", 0),
        ("horizon", 2.5),
        ("horizon", True),
        ("k_tp", 0.0),
        ("k_tp", float("nan")),
        ("k_sl", -1.0),
        ("k_sl", float("inf")),
        ("r_min", float("nan")),
        ("r_max", -3.0),
    ],
)
def test_bad_params_raise_config_error(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"`{field}`"):
        TripleBarrierParams(entry="close", **{field: value})  # type: ignore[arg-type]


def test_horizon_message_says_expected_and_got() -> None:
    with pytest.raises(ConfigError, match=r"`horizon` must be an integer ≥ 1 \(bars\), got 0"):
        TripleBarrierParams(entry="close", horizon=0)


def test_mismatched_lengths_and_nan_prices_raise_data_error() -> None:
    high, low, close = bars(FLAT, FLAT, FLAT, FLAT)
    with pytest.raises(DataError, match="same length"):
        triple_barrier(high, low, close[:3], np.ones(4), SMALL)
    close[2] = np.nan
    with pytest.raises(DataError, match=r"`close` has 1 non-finite values \(first at row 2\)"):
        triple_barrier(high, low, close, np.ones(4), SMALL)
    with pytest.raises(DataError, match="1-D"):
        triple_barrier(high.reshape(2, 2), low, close, np.ones(4), SMALL)


def test_thread_count_does_not_change_labels() -> None:
    """Bars are labelled in parallel (prange); one thread and all threads agree bit for bit."""
    import numba

    high, low, close, atr = load_pair(PAIRS[0])
    every = numba.get_num_threads()  # all cores unless someone lowered it
    many = triple_barrier(
        high,
        low,
        close,
        atr,
        TripleBarrierParams(
            entry="close",
        ),
    )
    try:
        numba.set_num_threads(1)
        one = triple_barrier(
            high,
            low,
            close,
            atr,
            TripleBarrierParams(
                entry="close",
            ),
        )
    finally:
        numba.set_num_threads(every)
    assert_labels_equal(many, one)
