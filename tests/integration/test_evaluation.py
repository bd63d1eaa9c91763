"""Every package says how its models would have traded out of sample: backtest beside
baselines, importance, the risk head and a self-contained report."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.data import DataSource
from quantrain.evaluate.backtest import METRIC_KEYS, MIN_ANNUALISE_DAYS
from quantrain.evaluate.risk import CLAMP, STATE_FEATURES, clamp_multiplier
from quantrain.package import Predictor, load_native_head, read_manifest
from quantrain.pipeline import run_symbol

from ..conftest import SAMPLE_DIR, fast_job, package_path


@pytest.fixture(scope="module")
def package(trained_store: Path) -> Path:
    return package_path(trained_store, "ETH-BTC")


def test_backtest_and_baselines_are_in_the_package(package: Path) -> None:
    manifest = read_manifest(package)
    for rel in (
        "evaluation/backtest.json",
        "evaluation/equity.parquet",
        "report.html",
        "evaluation/oos_predictions.parquet",
        "evaluation/trades.parquet",
    ):
        assert rel in manifest["files"]  # checksummed like every other file
    body = json.loads((package / "evaluation/backtest.json").read_text())
    assert set(body["backtest"]) == {"model", "buy_and_hold", "flat", "random_median"}
    model = body["backtest"]["model"]
    short = model["days"] < MIN_ANNUALISE_DAYS  # 20 days of sample data: not annualised
    for key in METRIC_KEYS:
        if key in ("annual_return", "sharpe", "sortino") and short:
            assert model[key] is None, key
        else:
            assert np.isfinite(model[key]), key
    assert body["verdict"] and summary_verdict(manifest) == body["verdict"]
    assert body["intervals"]["total_return"]["low"] <= model["total_return"]
    assert 0 <= body["random_percentile"] <= 100
    assert body["backtest"]["flat"]["total_return"] == 0.0
    assert len(body["folds"]) == len(manifest["folds"])
    summary = manifest["evaluation"]
    assert summary["total_return"] == model["total_return"]


def summary_verdict(manifest: dict) -> str:
    return str(manifest["evaluation"]["verdict"])


def test_trades_are_entered_only_on_confident_out_of_sample_bars(package: Path) -> None:
    config = json.loads((package / "evaluation/backtest.json").read_text())["config"]
    oos = pd.read_parquet(package / "evaluation/oos_predictions.parquet")
    trades = pd.read_parquet(package / "evaluation/trades.parquet")
    assert len(trades) > 0
    by_time = oos.set_index("timestamp")
    entries = by_time.loc[trades["signal_time"]]  # the fill is at the next bar's open
    assert (trades["entry_time"] > trades["signal_time"]).all()
    p_long, p_short = entries["direction_p_BUY"].to_numpy(), entries["direction_p_SELL"].to_numpy()
    confident = np.maximum(p_long, p_short) >= config["threshold"]
    assert confident.all()
    longs = trades["side"].to_numpy() > 0
    assert (p_long[longs] >= p_short[longs]).all()
    assert (trades["exit_time"] > trades["entry_time"]).all()
    assert not (trades["entry_bar"].to_numpy()[1:] < trades["exit_bar"].to_numpy()[:-1]).any()


def test_importance_is_mean_abs_shap_on_held_out_rows(package: Path) -> None:
    importance = pd.read_csv(package / "heads/direction/importance.csv")
    assert set(importance["method"]) == {"mean_abs_shap"}
    assert importance["importance"].is_monotonic_decreasing
    assert importance["importance"].iloc[0] > 0


def test_the_report_is_self_contained_with_every_plot(package: Path) -> None:
    html = (package / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 5  # equity+drawdown, folds, confusion, calibration, importance
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "http://" not in html and "https://" not in html and "<script" not in html


@pytest.fixture(scope="module")
def risky_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ETH-BTC with a lower entry threshold: enough out-of-sample trades (127) for the risk
    head to be fit on the earlier ones, scored on the later ones and shipped."""
    store = tmp_path_factory.mktemp("risky")
    job = fast_job(store, evaluate={"threshold": 0.40})
    result = run_symbol(DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet"), job)
    assert result.ok, result.error
    return package_path(store, "ETH-BTC")


def test_the_risk_head_is_clamped_in_onnx_and_in_the_predictor(risky_package: Path) -> None:
    package = risky_package
    metrics = read_manifest(package)["heads"]["risk_multiplier"]["metrics"]
    assert metrics["heldout_trades"] >= 20  # it was scored on trades it was not fit on
    assert metrics["heldout_model_label_score"] >= metrics["heldout_constant_label_score"]
    predictor = Predictor(package)
    assert "risk_multiplier" not in predictor.heads  # it reads equity state, not market bars
    rng = np.random.default_rng(3)
    states = np.column_stack(
        [
            rng.uniform(0.3, 2.0, 200),  # equity ratio
            rng.uniform(0.0, 0.6, 200),  # drawdown
            rng.uniform(0, 1, 200),
            rng.uniform(0, 1, 200),
            rng.uniform(0, 10, 200),
            rng.integers(0, 15, 200),
            rng.uniform(0, 0.05, 200),
        ]
    )
    native = clamp_multiplier(load_native_head(package, "risk_multiplier").predict(states))
    served = np.array(
        [predictor.risk_multiplier(dict(zip(STATE_FEATURES, row, strict=True))) for row in states]
    )
    assert ((served >= CLAMP[0]) & (served <= CLAMP[1])).all()
    np.testing.assert_allclose(served, native, atol=1e-5)


def test_a_package_without_a_risk_model_answers_one(tmp_path: Path) -> None:
    job = fast_job(tmp_path, evaluate={"risk": {"enabled": False}})
    result = run_symbol(DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet"), job)
    assert result.ok, result.error
    (version,) = (tmp_path / "ETH-BTC" / "core").glob("2*")
    assert "risk_multiplier" not in read_manifest(version)["heads"]
    assert Predictor(version).risk_multiplier({}) == 1.0
    notes = json.loads((version / "evaluation/backtest.json").read_text())["notes"]
    assert any("risk model disabled" in n for n in notes)


def test_the_report_command_prints_the_backtest(package: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(package)])
    assert result.exit_code == 0, result.output
    assert "backtest (out of sample, after costs)" in result.output
    assert "random strategies" in result.output
    assert str(package / "report.html") in result.output


def test_an_older_package_gets_a_report_outside_itself(tmp_path: Path) -> None:
    old = Path(__file__).parents[1] / "fixtures" / "package_v1"
    out = tmp_path / "old.html"
    result = CliRunner().invoke(main, ["report", str(old), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "not available for this package" in out.read_text()
    assert not (old / "report.html").exists()
