"""Exchange downloads through ccxt: pagination, retries, resume, de-duplication, gaps, errors.

No network: ``FakeVenue`` replays real candles page by page; the ccxt error classes are real.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pytest

import quantrain.data.exchange as exchange_module
from quantrain.data import discover, read_ohlcv
from quantrain.data.exchange import CHECKPOINT_PAGES, download_ohlcv, open_exchange
from quantrain.errors import ConfigError, DataError, ServiceUnavailableError
from quantrain.jobs import sample_data_dir
from tests.support.fake_venue import STEP_MS, FakeVenue, to_rows

SYMBOL = "ETH/BTC"
FILE = "ETH-BTC_5m.parquet"


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    return read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame


@pytest.fixture
def rows(source: pd.DataFrame) -> list[list[float]]:
    return to_rows(source)


def ms_at(frame: pd.DataFrame, i: int) -> int:
    return int(frame["timestamp"].iloc[i].value // 10**6)


def on_disk(dataset: Path) -> pd.DataFrame:
    return read_ohlcv(dataset / FILE).frame


class Sleeps(list[float]):
    """An injected ``sleep`` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --------------------------------------------------------------------------- pagination


@pytest.mark.parametrize("page_limit", [1000, 5000])
def test_pages_reproduce_the_source_candles(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]], page_limit: int
) -> None:
    venue = FakeVenue(rows)  # caps pages at 1000 rows whatever limit is asked
    progress: list[int] = []
    report = download_ohlcv(
        venue, SYMBOL, "5m", dataset=tmp_path, page_limit=page_limit, on_page=progress.append
    )
    assert report.path == tmp_path / FILE
    assert (report.exchange, report.symbol, report.timeframe) == ("fakebinance", "ETH-BTC", "5m")
    assert (report.new_rows, report.total_rows, report.pages) == (5760, 5760, 6)
    assert (report.gaps, report.missing_bars, report.retries) == (0, 0, 0)
    assert report.resumed_from is None
    assert report.first == source["timestamp"].iloc[0]
    assert report.last == source["timestamp"].iloc[-1]
    assert progress == [1000, 2000, 3000, 4000, 5000, 5760]
    assert venue.calls == [0, *(ms_at(source, i) for i in range(1000, 5760, 1000))]
    pd.testing.assert_frame_equal(on_disk(tmp_path), source)
    assert sorted(os.listdir(tmp_path)) == [FILE]  # no temporary files left behind
    [found] = discover(tmp_path)
    assert (found.symbol, found.timeframe) == ("ETH-BTC", "5m")
    assert "+5760 rows" in report.summary()


def test_progress_is_checkpointed_every_n_pages(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    """A hard kill (no exception handler runs) loses at most CHECKPOINT_PAGES pages."""
    path = tmp_path / FILE
    rows_on_disk: list[int] = []

    def look(_: int) -> None:
        rows_on_disk.append(len(pd.read_parquet(path)) if path.exists() else 0)

    report = download_ohlcv(
        FakeVenue(rows), SYMBOL, "5m", dataset=tmp_path, page_limit=500, on_page=look
    )
    assert report.pages == 12
    assert rows_on_disk[:CHECKPOINT_PAGES] == [0] * CHECKPOINT_PAGES
    assert rows_on_disk[CHECKPOINT_PAGES:] == [500 * CHECKPOINT_PAGES] * 2
    pd.testing.assert_frame_equal(on_disk(tmp_path), source)


def test_since_and_until_bound_the_download(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    since = source["timestamp"].iloc[100]
    until = source["timestamp"].iloc[3000]
    report = download_ohlcv(
        FakeVenue(rows),
        SYMBOL,
        "5m",
        dataset=tmp_path,
        since=f"{since:%Y-%m-%d %H:%M}",  # naive text is UTC
        until=until,
    )
    assert (report.first, report.last) == (since, source["timestamp"].iloc[2999])
    expected = source.iloc[100:3000].reset_index(drop=True)
    pd.testing.assert_frame_equal(on_disk(tmp_path), expected)


def test_empty_page_ends_the_download(tmp_path: Path, rows: list[list[float]]) -> None:
    venue = FakeVenue(rows, now_ms=int(rows[-1][0]) + 10 * 86_400_000)  # no new trades for days
    report = download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path)
    assert (report.pages, report.total_rows) == (7, 5760)  # six full pages, then an empty one
    assert len(venue.calls) == 7


def test_a_venue_repeating_its_last_page_terminates(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    venue = FakeVenue(rows, now_ms=int(rows[-1][0]) + 10 * 86_400_000)
    venue.repeat_last_page = True
    report = download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path)
    assert (report.pages, report.total_rows) == (7, 5760)
    pd.testing.assert_frame_equal(on_disk(tmp_path), source)


def test_overlapping_pages_are_deduplicated_newer_wins(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    venue = FakeVenue(rows)
    venue.overlap = 50  # every page after the first starts 50 bars early, volumes revised
    report = download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path)
    frame = on_disk(tmp_path)
    assert report.total_rows == len(frame) == 5760
    assert frame["timestamp"].is_unique
    pd.testing.assert_series_equal(frame["timestamp"], source["timestamp"])
    pd.testing.assert_frame_equal(frame.drop(columns="volume"), source.drop(columns="volume"))
    revised = frame["volume"] != source["volume"]
    assert revised.sum() == 50 * (report.pages - 1)
    assert np.allclose(frame["volume"][revised], source["volume"][revised] + 1.0)


# --------------------------------------------------------------------------- retries


def test_transient_errors_are_retried_with_backoff(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    venue = FakeVenue(rows)
    venue.failures = {
        1: [ccxt.RateLimitExceeded("fakebinance 429 Too Many Requests")],
        3: [ccxt.NetworkError("connection reset by peer"), ccxt.RequestTimeout("timed out")],
    }
    sleeps = Sleeps()
    report = download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path, backoff_s=0.5, sleep=sleeps)
    assert report.retries == 3
    assert sleeps == [0.5, 0.5, 1.0]  # backoff_s * 2**attempt, restarting for each page
    assert len(venue.calls) == 6 + 3
    frame = on_disk(tmp_path)
    assert frame["timestamp"].is_unique
    pd.testing.assert_frame_equal(frame, source)


@pytest.mark.parametrize(
    "error",
    [
        ccxt.DDoSProtection("cloudflare"),
        ccxt.ExchangeNotAvailable("maintenance"),
        ccxt.OnMaintenance("maintenance"),
    ],
)
def test_every_transient_error_class_is_retried(
    tmp_path: Path, rows: list[list[float]], error: Exception
) -> None:
    venue = FakeVenue(rows)
    venue.failures = {0: [error]}
    report = download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path, sleep=Sleeps())
    assert (report.retries, report.total_rows) == (1, 5760)


def test_persistent_failure_is_a_data_error_and_keeps_what_was_fetched(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    venue = FakeVenue(rows)
    venue.always_fail_at = 2
    sleeps = Sleeps()
    with pytest.raises(DataError) as caught:
        download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path, max_retries=3, sleep=sleeps)
    message = str(caught.value)
    assert "fakebinance ETH/BTC 5m" in message
    assert f"{source['timestamp'].iloc[2000]:%Y-%m-%d %H:%M} UTC" in message
    assert "after 3 retries" in message and "RateLimitExceeded" in message
    assert "rerun" in message
    assert sleeps == [1.0, 2.0, 4.0]
    pd.testing.assert_frame_equal(on_disk(tmp_path), source.iloc[:2000])

    report = download_ohlcv(FakeVenue(rows), SYMBOL, "5m", dataset=tmp_path)
    assert (report.new_rows, report.total_rows) == (3760, 5760)
    pd.testing.assert_frame_equal(on_disk(tmp_path), source)


def test_other_exchange_errors_are_not_retried(tmp_path: Path, rows: list[list[float]]) -> None:
    venue = FakeVenue(rows)
    venue.always_fail_at = 0
    venue.fail_with = ccxt.ExchangeError('fakebinance {"code":-1100,"msg":"Illegal characters"}')
    sleeps = Sleeps()
    with pytest.raises(DataError, match="Illegal characters") as caught:
        download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path, sleep=sleeps)
    assert "ExchangeError" in str(caught.value)
    assert sleeps == []
    assert len(venue.calls) == 1
    assert not (tmp_path / FILE).exists()


# --------------------------------------------------------------------------- resume


def test_resume_after_interruption_equals_a_one_shot_download(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    interrupted = FakeVenue(rows)
    interrupted.interrupt_after = 2
    with pytest.raises(KeyboardInterrupt):
        download_ohlcv(interrupted, SYMBOL, "5m", dataset=tmp_path / "resumed")
    pd.testing.assert_frame_equal(on_disk(tmp_path / "resumed"), source.iloc[:2000])
    assert sorted(os.listdir(tmp_path / "resumed")) == [FILE]

    venue = FakeVenue(rows)
    report = download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path / "resumed")
    assert report.resumed_from == source["timestamp"].iloc[1999]
    assert (report.new_rows, report.total_rows) == (3760, 5760)
    assert venue.calls[0] == ms_at(source, 2000)

    download_ohlcv(FakeVenue(rows), SYMBOL, "5m", dataset=tmp_path / "one-shot")
    pd.testing.assert_frame_equal(on_disk(tmp_path / "resumed"), on_disk(tmp_path / "one-shot"))


def test_rerun_with_nothing_new_leaves_the_file_alone(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    download_ohlcv(FakeVenue(rows), SYMBOL, "5m", dataset=tmp_path)
    path = tmp_path / FILE
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    venue = FakeVenue(rows)
    # An earlier since only matters for a fresh file: the rerun resumes after the last bar.
    report = download_ohlcv(venue, SYMBOL, "5m", dataset=tmp_path, since="2017-01-01")
    assert (report.new_rows, report.total_rows, report.pages) == (0, 5760, 0)
    assert report.resumed_from == source["timestamp"].iloc[-1]
    assert venue.calls == []  # the next candle is not closed yet: nothing to ask for

    later = FakeVenue(rows, now_ms=int(rows[-1][0]) + 86_400_000)  # a day on, venue has nothing
    report = download_ohlcv(later, SYMBOL, "5m", dataset=tmp_path)
    assert (report.new_rows, report.pages) == (0, 1)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_the_still_forming_candle_is_dropped(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    forming = FakeVenue(rows, now_ms=int(rows[-1][0]) + STEP_MS // 2)
    report = download_ohlcv(forming, SYMBOL, "5m", dataset=tmp_path)
    assert report.last == source["timestamp"].iloc[-2]
    assert report.total_rows == 5759

    closed = FakeVenue(rows)  # five minutes later the candle has closed
    report = download_ohlcv(closed, SYMBOL, "5m", dataset=tmp_path)
    assert (report.new_rows, report.last) == (1, source["timestamp"].iloc[-1])
    pd.testing.assert_frame_equal(on_disk(tmp_path), source)


def test_gaps_are_reported_not_filled(tmp_path: Path, source: pd.DataFrame) -> None:
    holed = source.drop(index=[*range(1000, 1010), *range(3000, 3005)]).reset_index(drop=True)
    report = download_ohlcv(FakeVenue(to_rows(holed)), SYMBOL, "5m", dataset=tmp_path)
    assert (report.gaps, report.missing_bars) == (2, 15)
    assert report.total_rows == 5745
    pd.testing.assert_frame_equal(on_disk(tmp_path), holed)


def test_a_one_bar_file_resumes(
    tmp_path: Path, source: pd.DataFrame, rows: list[list[float]]
) -> None:
    """A one-bar download (a new listing) is valid even though validation needs two bars."""
    first = download_ohlcv(
        FakeVenue(rows), SYMBOL, "5m", dataset=tmp_path, until=source["timestamp"].iloc[1]
    )
    assert (first.total_rows, first.gaps) == (1, 0)
    report = download_ohlcv(FakeVenue(rows), SYMBOL, "5m", dataset=tmp_path)
    assert (report.resumed_from, report.new_rows) == (source["timestamp"].iloc[0], 5759)
    pd.testing.assert_frame_equal(on_disk(tmp_path), source)


def test_candles_that_fail_validation_are_kept_and_reported(
    tmp_path: Path, rows: list[list[float]]
) -> None:
    broken: list[list[Any]] = [list(row) for row in rows]
    broken[1234][5] = None  # a venue sent a null volume
    with pytest.raises(DataError, match="fail validation") as caught:
        download_ohlcv(FakeVenue(broken), SYMBOL, "5m", dataset=tmp_path)
    assert "missing (NaN/empty) values in volume" in str(caught.value)
    assert len(pd.read_parquet(tmp_path / FILE)) == 5760


# --------------------------------------------------------------------------- errors


def test_unsupported_timeframe_lists_the_supported_ones(
    tmp_path: Path, rows: list[list[float]]
) -> None:
    venue = FakeVenue(rows)
    with pytest.raises(DataError, match="'7m' is not offered") as caught:
        download_ohlcv(venue, SYMBOL, "7m", dataset=tmp_path)
    assert "supported: 1m, 3m, 5m, 15m" in str(caught.value)
    with pytest.raises(DataError, match="months"):
        download_ohlcv(venue, SYMBOL, "1M", dataset=tmp_path)
    assert venue.calls == []


@pytest.mark.parametrize("wrong", ["ETH/BTX", "ETHBTC"])
def test_bad_symbol_suggests_close_matches(
    tmp_path: Path, rows: list[list[float]], wrong: str
) -> None:
    with pytest.raises(DataError, match="no market") as caught:
        download_ohlcv(FakeVenue(rows), wrong, "5m", dataset=tmp_path)
    assert "close matches: ETH/BTC" in str(caught.value)


def test_bad_symbol_survives_failing_market_load(tmp_path: Path, rows: list[list[float]]) -> None:
    venue = FakeVenue(rows)
    venue.load_markets_error = ccxt.NetworkError("down")
    with pytest.raises(DataError, match="no market 'ETH/BTX'") as caught:
        download_ohlcv(venue, "ETH/BTX", "5m", dataset=tmp_path)
    assert "close matches" not in str(caught.value)


def test_unknown_exchange_id_suggests_close_matches() -> None:
    with pytest.raises(ConfigError, match="unknown exchange 'binanse'") as caught:
        open_exchange("binanse")
    assert "binance" in str(caught.value).split("did you mean:")[1]


def test_missing_ccxt_says_how_to_install(
    tmp_path: Path, rows: list[list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ccxt", None)  # import ccxt now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'quantrain\[exchange\]'"):
        open_exchange("binance")
    with pytest.raises(ConfigError, match=r"pip install 'quantrain\[exchange\]'"):
        download_ohlcv(FakeVenue(rows), SYMBOL, "5m", dataset=tmp_path)


def test_quantrain_imports_without_ccxt() -> None:
    code = (
        "import sys; sys.modules['ccxt'] = None\n"
        "import quantrain.data, quantrain.data.exchange\n"
        "assert 'ccxt' not in vars(quantrain.data.exchange)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- credentials

FAKE_KEY = "fake-api-key-7f3a9c21d4"
FAKE_SECRET = "fake-secret-0b8e6d5c4a3f"
FAKE_PASSWORD = "fake-passphrase-91ab"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("network I/O attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_keys_come_from_env_and_never_leak(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    no_network: None,
) -> None:
    monkeypatch.setenv("QUANTRAIN_BINANCE_API_KEY", FAKE_KEY)
    monkeypatch.setenv("QUANTRAIN_BINANCE_SECRET", FAKE_SECRET)
    monkeypatch.setenv("QUANTRAIN_BINANCE_PASSWORD", FAKE_PASSWORD)
    caplog.set_level(logging.DEBUG)
    exchange = open_exchange("binance")
    assert (exchange.apiKey, exchange.secret, exchange.password) == (
        FAKE_KEY,
        FAKE_SECRET,
        FAKE_PASSWORD,
    )
    assert exchange.enableRateLimit is True
    assert "QUANTRAIN_BINANCE_API_KEY" in caplog.text  # the variable is named, never its value

    # The venue echoes the signed request back in its errors; nothing of it may surface.
    errors = iter(
        [
            ccxt.NetworkError(f"binance GET /api/v3/klines?apiKey={FAKE_KEY} reset"),
            ccxt.AuthenticationError(f'binance {{"msg":"bad signature for {FAKE_SECRET}"}}'),
        ]
    )

    def fetch_ohlcv(*_: object, **__: object) -> list[list[float]]:
        raise next(errors)

    monkeypatch.setattr(exchange, "fetch_ohlcv", fetch_ohlcv)
    with pytest.raises(DataError) as caught:
        download_ohlcv(exchange, "BTC/USDT", "1h", dataset=tmp_path, sleep=Sleeps())
    shown = [
        str(caught.value),
        "".join(traceback.format_exception(caught.value)),
        caplog.text,
        repr(exchange),
        str(exchange),
    ]
    for text in shown:
        for secret in (FAKE_KEY, FAKE_SECRET, FAKE_PASSWORD):
            assert secret not in text
    assert "AuthenticationError" in str(caught.value)
    assert "QUANTRAIN_BINANCE_SECRET" in str(caught.value)


def test_public_endpoints_need_no_keys(monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    for suffix in ("API_KEY", "SECRET", "PASSWORD"):
        monkeypatch.delenv(f"QUANTRAIN_KRAKEN_{suffix}", raising=False)
    exchange = open_exchange(" Kraken ")
    assert exchange.id == "kraken"
    assert not exchange.apiKey and not exchange.secret
    assert exchange.enableRateLimit is True


def test_module_keeps_ccxt_out_of_its_globals() -> None:
    assert "ccxt" not in vars(exchange_module)


# --------------------------------------------------------------------------- offline


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unreachable_binance() -> Any:
    """The real ccxt binance client with every API URL on a loopback port nobody answers:
    what an offline machine gets, as a real socket error under ccxt's own handling."""
    exchange = open_exchange("binance")
    dead = f"http://127.0.0.1:{_closed_port()}"

    def redirect(urls: Any) -> Any:
        if isinstance(urls, dict):
            return {k: redirect(v) for k, v in urls.items()}
        return re.sub(r"^https?://[^/]+", dead, urls) if isinstance(urls, str) else urls

    exchange.urls["api"] = redirect(exchange.urls["api"])
    return exchange


def test_an_unreachable_venue_says_so_shows_retries_and_writes_nothing(tmp_path: Path) -> None:
    sleeps, retries = Sleeps(), []
    with pytest.raises(ServiceUnavailableError) as caught:
        download_ohlcv(
            unreachable_binance(),
            "BTC/USDT",
            "1h",
            dataset=tmp_path,
            max_retries=3,
            sleep=sleeps,
            on_retry=retries.append,
        )
    message = str(caught.value)
    assert message.startswith("binance BTC/USDT 1h: fetching candles")
    assert "network unreachable" in message and "Connection refused" in message
    assert "after 3 retries" in message and "nothing was written" in message
    assert "saved" not in message and "fix: check the network" in message
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(retries) == 3 and "retry 1/3 in 1.0 s" in retries[0]
    assert all("binance BTC/USDT 1h: network unreachable" in line for line in retries)
    assert os.listdir(tmp_path) == []  # no file claimed, none written


def test_retries_stop_at_the_time_budget(tmp_path: Path, rows: list[list[float]]) -> None:
    venue = FakeVenue(rows)
    venue.always_fail_at = 0
    venue.fail_with = ccxt.RequestTimeout("fakebinance GET /klines timed out")
    sleeps = Sleeps()
    with pytest.raises(ServiceUnavailableError, match="after 2 retries: the request timed out"):
        download_ohlcv(
            venue, SYMBOL, "5m", dataset=tmp_path, backoff_s=4.0, retry_budget_s=20, sleep=sleeps
        )
    assert sleeps == [4.0, 8.0]  # a third wait (16 s) would pass the 20 s budget
    assert os.listdir(tmp_path) == []


def test_cli_download_offline_exits_1_with_retries_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functools import partial

    from click.testing import CliRunner

    from quantrain.cli import main

    monkeypatch.setattr(exchange_module, "open_exchange", lambda name: unreachable_binance())
    monkeypatch.setattr(exchange_module, "download_ohlcv", partial(download_ohlcv, sleep=Sleeps()))
    args = ["data", "download", "--exchange", "binance", "--symbol", "BTC/USDT"]
    result = CliRunner().invoke(main, [*args, "--timeframe", "1h", "--dataset", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.count("network unreachable") >= 2  # each retry, then the error
    assert "retry 1/5" in result.stderr and "Error: binance BTC/USDT 1h" in result.stderr
    assert "saved" not in result.output and not list(tmp_path.iterdir())
