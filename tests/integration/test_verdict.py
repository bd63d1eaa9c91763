"""The verdict a package carries is the verdict of what the bot does (issue 16).

Every series here is synthetic with a known truth (tests/support/synthetic.py): a planted trend
must be found, random walks must score at chance with intervals that cover chance, and a fill
trap that only pays at the signal bar's close must stop paying once fills happen at the next
open. Then the served policy is replayed bar by bar and must reproduce the backtest's trades.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig, build_job
from quantrain.data import DataSource
from quantrain.evaluate.backtest import bars_per_year, run_backtest
from quantrain.evaluate.evaluation import backtest_config
from quantrain.features import atr
from quantrain.package import Predictor
from quantrain.package.layout import read_manifest
from quantrain.pipeline import run_symbol, train_suite
from quantrain.policy import TradingPolicy, direction_probabilities
from tests.support.synthetic import close_bounce, planted_trend, random_walk

pytestmark = pytest.mark.slow


def small_job(**overrides: object) -> JobConfig:
    """Defaults, with folds sized for a few thousand synthetic bars."""
    return build_job({"split": {"min_train": 500}, **overrides})


@pytest.fixture(scope="module")
def trend_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A published package trained on a planted trend (it trades: the edge is real)."""
    root = tmp_path_factory.mktemp("trend")
    frame = planted_trend(6000, seed=1)
    data = root / "TREND-USD_5m.parquet"
    frame.to_parquet(data)
    job = small_job(store=str(root / "store"))
    result = run_symbol(DataSource("TREND-USD", "5m", data), job)
    assert result.ok, result.error
    (package,) = (root / "store" / "TREND-USD" / "core").glob("2*")
    return package, frame


def test_a_planted_trend_is_found_and_earns_after_costs(
    trend_package: tuple[Path, pd.DataFrame],
) -> None:
    package, _ = trend_package
    manifest = read_manifest(package)
    accuracy = manifest["heads"]["direction"]["metrics"]["balanced_accuracy"]
    assert accuracy > 0.40  # chance is 1/3
    evaluation = manifest["evaluation"]
    assert evaluation["intervals"]["balanced_accuracy"]["low"] > 1 / 3
    assert evaluation["verdict"].startswith("edge after costs")
    assert evaluation["intervals"]["total_return"]["low"] > 0
    assert manifest["holdout"]["rows"] > 0
    assert manifest["holdout"]["heads"]["direction"]["balanced_accuracy"] > 0.38
    assert manifest["policy"]["entry"] == "next_open"
    assert manifest["selection"]["trials"] == 1


def test_random_walks_score_at_chance_with_intervals_that_cover_it() -> None:
    """Ten seeded random walks: balanced accuracy sits at chance (1/3), its 90 % interval
    covers chance in at least 9 of 10, and no verdict claims an edge. Seeded end to end, so
    the count is reproducible; a change that narrows the intervals shows up here."""
    covered, scores = 0, []
    for seed in range(10):
        suite = train_suite(
            random_walk(4000, seed), symbol="RW", timeframe="5m", job=small_job(seed=seed)
        )
        assert suite.evaluation is not None
        interval = suite.evaluation.intervals["balanced_accuracy"]
        covered += interval["low"] <= 1 / 3 <= interval["high"]
        scores.append(suite.heads[0].oos["balanced_accuracy"])
        assert not suite.evaluation.verdict.startswith("edge")
    assert covered >= 9, covered
    assert abs(float(np.mean(scores)) - 1 / 3) < 0.02
    assert max(abs(s - 1 / 3) for s in scores) < 0.05


def test_a_close_print_bounce_pays_only_when_filled_at_the_close() -> None:
    """The closing print jumps off the mid and the next bar opens back at it: entering at the
    close 'earns' the reversion; a bot, which can only fill at the next open, earns nothing."""
    frame = close_bounce(6000, seed=2)
    loose = {"threshold": 0.4}
    at_close = train_suite(
        frame,
        symbol="BOUNCE",
        timeframe="5m",
        job=small_job(labels={"entry": "close"}, evaluate=loose),
    )
    at_next_open = train_suite(
        frame, symbol="BOUNCE", timeframe="5m", job=small_job(evaluate=loose)
    )
    assert at_close.evaluation is not None and at_next_open.evaluation is not None
    gross = at_close.evaluation.trades["gross_return"]
    assert len(gross) > 20 and gross.mean() > 0
    assert at_close.evaluation.verdict.startswith("edge after costs")
    assert not at_next_open.evaluation.verdict.startswith("edge")
    assert at_next_open.evaluation.trades["gross_return"].mean() < gross.mean() / 2


def replay_as_a_bot(frame: pd.DataFrame, actions: pd.DataFrame, policy: TradingPolicy) -> list:
    """A bot written from the policy's words, one bar at a time: when flat, act on the newest
    bar's action by filling at the next open and placing the take-profit and stop at the
    served distances; exit on the first touch (the stop wins a tie) or after the horizon."""
    o, h, lo, c = (frame[k].to_numpy(np.float64) for k in ("open", "high", "low", "close"))
    trades, free_from = [], 0
    for t in range(len(frame) - policy.horizon):
        side = int(actions["action_side"].iloc[t])
        if t < free_from or side == 0:
            continue
        fill = o[t + 1]
        take_profit = fill + side * actions["tp_distance"].iloc[t]
        stop = fill - side * actions["sl_distance"].iloc[t]
        exit_bar, price = t + policy.horizon, c[t + policy.horizon]
        for j in range(t + 1, t + policy.horizon + 1):
            stopped = lo[j] <= stop if side > 0 else h[j] >= stop
            won = h[j] >= take_profit if side > 0 else lo[j] <= take_profit
            if stopped or won:
                exit_bar, price = j, (stop if stopped else take_profit)
                break
        trades.append((t, exit_bar, side, float(actions["action_size"].iloc[t]), fill, price))
        free_from = exit_bar
    return trades


def test_replaying_the_predictor_bar_by_bar_reproduces_the_backtest(
    trend_package: tuple[Path, pd.DataFrame],
) -> None:
    package, frame = trend_package
    predictor = Predictor(package)
    policy = predictor.policy
    assert policy is not None
    oos = pd.read_parquet(package / "evaluation" / "oos_predictions.parquet")
    first = int(np.searchsorted(frame["timestamp"], oos["timestamp"].iloc[0]))
    served = predictor.predict(frame)
    test_bars = frame.iloc[first:].reset_index(drop=True)
    actions = served.iloc[first:].reset_index(drop=True)
    bot = replay_as_a_bot(test_bars, actions, policy)
    assert len(bot) > 20

    p_sell, p_buy = direction_probabilities(
        actions[["direction_p_SELL", "direction_p_HOLD", "direction_p_BUY"]].to_numpy(),
        ("SELL", "HOLD", "BUY"),
    )
    high, low, close = (frame[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    prices = {k: test_bars[k].to_numpy(np.float64) for k in ("open", "high", "low", "close")}
    backtest = run_backtest(
        prices["open"],
        prices["high"],
        prices["low"],
        prices["close"],
        atr(high, low, close, policy.atr_period)[first:],
        policy.signals(p_sell, p_buy),
        size=policy.sizes(actions["position_size"].to_numpy(np.float64), len(actions)),
        bars_per_year=bars_per_year("5m"),
        config=backtest_config(policy),
    ).trades
    assert list(backtest["entry_bar"]) == [t[0] for t in bot]
    assert list(backtest["exit_bar"]) == [t[1] for t in bot]
    assert list(backtest["side"]) == [t[2] for t in bot]
    np.testing.assert_allclose(backtest["size"], [t[3] for t in bot], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(backtest["entry_price"], [t[4] for t in bot])
    np.testing.assert_allclose(backtest["exit_price"], [t[5] for t in bot], rtol=1e-12)

    # Bar by bar, as live: the newest bar's action from a trailing window equals the batch one.
    for t in np.linspace(first + 100, len(frame) - 1, 8).astype(int):
        window = frame.iloc[: t + 1]
        latest = predictor.predict_latest(window)
        assert latest["action_side"] == served["action_side"].iloc[t]
        assert latest["action_size"] == pytest.approx(served["action_size"].iloc[t], abs=1e-9)


def test_the_recorded_trades_are_the_manifest_policy_on_the_recorded_predictions(
    trend_package: tuple[Path, pd.DataFrame],
) -> None:
    """The package's verdict was computed with the policy it serves: re-running the manifest's
    policy on the stored out-of-sample predictions gives the stored trades."""
    package, frame = trend_package
    manifest = read_manifest(package)
    policy = TradingPolicy.from_dict(manifest["policy"])
    oos = pd.read_parquet(package / "evaluation" / "oos_predictions.parquet")
    recorded = pd.read_parquet(package / "evaluation" / "trades.parquet")
    rows = np.searchsorted(frame["timestamp"], oos["timestamp"])
    start, end = int(rows[0]), min(len(frame) - 1, int(rows[-1]) + policy.horizon)
    n = end - start + 1
    signal = np.zeros(n, dtype=np.int8)
    size = np.zeros(n)
    p_sell, p_buy = oos["direction_p_SELL"].to_numpy(), oos["direction_p_BUY"].to_numpy()
    signal[rows - start] = policy.signals(p_sell, p_buy)
    size[rows - start] = policy.sizes(oos["position_size_pred"].to_numpy(), len(oos))
    high, low, close = (frame[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    span = slice(start, end + 1)
    again = run_backtest(
        *(frame[k].to_numpy(np.float64)[span] for k in ("open", "high", "low", "close")),
        atr(high, low, close, policy.atr_period)[span],
        signal,
        size=size,
        bars_per_year=bars_per_year("5m"),
        config=backtest_config(policy),
    ).trades
    assert len(again) == len(recorded) > 20
    for column in ("entry_bar", "exit_bar", "side", "entry_price", "exit_price", "net_return"):
        np.testing.assert_array_equal(again[column], recorded[column], err_msg=column)
