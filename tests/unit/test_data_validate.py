"""Validation: refusals name the file, the original data rows and a fix; repairs are reported."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantrain.data
from quantrain.data import (
    ValidationReport,
    format_timeframe,
    parse_timeframe,
    read_ohlcv,
    validate_ohlcv,
)
from quantrain.errors import DataError, QuantrainError

SAMPLE_DIR = Path(quantrain.data.__file__).parent.parent / "sample_data"


@pytest.fixture(scope="module")
def eth() -> pd.DataFrame:
    return pd.read_parquet(SAMPLE_DIR / "ETH-BTC_5m.parquet").iloc[:300].reset_index(drop=True)


def _refusal(frame: pd.DataFrame, path: Path) -> str:
    """Write ``frame`` as CSV (row 1 = first line after the header), read it, return the error."""
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        read_ohlcv(path)
    return str(info.value)


def _block(message: str, problem: str) -> list[str]:
    """The lines of the problem block whose first line contains ``problem``."""
    lines = message.splitlines()
    start = next(i for i, line in enumerate(lines) if problem in line and not line[0].isspace())
    end = next((i for i in range(start + 1, len(lines)) if not lines[i][0].isspace()), len(lines))
    return lines[start:end]


def _set(frame: pd.DataFrame, rows: list[int], column: str, value: object) -> pd.DataFrame:
    """A copy with ``value`` at 0-based ``rows`` (object dtype when the value is a string)."""
    out = frame.copy()
    if isinstance(value, str):
        out[column] = out[column].astype(object)
    out.loc[rows, column] = value
    return out


def _half(column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        out.loc[[20, 21], column] = out.loc[[20, 21], "low"] / 2
        return out

    return mutate


REFUSALS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str, str, str]] = {
    # name: (mutation at 0-based rows, problem text, rows line, fix text)
    "non-numeric": (
        lambda f: _set(f, [4, 9], "open", "12,5"),
        "non-numeric values in open (2 data rows), e.g. '12,5' in open",
        "5, 10",
        "write plain numbers",
    ),
    "nan-price": (
        lambda f: _set(f, [0, 150], "close", np.nan),
        "missing (NaN/empty) values in close (2 data rows)",
        "1, 151",
        "never invents prices",
    ),
    "nan-volume": (
        lambda f: _set(f, [33], "volume", np.nan),
        "missing (NaN/empty) values in volume (1 data row)",
        "34",
        "delete the rows",
    ),
    "zero-price": (
        lambda f: _set(f, [12], "low", 0.0),
        "non-positive prices in low (1 data row)",
        "13",
        "prices must be > 0",
    ),
    "negative-price": (
        lambda f: _set(f, [6, 7, 8], "open", -1.0),
        "non-positive prices in open (3 data rows)",
        "7, 8, 9",
        "prices must be > 0",
    ),
    "negative-volume": (
        lambda f: _set(f, [299], "volume", -5.0),
        "negative volume in 1 data row",
        "300",
        "volume must be >= 0",
    ),
    "high-below-low": (
        _half("high"),
        "high < low in 2 data rows",
        "21, 22",
        "not swapped",
    ),
    "close-outside-range": (
        lambda f: f.assign(close=f["close"].where(f.index != 41, f["high"] * 1.01)),
        "open or close outside [low, high] in 1 data row",
        "42",
        "check the column order",
    ),
    "open-below-low": (
        lambda f: f.assign(open=f["open"].where(f.index != 2, f["low"] * 0.99)),
        "open or close outside [low, high] in 1 data row",
        "3",
        "check the column order",
    ),
    "unparseable-timestamp": (
        lambda f: _set(f, [17], "timestamp", "not a date"),
        "unparseable timestamps in 'timestamp' (1 data row, read as datetime strings), "
        "e.g. 'not a date'",
        "18",
        "ISO 8601",
    ),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusal_names_file_rows_and_fix(name: str, eth: pd.DataFrame, tmp_path: Path) -> None:
    mutate, problem, rows, fix = REFUSALS[name]
    path = tmp_path / "ETH-BTC_5m.csv"
    message = _refusal(mutate(eth), path)
    assert message.splitlines()[0] == f"{path}: {problem}"
    assert message.splitlines()[1] == f"  data rows: {rows}"
    assert message.splitlines()[-1].startswith("  fix: ")
    assert fix in message.splitlines()[-1]


def test_rows_are_numbered_as_in_the_file_even_when_unsorted(
    eth: pd.DataFrame, tmp_path: Path
) -> None:
    shuffled = eth.sample(frac=1.0, random_state=7).reset_index(drop=True)
    shuffled.loc[[3, 250], "close"] = np.nan  # data rows 4 and 251 of the shuffled file
    message = _refusal(shuffled, tmp_path / "x.csv")
    assert "  data rows: 4, 251" in message.splitlines()


def test_many_rows_are_abbreviated(eth: pd.DataFrame, tmp_path: Path) -> None:
    message = _refusal(_set(eth, list(range(10, 55)), "volume", -1.0), tmp_path / "x.csv")
    assert "  data rows: 11, 12, 13, 14, 15 (and 40 more)" in message.splitlines()


def test_every_problem_is_reported_at_once(eth: pd.DataFrame, tmp_path: Path) -> None:
    bad = _set(_set(eth, [5], "close", np.nan), [60], "timestamp", "??")
    bad = _half("high")(bad)
    path = tmp_path / "x.csv"
    message = _refusal(bad, path)
    headlines = [line for line in message.splitlines() if not line.startswith(" ")]
    assert len(headlines) == 3
    assert all(line.startswith(f"{path}: ") for line in headlines)
    assert _block(message, "missing (NaN/empty)")[1] == "  data rows: 6"
    assert _block(message, "high < low")[1] == "  data rows: 21, 22"
    assert _block(message, "unparseable timestamps")[1] == "  data rows: 61"
    assert message.count("  fix: ") == 3


def test_empty_file_is_refused(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    message = _refusal(eth.iloc[:0], path)
    assert message.splitlines()[0] == f"{path}: empty file: no data rows"
    assert "fix: " in message


def test_missing_columns_name_what_is_missing_and_found(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    message = _refusal(eth.rename(columns={"high": "max"}).drop(columns="volume"), path)
    lines = message.splitlines()
    assert lines[0] == f"{path}: missing required columns: high, volume"
    assert lines[1] == "  columns found: timestamp, open, max, low, close"
    assert lines[2].startswith("  fix: name the columns timestamp, open, high")


def test_nat_in_a_datetime_column_is_refused(eth: pd.DataFrame) -> None:
    raw = eth.assign(timestamp=eth["timestamp"].where(eth.index != 9))
    with pytest.raises(DataError, match=r"mem: unparseable timestamps") as info:
        validate_ohlcv(raw, "mem")
    assert "  data rows: 10" in str(info.value).splitlines()


def test_one_bar_cannot_give_a_timeframe(eth: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"mem: only 1 bar with a valid, distinct timestamp"):
        validate_ohlcv(eth.iloc[:1], "mem")


def test_data_error_is_a_quantrain_error() -> None:
    assert issubclass(DataError, QuantrainError)


# ----------------------------------------------------------------------------- timeframes


def test_off_grid_step_is_a_mixed_timeframe(eth: pd.DataFrame, tmp_path: Path) -> None:
    shifted = eth.copy()
    shifted.loc[200:, "timestamp"] += pd.Timedelta(minutes=3)  # one 8m step in a 5m file
    path = tmp_path / "x.csv"
    message = _refusal(shifted, path)
    block = _block(message, "mixed timeframes")
    assert block[0] == f"{path}: mixed timeframes: 1 bar not on the 5m grid"
    assert block[1] == "  data rows: 201"
    assert block[2] == "  steps seen: 5m × 298, 8m × 1"
    assert block[3].startswith("  fix: keep one timeframe per file")


def test_3m_steps_in_a_5m_file_are_refused(eth: pd.DataFrame) -> None:
    three = eth.iloc[:40].assign(
        timestamp=eth["timestamp"].iloc[0] + pd.to_timedelta(np.arange(40) * 3, unit="min")
    )
    later = eth.iloc[100:].copy()
    with pytest.raises(DataError, match=r"mixed timeframes: 40 bars not on the 5m grid") as info:
        validate_ohlcv(pd.concat([three, later]), "mem")
    assert "steps seen: 5m × 199, 3m × 39, 6h23m × 1" in str(info.value)


def test_concatenated_5m_and_1h_files_are_refused(eth: pd.DataFrame) -> None:
    full = pd.read_parquet(SAMPLE_DIR / "ETH-BTC_5m.parquet")
    hourly = (
        full.set_index("timestamp")
        .resample("1h")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .reset_index()
    )
    raw = pd.concat([full.iloc[:1000], hourly[hourly["timestamp"] > full["timestamp"][999]]])
    with pytest.raises(DataError, match=r"coarser grid than 5m") as info:
        validate_ohlcv(raw, "mem")
    message = str(info.value)
    assert "  data rows: 1001" in message.splitlines()  # the first hourly bar starts the run
    assert re.search(r"steps seen: 5m × 999, 1h × \d+", message)


def test_mostly_irregular_steps_are_refused(eth: pd.DataFrame) -> None:
    minutes = np.r_[0, np.cumsum(np.tile([5, 10, 15, 20], 30))]  # each step equally common
    raw = eth.iloc[:121].assign(
        timestamp=eth["timestamp"].iloc[0] + pd.to_timedelta(minutes, unit="min")
    )
    with pytest.raises(DataError, match=r"only 25% of steps are the most common step 5m"):
        validate_ohlcv(raw, "mem")


@pytest.mark.parametrize(
    ("text", "minutes", "canonical"),
    [
        ("30s", 0.5, "30s"),
        ("1m", 1, "1m"),
        ("5m", 5, "5m"),
        ("15min", 15, "15m"),
        ("60m", 60, "1h"),
        ("1h", 60, "1h"),
        ("4H", 240, "4h"),
        ("1d", 1440, "1d"),
        ("1w", 10080, "1w"),
        (" 2h ", 120, "2h"),
    ],
)
def test_parse_and_format_timeframe(text: str, minutes: float, canonical: str) -> None:
    step = parse_timeframe(text)
    assert step == pd.Timedelta(minutes=minutes)
    assert format_timeframe(step) == canonical
    assert parse_timeframe(format_timeframe(step)) == step


@pytest.mark.parametrize("junk", ["", "5", "m5", "5x", "0m", "-5m", "5.5m", "1h30m"])
def test_junk_timeframes_are_refused(junk: str) -> None:
    with pytest.raises(DataError, match=r"is not understood\n  fix: use a whole number"):
        parse_timeframe(junk)


def test_month_timeframe_is_refused_not_read_as_minutes() -> None:
    with pytest.raises(DataError, match="months"):
        parse_timeframe("1M")


def test_format_timeframe_refuses_non_positive() -> None:
    with pytest.raises(DataError):
        format_timeframe(pd.Timedelta(0))


# ----------------------------------------------------------------------------- repairs and gaps


def test_unsorted_rows_are_sorted_and_reported(eth: pd.DataFrame, tmp_path: Path) -> None:
    swapped = eth.copy()
    swapped.iloc[[10, 11]] = swapped.iloc[[11, 10]].to_numpy()
    path = tmp_path / "x.csv"
    swapped.to_csv(path, index=False)
    loaded = read_ohlcv(path)
    pd.testing.assert_frame_equal(loaded.frame, eth)
    assert loaded.report.repairs == (
        "sorted 1 out-of-order row by timestamp, first at data rows 12",
    )


def test_duplicate_timestamps_keep_the_last_row_and_are_reported(
    eth: pd.DataFrame, tmp_path: Path
) -> None:
    later = eth.iloc[[50, 120]].assign(close=eth["low"].iloc[[50, 120]].to_numpy())
    path = tmp_path / "x.csv"
    pd.concat([eth, later]).to_csv(path, index=False)  # duplicates appended at the end

    loaded = read_ohlcv(path)

    assert loaded.report.rows == len(eth)
    assert loaded.frame["close"].iloc[50] == eth["low"].iloc[50]  # the last one won
    assert loaded.frame["close"].iloc[120] == eth["low"].iloc[120]
    assert loaded.report.repairs == (
        "sorted 2 out-of-order rows by timestamp, first at data rows 301, 302",
        "dropped 2 duplicate timestamps with different values (kept last), first at data rows "
        "51, 121",
    )
    assert loaded.frame["timestamp"].is_unique


def test_ada_btc_real_gaps_are_counted_not_filled() -> None:
    loaded = read_ohlcv(SAMPLE_DIR / "ADA-BTC_5m.parquet")
    report = loaded.report
    assert report.rows == 5720  # nothing filled
    assert report.gaps == 5
    assert report.missing_bars == 40
    assert report.largest_gap == "2h45m from 2018-01-15 12:00 UTC"
    assert report.repairs == ()
    assert report.timeframe == "5m"


def test_a_complete_file_has_no_gaps() -> None:
    report = read_ohlcv(SAMPLE_DIR / "ETH-BTC_5m.parquet").report
    assert (report.gaps, report.missing_bars, report.largest_gap) == (0, 0, None)
    assert report.first == pd.Timestamp("2018-01-10 04:55", tz="UTC")
    assert report.last == pd.Timestamp("2018-01-30 04:50", tz="UTC")


def test_gaps_on_a_daily_file_use_whole_days(eth: pd.DataFrame) -> None:
    days = np.array([0, 1, 2, 5, 6, 7, 8, 9, 10, 11])
    raw = eth.iloc[:10].assign(
        timestamp=pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(days, unit="D")
    )
    report = validate_ohlcv(raw, "daily").report
    assert report.timeframe == "1d"
    assert (report.gaps, report.missing_bars) == (1, 2)
    assert report.largest_gap == "2d from 2020-01-04 00:00 UTC"


def test_summary_is_one_line_with_the_facts() -> None:
    report = read_ohlcv(SAMPLE_DIR / "ADA-BTC_5m.parquet").report
    line = report.summary()
    assert "\n" not in line
    for fact in ("ADA-BTC_5m.parquet", "5720 rows", "5m", "5 gaps", "40 bars missing", "2h45m"):
        assert fact in line


def test_report_is_frozen(eth: pd.DataFrame) -> None:
    report = validate_ohlcv(eth, "mem").report
    assert isinstance(report, ValidationReport)
    with pytest.raises(AttributeError):
        report.rows = 1  # type: ignore[misc]


def test_input_frame_is_not_modified(eth: pd.DataFrame) -> None:
    raw = eth.iloc[::-1].rename(columns={"timestamp": "Date"})
    before = raw.copy()
    validate_ohlcv(raw, "mem")
    pd.testing.assert_frame_equal(raw, before)


def test_zero_volume_is_accepted(eth: pd.DataFrame) -> None:
    loaded = validate_ohlcv(eth.assign(volume=0.0), "mem")
    assert (loaded.frame["volume"] == 0.0).all()


# ----------------------------------------------------------------------------- two series in a file


@pytest.fixture(scope="module")
def ltc() -> pd.DataFrame:
    return pd.read_parquet(SAMPLE_DIR / "LTC-BTC_5m.parquet").iloc[:300].reset_index(drop=True)


def _conflicts(message: str, path: Path, count: int, rows: str, example: str) -> None:
    """The conflicting-duplicates block: count, data rows, one example, likely causes and fix."""
    block = _block(message, "conflicting duplicates")
    assert block[0].startswith(
        f"{path}: conflicting duplicates: {count} timestamps repeated with different OHLCV "
        "values, in 1 run of 3 or more consecutive bar times"
    )
    assert block[1] == f"  data rows: {rows}"
    assert block[2].startswith(f"  e.g. {example}")
    assert "two series in one file" in block[2] and "daylight saving" in block[2]
    assert block[3].startswith("  fix: keep one symbol per file")
    assert "UTC offset" in block[3]


@pytest.mark.parametrize(
    ("layout", "example"),
    [("stacked", "2018-01-10 04:55 UTC at data rows 1, 301"), ("interleaved", "")],
)
def test_two_symbols_in_one_file_are_refused(
    layout: str, example: str, eth: pd.DataFrame, ltc: pd.DataFrame, tmp_path: Path
) -> None:
    both = pd.concat([eth, ltc])  # same 300 bar times, ETH then LTC
    if layout == "interleaved":  # ETH and LTC rows alternate, one pair per bar time
        both = both.sort_index(kind="stable")
        example = "2018-01-10 04:55 UTC at data rows 1, 2"
    path = tmp_path / "ETH-BTC_5m.csv"
    message = _refusal(both, path)
    _conflicts(message, path, 300, "1, 2, 3, 4, 5 (and 595 more)", example)
    assert message.count(f"{path}: ") == 1  # nothing else is wrong with the file


def _berlin_local_time(frame: pd.DataFrame, start_utc: str) -> pd.DataFrame:
    """``frame`` with naive Europe/Berlin wall-clock times, 5 minutes apart from a UTC start."""
    utc = pd.Series(
        pd.Timestamp(start_utc, tz="UTC") + pd.to_timedelta(np.arange(len(frame)) * 5, unit="min")
    )
    local = utc.dt.tz_convert("Europe/Berlin").dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame.assign(timestamp=local.to_numpy())


def test_local_clock_across_dst_fall_back_is_refused(eth: pd.DataFrame, tmp_path: Path) -> None:
    # 2018-10-28 03:00 CEST -> 02:00 CET: the wall-clock hour 02:00-02:55 happens twice.
    path = tmp_path / "ETH-BTC_5m.csv"
    message = _refusal(_berlin_local_time(eth, "2018-10-27 22:00"), path)
    _conflicts(
        message,
        path,
        12,
        "25, 26, 27, 28, 29 (and 19 more)",
        "2018-10-28 02:00 UTC at data rows 25, 37",
    )


def test_local_clock_across_dst_spring_forward_is_a_gap(eth: pd.DataFrame, tmp_path: Path) -> None:
    # 2018-03-25 02:00 CET -> 03:00 CEST: the wall-clock hour 02:00-02:55 never happens.
    path = tmp_path / "ETH-BTC_5m.csv"
    _berlin_local_time(eth, "2018-03-24 22:00").to_csv(path, index=False)
    report = read_ohlcv(path).report
    assert (report.rows, report.gaps, report.missing_bars) == (300, 1, 12)
    assert report.largest_gap == "1h from 2018-03-25 02:00 UTC"
    assert report.repairs == ()


def test_two_consecutive_redownloaded_candles_are_repaired(
    eth: pd.DataFrame, tmp_path: Path
) -> None:
    rows = [50, 51, 120]  # a run of 2 bar times and an isolated one
    later = eth.iloc[rows].assign(close=eth["low"].iloc[rows].to_numpy())
    path = tmp_path / "x.csv"
    pd.concat([eth, later]).to_csv(path, index=False)
    loaded = read_ohlcv(path)
    assert loaded.report.rows == len(eth)
    assert (loaded.frame["close"].iloc[rows] == eth["low"].iloc[rows]).all()  # the last one won
    assert loaded.report.repairs[-1] == (
        "dropped 3 duplicate timestamps with different values (kept last), first at data rows "
        "51, 52, 121"
    )


def test_three_consecutive_conflicting_candles_are_refused(
    eth: pd.DataFrame, tmp_path: Path
) -> None:
    rows = [50, 51, 52]
    later = eth.iloc[rows].assign(close=eth["low"].iloc[rows].to_numpy())
    path = tmp_path / "x.csv"
    message = _refusal(pd.concat([eth, later]), path)
    _conflicts(
        message,
        path,
        3,
        "51, 52, 53, 301, 302 (and 1 more)",
        "2018-01-10 09:05 UTC at data rows 51, 301",
    )


def test_identical_duplicates_are_dropped_however_many(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    pd.concat([eth, eth.iloc[100:200]]).to_csv(path, index=False)  # an overlapping re-export
    loaded = read_ohlcv(path)
    pd.testing.assert_frame_equal(loaded.frame, eth)
    assert loaded.report.repairs == (
        "sorted 100 out-of-order rows by timestamp, first at data rows 301, 302, 303, 304, 305 "
        "(and 95 more)",
        "dropped 100 exact duplicate rows, first at data rows 101, 102, 103, 104, 105 "
        "(and 95 more)",
    )


def test_a_symbol_column_with_one_value_is_accepted(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    eth.assign(Ticker="ETH-BTC").to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_ohlcv(path).frame, eth)


def test_a_symbol_column_with_two_values_is_refused(eth: pd.DataFrame, tmp_path: Path) -> None:
    half = np.where(eth.index < 120, "ETH-BTC", "LTC-BTC")
    path = tmp_path / "x.csv"
    message = _refusal(eth.assign(Symbol=half), path)
    block = _block(message, "symbols in one file")
    assert block == [
        f"{path}: 2 symbols in one file (column 'Symbol'): ETH-BTC, LTC-BTC",
        "  data rows: 1, 121",
        "  the data rows listed are where each symbol first appears",
        "  fix: one file per symbol, named SYMBOL_TIMEFRAME.csv (e.g. ETH-BTC_5m.csv): "
        "split this file by its 'Symbol' column",
    ]


def test_naive_and_offset_timestamps_mixed_are_refused(eth: pd.DataFrame, tmp_path: Path) -> None:
    text = eth["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)
    text.iloc[150:] = (
        eth["timestamp"]
        .iloc[150:]
        .dt.tz_convert("Europe/Berlin")
        .dt.strftime("%Y-%m-%d %H:%M:%S%z")
    )
    path = tmp_path / "x.csv"
    message = _refusal(eth.assign(timestamp=text), path)
    assert _block(message, "mix naive values") == [
        f"{path}: timestamps in 'timestamp' mix naive values (150 data rows, read as UTC) and "
        "values with a UTC offset (150 data rows), e.g. '2018-01-10 04:55:00' and "
        "'2018-01-10 18:25:00+0100'",
        "  data rows: 151",
        "  the data rows listed are where the file switches (1 switch)",
        "  fix: write every timestamp with its UTC offset (e.g. 2024-06-01 00:00:00+02:00), or "
        "every one in UTC without an offset; naive means UTC, so a file that switches between "
        "the two has changed its clock",
    ]


def test_offsets_that_change_within_a_file_are_converted(eth: pd.DataFrame, tmp_path: Path) -> None:
    zones = np.where(eth.index < 150, "Europe/London", "Europe/Berlin")  # +00:00, then +01:00
    text = [t.tz_convert(z).isoformat() for t, z in zip(eth["timestamp"], zones, strict=True)]
    assert text[0].endswith("+00:00") and text[-1].endswith("+01:00")
    path = tmp_path / "x.csv"
    eth.assign(timestamp=text).to_csv(path, index=False)
    loaded = read_ohlcv(path)
    pd.testing.assert_frame_equal(loaded.frame, eth)
    assert loaded.report.repairs == ()


def test_cli_refuses_a_stacked_file_with_exit_2(
    eth: pd.DataFrame, ltc: pd.DataFrame, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from quantrain.cli import main

    path = tmp_path / "ETH-BTC_5m.parquet"
    pd.concat([eth, ltc]).to_parquet(path)
    result = CliRunner().invoke(main, ["data", "validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # the console may wrap long lines
    assert f"{path}: conflicting duplicates: 300 timestamps repeated" in output
    assert "data rows: 1, 2, 3, 4, 5 (and 595 more)" in output
    assert "fix: keep one symbol per file" in output
