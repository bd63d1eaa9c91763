"""Streaming prediction (issue 18): a bot warms up once, then feeds one bar at a time, and gets
exactly what ``predict`` over the whole history gives for that bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.data import read_ohlcv
from quantrain.errors import DataError
from quantrain.package import Predictor, PredictorPool

from ..conftest import SAMPLE_DIR, package_path

COMPARED = ("direction_p_SELL", "direction_p_HOLD", "direction_p_BUY", "position_size")


def _frame(symbol: str) -> pd.DataFrame:
    return read_ohlcv(SAMPLE_DIR / f"{symbol}_5m.parquet").frame


@pytest.mark.parametrize("symbol", ["ETH-BTC", "LTC-BTC"])  # xgboost and lightgbm heads
def test_every_streamed_bar_equals_the_batch_prediction(trained_store: Path, symbol: str) -> None:
    predictor = Predictor(package_path(trained_store, symbol))
    frame = _frame(symbol)
    warm = predictor.history_bars
    live = predictor.live(frame.iloc[:warm])
    batch = predictor.predict(frame)
    for t in range(warm, len(frame)):
        got = live.update(frame.iloc[t].to_dict())
        want = batch.iloc[t]
        assert got["timestamp"] == want["timestamp"]
        assert got["features_complete"] == bool(want["features_complete"])
        assert got["direction"] == want["direction"]
        assert got["action"] == want["action"]
        for column in (*COMPARED, "tp_distance", "sl_distance", "ood_score"):
            np.testing.assert_allclose(got[column], want[column], rtol=0, atol=1e-6)


def test_a_pool_serves_several_symbols_bar_by_bar(trained_store: Path) -> None:
    pool = PredictorPool()
    frames = {s: _frame(s) for s in ("ETH-BTC", "LTC-BTC")}
    for symbol, frame in frames.items():
        pool.add(symbol, Predictor(package_path(trained_store, symbol)), frame.iloc[:3000])
    assert len(pool) == 2
    for t in range(3000, 3010):
        outputs = pool.update_all({s: f.iloc[t].to_dict() for s, f in frames.items()})
        assert set(outputs) == set(frames)
        assert all(o["features_complete"] for o in outputs.values())


def test_a_bar_out_of_order_is_refused_and_the_stream_continues(trained_store: Path) -> None:
    predictor = Predictor(package_path(trained_store, "ETH-BTC"))
    frame = _frame("ETH-BTC")
    live = predictor.live(frame.iloc[:3000])
    with pytest.raises(DataError):
        live.update(frame.iloc[2990].to_dict())  # older than the last bar seen
    got = live.update(frame.iloc[3000].to_dict())
    want = predictor.predict(frame.iloc[:3001]).iloc[-1]
    np.testing.assert_allclose(
        [got[c] for c in COMPARED], want[list(COMPARED)].to_numpy(float), atol=1e-6
    )
