"""The preflight before Ray: every problem at once (exit 2), ``--dry-run``'s plan, and
"did you mean" for mistyped job keys and ``--set`` keys."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import ray
from click.testing import CliRunner, Result

from quantrain.cli import main
from quantrain.orchestration import fanout, tune
from quantrain.store import LocalStore

from ..conftest import SAMPLE_DIR


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ray must never start or be joined here: ``ray.init`` and quantrain's own ``connect``
    raise (the latter also when another test of the session already started Ray), and
    nothing lands in the cwd."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Ray was started or joined before the preflight finished")

    monkeypatch.setattr(ray, "init", refuse)
    for module in (fanout, tune):
        monkeypatch.setattr(module, "connect", refuse)
    monkeypatch.chdir(tmp_path)


def _planted(tmp_path: Path) -> tuple[Path, Path]:
    """A data directory with three problems besides one good file: an unreadable file, a
    symbol too short for the folds, and a store path that is a file."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SAMPLE_DIR / "LTC-BTC_5m.parquet", data)
    (data / "ETH-BTC_5m.parquet").write_bytes(b"this is not parquet")
    short = pd.read_parquet(SAMPLE_DIR / "ADA-BTC_5m.parquet").head(300)
    short.to_parquet(data / "ADA-BTC_5m.parquet", index=False)
    store = tmp_path / "store"
    store.write_text("a file where the store should be")
    return data, store


def _assert_three_problems(result: Result) -> None:
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    assert "preflight: 3 problems" in out
    assert "ETH-BTC" in out and "cannot be read as .parquet" in out
    assert "ADA-BTC" in out and "usable rows" in out and "supply more history" in out
    assert "is a file, not a directory" in out and "fix: point --store" in out
    assert "LTC-BTC" not in out  # the good file is no problem


@pytest.mark.parametrize("dry_run", [False, True], ids=["train", "train-dry-run"])
def test_three_planted_problems_reported_in_one_run_before_ray(
    tmp_path: Path, dry_run: bool
) -> None:
    data, store = _planted(tmp_path)
    started = time.perf_counter()
    result = invoke(
        "train", "--data", str(data), "--store", str(store), *(["--dry-run"] if dry_run else [])
    )
    _assert_three_problems(result)
    assert time.perf_counter() - started < 20  # no Ray start-up, no training
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", [["run"], ["tune", "--no-train"]])
def test_run_and_tune_refuse_the_same_problems_before_ray(
    tmp_path: Path, command: list[str]
) -> None:
    data, store = _planted(tmp_path)
    job = tmp_path / "job.yaml"
    job.write_text(f"name: planted\ndata: {{path: {data}}}\nstore: {store}\n")
    result = invoke(command[0], str(job), *command[1:])
    _assert_three_problems(result)


def test_config_problems_are_listed_beside_data_problems(tmp_path: Path) -> None:
    data, store = _planted(tmp_path)
    job = tmp_path / "job.yaml"
    job.write_text(
        f"data: {{path: {data}}}\nstore: {store}\nfeatures: nosuch\nmodel: {{family: xgbost}}\n"
    )
    result = invoke("run", str(job), "--dry-run")
    assert result.exit_code == 2, result.output
    assert "preflight: 4 problems" in result.output  # the short symbol needs the features
    assert "features: unknown feature set 'nosuch'" in result.output
    assert result.output.count("unknown model family 'xgbost'") == 1  # once, not per head
    assert "Did you mean xgboost?" in result.output
    assert "ETH-BTC" in result.output and "is a file, not a directory" in result.output


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "models"
    job = tmp_path / "job.yaml"
    job.write_text(
        f"name: plan\ndata: {{path: {SAMPLE_DIR}, symbols: [ETH-BTC, LTC-BTC]}}\nstore: {store}\n"
    )
    result = invoke("run", str(job), "--dry-run")
    out = result.output
    assert result.exit_code == 0, out
    assert "plan (dry run, nothing started)" in out
    for words in ("ETH-BTC", "LTC-BTC", "5760", "5m", "fold sizes (train/test)"):
        assert words in out
    assert "direction (direction, xgboost)" in out
    assert "position_size (position_size, xgboost)" in out
    assert f"store: {store}" in out
    assert "estimated time: ~" in out and "rough rule" in out
    assert "preflight passed" in out
    assert not store.exists()  # nothing written: not even the store directory
    assert not (tmp_path / "runs").exists()


def test_dry_run_estimate_from_the_previous_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "models"
    store.mkdir()
    seen: list[tuple[str, list[str]]] = []

    def newest(self: LocalStore, suite: str, symbols: list[str]) -> dict[str, dict[str, Any]]:
        seen.append((suite, list(symbols)))
        return {"ETH-BTC": {"train_seconds": 42.0}}

    monkeypatch.setattr(LocalStore, "newest_manifests", newest)
    result = invoke(
        "train",
        "--data",
        str(SAMPLE_DIR),
        "--symbols",
        "ETH-BTC,LTC-BTC",
        "--store",
        str(store),
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert seen == [("core", ["ETH-BTC", "LTC-BTC"])]
    assert "42 s (previous package)" in result.output
    assert "rows × other symbols' rate" in result.output  # LTC-BTC, from ETH-BTC's rate
    assert "rough rule" not in result.output


def test_unreachable_s3_store_is_a_preflight_problem(s3_uri: str) -> None:
    result = invoke(
        "train",
        "--data",
        str(SAMPLE_DIR),
        "--symbols",
        "ETH-BTC",
        "--store",
        "s3://no-such-bucket/models",
        "--dry-run",
    )
    assert result.exit_code == 2, result.output
    assert "preflight: 1 problem" in result.output
    assert "store s3://no-such-bucket/models: not reachable" in result.output


def test_features_key_typo_says_where_and_what_is_allowed(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("features: {base: standard, top_n: 3}\n")
    result = invoke("run", str(job), "--dry-run")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "KeyError" not in result.output
    assert f"{job}: invalid job configuration" in result.output
    assert "features.top_n: unknown key" in result.output
    assert "allowed here: base, drop, add, name" in result.output
    assert "features.str" not in result.output  # not the other member of the union


def test_job_key_typo_gets_did_you_mean(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "split: {n_fold: 4}\nsuite: {heads: [{name: a, target: direction, parms: {}}]}\n"
    )
    result = invoke("run", str(job), "--dry-run")
    assert result.exit_code == 2, result.output
    assert "split.n_fold: unknown key (did you mean n_folds?" in result.output
    assert "suite.heads.0.parms: unknown key (did you mean params?" in result.output
    assert f"fix: correct the key(s) above in {job}" in result.output


def test_set_typo_is_blamed_on_the_set_option(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: fine\n")
    result = invoke("run", str(job), "--set", "split.n_fold=4", "--dry-run")
    assert result.exit_code == 2, result.output
    assert "--set split.n_fold: unknown key (did you mean n_folds?" in result.output
    assert "fix: correct the key(s) above in the --set option " in result.output
    assert str(job) not in result.output  # the job file is not at fault


def test_yaml_error_names_the_file(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("split: [\n")
    result = invoke("run", str(job), "--dry-run")
    assert result.exit_code == 2, result.output
    assert f"{job}: not valid YAML" in result.output


@pytest.mark.parametrize("command", ["run", "train"])
def test_one_symbol_at_two_timeframes_is_refused_up_front(tmp_path: Path, command: str) -> None:
    """A directory holding ETH-BTC at 5m and at 1h: the job could not tell which to train, so
    both files are named before anything starts (exit 2)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SAMPLE_DIR / "ETH-BTC_5m.parquet", data)
    bars = pd.read_parquet(SAMPLE_DIR / "ETH-BTC_5m.parquet")
    hourly = (
        bars.set_index("timestamp")
        .resample("1h")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    )
    hourly.dropna().reset_index().to_parquet(data / "ETH-BTC_1h.parquet", index=False)
    if command == "run":
        job = tmp_path / "job.yaml"
        job.write_text(f"data: {{path: {data}}}\nstore: {tmp_path / 'models'}\n")
        result = invoke("run", str(job), "--dry-run")
    else:
        result = invoke("train", "--data", str(data), "--store", str(tmp_path / "models"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "ETH-BTC_5m.parquet" in result.output and "ETH-BTC_1h.parquet" in result.output
    assert "more than one timeframe" in result.output and "fix:" in result.output
    assert not (tmp_path / "models").exists()
