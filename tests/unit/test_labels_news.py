"""News override: HOLD where a high-impact event is near and volume surges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.errors import ConfigError
from quantrain.labels import BUY, HOLD, SELL, minutes_to_event, news_override, volume_zscore
from tests.unit.test_triple_barrier import SAMPLE_DIR

NAN = float("nan")


def test_override_needs_both_an_event_and_a_volume_surge() -> None:
    direction = np.array([BUY, SELL, BUY, SELL, BUY, -1, BUY], dtype=np.int8)
    minutes = np.array([10.0, -20.0, 45.0, 5.0, NAN, 0.0, 30.0])
    volume_z = np.array([3.0, 2.0, 5.0, 1.9, 9.0, 9.0, NAN])
    got = news_override(direction, minutes, volume_z, minutes=30.0, min_volume_z=2.0)
    # near+surge: HOLD (row 1: 20 min *after* the event, z exactly 2); too far; no surge;
    # no event (NaN); invalid rows stay invalid; NaN volume z never overrides.
    np.testing.assert_array_equal(got, [HOLD, HOLD, BUY, SELL, BUY, -1, BUY])
    assert direction[0] == BUY  # the input is not changed
    assert news_override(direction, minutes, volume_z, minutes=0.0, min_volume_z=-1e9)[5] == -1


def test_minutes_to_event_takes_the_nearest_column_from_the_close() -> None:
    stamps = pd.date_range("2024-01-01 12:00", periods=4, freq="5min", tz="UTC")
    closes = stamps + pd.Timedelta("5min")  # a 5m bar closes 5 minutes after its timestamp
    frame = pd.DataFrame(
        {
            "timestamp": stamps,
            "event_next_at": [closes[0] + pd.Timedelta("50min"), pd.NaT, pd.NaT, pd.NaT],
            "event_last_at": [pd.NaT, closes[1] - pd.Timedelta("7min"), pd.NaT, closes[3]],
        }
    )
    np.testing.assert_array_equal(minutes_to_event(frame), [50.0, 7.0, NAN, 0.0])
    only_next = frame.drop(columns=["event_last_at"])
    np.testing.assert_array_equal(minutes_to_event(only_next), [50.0, NAN, NAN, NAN])
    with pytest.raises(ConfigError, match="event_next_at or event_last_at"):
        minutes_to_event(frame.drop(columns=["event_next_at", "event_last_at"]))


def test_the_columns_merge_exogenous_writes_are_read(tmp_path: Path) -> None:
    from quantrain.features.exogenous import merge_exogenous

    stamps = pd.date_range("2024-01-01", periods=12, freq="5min", tz="UTC")
    bars = pd.DataFrame({"timestamp": stamps})
    events = pd.DataFrame(
        {"timestamp": [stamps[5] + pd.Timedelta("2min")], "impact": ["high"], "name": ["CPI"]}
    )
    events.to_csv(tmp_path / "events.csv", index=False)
    merged = merge_exogenous(bars, events=tmp_path / "events.csv")
    # Bar i closes at 5(i + 1) minutes past midnight; the event is at 00:27 (bar 4 closes two
    # minutes before it, from its event_next_at; bar 5 three after, from its event_last_at).
    expected = [abs(27.0 - 5.0 * (i + 1)) for i in range(12)]
    np.testing.assert_array_equal(minutes_to_event(merged), expected)


def reference_zscore(volume: np.ndarray, window: int) -> np.ndarray:
    v = volume.tolist()
    out = np.full(len(v), np.nan)
    for t in range(window - 1, len(v)):
        chunk = v[t - window + 1 : t + 1]
        mean = sum(chunk) / window
        std = (sum((x - mean) ** 2 for x in chunk) / window) ** 0.5
        out[t] = (v[t] - mean) / std if std > 0 else 0.0
    return out


def test_volume_zscore_matches_reference_on_real_data() -> None:
    volume = pd.read_parquet(SAMPLE_DIR / "ETH-BTC_5m.parquet")["volume"].to_numpy(np.float64)
    for window in (2, 96):
        np.testing.assert_allclose(
            volume_zscore(volume, window), reference_zscore(volume, window), rtol=1e-9, atol=1e-12
        )
    assert volume_zscore(np.ones(5), 3)[-1] == 0.0
    with pytest.raises(ConfigError, match="volume_window"):
        volume_zscore(volume, 1)
