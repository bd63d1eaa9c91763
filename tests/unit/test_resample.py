"""Resampling: per-bin values, epoch-grid labels, causality, edges, gaps and clear refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantrain.data import parse_timeframe, read_ohlcv, validate_ohlcv
from quantrain.data.resample import ResampleReport, resample_ohlcv
from quantrain.errors import DataError
from quantrain.jobs import sample_data_dir

FIVE_MIN = pd.Timedelta("5min")


@pytest.fixture(scope="module")
def eth() -> pd.DataFrame:
    """20 days of real 5m bars, 2018-01-10 04:55 .. 2018-01-30 04:50 UTC."""
    return read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame


def bars(stamps: pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    """Valid OHLCV bars (positive prices, open/close inside [low, high]) at ``stamps``."""
    rng = np.random.default_rng(seed)
    n = len(stamps)
    open_ = 100 + rng.normal(0, 1, n)
    close = open_ + rng.normal(0, 0.5, n)
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": open_,
            "high": np.maximum(open_, close) + rng.random(n),
            "low": np.minimum(open_, close) - rng.random(n),
            "close": close,
            "volume": rng.random(n) * 10,
        }
    )


def width_of(timeframe: str) -> pd.Timedelta:
    return parse_timeframe(timeframe)


def grid(start: str, periods: int, freq: str = "5min") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=freq, tz="UTC")


def loop_reference(frame: pd.DataFrame, timeframe: str, step: pd.Timedelta) -> pd.DataFrame:
    """Independent oracle: a plain loop over rows, bins by ``Timestamp.floor``, full bins only."""
    width = pd.Timedelta(timeframe)
    groups: dict[pd.Timestamp, list[tuple[float, float, float, float, float]]] = {}
    for row in frame.itertuples(index=False):
        label = row.timestamp.floor(width)
        groups.setdefault(label, []).append((row.open, row.high, row.low, row.close, row.volume))
    records = []
    for label, rows in groups.items():
        if len(rows) != width // step:
            continue
        records.append(
            {
                "timestamp": label,
                "open": rows[0][0],
                "high": max(r[1] for r in rows),
                "low": min(r[2] for r in rows),
                "close": rows[-1][3],
                "volume": sum(r[4] for r in rows),
            }
        )
    return pd.DataFrame(records)


# --------------------------------------------------------------------------- values and labels


@pytest.mark.parametrize(
    ("timeframe", "pandas_freq"), [("15m", "15min"), ("1h", "1h"), ("4h", "4h")]
)
def test_values_match_a_plain_loop_over_real_bars(
    eth: pd.DataFrame, timeframe: str, pandas_freq: str
) -> None:
    part = eth.iloc[:700]
    out, report = resample_ohlcv(part, timeframe)
    expected = loop_reference(part, pandas_freq, FIVE_MIN)
    assert report.rows == len(out) == len(expected) > 1
    assert (out["timestamp"].to_numpy() == expected["timestamp"].to_numpy()).all()
    for column in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(out[column].to_numpy(), expected[column].to_numpy())
    np.testing.assert_allclose(out["volume"].to_numpy(), expected["volume"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("timeframe", ["15m", "1h", "4h", "1d"])
def test_whole_file_matches_pandas_resample_on_complete_bins(
    eth: pd.DataFrame, timeframe: str
) -> None:
    out, _ = resample_ohlcv(eth, timeframe)
    width = width_of(timeframe)
    grouped = eth.set_index("timestamp").resample(
        width, label="left", closed="left", origin="epoch"
    )
    counts = grouped["open"].count()
    full = grouped.agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )[counts == width // FIVE_MIN]
    assert list(out["timestamp"]) == list(full.index)
    np.testing.assert_allclose(out.iloc[:, 1:].to_numpy(), full.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("timeframe", ["15m", "1h", "4h", "1d"])
def test_labels_are_bin_open_times_on_the_epoch_grid(eth: pd.DataFrame, timeframe: str) -> None:
    out, _ = resample_ohlcv(eth, timeframe)
    width = int(width_of(timeframe).value)
    ns = pd.DatetimeIndex(out["timestamp"]).asi8
    assert (ns % width == 0).all()
    assert (np.diff(ns) % width == 0).all()
    # Each label opens its bin: the first source bar in the bin is stamped at the label.
    first_source = eth.set_index("timestamp")["open"]
    assert (first_source.reindex(out["timestamp"]).to_numpy() == out["open"].to_numpy()).all()


def test_first_labels_of_the_sample(eth: pd.DataFrame) -> None:
    # Data starts at 04:55: the 04:45 (15m) and 04:00 (1h, 4h) bins opened before it.
    expected = {"15m": "05:00", "1h": "05:00", "4h": "08:00", "1d": "2018-01-11 00:00"}
    for timeframe, first in expected.items():
        out, _ = resample_ohlcv(eth, timeframe)
        stamp = pd.Timestamp(first if "-" in first else f"2018-01-10 {first}", tz="UTC")
        assert out["timestamp"].iloc[0] == stamp, timeframe


@pytest.mark.parametrize("timeframe", ["15m", "1h", "4h", "1d"])
def test_bars_are_consistent_and_volume_is_conserved(eth: pd.DataFrame, timeframe: str) -> None:
    out, _ = resample_ohlcv(eth, timeframe)
    assert (out["high"] >= np.maximum(out["open"], out["close"])).all()
    assert (out["low"] <= np.minimum(out["open"], out["close"])).all()
    width = width_of(timeframe)
    covered = eth["timestamp"].dt.floor(width).isin(out["timestamp"])
    assert out["volume"].sum() == pytest.approx(eth.loc[covered, "volume"].sum(), rel=1e-12)


@pytest.mark.parametrize("timeframe", ["15m", "1h", "4h", "1d"])
def test_result_passes_validation_at_the_requested_timeframe(
    eth: pd.DataFrame, timeframe: str
) -> None:
    out, report = resample_ohlcv(eth, timeframe)
    loaded = validate_ohlcv(out, "resampled")
    assert loaded.report.timeframe == report.timeframe == timeframe
    assert report.source_timeframe == "5m"
    assert report.source_rows == len(eth)
    assert loaded.report.repairs == ()
    pd.testing.assert_frame_equal(loaded.frame, out)


# --------------------------------------------------------------------------- edges and gaps


def test_incomplete_edge_bins_are_dropped_and_counted(eth: pd.DataFrame) -> None:
    # 04:55 .. 04:50: the first bin opened before the data, the last one is still forming.
    for timeframe in ("15m", "1h", "4h"):
        _, report = resample_ohlcv(eth, timeframe)
        assert report.dropped_edges == 2, timeframe
        assert report.partial_bins == 0
    aligned = eth[(eth["timestamp"] >= "2018-01-10 08:00") & (eth["timestamp"] < "2018-01-29")]
    out, report = resample_ohlcv(aligned, "4h")
    assert report.dropped_edges == 0
    assert out["timestamp"].iloc[0] == pd.Timestamp("2018-01-10 08:00", tz="UTC")
    assert out["timestamp"].iloc[-1] == pd.Timestamp("2018-01-28 20:00", tz="UTC")
    assert out["volume"].sum() == pytest.approx(aligned["volume"].sum(), rel=1e-12)


def test_only_the_last_bin_is_dropped_when_it_is_still_forming() -> None:
    frame = bars(grid("2024-03-01 00:00", 12 * 3 + 5))  # three full hours and 25 minutes
    out, report = resample_ohlcv(frame, "1h")
    assert report.dropped_edges == 1
    assert list(out["timestamp"].dt.hour) == [0, 1, 2]


def test_gap_inside_a_bin_is_kept_and_counted_or_dropped(eth: pd.DataFrame) -> None:
    holes = pd.to_datetime(["2018-01-12 10:10", "2018-01-12 10:15", "2018-01-12 10:40"], utc=True)
    whole_hour = (eth["timestamp"] >= "2018-01-13 07:00") & (eth["timestamp"] < "2018-01-13 08:00")
    gappy = eth[~eth["timestamp"].isin(holes) & ~whole_hour].reset_index(drop=True)

    out, report = resample_ohlcv(gappy, "1h")
    assert report.partial_bins == 1 and report.partial_kept
    bar = out.set_index("timestamp").loc[pd.Timestamp("2018-01-12 10:00", tz="UTC")]
    window = gappy[
        (gappy["timestamp"] >= "2018-01-12 10:00") & (gappy["timestamp"] < "2018-01-12 11:00")
    ]
    assert len(window) == 9
    assert bar["open"] == window["open"].iloc[0] and bar["close"] == window["close"].iloc[-1]
    assert bar["high"] == window["high"].max() and bar["low"] == window["low"].min()
    assert bar["volume"] == pytest.approx(window["volume"].sum())
    # The empty hour is not invented.
    assert pd.Timestamp("2018-01-13 07:00", tz="UTC") not in set(out["timestamp"])
    # 479 complete hours (05:00 on the 10th .. 03:00 on the 30th), less the empty one.
    assert len(out) == 24 * 20 - 1 - 1

    strict, strict_report = resample_ohlcv(gappy, "1h", keep_partial=False)
    assert strict_report.partial_bins == 1 and not strict_report.partial_kept
    assert len(strict) == len(out) - 1
    assert pd.Timestamp("2018-01-12 10:00", tz="UTC") not in set(strict["timestamp"])
    assert "1 partial bins (gaps) dropped" in strict_report.summary()
    assert validate_ohlcv(strict, "strict").report.timeframe == "1h"


@pytest.mark.parametrize("keep_partial", [True, False])
def test_gappy_minute_bars_match_pandas_on_kept_bins(keep_partial: bool) -> None:
    rng = np.random.default_rng(7)
    stamps = grid("2024-02-29 23:17", 20_000, freq="1min")
    frame = bars(stamps[rng.random(len(stamps)) > 0.02], seed=7)
    out, report = resample_ohlcv(frame, "15m", keep_partial=keep_partial)

    grouped = frame.set_index("timestamp").resample("15min", origin="epoch")
    counts = grouped["open"].count()
    counts = counts[counts > 0]  # pandas fills empty bins; quantrain never does
    inner = counts.iloc[1:-1]  # data starts at :17 and ends at :56, both edges incomplete
    partial = inner[inner < 15]
    assert report.dropped_edges == 2
    assert report.partial_bins == len(partial) > 10
    kept = inner.index if keep_partial else inner[inner == 15].index
    expected = grouped.agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    ).loc[kept]
    assert list(out["timestamp"]) == list(expected.index)
    np.testing.assert_allclose(out.iloc[:, 1:].to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_gap_at_the_start_of_a_bin_is_partial_not_an_edge() -> None:
    stamps = grid("2024-03-01 00:00", 12 * 4)
    frame = bars(stamps[stamps != pd.Timestamp("2024-03-01 02:00", tz="UTC")])
    out, report = resample_ohlcv(frame, "1h")
    assert (report.partial_bins, report.dropped_edges, report.rows) == (1, 0, 4)
    assert out["open"].iloc[2] == frame["open"].iloc[24]  # the 02:05 bar opens the 02:00 bin


def test_weekly_bins_open_on_monday() -> None:
    frame = bars(grid("2024-01-01", 7 * 5, freq="1D"))  # 2024-01-01 is a Monday
    out, report = resample_ohlcv(frame, "1w")
    assert report.source_timeframe == "1d" and report.timeframe == "1w"
    assert (out["timestamp"].dt.day_of_week == 0).all()
    assert len(out) == 5 and report.dropped_edges == 0
    assert out["volume"].sum() == pytest.approx(frame["volume"].sum())


def test_report_is_a_frozen_record(eth: pd.DataFrame) -> None:
    _, report = resample_ohlcv(eth.iloc[:200], "1h")
    assert isinstance(report, ResampleReport)
    assert report.summary().startswith("200 5m bars -> 16 1h bars")
    with pytest.raises(AttributeError):
        report.rows = 0  # type: ignore[misc]


# --------------------------------------------------------------------------- causality


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    timeframe=st.sampled_from(["15m", "30m", "1h", "2h"]),
    pick=st.floats(0, 1, exclude_max=True),
    factor=st.floats(0.5, 2.0),
)
def test_a_bar_never_depends_on_later_source_bars(
    seed: int, timeframe: str, pick: float, factor: float
) -> None:
    rng = np.random.default_rng(seed)
    stamps = grid("2024-03-01 00:00", 300)
    stamps = stamps[rng.random(len(stamps)) > 0.05]  # a few gaps
    frame = bars(stamps, seed)
    out, _ = resample_ohlcv(frame, timeframe, source_timeframe="5m")
    row = 1 + int(pick * (len(out) - 1))
    label = out["timestamp"].iloc[row]
    close_time = label + width_of(timeframe)
    later = frame["timestamp"] >= close_time

    changed = frame.copy()
    for column in ("open", "high", "low", "close"):
        changed.loc[later, column] *= factor
    changed.loc[later, "volume"] = rng.random(int(later.sum())) * 100
    # Everything after the first later bar removed: kept, that bar shows the bin has closed
    # (without it a bin missing its last slot looks like a bin still forming).
    first_later = later & ~later.shift(fill_value=False)
    truncated = frame[~later | first_later]

    for variant in (changed, truncated):
        again, _ = resample_ohlcv(variant, timeframe, source_timeframe="5m")
        same = again.set_index("timestamp").loc[label]
        pd.testing.assert_series_equal(same, out.set_index("timestamp").loc[label])


# --------------------------------------------------------------------------- refusals


def test_non_multiple_target_is_refused_naming_the_multiples(eth: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="7m is not a whole multiple of 5m") as info:
        resample_ohlcv(eth, "7m")
    assert "10m, 15m, 30m, 1h" in str(info.value)
    assert "fix:" in str(info.value)


def test_downsampling_and_same_timeframe_are_refused(eth: pd.DataFrame) -> None:
    hourly, _ = resample_ohlcv(eth, "1h")
    with pytest.raises(DataError, match="never splits them") as info:
        resample_ohlcv(hourly, "5m")
    assert "cannot resample 1h bars to 5m" in str(info.value)
    assert "2h, 4h" in str(info.value)
    with pytest.raises(DataError, match="already are 5m"):
        resample_ohlcv(eth, "5m")


def test_bad_timeframe_text_is_refused(eth: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="months"):
        resample_ohlcv(eth, "1M")
    with pytest.raises(DataError, match="not understood"):
        resample_ohlcv(eth, "hourly")


def test_wrong_source_timeframe_is_refused(eth: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no two bars are that close"):
        resample_ohlcv(eth, "1h", source_timeframe="1m")
    with pytest.raises(DataError, match="not multiples of it"):
        resample_ohlcv(eth, "1h", source_timeframe="15m")


def test_bars_off_the_utc_grid_are_refused() -> None:
    frame = bars(grid("2024-03-01 00:30", 48, freq="1h"))  # hourly bars at half past
    with pytest.raises(DataError, match="not on the 1h grid anchored at 00:00 UTC"):
        resample_ohlcv(frame, "4h")


def test_frames_outside_the_contract_are_refused(eth: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="missing columns volume"):
        resample_ohlcv(eth.drop(columns="volume"), "1h")
    naive = eth.assign(timestamp=eth["timestamp"].dt.tz_localize(None))
    with pytest.raises(DataError, match="not timezone-aware UTC"):
        resample_ohlcv(naive, "1h")
    with pytest.raises(DataError, match="not sorted and unique"):
        resample_ohlcv(eth.iloc[::-1], "1h")
    with pytest.raises(DataError, match="no rows"):
        resample_ohlcv(eth.iloc[:0], "1h")
    with pytest.raises(DataError, match="too few to infer"):
        resample_ohlcv(eth.iloc[:1], "1h")


def test_too_short_a_result_is_refused(eth: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="leaves 1 complete bar"):
        resample_ohlcv(eth.iloc[:20], "1h")  # 04:55 .. 06:30: only the 05:00 bin is complete


def test_a_result_too_gappy_to_read_back_is_refused() -> None:
    # Full hours 01:00 and 03:00 only: two bars 2h apart would read back as 2h, not 1h.
    stamps = grid("2024-01-01 00:00", 60)
    keep = [0, 1, 2, *range(12, 24), *range(36, 50)]
    frame = bars(stamps[keep])
    with pytest.raises(DataError, match="most common spacing is 2h") as info:
        resample_ohlcv(frame, "1h", keep_partial=False)
    assert "keep partial bins" in str(info.value)
    out, report = resample_ohlcv(frame, "1h")  # kept, the 00:00 partial bin restores 1h
    assert list(out["timestamp"].dt.hour) == [0, 1, 3]
    assert (report.partial_bins, report.dropped_edges) == (1, 1)
