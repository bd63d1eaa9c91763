"""A job whose data comes from an exchange: download (fake venue: no network here), train,
package; and the `data download` command. The venue replays recorded real candles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.data import read_ohlcv
from quantrain.data.samples import sample_data_dir
from quantrain.store import open_store
from tests.support.fake_venue import FakeVenue, to_rows


@pytest.fixture
def venue(monkeypatch: pytest.MonkeyPatch) -> FakeVenue:
    fake = FakeVenue(to_rows(read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame))
    monkeypatch.setattr("quantrain.data.exchange.open_exchange", lambda name: fake)
    monkeypatch.setattr("quantrain.jobs.open_exchange", lambda name: fake)
    return fake


@pytest.mark.ray
@pytest.mark.slow
def test_a_job_with_an_exchange_source_downloads_trains_and_packages(
    venue: FakeVenue, ray_cluster: None, tmp_path: Path
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: from-exchange\n"
        f"data: {{path: {tmp_path / 'data'}, symbols: [ETH/BTC],\n"
        "       exchange: {name: binance, timeframe: 5m, since: '2018-01-01'}}\n"
        f"store: {tmp_path / 'models'}\n"
    )
    first = CliRunner().invoke(main, ["run", str(job)])
    assert first.exit_code == 0, first.output
    assert "+5760 rows" in first.output
    downloaded = read_ohlcv(tmp_path / "data" / "ETH-BTC_5m.parquet").frame
    expected = read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame
    pd.testing.assert_frame_equal(downloaded, expected)
    (version,) = open_store(str(tmp_path / "models")).versions()
    assert version.symbol == "ETH-BTC"
    requests_before = len(venue.calls)
    again = CliRunner().invoke(main, ["run", str(job)])  # nothing new at the venue
    assert again.exit_code == 0, again.output
    # The next candle cannot have closed yet, so the refresh asks the venue nothing at all.
    assert len(venue.calls) == requests_before
    assert "+0 rows" in again.output
    assert len(open_store(str(tmp_path / "models")).versions()) == 2


def test_the_download_command_resumes_and_reports(venue: FakeVenue, tmp_path: Path) -> None:
    args = ["data", "download", "--exchange", "binance", "--symbol", "ETH/BTC"]
    args += ["--timeframe", "5m", "--since", "2018-01-01", "--dataset", str(tmp_path)]
    venue.now_ms = venue.ms[3000]  # the venue has only the first 3000 candles so far
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "+3000 rows" in first.output and "fresh" in first.output
    venue.now_ms = venue.ms[-1] + 5 * 60 * 1000
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert "+2760 rows" in second.output and "resumed after" in second.output
    assert len(read_ohlcv(tmp_path / "ETH-BTC_5m.parquet").frame) == 5760


def test_an_unknown_exchange_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "data",
            "download",
            "--exchange",
            "binanse",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1h",
            "--dataset",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "binance" in result.output  # the close match
    assert "Traceback" not in result.output


def test_the_resample_command_writes_a_trainable_file(tmp_path: Path) -> None:
    out = tmp_path / "ETH-BTC_1h.parquet"
    result = CliRunner().invoke(
        main,
        [
            "data",
            "resample",
            str(sample_data_dir() / "ETH-BTC_5m.parquet"),
            "--to",
            "1h",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "5760 5m bars -> 479 1h bars" in result.output
    loaded = read_ohlcv(out)
    assert loaded.report.timeframe == "1h" and loaded.report.rows == 479
    refused = CliRunner().invoke(
        main,
        ["data", "resample", str(out), "--to", "5m", "--out", str(tmp_path / "x.parquet")],
    )
    assert refused.exit_code == 2 and "Traceback" not in refused.output
