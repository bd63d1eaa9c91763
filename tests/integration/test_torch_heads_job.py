"""``jobs/torch-heads-demo.yaml`` end to end: a Gaussian size head (value + scale) and a
multi-task trade_path head (one output per task) are trained, packaged with their outputs in
the manifest and metrics beside baselines, and served by the Predictor exactly as the final
native models compute them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import load_job
from quantrain.data import DataSource
from quantrain.package import Predictor, load_native_head, verify_package
from quantrain.pipeline import run_symbol

from ..conftest import SAMPLE_DIR

pytest.importorskip("torch")

JOB = Path(__file__).parents[2] / "jobs" / "torch-heads-demo.yaml"
TASKS = ["time_to_hit", "mae", "mfe"]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("torch-heads-store")
    job = load_job(JOB, [f"store={store}"])
    result = run_symbol(DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet"), job)
    assert result.ok, result.error
    (version,) = (store / "ETH-BTC" / "torch_heads").glob("2*")
    return version


@pytest.mark.slow
def test_manifest_lists_every_output_and_metrics_beside_baselines(package: Path) -> None:
    manifest = verify_package(package)
    size, path = manifest["heads"]["position_size"], manifest["heads"]["trade_path"]
    assert size["onnx_outputs"] == ["value", "scale"]
    assert path["onnx_outputs"] == TASKS
    assert size["parity_max_abs_diff"] <= 1e-4 and path["parity_max_abs_diff"] <= 1e-4
    for key in ("nll", "baseline_nll", "coverage_90", "baseline_coverage_90", "mae"):
        assert np.isfinite(size["metrics"][key])
    for task in TASKS:
        assert {f"{task}.mae", f"{task}.baseline_mae", f"{task}.rmse"} <= set(path["metrics"])
    oos = pd.read_parquet(next((package / "evaluation").glob("oos_predictions*")))
    assert {f"trade_path_{t}_{kind}" for t in TASKS for kind in ("true", "pred")} <= set(oos)


@pytest.mark.slow
def test_predictor_serves_what_the_final_models_compute(
    package: Path, eth_frame: pd.DataFrame
) -> None:
    predictor = Predictor(package)
    served = predictor.predict(eth_frame, last=300)
    X = predictor.feature_matrix(eth_frame).to_numpy(dtype=np.float32)[-300:]

    mean, scale = load_native_head(package, "position_size").predict_distribution(X)
    np.testing.assert_allclose(served["position_size"], mean, atol=1e-5)
    np.testing.assert_allclose(served["position_size_scale"], scale, atol=1e-5)
    assert (served["position_size_scale"] > 0).all()

    values = load_native_head(package, "trade_path").predict(X)
    for i, task in enumerate(TASKS):
        np.testing.assert_allclose(served[f"trade_path_{task}"], values[:, i], atol=1e-5)

    latest = predictor.predict_latest(eth_frame)
    assert latest["position_size_scale"] == pytest.approx(scale[-1], abs=1e-5)
    assert latest["trade_path_mfe"] == pytest.approx(values[-1, 2], abs=1e-5)
