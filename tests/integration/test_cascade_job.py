"""A cascade job end to end on one bundled pair: position_size and a meta_label head read the
direction head's out-of-fold probabilities; the package serves exactly what the pipeline's
final (native) models give on features plus the upstream outputs, in batch and streamed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig, build_job
from quantrain.data import DataSource
from quantrain.features import resolve_feature_set
from quantrain.package import Predictor, load_native_head, verify_package
from quantrain.pipeline import run_symbol
from quantrain.suite.fit import warm_start_problems

from ..conftest import SAMPLE_DIR

FAST = {"n_estimators": 30, "max_depth": 3}
LAST = 200
PROBS = ("direction_p_SELL", "direction_p_HOLD", "direction_p_BUY")


def cascade_job(store: Path, size_inputs: tuple[str, ...] = ("direction",)) -> JobConfig:
    return build_job(
        {
            "seed": 7,
            "labels": {"k_tp": 1.5, "k_sl": 0.8, "horizon": 24},
            "split": {"n_folds": 2},
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
