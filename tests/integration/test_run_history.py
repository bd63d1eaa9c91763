"""Run history: every run leaves a record in its model store (runs/<run id>.json), read back by
``runs list`` / ``runs show``; ``models history`` and ``models diff`` compare versions; MLflow
gets the same run when a job asks for it.

Two real runs of a one-symbol job (lightgbm, then xgboost tracked to a real sqlite MLflow store)
feed the end-to-end tests; the store API is also driven directly against a local directory and
the moto S3 server, with records built by ``RunSummary.record`` from real results.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from quantrain.cli import main
from quantrain.config import build_job
from quantrain.errors import ConfigError, StoreConflictError, StoreError, TrackingError
from quantrain.fsmodes import current_umask
from quantrain.jobs import RunSummary
from quantrain.pipeline import SymbolResult
from quantrain.store import open_store
from quantrain.store.base import Catalog, StoredObject
from quantrain.store.runs import run_id_of
from tests.integration.test_store_contract import FIXTURE_PACKAGE

SYMBOL = "XMR-BTC"
JOB = "history"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@dataclass(frozen=True)
class TwoRuns:
    store: Path
    mlflow: str
    outputs: tuple[str, str]
    run_ids: tuple[str, str]
    versions: tuple[str, str]


@pytest.fixture(scope="module")
def two_runs(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """The same job run twice into one local store: lightgbm, then xgboost with MLflow."""
    root = tmp_path_factory.mktemp("history")
    store, mlflow = root / "models", f"sqlite:///{root / 'mlflow.db'}"
    job = root / "job.yaml"
    job.write_text(f"name: {JOB}\ndata: {{symbols: [{SYMBOL}]}}\nsplit: {{n_folds: 2}}\n")
    outputs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the summary CSV lands in ./runs
        for extra in (
            ("--set", "model.family=lightgbm"),
            ("--set", "model.family=xgboost", "--set", f"tracking.mlflow={mlflow}"),
        ):
            result = invoke("run", str(job), "--set", f"store={store}", *extra)
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
    first, second = (re.findall(r"runs/(\d{8}T\d{6}Z-[0-9a-f]{8})\.json", o)[0] for o in outputs)
    older, newer = sorted(p.name for p in (store / SYMBOL / "core").iterdir())
    return TwoRuns(store, mlflow, (outputs[0], outputs[1]), (first, second), (older, newer))


def _record(store: Path, run_id: str) -> dict[str, Any]:
    return json.loads((store / "runs" / f"{run_id}.json").read_text())


# -- end to end, two real runs ----------------------------------------------------------------
@pytest.mark.ray
@pytest.mark.slow
def test_each_run_says_where_its_record_went_and_the_record_holds_the_run(
    two_runs: TwoRuns,
) -> None:
    for output, run_id, version, family in zip(
        two_runs.outputs, two_runs.run_ids, two_runs.versions, ("lightgbm", "xgboost"), strict=True
    ):
        where = two_runs.store / "runs" / f"{run_id}.json"
        assert f"run record {where}" in " ".join(output.split())
        record = _record(two_runs.store, run_id)
        assert record["run_id"] == run_id and record["job"] == JOB and record["kind"] == "train"
        assert record["config"]["model"]["family"] == family
        assert record["config"]["store"] == str(two_runs.store)
        assert record["started_at"] <= record["finished_at"] and record["seconds"] > 0
        assert record["quantrain_version"]
        (entry,) = record["symbols"]
        assert entry["symbol"] == SYMBOL and entry["status"] == "ok" and entry["suite"] == "core"
        assert entry["version"] == version  # the package this run pushed
        manifest = json.loads(
            (two_runs.store / SYMBOL / "core" / version / "manifest.json").read_text()
        )
        assert entry["metrics"] == manifest["summary_metrics"]
        assert entry["rows"] == manifest["data"]["rows"]
    assert _record(two_runs.store, two_runs.run_ids[1])["config"]["tracking"] == {
        "mlflow": two_runs.mlflow,
        "experiment": None,
    }


@pytest.mark.ray
@pytest.mark.slow
def test_runs_list_shows_both_runs_newest_first(two_runs: TwoRuns) -> None:
    first, second = two_runs.run_ids
    result = invoke("runs", "list", "--store", str(two_runs.store))
    assert result.exit_code == 0, result.output
    assert first in result.output and second in result.output
    assert result.output.index(second) < result.output.index(first)
    row = next(line for line in result.output.splitlines() if second in line)
    assert JOB in row and re.search(r"\b1\b.*\b0\b", row)  # 1 symbol ok, 0 failed
    newest = invoke("runs", "list", "--store", str(two_runs.store), "--last", "1")
    assert second in newest.output and first not in newest.output
    other = invoke("runs", "list", "--store", str(two_runs.store), "--job", "nightly")
    assert other.exit_code == 0 and first not in other.output and second not in other.output


@pytest.mark.ray
@pytest.mark.slow
def test_runs_show_prints_the_symbols_and_the_config(two_runs: TwoRuns) -> None:
    run_id, version = two_runs.run_ids[1], two_runs.versions[1]
    result = invoke("runs", "show", run_id, "--store", str(two_runs.store))
    assert result.exit_code == 0, result.output
    assert run_id in result.output and SYMBOL in result.output and version in result.output
    assert "config:" in result.output and "family: xgboost" in result.output
    as_json = invoke("runs", "show", run_id, "--store", str(two_runs.store), "--json")
    assert json.loads(as_json.output) == _record(two_runs.store, run_id)
    latest = invoke("runs", "show", "latest", "--store", str(two_runs.store), "--json")
    assert json.loads(latest.output)["run_id"] == run_id  # the newer of the two


@pytest.mark.ray
@pytest.mark.slow
def test_promote_latest_points_the_channel_at_the_newest_version(
    two_runs: TwoRuns, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    shutil.copytree(two_runs.store, store)
    result = invoke("models", "promote", SYMBOL, "latest", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert f"approved -> {two_runs.versions[1]}" in result.output
    pointer = json.loads((store / SYMBOL / "core" / "channels" / "approved.json").read_text())
    assert pointer["version"] == two_runs.versions[1]


@pytest.mark.ray
@pytest.mark.slow
def test_models_history_lists_both_versions_newest_first_with_their_runs(
    two_runs: TwoRuns,
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "200")  # every column; narrower terminals drop the lesser ones
        result = invoke("models", "history", SYMBOL, "--store", str(two_runs.store))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "core" in line]
    assert len(rows) == 2
    for row, version, run_id in zip(
        rows, reversed(two_runs.versions), reversed(two_runs.run_ids), strict=True
    ):
        assert version in row and run_id in row
    assert "dir bal.acc" in result.output and "OOS return" in result.output


@pytest.mark.ray
@pytest.mark.slow
def test_models_diff_puts_two_versions_side_by_side(two_runs: TwoRuns, tmp_path: Path) -> None:
    store = tmp_path / "models"
    shutil.copytree(two_runs.store, store)
    older, newer = two_runs.versions
    promoted = invoke("models", "promote", SYMBOL, older, "--store", str(store))
    assert promoted.exit_code == 0, promoted.output
    for a, b in ((older, newer), (f"{SYMBOL}@approved", f"{SYMBOL}@latest")):
        result = invoke("models", "diff", a, b, "--store", str(store))
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert f"A = {SYMBOL}/core/{older}" in text and f"B = {SYMBOL}/core/{newer}" in text
        row = next(
            line for line in result.output.splitlines() if "direction.balanced_accuracy" in line
        )
        values = [float(v) for v in re.findall(r"[-+]?\d+\.\d{4}", row)]
        assert len(values) == 3 and values[2] == pytest.approx(values[1] - values[0], abs=2e-4)
        family = next(line for line in result.output.splitlines() if "config.model.family" in line)
        assert "lightgbm" in family and "xgboost" in family and "yes" in family
        assert "feature recipe hash" in text and "data rows" in text


@pytest.mark.ray
@pytest.mark.slow
def test_mlflow_gets_one_nested_run_per_symbol_matching_the_record(two_runs: TwoRuns) -> None:
    from mlflow.tracking import MlflowClient

    run_id = two_runs.run_ids[1]
    record = _record(two_runs.store, run_id)
    (entry,) = record["symbols"]
    assert f"experiment '{JOB}'" in two_runs.outputs[1]
    client = MlflowClient(tracking_uri=two_runs.mlflow)
    experiment = client.get_experiment_by_name(JOB)
    assert experiment is not None
    found = client.search_runs([experiment.experiment_id])
    assert len(found) == 2  # the first run did not track: only the second's parent and child
    (parent,) = [r for r in found if r.info.run_name == run_id]
    (child,) = [r for r in found if r.info.run_name == SYMBOL]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.data.tags["quantrain.run_id"] == run_id
    assert child.info.status == parent.info.status == "FINISHED"
    params = child.data.params
    assert params["symbol"] == SYMBOL and params["job"] == JOB and params["suite"] == "core"
    assert params["family"] == "xgboost" and params["timeframe"] == entry["timeframe"]
    assert json.loads(params["split"])["n_folds"] == 2
    for key, value in entry["metrics"].items():
        assert child.data.metrics[key] == pytest.approx(value)
    assert child.data.metrics["backtest.total_return"] == pytest.approx(
        entry["backtest"]["total_return"]
    )
    assert child.data.tags["quantrain.package_version"] == entry["version"]
    assert child.data.tags["quantrain.store"] == str(two_runs.store)
    assert child.data.tags["quantrain.status"] == "ok"


# -- the store API, local and S3, with records from real results ------------------------------
def _summary(store: str, run_id: str | None = None, **job: Any) -> RunSummary:
    results = [
        SymbolResult(
            symbol="ETH-BTC",
            ok=True,
            timeframe="5m",
            rows=1000,
            version="20260101T000000Z-abcdef",
            metrics={"direction.balanced_accuracy": 0.41, "position_size.mae": float("nan")},
            backtest={"total_return": 0.02, "sharpe_period": None},
            seconds=3.2,
        ),
        SymbolResult(symbol="LTC-BTC", ok=False, rows=10, error="too few rows"),
    ]
    job_config = build_job({"name": "nightly", "store": store, **job})
    if run_id is None:
        return RunSummary(job_config, results)
    return RunSummary(job_config, results, run_id=run_id)


def _record_and_read(uri: str) -> None:
    """What every backend does with records: create once, list newest first, read back."""
    store = open_store(uri)
    older = _summary(uri, "20260101T000000Z-00000001")
    newer = _summary(uri, "20260102T000000Z-00000002")
    for summary in (older, newer):
        where = store.record_run(summary.record())
        assert where == f"{uri.rstrip('/')}/runs/{summary.run_id}.json"
    with pytest.raises(StoreConflictError, match="already recorded"):
        store.record_run(older.record())  # records are never overwritten
    listed = store.runs()
    assert [r.run_id for r in listed] == [newer.run_id, older.run_id]
    assert (listed[0].ok, listed[0].failed, listed[0].job) == (1, 1, "nightly")
    assert listed[0].packages == (("ETH-BTC", "core", "20260101T000000Z-abcdef"),)
    assert store.runs(job="other") == []
    record = store.run(older.run_id)
    assert record["symbols"][0]["metrics"]["position_size.mae"] is None  # NaN: strict JSON
    assert record["symbols"][1]["status"] == "failed"
    assert record["symbols"][1]["error"] == "too few rows"
    assert store.versions() == []  # a record is never taken for a package
    with pytest.raises(StoreError, match="no run 'nope'.*newest: " + newer.run_id):
        store.run("nope")
    with pytest.raises(StoreError, match="not a run id"):
        store.run("../models")
    shown = invoke("runs", "show", older.run_id, "--store", uri)
    assert shown.exit_code == 0, shown.output
    assert "ETH-BTC" in shown.output and "too few rows" in shown.output
    assert "name: nightly" in shown.output
    listed_cli = invoke("runs", "list", "--store", uri)
    assert listed_cli.output.index(newer.run_id) < listed_cli.output.index(older.run_id)
    missing = invoke("runs", "show", "20990101T000000Z-deadbeef", "--store", uri)
    assert missing.exit_code == 2 and "no run" in missing.output
    assert "Traceback" not in missing.output


def test_local_store_records_runs(tmp_path: Path) -> None:
    _record_and_read(str(tmp_path / "models"))
    records = sorted((tmp_path / "models" / "runs").iterdir())
    names = [p.name for p in records if not p.name.startswith(".")]
    assert names == ["20260101T000000Z-00000001.json", "20260102T000000Z-00000002.json"]
    mode = stat.S_IMODE(os.stat(records[-1]).st_mode)
    assert mode == 0o666 & ~current_umask()  # readable by a bot as another user, as packages


@pytest.mark.s3
def test_s3_store_records_runs(s3_uri: str) -> None:
    _record_and_read(s3_uri)


def test_unknown_runs_and_references_exit_2(tmp_path: Path) -> None:
    store = tmp_path / "models"
    pushed = invoke("models", "push", str(FIXTURE_PACKAGE), "--store", str(store))
    assert pushed.exit_code == 0, pushed.output
    version = json.loads((FIXTURE_PACKAGE / "manifest.json").read_text())["version"]
    symbol = json.loads((FIXTURE_PACKAGE / "manifest.json").read_text())["symbol"]
    for args, needle in (
        (("runs", "show", "20990101T000000Z-deadbeef"), "no run"),
        (("runs", "show", "../../etc/passwd"), "not a run id"),
        (("models", "diff", "20990101T000000Z-000000", version), "no complete version"),
        (("models", "diff", f"{symbol}@approved", version), "no channel or version 'approved'"),
        (("models", "diff", f"{symbol}@a/b", version), "not a version reference"),
        (("models", "history", "NOPE-BTC"), "no packages for symbol"),
    ):
        result = invoke(*args, "--store", str(store))
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output and "Traceback" not in result.output
    absent = invoke("runs", "list", "--store", str(tmp_path / "absent"))
    assert absent.exit_code == 2 and "no model store" in absent.output
    same = invoke("models", "diff", version, f"{symbol}@latest", "--store", str(store))
    assert same.exit_code == 0, same.output
    assert "yes" not in same.output  # a version against itself: nothing changed


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_verify_gc_and_list_ignore_run_records(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    uri = request.getfixturevalue("s3_uri") if backend == "s3" else str(tmp_path / "models")
    store = open_store(uri)
    store.push(FIXTURE_PACKAGE)
    summary = _summary(uri)
    store.record_run(summary.record())
    verified = invoke("models", "verify", "--store", uri)
    assert verified.exit_code == 0, verified.output
    assert "1 of 1 packages verified" in verified.output and "runs" not in verified.output
    listed = invoke("models", "list", "--store", uri)
    assert "runs" not in listed.output.replace(f"store {uri}", "")
    gc = invoke("models", "gc", "--keep", "1", "--stale-after", "0s", "--store", uri)
    assert gc.exit_code == 0 and "deleted 0 versions" in gc.output, gc.output
    assert [r.run_id for r in store.runs()] == [summary.run_id]
    assert len(store.versions()) == 1


def test_run_keys_and_package_keys_never_mix() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    objects = [
        StoredObject("runs/20260101T000000Z-00000001.json", 10, now),
        StoredObject("runs/.20260101T000000Z-00000001.json.1a2b3c4d", 10, now),  # temp file
        StoredObject("runs/core/20260101T000000Z-abcdef/manifest.json", 10, now),  # symbol "runs"
    ]
    assert [run_id_of(o.key) for o in objects] == ["20260101T000000Z-00000001", None, None]
    catalog = Catalog.parse(objects)
    assert catalog.complete == {("runs", "core"): {"20260101T000000Z-abcdef"}}
    assert catalog.incomplete == {}


def test_records_mask_credentials() -> None:
    summary = _summary(
        "s3://bucket/models", tracking={"mlflow": "https://user:hunter22@mlflow.example:5000"}
    )
    record = summary.record()
    assert "hunter22" not in json.dumps(record)
    assert record["config"]["tracking"]["mlflow"] == "https://user:***@mlflow.example:5000"
    assert record["store"] == "s3://bucket/models"


def test_tracking_refuses_unknown_keys_and_a_missing_mlflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from quantrain.tracking import log_run, require_mlflow

    with pytest.raises(ConfigError, match="unknown key"):
        build_job({"tracking": {"mlflow": "sqlite:///x.db", "project": "x"}})
    assert "tracking" not in build_job({"tracking": {"mlflow": "sqlite:///x.db"}}).model_dump()
    with pytest.raises(TrackingError, match="MLflow at bogus://"):
        log_run(_summary("./models").record(), "bogus://nowhere")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'quantrain[mlflow]'")):
        require_mlflow()


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_a_search_without_training_is_recorded_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the trial tables land in ./runs
    store = tmp_path / "models"
    job = tmp_path / "job.yaml"
    job.write_text(
        f"name: search\ndata: {{symbols: [{SYMBOL}]}}\nstore: {store}\nsplit: {{n_folds: 2}}\n"
        "suite: {heads: [{name: direction, target: direction, params: {n_estimators: 20}}]}\n"
        "tune: {num_samples: 2}\n"
    )
    result = invoke("tune", "--no-train", str(job))
    assert result.exit_code == 0, result.output
    (record,) = open_store(str(store)).runs()
    assert record.kind == "tune" and (record.ok, record.failed) == (1, 0)
    assert record.packages == ()  # a search pushes nothing
    (entry,) = open_store(str(store)).run(record.run_id)["symbols"]
    assert entry["tuning"]["direction"]["trials"] == 2
    assert f"run record {store / 'runs' / record.run_id}.json" in " ".join(result.output.split())
