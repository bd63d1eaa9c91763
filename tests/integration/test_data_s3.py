"""Market data in S3: discovery over a prefix and reading objects, against a real S3 server."""

from __future__ import annotations

import dataclasses
import gzip
import logging
from pathlib import Path

import pandas as pd
import pytest

from quantrain.data import DataSource, discover, read_ohlcv, read_raw
from quantrain.data.remote import TEMP_PREFIX, list_prefix
from quantrain.errors import DataError
from quantrain.jobs import sample_data_dir
from tests.conftest import put_test_object

pytestmark = pytest.mark.s3

SAMPLE_DIR = sample_data_dir()
SYMBOLS = ["ADA-BTC", "DASH-BTC", "ETH-BTC", "LTC-BTC", "XLM-BTC", "XMR-BTC"]
BUCKET = "quantrain-test"
DATA = f"s3://{BUCKET}/data/"


@pytest.fixture
def data_uri(s3_uri: str, own_tmp: Path) -> str:
    """The six bundled sample files under s3://quantrain-test/data/, plus a nested "folder"."""
    for path in sorted(SAMPLE_DIR.glob("*.parquet")):
        put_test_object(f"data/{path.name}", path.read_bytes())
    put_test_object(
        "data/archive/OLD-BTC_5m.parquet", (SAMPLE_DIR / "ETH-BTC_5m.parquet").read_bytes()
    )
    return DATA


def _leftovers(own_tmp: Path) -> list[str]:
    return sorted(p.name for p in own_tmp.iterdir() if p.name.startswith(TEMP_PREFIX))


# -- discovery ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
def test_discover_finds_the_six_symbols_directly_under_the_prefix(
    data_uri: str, suffix: str
) -> None:
    found = discover(data_uri.rstrip("/") + suffix)
    assert [(s.symbol, s.timeframe) for s in found] == [(symbol, "5m") for symbol in SYMBOLS]
    assert [s.path for s in found] == [f"{DATA}{symbol}_5m.parquet" for symbol in SYMBOLS]
    assert [s.name for s in found] == [f"{symbol}_5m.parquet" for symbol in SYMBOLS]
    assert all(isinstance(s.path, str) for s in found)  # never a Path: it would collapse //


def test_discover_symbol_filter(data_uri: str) -> None:
    found = discover(data_uri, symbols=["eth/btc", "XMR_BTC"])
    assert found == [
        DataSource("ETH-BTC", "5m", f"{DATA}ETH-BTC_5m.parquet"),
        DataSource("XMR-BTC", "5m", f"{DATA}XMR-BTC_5m.parquet"),
    ]


def test_unknown_symbol_lists_what_is_available(data_uri: str) -> None:
    with pytest.raises(DataError) as info:
        discover(data_uri, symbols=["ETH/BTC", "DOGE/USDT"])
    lines = str(info.value).splitlines()
    assert lines[0] == f"{DATA}: no data for DOGE-USDT"
    assert lines[1] == f"  available: {', '.join(SYMBOLS)}"
    assert lines[2].startswith("  fix: ")


def test_a_single_object_is_a_single_file(data_uri: str) -> None:
    uri = f"{DATA}ETH-BTC_5m.parquet"
    assert discover(uri) == [DataSource("ETH-BTC", "5m", uri)]
    with pytest.raises(DataError, match=r"no data for LTC-BTC\n  available: ETH-BTC"):
        discover(uri, symbols=["LTC/BTC"])


def test_a_single_object_without_the_pattern_uses_the_stem(s3_uri: str) -> None:
    put_test_object("data/ethbtc.csv", b"timestamp,open,high,low,close,volume\n")
    assert discover(f"{DATA}ethbtc.csv") == [DataSource("ETHBTC", "", f"{DATA}ethbtc.csv")]


def test_a_single_object_with_an_unsupported_extension(s3_uri: str) -> None:
    put_test_object("data/ETH-BTC_5m.xlsx", b"")
    with pytest.raises(DataError, match=r"ETH-BTC_5m.xlsx: unsupported file type\n  fix: use one"):
        discover(f"{DATA}ETH-BTC_5m.xlsx")


def test_a_badly_named_object_is_ignored_with_a_warning(
    data_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    put_test_object("data/ETH-BTC_5m_old.csv", b"")
    put_test_object("data/README.md", b"")
    put_test_object("data/.hidden_5m.csv", b"")
    with caplog.at_level(logging.WARNING, logger="quantrain.data.discover"):
        found = discover(data_uri)
    assert [s.symbol for s in found] == SYMBOLS
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{DATA}ETH-BTC_5m_old.csv: ignored, the name does not follow")


def test_a_prefix_without_data_files_says_what_it_found(s3_uri: str) -> None:
    put_test_object("notes/README.md", b"")
    put_test_object("notes/prices.csv", b"")
    put_test_object("notes/2024/ETH-BTC_5m.csv", b"")
    with pytest.raises(DataError) as info:
        discover(f"s3://{BUCKET}/notes")
    lines = str(info.value).splitlines()
    assert lines[0] == f"s3://{BUCKET}/notes: no data files found"
    assert lines[1] == "  found: 2024/, README.md, prices.csv"
    assert "<SYMBOL>_<timeframe>.<ext>" in lines[2]


def test_same_symbol_and_timeframe_twice_is_refused(s3_uri: str) -> None:
    put_test_object("dup/ETH-BTC_5m.csv", b"")
    put_test_object("dup/ETH_BTC_5m.parquet", b"")
    with pytest.raises(DataError, match=r"two files hold ETH-BTC 5m") as info:
        discover(f"s3://{BUCKET}/dup/")
    assert "ETH-BTC_5m.csv and ETH_BTC_5m.parquet" in str(info.value)


def test_a_missing_prefix_or_bucket_is_refused(s3_uri: str) -> None:
    with pytest.raises(DataError, match=r"^s3://quantrain-test/nothing/: no such object or prefix"):
        discover(f"s3://{BUCKET}/nothing/")
    with pytest.raises(DataError) as info:
        discover("s3://no-such-bucket/data/")
    assert str(info.value).startswith("s3://no-such-bucket/data/: cannot list the data files: ")
    assert "bucket 'no-such-bucket' does not exist" in str(info.value)


def test_listing_follows_every_page(data_uri: str) -> None:
    listing = list_prefix(data_uri, page_size=2)
    assert [name for _, name in listing.objects] == [f"{symbol}_5m.parquet" for symbol in SYMBOLS]
    assert listing.folders == ["archive/"]


def test_path_addressing_is_kept_in_the_discovered_uris(data_uri: str, own_tmp: Path) -> None:
    found = discover(f"{data_uri}?addressing=path", symbols=["ETH-BTC"])
    assert found == [
        DataSource("ETH-BTC", "5m", f"{DATA}ETH-BTC_5m.parquet?addressing=path"),
    ]
    assert found[0].name == "ETH-BTC_5m.parquet"
    local = read_ohlcv(SAMPLE_DIR / found[0].name)
    pd.testing.assert_frame_equal(read_ohlcv(found[0].path).frame, local.frame)


# -- reading --------------------------------------------------------------------------------


def test_reading_an_object_equals_reading_the_local_file(data_uri: str, own_tmp: Path) -> None:
    for source in discover(data_uri, symbols=["ETH-BTC", "LTC-BTC"]):
        remote = read_ohlcv(source.path)
        local = read_ohlcv(SAMPLE_DIR / source.name)
        pd.testing.assert_frame_equal(remote.frame, local.frame)
        assert remote.report.source == source.path  # the URI, never the temp file
        assert dataclasses.replace(remote.report, source=local.report.source) == local.report
        assert remote.report.rows == local.report.rows > 0
        assert remote.report.timeframe == local.report.timeframe == "5m"
    assert _leftovers(own_tmp) == []


def test_a_csv_gz_object_is_read(s3_uri: str, own_tmp: Path, eth_frame: pd.DataFrame) -> None:
    head = eth_frame.iloc[:300]
    put_test_object("data/ETH-BTC_5m.csv.gz", gzip.compress(head.to_csv(index=False).encode()))
    (source,) = discover(DATA)
    assert source == DataSource("ETH-BTC", "5m", f"{DATA}ETH-BTC_5m.csv.gz")
    loaded = read_ohlcv(source.path)
    assert loaded.report.rows == 300
    assert loaded.report.timeframe == "5m"
    pd.testing.assert_frame_equal(
        loaded.frame[["open", "close"]].reset_index(drop=True),
        head[["open", "close"]].reset_index(drop=True),
    )
    assert _leftovers(own_tmp) == []


def test_a_missing_object_is_file_not_found(data_uri: str, own_tmp: Path) -> None:
    uri = f"{DATA}NOPE-BTC_5m.parquet"
    with pytest.raises(DataError) as info:
        read_ohlcv(uri)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{uri}: file not found"
    assert lines[1] == f"  fix: check the key (list them: aws s3 ls {DATA})"
    assert _leftovers(own_tmp) == []


def test_a_missing_bucket_is_named(s3_uri: str, own_tmp: Path) -> None:
    uri = "s3://no-such-bucket/data/ETH-BTC_5m.parquet"
    with pytest.raises(DataError) as info:
        read_raw(uri)
    message = str(info.value)
    assert message.startswith(f"{uri}: cannot download the data file: ")
    assert "bucket 'no-such-bucket' does not exist" in message
    assert "fix: " in message
    with pytest.raises(DataError, match=r"bucket 'no-such-bucket' does not exist"):
        discover(uri)
    assert _leftovers(own_tmp) == []


def test_a_corrupt_object_names_the_uri_and_leaves_no_temp_file(s3_uri: str, own_tmp: Path) -> None:
    uri = f"{DATA}ETH-BTC_5m.parquet"
    put_test_object("data/ETH-BTC_5m.parquet", b"this is not parquet")
    with pytest.raises(DataError) as info:
        read_ohlcv(uri)
    assert str(info.value).startswith(f"{uri}: cannot be read as .parquet: ")
    assert TEMP_PREFIX not in str(info.value)
    assert _leftovers(own_tmp) == []


def test_a_prefix_is_not_a_data_file(data_uri: str) -> None:
    with pytest.raises(DataError, match=r"^s3://quantrain-test/data/: is a prefix \(folder\)"):
        read_raw(data_uri)


def test_no_credentials_says_how_to_provide_them(data_uri: str, no_aws_credentials: None) -> None:
    for call in (lambda: discover(data_uri), lambda: read_raw(f"{DATA}ETH-BTC_5m.parquet")):
        with pytest.raises(DataError) as info:
            call()
        message = str(info.value)
        assert message.startswith("s3://quantrain-test/data/")
        assert "no AWS credentials found" in message
        assert "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE" in message
        assert "instance role" in message
