"""Discovery: symbol and timeframe from ``<SYMBOL>_<timeframe>.<ext>``, safe symbol keys."""

from __future__ import annotations

from pathlib import Path

import pytest

import quantrain.data
from quantrain.data import DataSource, discover, symbol_key
from quantrain.errors import DataError

SAMPLE_DIR = Path(quantrain.data.__file__).parent.parent / "sample_data"


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("ETH/USDT:USDT", "ETH-USDT-USDT"),
        ("eth_btc", "ETH-BTC"),
        ("BTC/EUR", "BTC-EUR"),
        (" btc / usdt ", "BTC-USDT"),
        ("BTC__USDT", "BTC-USDT"),
        ("1000PEPE/USDT", "1000PEPE-USDT"),
        ("BRK.B", "BRK.B"),
        ("ETH-BTC", "ETH-BTC"),
    ],
)
def test_symbol_key(raw: str, key: str) -> None:
    assert symbol_key(raw) == key


def test_two_quotes_of_one_base_stay_distinct() -> None:
    assert symbol_key("BTC/EUR") != symbol_key("BTC/USDT")


@pytest.mark.parametrize("raw", ["", "   ", "//", "ETH$BTC", "-.", "ÉTH/BTC"])
def test_unsafe_symbols_are_refused(raw: str) -> None:
    with pytest.raises(DataError, match=r"cannot be made a safe key \(got .*\)\n  fix: "):
        symbol_key(raw)


def test_directory_lists_matching_files_sorted(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "XMR-BTC_5m.parquet",
        "BTC_USDT_1h.csv.gz",
        "ETH-BTC_5m.json",
        "ETH-BTC_1h.jsonl",
        "ADA-BTC_15min.feather",
        "README.md",  # not data
        "notes_5m.txt",  # unsupported extension
        "prices.csv",  # supported, but no timeframe in the name
        "ETH-BTC_5m_old.csv",  # "old" is not a timeframe
        ".hidden_5m.csv",
    )
    (tmp_path / "sub_5m.csv").mkdir()  # a directory, not a file

    found = discover(tmp_path)

    assert [(s.symbol, s.timeframe, s.path.name) for s in found] == [
        ("ADA-BTC", "15m", "ADA-BTC_15min.feather"),
        ("BTC-USDT", "1h", "BTC_USDT_1h.csv.gz"),
        ("ETH-BTC", "5m", "ETH-BTC_5m.json"),
        ("ETH-BTC", "1h", "ETH-BTC_1h.jsonl"),
        ("XMR-BTC", "5m", "XMR-BTC_5m.parquet"),
    ]
    assert all(s.path.parent == tmp_path for s in found)


def test_bundled_sample_data_is_discovered() -> None:
    found = discover(SAMPLE_DIR)
    assert [s.symbol for s in found] == [
        "ADA-BTC",
        "DASH-BTC",
        "ETH-BTC",
        "LTC-BTC",
        "XLM-BTC",
        "XMR-BTC",
    ]
    assert {s.timeframe for s in found} == {"5m"}


def test_symbols_filter_compares_safe_keys(tmp_path: Path) -> None:
    _touch(tmp_path, "ETH-BTC_5m.parquet", "BTC-USDT_5m.parquet", "BTC-EUR_5m.parquet")
    found = discover(tmp_path, symbols=["btc/usdt", "ETH_BTC"])
    assert [s.symbol for s in found] == ["BTC-USDT", "ETH-BTC"]


def test_unknown_symbols_list_the_available_ones(tmp_path: Path) -> None:
    _touch(tmp_path, "ETH-BTC_5m.parquet", "BTC-USDT_5m.parquet")
    with pytest.raises(DataError) as info:
        discover(tmp_path, symbols=["ETH/BTC", "DOGE/USDT"])
    lines = str(info.value).splitlines()
    assert lines[0] == f"{tmp_path}: no data for DOGE-USDT"
    assert lines[1] == "  available: BTC-USDT, ETH-BTC"
    assert lines[2].startswith("  fix: ")


def test_same_symbol_and_timeframe_twice_is_refused(tmp_path: Path) -> None:
    _touch(tmp_path, "ETH-BTC_5m.csv", "ETH_BTC_5m.parquet")
    with pytest.raises(DataError, match=r"two files hold ETH-BTC 5m") as info:
        discover(tmp_path)
    assert "ETH-BTC_5m.csv" in str(info.value)
    assert "ETH_BTC_5m.parquet" in str(info.value)


def test_same_step_written_two_ways_is_one_timeframe(tmp_path: Path) -> None:
    _touch(tmp_path, "ETH-BTC_60m.csv", "ETH-BTC_1h.parquet")
    with pytest.raises(DataError, match=r"two files hold ETH-BTC 1h"):
        discover(tmp_path)


def test_directory_without_data_files_says_what_it_found(tmp_path: Path) -> None:
    _touch(tmp_path, "README.md", "prices.csv")
    with pytest.raises(DataError) as info:
        discover(tmp_path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{tmp_path}: no data files found"
    assert lines[1] == "  found: README.md, prices.csv"
    assert "<SYMBOL>_<timeframe>.<ext>" in lines[2]
    assert ".csv.gz" in lines[2]


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"found: nothing"):
        discover(tmp_path)


def test_single_file_with_the_pattern(tmp_path: Path) -> None:
    _touch(tmp_path, "BTC_USDT_4h.csv.gz")
    path = tmp_path / "BTC_USDT_4h.csv.gz"
    assert discover(path) == [DataSource("BTC-USDT", "4h", path)]
    assert discover(str(path)) == [DataSource("BTC-USDT", "4h", path)]


def test_single_file_without_the_pattern_uses_the_stem(tmp_path: Path) -> None:
    _touch(tmp_path, "ethbtc.parquet")
    path = tmp_path / "ethbtc.parquet"
    assert discover(path) == [DataSource("ETHBTC", "", path)]


def test_single_file_filter_refuses_other_symbols(tmp_path: Path) -> None:
    _touch(tmp_path, "ETH-BTC_5m.csv")
    with pytest.raises(DataError, match=r"no data for LTC-BTC\n  available: ETH-BTC"):
        discover(tmp_path / "ETH-BTC_5m.csv", symbols=["LTC/BTC"])


def test_single_file_with_unsupported_extension(tmp_path: Path) -> None:
    _touch(tmp_path, "ETH-BTC_5m.xlsx")
    with pytest.raises(DataError, match=r"unsupported file type\n  fix: use one of \.parquet"):
        discover(tmp_path / "ETH-BTC_5m.xlsx")


def test_missing_path_and_unknown_schemes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no such file or directory"):
        discover(tmp_path / "missing")
    with pytest.raises(DataError, match=r"^gs://bucket/data/: gs:// data sources are not supp"):
        discover("gs://bucket/data/")
    with pytest.raises(DataError, match=r"^data URI 's3:///data/': expected s3://BUCKET"):
        discover("s3:///data/")  # an s3 URI without a bucket is refused before any request


def test_data_source_name_is_the_file_name_local_or_s3(tmp_path: Path) -> None:
    local = DataSource("ETH-BTC", "5m", tmp_path / "ETH-BTC_5m.parquet")
    remote = DataSource("ETH-BTC", "5m", "s3://bucket/data//ETH-BTC_5m.csv.gz?addressing=path")
    assert local.name == "ETH-BTC_5m.parquet"
    assert remote.name == "ETH-BTC_5m.csv.gz"
    assert remote.path == "s3://bucket/data//ETH-BTC_5m.csv.gz?addressing=path"  # kept verbatim


def test_data_source_is_frozen(tmp_path: Path) -> None:
    source = DataSource("ETH-BTC", "5m", tmp_path)
    with pytest.raises(AttributeError):
        source.symbol = "X"  # type: ignore[misc]
