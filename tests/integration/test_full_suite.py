"""The ``full`` suite: every bar head trained, scored out of sample, exported with parity and
packaged (regime thresholds included), on one bundled pair; all six pairs in a slow test."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.config import NAMED_SUITES, HeadConfig, build_job
from quantrain.data import DataSource
from quantrain.features import get_feature_set
from quantrain.jobs import sample_data_dir
from quantrain.package import Predictor, verify_package
from quantrain.pipeline import build_dataset, run_symbol
from quantrain.suite.dataset import target_of

ROOT = Path(__file__).resolve().parents[2]
FULL = NAMED_SUITES["full"]
#: Bar targets left out of ``full`` (by cost) that must still train, export and package.
EXTRA = tuple(HeadConfig(name=t, target=t) for t in ("mfe", "mae", "time_to_hit"))
SMALL = {"n_estimators": 15}


@pytest.fixture(scope="module")
def full_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """ETH-BTC with every head of ``full`` plus the optional bar heads (few boosting rounds
    each, to stay quick)."""
    store = tmp_path_factory.mktemp("full-store")
    heads = [{**h.model_dump(), "params": {**h.params, **SMALL}} for h in FULL + EXTRA]
    job = build_job(
        {
            "store": str(store),
            "suite": {"name": "full", "heads": heads},
            "evaluate": {"random_strategies": 10},
            "model": {"device": "cpu"},
        }
    )
    source = DataSource("ETH-BTC", "5m", sample_data_dir() / "ETH-BTC_5m.parquet")
    started = time.perf_counter()
    result = run_symbol(source, job)
    assert result.ok, result.error
    print(f"full suite on ETH-BTC: {time.perf_counter() - started:.1f}s")
    (package,) = (store / "ETH-BTC" / "full").glob("2*")
    return package, job.model_dump()


def test_every_head_has_oos_metrics_and_onnx_parity(
    full_package: tuple[Path, dict[str, Any]],
) -> None:
    package, _ = full_package
    manifest = verify_package(package)
    metrics = json.loads((package / "metrics.json").read_text())
    assert {h.name for h in FULL + EXTRA} <= set(manifest["heads"])
    for head in FULL + EXTRA:
        entry = manifest["heads"][head.name]
        target = target_of(head.target)
        assert entry["target"] == head.target and entry["task"] == target.task
        assert entry["classes"] == (list(target.classes) if target.classes else None)
        assert entry["parity_max_abs_diff"] <= 1e-4, head.name
        assert entry["parity_rows"] > 0
        key = "balanced_accuracy" if target.task == "classification" else "mae"
        assert np.isfinite(entry["metrics"][key]) and entry["metrics"]["rows"] > 1000, head.name
        assert len(metrics["heads"][head.name]["folds"]) == len(manifest["folds"]) == 3
        assert (entry["thresholds"] is not None) == target.binned, head.name
    summary = manifest["summary_metrics"]  # what the run table shows: one key metric per head
    assert {f"{h.name}.mae" for h in FULL if h.target == "stop_loss"} <= set(summary)
    assert "volatility_regime.balanced_accuracy" in summary


def test_regime_thresholds_are_the_quartiles_of_all_rows(
    full_package: tuple[Path, dict[str, Any]], eth_frame: pd.DataFrame
) -> None:
    package, config = full_package
    manifest = verify_package(package)
    thresholds = manifest["heads"]["volatility_regime"]["thresholds"]
    data = build_dataset(eth_frame, get_feature_set("standard"), build_job(config))
    raw = data.targets["volatility_regime"]
    np.testing.assert_allclose(thresholds, np.quantile(raw, [0.25, 0.5, 0.75]), rtol=1e-12)
    assert thresholds == sorted(thresholds) and thresholds[0] > 0


def test_predictor_runs_every_head(
    full_package: tuple[Path, dict[str, Any]], eth_frame: pd.DataFrame
) -> None:
    package, _ = full_package
    predictor = Predictor(package)
    assert {h.name for h in FULL} <= set(predictor.heads)
    out = predictor.predict(eth_frame, last=50)
    assert len(out) == 50
    for head in FULL:
        classes = target_of(head.target).classes
        if classes:
            probs = out[[f"{head.name}_p_{c}" for c in classes]].to_numpy()
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        else:
            assert np.isfinite(out[head.name].to_numpy(np.float64)).all(), head.name
    # The q90 stop-loss model asks for more room than the q50 one on most bars.
    assert (out["stop_loss_q90"] > out["stop_loss_q50"]).mean() > 0.8


def test_the_run_table_keeps_one_column_per_head(
    full_package: tuple[Path, dict[str, Any]],
) -> None:
    from rich.console import Console

    from quantrain.pipeline import SymbolResult
    from quantrain.ui import summary_table

    manifest = verify_package(full_package[0])
    summary = manifest["summary_metrics"]
    result = SymbolResult("ETH-BTC", ok=True, rows=5760, metrics=summary, version="v" * 23)
    table = summary_table([result], width=160)
    headers = [str(c.header) for c in table.columns]
    assert "regime bal.acc" in headers and "SL q50 rel.MAE" in headers
    assert len([h for h in headers if "bal.acc" in h or "MAE" in h]) == len(FULL + EXTRA)
    console = Console(width=160, record=True)
    console.print(table)
    relative = summary["stop_loss_q50.mae"] / summary["stop_loss_q50.baseline_mae"]
    assert f"{relative:.2f}" in console.export_text()  # the MAE relative to its baseline
    assert "…" not in console.export_text()  # nothing cut at 160 columns


@pytest.mark.slow
def test_full_job_trains_all_six_pairs(tmp_path: Path, ray_cluster: None) -> None:
    """``quantrain run jobs/full.yaml`` as shipped (default rounds), through Ray."""
    from quantrain.cli import main

    started = time.perf_counter()
    result = CliRunner().invoke(
        main,
        ["run", str(ROOT / "jobs" / "full.yaml"), "--set", f"store={tmp_path / 'models'}"],
        catch_exceptions=False,
    )
    print(f"full suite, six pairs: {time.perf_counter() - started:.1f}s")
    assert result.exit_code == 0, result.output
    packages = sorted((tmp_path / "models").glob("*/full/2*"))
    assert len(packages) == 6
    for package in packages:
        manifest = verify_package(package)
        assert {h.name for h in FULL} <= set(manifest["heads"]), package
        for head in FULL:
            assert manifest["heads"][head.name]["parity_max_abs_diff"] <= 1e-4
