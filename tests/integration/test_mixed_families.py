"""A suite that mixes families: an LSTM direction head beside a LightGBM sizing head, trained
by ``jobs/mixed-demo.yaml`` end to end, packaged, verified and served by the Predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.config import load_job
from quantrain.data import DataSource
from quantrain.features.windows import lookback_windows
from quantrain.package import Predictor, load_native_head, verify_package
from quantrain.package.session import onnx_session
from quantrain.pipeline import run_symbol

from ..conftest import SAMPLE_DIR

pytest.importorskip("torch")

JOB = Path(__file__).parents[2] / "jobs" / "mixed-demo.yaml"
LAST = 300


@pytest.fixture(scope="module")
def mixed_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("mixed-store")
    job = load_job(JOB, [f"store={store}"])
    result = run_symbol(DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet"), job)
    assert result.ok, result.error
    (version,) = (store / "ETH-BTC" / "mixed").glob("2*")
    return version


@pytest.mark.slow
def test_mixed_job_writes_one_package_with_both_families(mixed_package: Path) -> None:
    manifest = verify_package(mixed_package)
    direction, size = manifest["heads"]["direction"], manifest["heads"]["position_size"]
    assert (direction["family"], size["family"]) == ("lstm", "lightgbm")
    assert direction["sequence_length"] == 16 and size["sequence_length"] is None
    assert direction["parity_max_abs_diff"] <= 1e-4
    assert "heads/direction/model.npz" in manifest["files"]
    importance = pd.read_csv(mixed_package / "heads" / "direction" / "importance.csv")
    assert set(importance["method"]) == {"permutation"}
    native = load_native_head(mixed_package, "direction")
    assert native.key == "lstm" and 1 <= native.best_iteration_ <= 8


@pytest.mark.slow
def test_predictor_serves_what_the_onnx_graphs_give_by_hand(
    mixed_package: Path, eth_frame: pd.DataFrame
) -> None:
    predictor = Predictor(mixed_package)
    assert predictor.window_rows == 16
    served = predictor.predict(eth_frame, last=LAST)

    X = predictor.feature_matrix(eth_frame).to_numpy(dtype=np.float32)
    heads = mixed_package / "heads"
    lstm = onnx_session((heads / "direction" / "model.onnx").read_bytes())
    windows = np.ascontiguousarray(lookback_windows(X, 16)[-LAST:])
    labels, probabilities = lstm.run(None, {"features": windows})
    gbdt = onnx_session((heads / "position_size" / "model.onnx").read_bytes())
    (size,) = gbdt.run(None, {"features": X[-LAST:]})

    classes = np.array(["SELL", "HOLD", "BUY"], dtype=object)
    assert list(served["direction"]) == list(classes[labels])
    for i, name in enumerate(classes):
        np.testing.assert_allclose(served[f"direction_p_{name}"], probabilities[:, i], atol=1e-6)
    np.testing.assert_allclose(served["position_size"], np.ravel(size), atol=1e-6)

    latest = predictor.predict_latest(eth_frame)
    assert latest["direction"] == served["direction"].iloc[-1]
    assert latest["direction_p_BUY"] == pytest.approx(probabilities[-1, 2], abs=1e-6)
    assert latest["position_size"] == pytest.approx(float(np.ravel(size)[-1]), abs=1e-6)


@pytest.mark.slow
def test_sequence_head_answers_only_once_its_window_is_past_the_warm_up(
    mixed_package: Path, eth_frame: pd.DataFrame
) -> None:
    predictor = Predictor(mixed_package)
    out = predictor.predict(eth_frame.head(predictor.warmup_bars + 40))
    direction = out["direction_p_BUY"].to_numpy()
    size = out["position_size"].to_numpy()
    first_complete = int(np.argmax(np.isfinite(size)))  # a row-wise head answers at once
    assert first_complete == predictor.warmup_bars
    assert np.isnan(size[:first_complete]).all()
    assert np.isnan(direction[: first_complete + 15]).all()  # the LSTM's window is not yet full
    assert np.isfinite(direction[first_complete + 15 :]).all()


@pytest.mark.slow
def test_models_verify_passes_for_the_mixed_package(mixed_package: Path) -> None:
    store = mixed_package.parents[2]
    done = CliRunner().invoke(main, ["models", "verify", "--store", str(store)])
    assert done.exit_code == 0, done.output
    assert "1 of 1 packages verified" in done.output
