"""Readers and aliases: real files of every supported format, from real Binance sample data."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantrain.data
from quantrain.data import SUPPORTED_EXTENSIONS, read_ohlcv, read_raw
from quantrain.errors import DataError

SAMPLE_DIR = Path(quantrain.data.__file__).parent.parent / "sample_data"
COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def eth() -> pd.DataFrame:
    """The first 500 real 5m ETH-BTC bars: enough for every check, small enough to be fast."""
    return pd.read_parquet(SAMPLE_DIR / "ETH-BTC_5m.parquet").iloc[:500].reset_index(drop=True)


def _epoch_ms(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(timestamp=frame["timestamp"].astype("int64") // 10**6)


def _json_records(frame: pd.DataFrame, path: Path) -> None:
    _epoch_ms(frame).to_json(path, orient="records")


def _json_records_iso(frame: pd.DataFrame, path: Path) -> None:
    frame.to_json(path, orient="records", date_format="iso")


def _json_split(frame: pd.DataFrame, path: Path) -> None:
    _epoch_ms(frame).to_json(path, orient="split", index=False)


def _json_lines(frame: pd.DataFrame, path: Path) -> None:
    frame.to_json(path, orient="records", lines=True, date_format="iso")


WRITERS: dict[str, tuple[str, Callable[[pd.DataFrame, Path], None]]] = {
    "parquet": (".parquet", lambda f, p: f.to_parquet(p)),
    "csv": (".csv", lambda f, p: f.to_csv(p, index=False)),
    "csv.gz": (".csv.gz", lambda f, p: f.to_csv(p, index=False, compression="gzip")),
    "json-records": (".json", _json_records),
    "json-records-iso": (".json", _json_records_iso),
    "json-split": (".json", _json_split),
    "jsonl": (".jsonl", _json_lines),
    "ndjson": (".ndjson", _json_lines),
    "feather": (".feather", lambda f, p: f.to_feather(p)),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_every_format_reads_back_to_the_contract(
    kind: str, eth: pd.DataFrame, tmp_path: Path
) -> None:
    extension, write = WRITERS[kind]
    path = tmp_path / f"ETH-BTC_5m{extension}"
    write(eth, path)

    loaded = read_ohlcv(path)

    pd.testing.assert_frame_equal(loaded.frame, eth, check_exact=False, rtol=1e-15)
    assert loaded.report.timeframe == "5m"
    assert loaded.report.rows == len(eth)
    assert loaded.report.source == str(path)
    assert loaded.report.repairs == ()


def test_output_frame_meets_the_contract(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    eth.assign(timestamp=eth["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(
        path, index=False
    )
    frame = read_ohlcv(path).frame
    assert list(frame.columns) == COLUMNS
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(frame[c].dtype == np.float64 for c in COLUMNS[1:])
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame.index.equals(pd.RangeIndex(len(eth)))
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].is_unique


def test_supported_extensions_are_the_documented_ones() -> None:
    assert set(SUPPORTED_EXTENSIONS) == {
        ".parquet",
        ".csv",
        ".csv.gz",
        ".json",
        ".jsonl",
        ".ndjson",
        ".feather",
    }


@pytest.mark.parametrize("index_name", [None, "Date", "open_time"])
def test_parquet_datetime_index_is_the_timestamp(
    index_name: str | None, eth: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "indexed.parquet"
    eth.set_index("timestamp").rename_axis(index_name).to_parquet(path)
    frame = read_ohlcv(path).frame
    pd.testing.assert_series_equal(frame["timestamp"], eth["timestamp"])


# ----------------------------------------------------------------------------- refusals


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.parquet"
    with pytest.raises(DataError, match="file not found") as info:
        read_ohlcv(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "fix:" in str(info.value)


def test_unknown_extension_names_file_and_supported_types(tmp_path: Path) -> None:
    path = tmp_path / "ETH-BTC_5m.xlsx"
    path.write_text("whatever")
    with pytest.raises(DataError) as info:
        read_ohlcv(path)
    message = str(info.value)
    assert message.startswith(f"{path}: unsupported file type")
    for extension in SUPPORTED_EXTENSIONS:
        assert extension in message


@pytest.mark.parametrize("uri", ["gs://bucket/ETH-BTC_5m.parquet", "https://host/x.csv"])
def test_other_uri_schemes_are_refused(uri: str) -> None:
    scheme = uri.split("://")[0]
    with pytest.raises(DataError, match=rf"^{uri}: {scheme}:// data sources are not supported\n"):
        read_ohlcv(uri)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://bucket/data/ETH-BTC_5m.xlsx", "unsupported file type"),
        ("s3://bucket/data/", r"is a prefix \(folder\), not a data file"),
        ("s3://bucket/x.csv?region=eu", "unknown option 'region'"),
    ],
)
def test_bad_s3_uris_are_refused_before_any_request(uri: str, message: str) -> None:
    # No AWS variables are set (see conftest): a request would fail on credentials instead.
    with pytest.raises(DataError, match=message):
        read_ohlcv(uri)


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "data.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="is a directory"):
        read_ohlcv(folder)


def test_file_uri_reads_the_local_file(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    eth.to_parquet(path)
    assert read_ohlcv(f"file://{path}").report.rows == len(eth)


def _first_line(message: str) -> str:
    return message.splitlines()[0]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.parquet", b"PAR1 this is not parquet at all", "cannot be read as .parquet"),
        ("bad.feather", b"not arrow", "cannot be read as .feather"),
        ("bad.json", b'[{"timestamp": 1, "open": 2,}]', "cannot be read as .json"),
        ("bad.csv.gz", b"not gzip data", "cannot be read as .csv.gz"),
        ("bad.json", b'"just a string"', "unrecognised JSON layout"),
    ],
)
def test_corrupt_file_gives_one_line_reason(
    name: str, content: bytes, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_ohlcv(path)
    message = str(info.value)
    assert _first_line(message).startswith(f"{path}: ")
    assert expected in _first_line(message)
    assert message.splitlines()[1].startswith("  fix: ")
    assert len(message.splitlines()) == 2
    assert "Traceback" not in message


def test_malformed_json_lines_names_the_line(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    lines = eth.head(5).to_json(orient="records", lines=True, date_format="iso").splitlines()
    lines[2] = lines[2][:-3]  # truncate the third record
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"cannot be read as \.jsonl: line 3: "):
        read_ohlcv(path)


def test_zero_byte_csv_is_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("")
    with pytest.raises(DataError, match=r"empty file: no data rows"):
        read_ohlcv(path)


# ----------------------------------------------------------------------------- aliases


def test_capitalised_names_and_adj_close_ignored_when_close_exists(
    eth: pd.DataFrame, tmp_path: Path
) -> None:
    raw = eth.rename(columns=str.capitalize).rename(columns={"Timestamp": "Date"})
    raw["Adj Close"] = raw["Close"] * 0.5  # a different series: must not be used
    raw["Symbol"] = "ETH/BTC"  # extra columns are dropped
    path = tmp_path / "x.csv"
    raw.to_csv(path, index=False)

    frame = read_ohlcv(path).frame

    assert list(frame.columns) == COLUMNS
    np.testing.assert_array_equal(frame["close"], eth["close"])


def test_adj_close_is_used_when_there_is_no_close(eth: pd.DataFrame) -> None:
    raw = eth.rename(columns={"close": "Adj Close"})
    frame = quantrain.data.validate_ohlcv(raw, "mem").frame
    np.testing.assert_array_equal(frame["close"], eth["close"])


def test_single_letter_aliases_and_ts(eth: pd.DataFrame, tmp_path: Path) -> None:
    raw = eth.rename(
        columns={"timestamp": "ts", "open": "o", "high": "h", "low": "l", "close": "c"}
    ).rename(columns={"volume": "vol"})
    path = tmp_path / "x.parquet"
    raw.to_parquet(path)
    pd.testing.assert_frame_equal(read_ohlcv(path).frame, eth)


def test_single_letter_volume_alias(eth: pd.DataFrame) -> None:
    raw = eth.rename(columns={"volume": "V", "timestamp": "OpenTime"})
    pd.testing.assert_frame_equal(quantrain.data.validate_ohlcv(raw, "mem").frame, eth)


def test_dukascopy_gmt_time_is_day_first(eth: pd.DataFrame, tmp_path: Path) -> None:
    # Dukascopy exports "Gmt time" as dd.mm.yyyy: 2018-01-13 must not become the 1st of month 13.
    raw = eth.rename(columns=str.capitalize).rename(columns={"Timestamp": "Gmt time"})
    raw["Gmt time"] = eth["timestamp"].dt.strftime("%d.%m.%Y %H:%M:%S.000")
    path = tmp_path / "x.csv"
    raw.to_csv(path, index=False)
    frame = read_ohlcv(path).frame
    pd.testing.assert_series_equal(frame["timestamp"], eth["timestamp"])
    assert frame["timestamp"].iloc[-1].day == eth["timestamp"].iloc[-1].day


def test_separate_date_and_time_columns_are_combined(eth: pd.DataFrame, tmp_path: Path) -> None:
    raw = eth.drop(columns="timestamp")
    raw.insert(0, "Date", eth["timestamp"].dt.strftime("%Y-%m-%d"))
    raw.insert(1, "Time", eth["timestamp"].dt.strftime("%H:%M"))
    path = tmp_path / "x.csv"
    raw.to_csv(path, index=False)
    loaded = read_ohlcv(path)
    pd.testing.assert_series_equal(loaded.frame["timestamp"], eth["timestamp"])
    assert loaded.report.repairs == ()  # no bars collapsed into one per day


def test_two_columns_meaning_the_same_are_refused(eth: pd.DataFrame) -> None:
    raw = eth.assign(Close=eth["close"] * 2)
    with pytest.raises(DataError, match=r"mem: columns 'close', 'Close' all mean close"):
        quantrain.data.validate_ohlcv(raw, "mem")


@pytest.mark.parametrize(
    ("unit", "divisor"),
    [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)],
)
def test_epoch_unit_is_chosen_by_magnitude(
    unit: str, divisor: int, eth: pd.DataFrame, tmp_path: Path
) -> None:
    raw = eth.assign(timestamp=eth["timestamp"].astype("int64") // divisor)
    path = tmp_path / "x.csv"
    raw.to_csv(path, index=False)
    frame = read_ohlcv(path).frame
    pd.testing.assert_series_equal(frame["timestamp"], eth["timestamp"])


def test_epoch_float_seconds_and_numeric_strings(eth: pd.DataFrame, tmp_path: Path) -> None:
    seconds = eth["timestamp"].astype("int64") / 1e9 + 0.25  # fractional seconds as floats
    as_float = quantrain.data.validate_ohlcv(eth.assign(timestamp=seconds), "f").frame
    expected = eth["timestamp"] + pd.Timedelta(milliseconds=250)
    pd.testing.assert_series_equal(as_float["timestamp"], expected)

    path = tmp_path / "x.json"  # epoch ms written as JSON strings
    millis = (eth["timestamp"].astype("int64") // 10**6).astype(str)
    path.write_text(eth.assign(timestamp=millis).to_json(orient="records"))
    pd.testing.assert_series_equal(read_ohlcv(path).frame["timestamp"], eth["timestamp"])


def test_epoch_in_a_different_unit_is_refused_with_rows(eth: pd.DataFrame, tmp_path: Path) -> None:
    millis = eth["timestamp"].astype("int64") // 10**6
    millis.iloc[[7, 8]] = millis.iloc[[7, 8]] * 1000  # microseconds slipped into an ms column
    path = tmp_path / "x.csv"
    eth.assign(timestamp=millis).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        read_ohlcv(path)
    message = str(info.value)
    assert "timestamps that are not epoch ms between 1970 and 2200" in message
    assert "  data rows: 8, 9\n" in message
    assert "fix: use one epoch unit" in message


def test_offsets_and_timezones_are_converted_to_utc(eth: pd.DataFrame, tmp_path: Path) -> None:
    berlin = eth["timestamp"].dt.tz_convert("Europe/Berlin")
    path = tmp_path / "x.parquet"
    eth.assign(timestamp=berlin).to_parquet(path)
    from_parquet = read_ohlcv(path).frame["timestamp"]

    path = tmp_path / "x.csv"
    eth.assign(timestamp=berlin.dt.strftime("%Y-%m-%dT%H:%M:%S%z")).to_csv(path, index=False)
    from_strings = read_ohlcv(path).frame["timestamp"]

    naive = quantrain.data.validate_ohlcv(
        eth.assign(timestamp=eth["timestamp"].dt.tz_localize(None)), "naive"
    ).frame["timestamp"]

    for converted in (from_parquet, from_strings, naive):
        pd.testing.assert_series_equal(converted, eth["timestamp"])
    assert str(from_parquet.dtype) == "datetime64[ns, UTC]"


def test_headerless_binance_kline_csv(eth: pd.DataFrame, tmp_path: Path) -> None:
    # data.binance.vision klines: no header, open_time in ms, then OHLCV and six more fields.
    raw = eth.assign(timestamp=eth["timestamp"].astype("int64") // 10**6)
    raw["close_time"] = raw["timestamp"] + 299_999
    for extra in ("quote_volume", "trades", "taker_base", "taker_quote", "ignore"):
        raw[extra] = 0
    path = tmp_path / "ETHBTC-5m-2018-01.csv"
    raw.to_csv(path, index=False, header=False)
    pd.testing.assert_frame_equal(read_ohlcv(path).frame, eth)


def test_semicolon_separated_csv(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    eth.to_csv(path, index=False, sep=";")
    pd.testing.assert_frame_equal(read_ohlcv(path).frame, eth)


def test_ccxt_arrays_of_arrays_json(eth: pd.DataFrame, tmp_path: Path) -> None:
    rows = eth.assign(timestamp=eth["timestamp"].astype("int64") // 10**6).to_numpy().tolist()
    rows = [[int(r[0]), *r[1:]] for r in rows]
    path = tmp_path / "x.json"
    path.write_text(json.dumps(rows))
    pd.testing.assert_frame_equal(read_ohlcv(path).frame, eth)


def test_json_columns_orientation(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    eth.to_json(path, orient="columns", date_format="iso")
    pd.testing.assert_frame_equal(read_ohlcv(path).frame, eth)


def test_read_raw_returns_the_file_unchanged(eth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "x.csv.gz"
    with gzip.open(path, "wt") as handle:
        eth.rename(columns={"timestamp": "Date"}).to_csv(handle, index=False)
    raw = read_raw(path)
    assert list(raw.columns) == ["Date", *COLUMNS[1:]]
    assert len(raw) == len(eth)
