"""A cascade job end to end on one bundled pair: position_size and a meta_label head read the
direction head's out-of-fold probabilities; the package serves exactly what the pipeline's
final (native) models give on features plus the upstream outputs, in batch and streamed, and
trades the direction signal only where the meta head's P(TAKE) reaches the meta threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig, build_job
from quantrain.data import DataSource
from quantrain.evaluate.backtest import bars_per_year, run_backtest
from quantrain.evaluate.evaluation import backtest_config
from quantrain.features import atr, resolve_feature_set
from quantrain.package import Predictor, load_native_head, verify_package
from quantrain.package.layout import read_manifest
from quantrain.pipeline import run_symbol
from quantrain.policy import TradingPolicy
from quantrain.suite.fit import warm_start_problems

from ..conftest import SAMPLE_DIR

FAST = {"n_estimators": 30, "max_depth": 3}
LAST = 200
META_THRESHOLD = 0.3
PROBS = ("direction_p_SELL", "direction_p_HOLD", "direction_p_BUY")


def cascade_job(store: Path, size_inputs: tuple[str, ...] = ("direction",)) -> JobConfig:
    return build_job(
        {
            "seed": 7,
            "labels": {"k_tp": 1.5, "k_sl": 0.8, "horizon": 24},
            "split": {"n_folds": 2},
            # these small models are rarely sure of a side: a lower entry so the gate has work
            "evaluate": {"threshold": 0.35, "meta_threshold": 0.3},
            "suite": {
                "name": "cascade",
                "heads": [
                    {"name": "size", "target": "position_size", "inputs": list(size_inputs)},
                    {"name": "direction", "target": "direction", "params": FAST},
                    {"name": "meta", "target": "meta_label", "inputs": ["direction"]},
                ],
            },
            "store": str(store),
        }
    )


@pytest.fixture(scope="module")
def cascade_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("cascade-store")
    job = cascade_job(store)
    result = run_symbol(DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet"), job)
    assert result.ok, result.error
    assert {"meta.balanced_accuracy", "size.mae"} <= set(result.metrics)
    (version,) = (store / "ETH-BTC" / "cascade").glob("2*")
    return version


@pytest.mark.slow
def test_the_manifest_records_each_heads_inputs(cascade_package: Path) -> None:
    heads = verify_package(cascade_package)["heads"]
    assert heads["direction"]["upstream"] is None
    for name in ("size", "meta"):
        assert heads[name]["upstream"] == ["direction"]
        assert heads[name]["upstream_columns"] == list(PROBS)
        assert heads[name]["parity_max_abs_diff"] <= 1e-4
    assert heads["meta"]["classes"] == ["SKIP", "TAKE"]
    importance = pd.read_csv(cascade_package / "heads" / "meta" / "importance.csv")
    assert set(PROBS) <= set(importance["feature"])


@pytest.mark.slow
def test_the_package_serves_what_the_final_models_predict(
    cascade_package: Path, eth_frame: pd.DataFrame
) -> None:
    predictor = Predictor(cascade_package)
    served = predictor.predict(eth_frame, last=LAST)
    X = predictor.feature_matrix(eth_frame).to_numpy(dtype=np.float32)[-LAST:]
    direction = load_native_head(cascade_package, "direction").predict_proba(X)
    cascade_X = np.hstack([X, direction.astype(np.float32)])
    size = load_native_head(cascade_package, "size").predict(cascade_X)
    meta = load_native_head(cascade_package, "meta").predict_proba(cascade_X)
    complete = served["features_complete"].to_numpy(dtype=bool)
    assert complete.all()
    for i, column in enumerate(PROBS):
        np.testing.assert_allclose(served[column], direction[:, i], atol=1e-4)
    np.testing.assert_allclose(served["size"], size, atol=1e-4)
    np.testing.assert_allclose(served["meta_p_TAKE"], meta[:, 1], atol=1e-4)
    # the downstream heads really read the upstream column: other probabilities, other sizes
    shuffled = np.hstack([X, direction[::-1].astype(np.float32)])
    assert not np.allclose(load_native_head(cascade_package, "meta").predict_proba(shuffled), meta)


@pytest.mark.slow
def test_streamed_cascade_outputs_equal_the_batch(
    cascade_package: Path, eth_frame: pd.DataFrame
) -> None:
    predictor = Predictor(cascade_package)
    start = len(eth_frame) - 40
    live = predictor.live(eth_frame.iloc[:start])
    batch = predictor.predict(eth_frame)
    for t in range(start, len(eth_frame)):
        got = live.update(eth_frame.iloc[t].to_dict())
        want = batch.iloc[t]
        assert got["meta"] == want["meta"] and got["action"] == want["action"]
        for column in (*PROBS, "size", "meta_p_SKIP", "meta_p_TAKE"):
            np.testing.assert_allclose(got[column], want[column], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_warm_start_refuses_a_package_whose_heads_read_other_inputs(
    cascade_package: Path, tmp_path: Path
) -> None:
    same, other = cascade_job(tmp_path), cascade_job(tmp_path, size_inputs=())
    spec = resolve_feature_set(same.features, "5m")
    manifest = verify_package(cascade_package)
    upstream = [p for p in warm_start_problems(manifest, same, "ETH-BTC", spec) if "upstream" in p]
    assert upstream == []
    assert "head 'size': upstream differs: the package has ['direction'], this job has None" in (
        warm_start_problems(manifest, other, "ETH-BTC", spec)
    )


@pytest.mark.slow
def test_the_backtest_trades_the_direction_signal_where_the_meta_head_takes_it(
    cascade_package: Path, eth_frame: pd.DataFrame
) -> None:
    """The recorded trades are the manifest's gated policy on the recorded out-of-sample
    outputs (the meta head's P(TAKE) on the direction head's rows), and the gate bites."""
    manifest = read_manifest(cascade_package)
    assert manifest["policy"]["meta_head"] == "meta"
    assert manifest["policy"]["meta_threshold"] == META_THRESHOLD
    policy = TradingPolicy.from_dict(manifest["policy"])
    oos = pd.read_parquet(cascade_package / "evaluation" / "oos_predictions.parquet")
    recorded = pd.read_parquet(cascade_package / "evaluation" / "trades.parquet")
    frame = eth_frame
    rows = np.searchsorted(frame["timestamp"], oos["timestamp"])
    start, end = int(rows[0]), min(len(frame) - 1, int(rows[-1]) + policy.horizon)
    span = slice(start, end + 1)
    high, low, close = (frame[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    p_sell, p_buy = oos["direction_p_SELL"].to_numpy(), oos["direction_p_BUY"].to_numpy()
    p_take = oos["meta_p_TAKE"].to_numpy()

    def replay(signals: np.ndarray) -> pd.DataFrame:
        signal = np.zeros(end - start + 1, dtype=np.int8)
        size = np.zeros(end - start + 1)
        signal[rows - start] = signals
        size[rows - start] = policy.sizes(oos["size_pred"].to_numpy(), len(oos))
        return run_backtest(
            *(frame[k].to_numpy(np.float64)[span] for k in ("open", "high", "low", "close")),
            atr(high, low, close, policy.atr_period)[span],
            signal,
            size=size,
            bars_per_year=bars_per_year("5m"),
            config=backtest_config(policy),
        ).trades

    gated = policy.signals(p_sell, p_buy, p_take)
    again = replay(gated)
    assert len(again) == len(recorded) >= 5
    for column in ("entry_bar", "exit_bar", "side", "entry_price", "exit_price", "net_return"):
        np.testing.assert_array_equal(again[column], recorded[column], err_msg=column)
    entries = rows[recorded["entry_bar"].to_numpy()] - start  # the recorded trades' oos rows
    assert (p_take[np.searchsorted(rows - start, entries)] >= META_THRESHOLD).all()
    ungated = TradingPolicy.from_dict({**manifest["policy"], "meta_head": None})
    primary = ungated.signals(p_sell, p_buy)
    assert np.count_nonzero(gated) < np.count_nonzero(primary)  # the gate skipped signals
    assert (gated[p_take < META_THRESHOLD] == 0).all()
    notes = json.loads((cascade_package / "evaluation" / "backtest.json").read_text())["notes"]
    taken = f"meta-labeling: {np.count_nonzero(gated)} of {np.count_nonzero(primary)} direction"
    assert any(note.startswith(taken) for note in notes), notes


@pytest.mark.slow
def test_the_package_serves_the_gated_actions(
    cascade_package: Path, eth_frame: pd.DataFrame
) -> None:
    """``Predictor`` serves the manifest policy's gated action on its served outputs: flat
    wherever P(TAKE) is under the threshold, the ungated action elsewhere."""
    predictor = Predictor(cascade_package)
    policy = predictor.policy
    assert policy is not None and policy.meta_head == "meta"
    served = predictor.predict(eth_frame)
    p_take = served["meta_p_TAKE"].to_numpy(np.float64)
    p_sell, p_buy = (served[f"direction_p_{c}"].to_numpy(np.float64) for c in ("SELL", "BUY"))
    high, low, close = (eth_frame[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    bar_atr = atr(high, low, close, policy.atr_period)
    sized = served["size"].to_numpy(np.float64)
    want = policy.actions(p_sell, p_buy, sized, bar_atr, p_take)
    np.testing.assert_array_equal(served["action_side"].to_numpy(), want["side"])
    np.testing.assert_array_equal(served["action_size"].to_numpy(), want["size"])
    skipped = ~(p_take >= META_THRESHOLD)
    assert (served["action_side"].to_numpy()[skipped] == 0).all()
    ungated = TradingPolicy.from_dict({**policy.to_dict(), "meta_head": None})
    primary = ungated.actions(p_sell, p_buy, sized, bar_atr)["side"]
    assert (primary[skipped] != 0).any()  # signals the gate really turned down
    taken = ~skipped
    np.testing.assert_array_equal(want["side"][taken], primary[taken])
