"""The command line, driven as a user would: exit codes, messages, files on disk."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from quantrain.cli import main
from quantrain.package import load_native_head

from ..conftest import package_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    out = frame.copy()
    if isinstance(out["timestamp"].dtype, pd.DatetimeTZDtype):
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(path, index=False)
    return path


def _set(frame: pd.DataFrame, rows: list[int], column: str, value: object) -> pd.DataFrame:
    out = frame.astype({column: object}) if isinstance(value, str) else frame.copy()
    out.loc[rows, column] = value
    return out


BAD_INPUTS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "empty": (lambda f: f.head(0), "empty"),
    "missing columns": (lambda f: f.drop(columns=["close"]), "close"),
    "non-numeric prices": (lambda f: _set(f, [10, 11], "open", "abc"), "numeric"),
    "NaN prices": (lambda f: _set(f, [20], "close", np.nan), "NaN"),
    "non-positive prices": (lambda f: _set(f, [30], "low", -1.0), "positive"),
    "high below low": (lambda f: _set(f, [40], "high", f.loc[40, "low"] * 0.5), "high"),
    "close outside range": (lambda f: _set(f, [50], "close", f.loc[50, "high"] * 2), "close"),
    "unparseable timestamps": (
        lambda f: _set(f.assign(timestamp=f["timestamp"].astype(str)), [60], "timestamp", "soon"),
        "timestamp",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_naming_file_and_problem(
    case: str, eth_frame: pd.DataFrame, tmp_path: Path
) -> None:
    corrupt, needle = BAD_INPUTS[case]
    frame = eth_frame.head(300).reset_index(drop=True)
    path = _csv(corrupt(frame), tmp_path / "ETH-BTC_5m.csv")
    result = invoke("data", "validate", str(path))
    assert result.exit_code == 2, result.output
    assert str(path) in result.output
    assert needle.lower() in result.output.lower()
    assert "Traceback" not in result.output


def test_mixed_timeframes_exit_2(eth_frame: pd.DataFrame, tmp_path: Path) -> None:
    five_minute = eth_frame.head(200)
    hourly = eth_frame.iloc[200::12].head(200)
    path = tmp_path / "ETH-BTC_5m.parquet"
    pd.concat([five_minute, hourly]).to_parquet(path)
    result = invoke("data", "validate", str(path))
    assert result.exit_code == 2
    assert str(path) in result.output and "timeframe" in result.output.lower()


def test_repairs_are_reported_and_exit_0(eth_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = eth_frame.head(300)
    shuffled = pd.concat([frame.iloc[100:], frame.iloc[:100], frame.iloc[[5, 6]]])
    path = _csv(shuffled, tmp_path / "ETH-BTC_5m.csv")
    result = invoke("data", "validate", str(path))
    assert result.exit_code == 0, result.output
    assert "duplicate" in result.output.lower()


def test_validate_a_directory_of_real_data(sample_dir: Path) -> None:
    result = invoke("data", "validate", str(sample_dir))
    assert result.exit_code == 0, result.output
    assert result.output.count("5m") >= 6


def test_one_corrupt_symbol_of_three_stops_the_run_before_training(
    sample_dir: Path, tmp_path: Path
) -> None:
    """The preflight reads every file before Ray starts: a corrupt one is refused up front
    (exit 2, naming it), not found as a FAILED row after the others trained."""
    data = tmp_path / "data"
    data.mkdir()
    for symbol in ("ETH-BTC", "XLM-BTC"):
        (data / f"{symbol}_5m.parquet").write_bytes(
            (sample_dir / f"{symbol}_5m.parquet").read_bytes()
        )
    (data / "LTC-BTC_5m.parquet").write_bytes(b"PAR1 this is not parquet")
    store = tmp_path / "models"
    result = invoke("train", "--data", str(data), "--store", str(store))
    assert result.exit_code == 2, result.output
    assert "preflight: 1 problem" in result.output
    assert "LTC-BTC" in result.output and "LTC-BTC_5m.parquet" in result.output
    assert "ETH-BTC" not in result.output and "XLM-BTC" not in result.output
    assert not store.exists()


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_run_a_job_file_with_overrides(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: tiny\ndata: {symbols: [XMR-BTC]}\nmodel: {family: lightgbm}\n")
    result = invoke("run", str(job), "--set", f"store={tmp_path / 'm'}", "--set", "split.n_folds=2")
    assert result.exit_code == 0, result.output
    assert "tiny: run summary" in result.output
    (package,) = (tmp_path / "m/XMR-BTC/core").glob("2*")
    assert '"n_folds": 2' in (package / "manifest.json").read_text()


def test_predict_matches_native_models(
    trained_store: Path, sample_dir: Path, tmp_path: Path
) -> None:
    package = package_path(trained_store, "ETH-BTC")
    out = tmp_path / "pred.parquet"
    result = invoke(
        "predict", str(package), str(sample_dir / "ETH-BTC_5m.parquet"), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    predictions = pd.read_parquet(out)
    from quantrain.data import read_ohlcv
    from quantrain.package import Predictor

    frame = read_ohlcv(sample_dir / "ETH-BTC_5m.parquet").frame
    X = Predictor(package).feature_matrix(frame).to_numpy()
    complete = predictions["features_complete"].to_numpy()
    native = load_native_head(package, "position_size").predict(X[complete])
    assert np.max(np.abs(predictions.loc[complete, "position_size"] - native)) <= 1e-5
    proba = load_native_head(package, "direction").predict_proba(X[complete])
    got = predictions.loc[complete, ["direction_p_SELL", "direction_p_HOLD", "direction_p_BUY"]]
    assert np.max(np.abs(got.to_numpy() - proba)) <= 1e-5


def test_models_promote_and_pull(trained_store: Path, tmp_path: Path) -> None:
    import shutil

    store = tmp_path / "store"
    shutil.copytree(trained_store, store)
    version = package_path(store, "ETH-BTC").name
    promoted = invoke("models", "promote", "ETH-BTC", version, "--store", str(store))
    assert promoted.exit_code == 0 and f"approved -> {version}" in promoted.output
    pulled = invoke(
        "models", "pull", "ETH-BTC", "--store", str(store), "--to", str(tmp_path / "live")
    )
    assert pulled.exit_code == 0, pulled.output
    assert (tmp_path / "live/manifest.json").is_file()
    missing = invoke(
        "models",
        "pull",
        "ETH-BTC",
        "--store",
        str(store),
        "--version",
        "nope",
        "--to",
        str(tmp_path / "other"),
    )
    assert missing.exit_code == 2 and "no complete version 'nope'" in missing.output


def test_job_file_unknown_key_names_key_file_and_allowed(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("split:\n  n_fold: 4\n")
    result = invoke("run", str(job))
    assert result.exit_code == 2
    assert str(job) in result.output and "split.n_fold" in result.output
    assert "n_folds" in result.output and "Traceback" not in result.output


def test_job_file_bad_value_lists_allowed_values(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("model: {device: tpu}\n")
    result = invoke("run", str(job))
    assert result.exit_code == 2
    assert "model.device" in result.output and "'cuda'" in result.output


def test_unknown_model_family_is_a_user_error(tmp_path: Path, sample_dir: Path) -> None:
    result = invoke(
        "train",
        "--data",
        str(sample_dir / "ETH-BTC_5m.parquet"),
        "--model",
        "xgbost",
        "--store",
        str(tmp_path),
    )
    assert result.exit_code == 2
    assert "Did you mean xgboost" in result.output


def test_doctor_reports_devices_and_ray() -> None:
    result = invoke("doctor")
    assert result.exit_code == 0
    assert "CUDA GPUs:" in result.output and "ray 2.60" in result.output
    assert "torch families" in result.output and "device auto -> " in result.output


def test_python_dash_m_works_in_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "quantrain", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    for command in ("run", "train", "predict", "data", "models", "doctor"):
        assert command in done.stdout


def test_models_verify_names_the_damaged_package(trained_store: Path, tmp_path: Path) -> None:
    import shutil

    store = tmp_path / "store"
    shutil.copytree(trained_store, store)
    clean = invoke("models", "verify", "--store", str(store))
    assert clean.exit_code == 0
    assert "2 of 2 packages verified" in clean.output
    onnx = package_path(store, "LTC-BTC") / "heads/direction/model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\x00")
    damaged = invoke("models", "verify", "--store", str(store))
    assert damaged.exit_code == 2
    assert "1 of 2 packages verified" in damaged.output
    assert "heads/direction/model.onnx" in damaged.output
