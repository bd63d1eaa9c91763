"""The Ray-free parts of tuning: search-space specs, params files, the trial table, warm-start
refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from quantrain.config import build_job
from quantrain.errors import ConfigError, ModelError
from quantrain.features import get_feature_set
from quantrain.models import get_family
from quantrain.suite.fit import warm_start_problems
from quantrain.tuning.search import (
    BEST_FILE,
    COMPLETED,
    EARLY_STOPPED,
    FAILED,
    HeadSearch,
    TrialRecord,
    TuneOutcome,
    load_params,
    space_for,
    status_of,
    with_params,
)
from quantrain.tuning.space import ParamSpec, SpaceError, parse_param, parse_space, trial_params


def test_space_entries_parse_into_specs() -> None:
    space = parse_space(
        {
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "max_depth": {"int": [2, 8]},
            "num_leaves": {"logint": [4, 64]},
            "subsample": {"uniform": [0.5, 1.0]},
            "grow_policy": {"choice": ["depthwise", "lossguide"]},
            "max_bin": 128,
            "gamma": None,
        }
    )
    assert space["learning_rate"] == ParamSpec("learning_rate", "loguniform", 0.01, 0.3)
    assert space["max_depth"] == ParamSpec("max_depth", "int", 2, 8)
    assert space["grow_policy"] == ParamSpec(
        "grow_policy", "choice", values=("depthwise", "lossguide")
    )
    assert space["max_bin"] == ParamSpec("max_bin", "fixed", values=(128,))
    assert space["gamma"] is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"loguniform": [0.0, 0.3]}, "low > 0"),
        ({"uniform": [0.9, 0.1]}, "low < high"),
        ({"int": [2.5, 8]}, "must be integers"),
        ({"int": [2]}, r"needs \[low, high\]"),
        ({"uniform": ["a", "b"]}, "two numbers"),
        ({"normal": [0, 1]}, "unknown kind 'normal'"),
        ({"int": [2, 8], "log": True}, "expected one of"),
        ({"choice": []}, "non-empty list"),
        ([0.01, 0.3], "bare list is ambiguous"),
    ],
)
def test_bad_space_entries_are_named_with_the_fix(raw: Any, message: str) -> None:
    with pytest.raises(SpaceError, match=message) as caught:
        parse_param("learning_rate", raw, where="tune.space")
    assert "tune.space.learning_rate" in str(caught.value)


def test_a_bad_space_in_a_job_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tune\.space\.max_depth: int bounds"):
        build_job({"tune": {"space": {"max_depth": {"int": [1.5, 4]}}}})
    with pytest.raises(ConfigError, match=r"tune\.heads names \['nope'\]"):
        build_job({"tune": {"heads": ["nope"]}})
    with pytest.raises(ConfigError, match="no known direction"):
        build_job({"tune": {"head_metric": {"direction": "sharpe"}}})


def test_job_space_overlays_the_family_default() -> None:
    job = build_job(
        {
            "tune": {
                "space": {"max_depth": {"int": [2, 4]}, "reg_lambda": None},
                "head_space": {"direction": {"learning_rate": 0.1}},
            }
        }
    )
    direction, size = job.suite.heads
    space = space_for(job, direction)
    assert space["max_depth"] == ParamSpec("max_depth", "int", 2, 4)
    assert "reg_lambda" not in space  # null takes it out of the search
    assert space["learning_rate"].kind == "fixed"
    assert space_for(job, size)["learning_rate"].kind == "loguniform"  # head_space is per head


def test_a_family_without_a_default_space_needs_one() -> None:
    job = build_job(
        {"suite": {"heads": [{"name": "d", "target": "direction", "family": "stacking"}]}}
    )
    with pytest.raises(ConfigError, match="nothing to search"):
        space_for(job, job.suite.heads[0])


def test_the_same_seeded_sampler_proposes_the_same_params() -> None:
    job = build_job({})
    space = space_for(job, job.suite.heads[0])

    def proposals() -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=7))
        out = []
        for i in range(3):
            trial = study.ask()
            out.append(trial_params(trial, space))
            study.tell(trial, float(i))
        return out

    first = proposals()
    assert first == proposals()
    assert 2 <= first[0]["max_depth"] <= 8 and isinstance(first[0]["max_depth"], int)


def _search(trials: list[TrialRecord], higher: bool = True) -> HeadSearch:
    return HeadSearch("direction", "xgboost", "balanced_accuracy", higher, 3, tuple(trials))


def test_the_best_trial_is_chosen_among_trials_that_ran_every_fold() -> None:
    lucky = TrialRecord("a", {"max_depth": 2}, (0.9,), EARLY_STOPPED, 0.1)
    good = TrialRecord("b", {"max_depth": 3}, (0.5, 0.6, 0.7), COMPLETED, 0.3)
    worse = TrialRecord("c", {"max_depth": 4}, (0.4, 0.5, 0.6), COMPLETED, 0.3)
    broken = TrialRecord("d", {"max_depth": 5}, (), FAILED, 0.0, error="boom")
    search = _search([lucky, good, worse, broken])
    assert search.best().trial == "b"
    assert _search([lucky, good, worse], higher=False).best().trial == "c"
    assert search.counts() == {COMPLETED: 2, EARLY_STOPPED: 1, FAILED: 1}
    assert status_of(1, 3, failed=False) == EARLY_STOPPED
    assert status_of(3, 3, failed=False) == COMPLETED


def test_the_trial_table_and_best_params_files() -> None:
    outcome = TuneOutcome(
        "ETH-BTC",
        (
            _search(
                [
                    TrialRecord("a", {"max_depth": 2, "eta": 0.1}, (0.3,), EARLY_STOPPED, 0.1),
                    TrialRecord("b", {"max_depth": 3, "eta": 0.2}, (0.5, 0.6, 0.7), COMPLETED, 1),
                ]
            ),
        ),
    )
    table = outcome.table()
    assert list(table["status"]) == [EARLY_STOPPED, COMPLETED]
    assert list(table["folds"]) == [1, 3]
    assert table.loc[1, "fold_2"] == 0.7 and pd.isna(table.loc[0, "fold_2"])
    assert table.loc[1, "mean"] == pytest.approx(0.6)
    files = outcome.files()
    best = json.loads(files[BEST_FILE])
    assert best["direction"]["params"] == {"max_depth": 3, "eta": 0.2}
    assert best["direction"]["fold_scores"] == [0.5, 0.6, 0.7]
    assert "param.max_depth" in files["tuning.csv"].splitlines()[0]


def test_params_from_a_yaml_file_or_a_tuning_json(tmp_path: Path) -> None:
    plain = tmp_path / "params.yaml"
    plain.write_text("direction: {max_depth: 3, learning_rate: 0.05}\n")
    assert load_params(plain) == {"direction": {"max_depth": 3, "learning_rate": 0.05}}
    package = tmp_path / "package"
    package.mkdir()
    (package / BEST_FILE).write_text(json.dumps({"direction": {"params": {"max_depth": 5}}}))
    assert load_params(package) == {"direction": {"max_depth": 5}}
    assert load_params(package / BEST_FILE) == {"direction": {"max_depth": 5}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- 1\n- 2\n", "expected a mapping"),
        ("direction: 3\n", "head 'direction' must map to"),
        ("direction: {max_depth: [\n", "not valid YAML"),
    ],
)
def test_bad_params_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_params(path)


def test_params_from_an_untuned_package_or_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="was not tuned"):
        load_params(tmp_path)
    with pytest.raises(ConfigError, match="no such package directory"):
        load_params(tmp_path / "nothing.yaml")


def test_params_merge_over_the_heads_own_and_unknown_heads_are_refused() -> None:
    job = build_job(
        {"suite": {"heads": [{"name": "direction", "target": "direction", "params": {"a": 1}}]}}
    )
    merged = with_params(job, {"direction": {"max_depth": 3}})
    assert merged.suite.heads[0].params == {"a": 1, "max_depth": 3}
    with pytest.raises(ConfigError, match=r"heads \['size'\] are not in the suite"):
        with_params(job, {"size": {"max_depth": 3}})


def _manifest(**changes: Any) -> dict[str, Any]:
    spec = get_feature_set("standard")
    manifest: dict[str, Any] = {
        "symbol": "ETH-BTC",
        "features": {"name": spec.name, "hash": spec.spec_hash(), "columns": spec.columns()},
        "heads": {
            "direction": {
                "target": "direction",
                "family": "xgboost",
                "task": "classification",
                "classes": ["SELL", "HOLD", "BUY"],
            },
            "position_size": {
                "target": "position_size",
                "family": "xgboost",
                "task": "regression",
                "classes": None,
            },
        },
    }
    manifest.update(changes)
    return manifest


def test_a_matching_package_has_no_warm_start_problems() -> None:
    job = build_job({})
    direction_classes = _manifest()["heads"]["direction"]["classes"]
    from quantrain.suite.dataset import target_of

    assert list(target_of("direction").classes or ()) == direction_classes  # the fixture is real
    assert warm_start_problems(_manifest(), job, "ETH-BTC", get_feature_set("standard")) == []


def test_warm_start_refusals_name_what_differs() -> None:
    job = build_job({"model": {"family": "lightgbm"}})
    spec = get_feature_set("standard")
    other = _manifest(
        symbol="LTC-BTC",
        features={"name": "other", "hash": "0" * 64, "columns": [*spec.columns()[:-1], "x"]},
    )
    problems = warm_start_problems(other, job, "ETH-BTC", spec)
    text = "\n".join(problems)
    assert "symbol differs: the package is 'LTC-BTC'" in text
    assert "feature hash differs" in text
    assert "only in the package: ['x']" in text
    assert f"only in this job: ['{spec.columns()[-1]}']" in text
    assert (
        "head 'direction': family differs: the package has 'xgboost', this job has 'lightgbm'"
        in text
    )


def test_a_family_without_warm_start_is_refused_by_the_model_contract() -> None:
    forest = get_family("random_forest")("classification", {}, n_classes=3)
    previous = get_family("random_forest")("classification", {}, n_classes=3)
    with pytest.raises(ModelError, match="cannot warm start"):
        forest.warm_start_from(previous)
    xgb_model = get_family("xgboost")("classification", {}, n_classes=3)
    with pytest.raises(ModelError, match="family: 'random_forest' vs 'xgboost'"):
        xgb_model.warm_start_from(previous)
