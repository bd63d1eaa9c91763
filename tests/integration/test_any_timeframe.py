"""Any timeframe trains with the default job: the standard set adapts to the base bar, fold
sizes adapt to the rows, and market calendars' closed sessions are not reported as gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.config import build_job
from quantrain.data import DataSource, read_ohlcv, resample_ohlcv, validate_ohlcv
from quantrain.errors import DataError
from quantrain.features import resolve_feature_set, standard_spec
from quantrain.features.spec import htf_views, standard_exo_spec
from quantrain.package import Predictor, load_native_head
from quantrain.pipeline import bar_dataset, min_train_rows, run_symbol
from tests.conftest import SAMPLE_DIR, fast_job, package_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
EURUSD = FIXTURES / "EURUSD_1h.parquet"
GOOG = FIXTURES / "GOOG_1d.parquet"

#: The standard set on 5m bars is version 1's design: packages and their hashes rely on it.
STANDARD_5M_HASH = "d20053532d142c0b8ed1ad440479f7cfe4e44531dc9539691771ed0f6d15380d"


def test_standard_set_on_5m_bars_is_unchanged() -> None:
    designed = standard_spec()
    for spec in (standard_spec("5m"), resolve_feature_set("standard", "5m")):
        assert spec.spec_hash() == designed.spec_hash() == STANDARD_5M_HASH
        assert spec.to_json_dict() == designed.to_json_dict()
    assert standard_exo_spec("5m").spec_hash() == standard_exo_spec().spec_hash()


@pytest.mark.parametrize(
    ("timeframe", "views"),
    [
        ("1m", ("10m", "1h")),
        ("5m", ("1h", "4h")),
        ("15m", ("3h", "12h")),
        ("30m", ("6h", "1d")),
        ("1h", ("12h", "1d")),
        ("4h", ("1d", "1w")),
        ("1d", (None, None)),
        ("1w", (None, None)),
    ],
)
def test_higher_timeframe_views_follow_the_base(
    timeframe: str, views: tuple[str | None, str | None]
) -> None:
    assert htf_views(timeframe) == views
    spec = standard_spec(timeframe)
    used = {str(f.params["tf"]) for f in spec.features if f.kind.startswith("htf_")}
    assert used == {v for v in views if v}
    spec.warmup_bars(timeframe)  # every view is a whole multiple of the base


def test_constant_calendar_features_are_left_out() -> None:
    def kinds(timeframe: str) -> set[str]:
        return {f.kind for f in standard_spec(timeframe).features}

    assert {"minute_sin", "hour_sin", "session", "dow_sin"} <= kinds("15m")
    assert "minute_sin" not in kinds("1h") and "hour_sin" in kinds("1h")
    assert not {"minute_sin", "hour_sin", "session"} & kinds("1d") and "dow_sin" in kinds("1d")
    assert "dow_sin" not in kinds("1w")


def test_a_drop_of_views_the_adapted_set_lacks_is_still_valid() -> None:
    spec = resolve_feature_set({"base": "standard", "drop": ["htf_*"]}, "1d")
    assert spec.columns() == [c for c in standard_spec("1d").columns()]


def _fifteen_minute(tmp_path: Path) -> Path:
    frame, _ = resample_ohlcv(read_ohlcv(SAMPLE_DIR / "ETH-BTC_5m.parquet").frame, "15m")
    path = tmp_path / "ETH-BTC_15m.parquet"
    frame.to_parquet(path)
    return path


@pytest.mark.parametrize(
    ("symbol", "timeframe"), [("EURUSD", "1h"), ("GOOG", "1d"), ("ETH-BTC", "15m")]
)
def test_the_default_job_trains_and_serves_any_timeframe(
    symbol: str, timeframe: str, tmp_path: Path
) -> None:
    path = (
        _fifteen_minute(tmp_path)
        if timeframe == "15m"
        else FIXTURES / f"{symbol}_{timeframe}.parquet"
    )
    store = tmp_path / "store"
    result = run_symbol(DataSource(symbol, timeframe, path), fast_job(store))
    assert result.ok, result.error
    assert result.timeframe == timeframe

    package = package_path(store, symbol)
    predictor = Predictor(package)
    assert predictor.spec.spec_hash() == standard_spec(timeframe).spec_hash()
    frame = read_ohlcv(path).frame
    predictions = predictor.predict(frame)
    assert len(predictions) == len(frame)
    complete = predictions["features_complete"].to_numpy()
    # complete once features no longer depend on where the window started (20 days of 15m
    # bars are too short to measure that: the Predictor then asks for its 3000-bar default)
    assert complete.sum() == max(0, len(frame) - predictor.history_bars)
    matrix = predictor.feature_matrix(frame).to_numpy()
    usable = np.isfinite(matrix).all(axis=1)
    assert usable.sum() > len(frame) // 2
    direction = load_native_head(package, "direction")
    probs = predictions.loc[usable, ["direction_p_SELL", "direction_p_HOLD", "direction_p_BUY"]]
    np.testing.assert_allclose(probs.to_numpy(), direction.predict_proba(matrix[usable]), atol=1e-5)


def test_min_train_adapts_to_the_rows_unless_set(tmp_path: Path) -> None:
    frame = read_ohlcv(EURUSD).frame.head(4000).reset_index(drop=True)
    auto = fast_job(tmp_path / "store")
    data, _ = bar_dataset(frame, symbol="EURUSD", job=auto, timeframe="1h")
    assert 200 <= min_train_rows(auto, len(data.X)) == len(data.X) // 8 < 1000
    assert min_train_rows(auto, 100_000) == 1000 and min_train_rows(auto, 500) == 200

    explicit = fast_job(tmp_path / "store", split={"min_train": 1000})
    assert min_train_rows(explicit, len(data.X)) == 1000
    path = tmp_path / "EURUSD_1h.parquet"
    frame.to_parquet(path)
    refused = run_symbol(DataSource("EURUSD", "1h", path), explicit)
    assert not refused.ok
    assert "split.min_train" in str(refused.error)
    trained = run_symbol(DataSource("EURUSD", "1h", path), auto)
    assert trained.ok, trained.error


def test_fx_weekends_and_exchange_holidays_are_closed_sessions() -> None:
    fx = read_ohlcv(EURUSD).report
    assert fx.calendar == "weekdays"
    assert fx.gaps == 0 and fx.missing_bars == 0
    assert fx.closed_weekends == 40 and fx.closed_holidays == 2  # Christmas, New Year
    assert "closed sessions: 40 weekends, 2 holidays" in fx.summary()

    stock = read_ohlcv(GOOG).report
    assert (stock.calendar, stock.gaps) == ("weekdays", 0)
    assert (stock.closed_weekends, stock.closed_holidays) == (386, 77)  # 463 "gaps" before

    crypto = read_ohlcv(SAMPLE_DIR / "ADA-BTC_5m.parquet").report  # 24/7: gaps stay gaps
    assert (crypto.calendar, crypto.gaps, crypto.closed_sessions) == ("24/7", 5, 0)


def test_a_weekday_series_keeps_its_real_gaps(eth_frame: pd.DataFrame) -> None:
    stamps = pd.bdate_range("2024-03-04", periods=30, tz="UTC")  # Mon..Fri, 6 weeks
    missing_wednesday = stamps.delete(7)  # Wed 2024-03-13: no holiday
    raw = eth_frame.head(len(missing_wednesday)).assign(timestamp=missing_wednesday)
    report = validate_ohlcv(raw, "daily").report
    assert report.calendar == "weekdays"
    assert (report.gaps, report.missing_bars) == (1, 1)
    assert report.largest_gap == "1d from 2024-03-13 00:00 UTC"
    assert report.closed_weekends == 5


def test_a_symbol_at_two_timeframes_is_refused_before_training(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    read_ohlcv(SAMPLE_DIR / "ETH-BTC_5m.parquet").frame.to_parquet(data / "ETH-BTC_5m.parquet")
    _fifteen_minute(data)
    result = CliRunner().invoke(
        main, ["train", "--data", str(data), "--store", str(tmp_path / "store")]
    )
    assert result.exit_code == 2, result.output
    assert "ETH-BTC_5m.parquet" in result.output and "ETH-BTC_15m.parquet" in result.output
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())

    from quantrain.jobs import job_sources

    with pytest.raises(DataError, match=r"ETH-BTC_15m\.parquet"):
        job_sources(build_job({"data": {"path": str(data)}}))
