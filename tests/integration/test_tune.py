"""Tuning on the real local Ray cluster: ASHA cuts trials, the best params land in the package,
and a retrain with them (``--params-from``) reproduces the best trial's fold scores."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.jobs import run_job
from quantrain.package import verify_package
from quantrain.tuning.search import BEST_FILE, COMPLETED, EARLY_STOPPED, TABLE_FILE, SearchProgress

from ..conftest import SAMPLE_DIR, fast_job, package_path

pytestmark = [pytest.mark.ray, pytest.mark.slow]

N_FOLDS = 3
#: A small head (few rounds) so 8 trials x 3 folds stay quick.
HEAD: dict[str, Any] = {
    "name": "direction",
    "target": "direction",
    "params": {"n_estimators": 40, "early_stopping_rounds": 10},
}
#: Cheap packaging: no random baselines, no risk head.
EVALUATE = {"random_strategies": 0, "risk": {"enabled": False}}


def _fold_scores(package: Path, metric: str) -> list[float]:
    metrics = json.loads((package / "metrics.json").read_text())
    return [fold[metric] for fold in metrics["heads"]["direction"]["folds"]]


@pytest.mark.usefixtures("ray_cluster")
def test_tune_then_train_packages_the_search_and_params_from_reproduces_it(
    tmp_path: Path,
) -> None:
    store = tmp_path / "models"
    job = fast_job(
        store,
        data={"symbols": ["ETH-BTC"]},
        split={"n_folds": N_FOLDS},
        suite={"heads": [HEAD]},
        evaluate=EVALUATE,
        tune={
            "enabled": True,
            "num_samples": 8,
            "max_concurrent_trials": 2,
            "seed": 3,
            # A wide space (tiny learning rates cannot learn in 40 rounds) and a steep cut
            # (ASHA keeps the top third at fold 1), so some trial is reliably cut early.
            "space": {
                "learning_rate": {"loguniform": [0.0005, 0.5]},
                "max_depth": {"int": [1, 10]},
            },
            "reduction_factor": 3,
        },
    )
    events: list[SearchProgress] = []
    lock = threading.Lock()  # the hook is not picklable, as a real progress display is not

    def on_tune(progress: SearchProgress) -> None:
        with lock:
            events.append(progress)

    summary = run_job(job, on_tune=on_tune)
    assert not summary.failed, summary.failed[0].error
    assert events[-1].done == 8 and events[-1].running == 0
    assert events[-1].early_stopped >= 1 and events[-1].best is not None

    package = package_path(store, "ETH-BTC")
    manifest = verify_package(package)  # every file listed and checksummed
    assert {TABLE_FILE, BEST_FILE} <= set(manifest["files"])
    table = pd.read_csv(package / TABLE_FILE)
    assert len(table) == 8 and set(table["head"]) == {"direction"}
    stopped = table[table["status"] == EARLY_STOPPED]
    completed = table[table["status"] == COMPLETED]
    assert len(stopped) >= 1 and (stopped["folds"] < N_FOLDS).all()
    assert len(completed) >= 1 and (completed["folds"] == N_FOLDS).all()
    assert completed[[f"fold_{i}" for i in range(N_FOLDS)]].notna().all().all()

    best = json.loads((package / BEST_FILE).read_text())["direction"]
    assert best["metric"] == "balanced_accuracy" and best["trials"] == 8
    assert best["score"] == pytest.approx(completed["mean"].max())
    assert manifest["tuning"]["direction"]["best_trial"] == best["best_trial"]
    trained_with = manifest["job"]["config"]["suite"]["heads"][0]["params"]
    assert {k: trained_with[k] for k in best["params"]} == best["params"]
    # Picked from 8 trials: the package says so, deflates its Sharpe by it, and scores the
    # chance that the pick overfits (CSCV over the completed trials' fold scores).
    selection = manifest["selection"]
    assert selection["trials"] == 8
    assert 0.0 <= selection["deflated_sharpe"] <= 1.0
    overfit = selection["pbo"]["direction"]
    if len(completed) >= 2:
        assert 0.0 <= overfit["pbo"] <= 1.0 and overfit["trials"] == len(completed)
        assert overfit["dropped"] == 8 - len(completed) and overfit["folds"] == N_FOLDS
    else:
        assert overfit["pbo"] is None and "trials" in overfit["reason"]
    # The untouched holdout is after every fold the search scored.
    assert manifest["holdout"]["start"] > manifest["folds"][-1]["test_end"]
    # The package's folds are the best trial's folds: same code, same data, same params.
    assert _fold_scores(package, "balanced_accuracy") == pytest.approx(
        best["fold_scores"], abs=1e-6
    )

    # Retrain from the package's params through the CLI, without tuning.
    again = tmp_path / "again"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(SAMPLE_DIR / "ETH-BTC_5m.parquet"),
            "--store",
            str(again),
            "--params-from",
            str(package),
            "--set",
            f"split.n_folds={N_FOLDS}",
            "--set",
            "suite.heads=[{name: direction, target: direction, params: "
            "{n_estimators: 40, early_stopping_rounds: 10}}]",
            "--set",
            "evaluate.random_strategies=0",
            "--set",
            "evaluate.risk.enabled=false",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    retrained = package_path(again, "ETH-BTC")
    assert _fold_scores(retrained, "balanced_accuracy") == pytest.approx(
        best["fold_scores"], abs=1e-6
    )
    assert not (retrained / TABLE_FILE).exists()  # not tuned itself


def test_params_from_an_untuned_package_exits_2(trained_store: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(SAMPLE_DIR / "ETH-BTC_5m.parquet"),
            "--store",
            str(tmp_path / "m"),
            "--params-from",
            str(package_path(trained_store, "ETH-BTC")),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "was not tuned" in result.output and "Traceback" not in result.output
