"""``family: auto``: every candidate runs the head's folds, the best pooled fold score wins, the
untouched holdout takes no part, and the package records the winner and every score."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig, build_job
from quantrain.data import DataSource
from quantrain.errors import ConfigError
from quantrain.features import get_feature_set
from quantrain.pipeline import build_dataset, development_split, fit_suite, run_symbol
from quantrain.preflight import job_problems
from quantrain.suite.dataset import Dataset
from quantrain.suite.family_choice import DEFAULT_CANDIDATES, candidates_of, choose_family, pick
from quantrain.suite.fit import head_folds
from quantrain.tuning.search import space_for
from tests.conftest import SAMPLE_DIR, package_path

AUTO_HEAD = {
    "name": "direction",
    "target": "direction",
    "family": "auto",
    "candidates": ["ftrl", "xgboost"],
}


def auto_job(**extra: object) -> JobConfig:
    return build_job({"suite": {"name": "core", "heads": [AUTO_HEAD]}, **extra})


@pytest.fixture(scope="module")
def data(eth_frame: pd.DataFrame) -> Dataset:
    return build_dataset(eth_frame, get_feature_set("standard"), auto_job())


def test_pick_takes_the_best_finite_score_first_on_a_tie() -> None:
    assert pick({"a": 0.4, "b": 0.6, "c": float("nan")}, higher_is_better=True) == "b"
    assert pick({"a": 0.4, "b": 0.6}, higher_is_better=False) == "a"
    assert pick({"a": 0.5, "b": 0.5}, higher_is_better=True) == "a"
    assert pick({"a": float("nan"), "b": float("nan")}, higher_is_better=True) == "a"


def test_the_winner_has_the_best_pooled_fold_score(data: Dataset) -> None:
    job = auto_job()
    development, folds, _, _ = development_split(data, job)
    (head,) = job.suite.heads
    chosen, run, choice = choose_family(head, development, folds, job)
    assert choice is not None and choice.metric == "balanced_accuracy"
    alone = {
        family: head_folds(
            head.model_copy(update={"family": family, "candidates": ()}), development, folds, job
        ).pooled()["balanced_accuracy"]
        for family in ("ftrl", "xgboost")
    }
    assert choice.scores == pytest.approx(alone)
    assert choice.winner == max(alone, key=lambda k: alone[k])
    assert chosen.family == choice.winner and not chosen.candidates
    assert run.pooled()["balanced_accuracy"] == pytest.approx(alone[choice.winner])


def test_a_lower_is_better_metric_picks_the_lowest(data: Dataset) -> None:
    job = auto_job(tune={"head_metric": {"direction": "log_loss"}})
    development, folds, _, _ = development_split(data, job)
    _, _, choice = choose_family(job.suite.heads[0], development, folds, job)
    assert choice is not None and choice.metric == "log_loss" and not choice.higher_is_better
    assert choice.scores[choice.winner] == min(choice.scores.values())


def test_the_holdout_takes_no_part_in_the_choice(data: Dataset) -> None:
    """Scrambling the holdout rows' labels changes the holdout score, never the choice."""
    job = auto_job()
    _, _, kept_out, _ = development_split(data, job)
    assert kept_out is not None
    rng = np.random.default_rng(0)
    direction = data.targets["direction"].copy()
    direction[kept_out.test] = rng.integers(0, 3, len(kept_out.test))
    scrambled = replace(data, targets={**data.targets, "direction": direction})
    spec = get_feature_set("standard")
    common = {"symbol": "ETH-BTC", "timeframe": "5m", "job": job, "spec": spec}
    first = fit_suite(data, fingerprint={}, **common).heads[0]
    second = fit_suite(scrambled, fingerprint={}, **common).heads[0]
    assert first.family_selection == second.family_selection
    assert first.holdout != second.holdout


def test_the_package_records_the_winner_and_every_score(tmp_path: Path) -> None:
    job = auto_job(store=str(tmp_path))
    source = DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet")
    result = run_symbol(source, job)
    assert result.ok, result.error
    manifest = json.loads((package_path(tmp_path, "ETH-BTC") / "manifest.json").read_text())
    head = manifest["heads"]["direction"]
    selection = head["family_selection"]
    assert set(selection["scores"]) == {"ftrl", "xgboost"}
    assert head["family"] == selection["winner"]
    assert head["metrics"]["balanced_accuracy"] == pytest.approx(
        selection["scores"][selection["winner"]]
    )


def test_candidates_config_and_preflight() -> None:
    assert candidates_of(auto_job(), auto_job().suite.heads[0]) == ("ftrl", "xgboost")
    default = build_job({"model": {"family": "auto"}})
    assert candidates_of(default, default.suite.heads[0]) == DEFAULT_CANDIDATES
    assert job_problems(default) == []
    with pytest.raises(ConfigError, match="candidates are for family: auto"):
        build_job({"suite": {"name": "s", "heads": [{**AUTO_HEAD, "family": "xgboost"}]}})
    typo = build_job(
        {"suite": {"name": "s", "heads": [{**AUTO_HEAD, "candidates": ["ftrl", "xgbost"]}]}}
    )
    assert any("xgbost" in p for p in job_problems(typo))
    tuned = auto_job(tune={"enabled": True})
    assert any("cannot be tuned" in p for p in job_problems(tuned))
    with pytest.raises(ConfigError, match="cannot be tuned"):
        space_for(auto_job(), auto_job().suite.heads[0])
