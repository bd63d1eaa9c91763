"""Report a finished run to MLflow (job setting ``tracking: {mlflow: URI}``), optional.

The run record in the model store stays the source of truth; MLflow gets a copy shaped the way
its UI compares runs: one parent run per job run, one nested run per symbol with its params,
out-of-sample metrics and the package it pushed. mlflow is imported only when a job asks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from quantrain.errors import ConfigError, TrackingError
from quantrain.redact import redact

INSTALL_HINT = "pip install 'quantrain[mlflow]'"
#: MLflow refuses longer param values and tag values beyond this (we cut them, marked).
_MAX_PARAM = 6000
_MAX_TAG = 5000


def require_mlflow() -> None:
    """Refuse a tracked job before training when mlflow is missing, not after hours of it."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"the job sets tracking.mlflow, but mlflow is not installed; fix: {INSTALL_HINT} "
            "(or remove the job's tracking: section)"
        ) from None


def _millis(text: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(str(text)).timestamp() * 1000)
    except ValueError:
        return None


def _numbers(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a mapping (MLflow metrics are floats; null means undefined)."""
    return {
        f"{prefix}{key}": float(value)
        for key, value in values.items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    }


def symbol_metrics(entry: Mapping[str, Any]) -> dict[str, float]:
    """A symbol's key metrics as MLflow gets them: each head's out-of-sample metric,
    ``backtest.*`` (net of costs), the holdout's return and the seconds it trained."""
    found = _numbers(entry.get("metrics") or {})
    found.update(_numbers(entry.get("backtest") or {}, "backtest."))
    found.update(_numbers({"holdout_return": entry.get("holdout_return")}))
    found.update(_numbers({"seconds": entry.get("seconds"), "rows": entry.get("rows")}))
    return found


def symbol_params(record: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, str]:
    """What a symbol trained with: its name, the job, suite and the settings runs differ by."""
    config = record.get("config") or {}
    heads = (config.get("suite") or {}).get("heads") or []
    params = {
        "symbol": entry.get("symbol"),
        "job": record.get("job"),
        "suite": entry.get("suite") or (config.get("suite") or {}).get("name"),
        "timeframe": entry.get("timeframe"),
        "family": (config.get("model") or {}).get("family"),
        "features": config.get("features"),
        "seed": config.get("seed"),
        "split": config.get("split"),
        "labels": config.get("labels"),
        "evaluate": config.get("evaluate"),
    }
    for head in heads:
        if isinstance(head, dict) and head.get("name"):
            params[f"head.{head['name']}"] = {
                k: head.get(k) for k in ("target", "family", "params") if head.get(k)
            }
    return {k: _text(v, _MAX_PARAM) for k, v in params.items() if v not in (None, "", {})}


def symbol_tags(record: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, str]:
    tags = {
        "quantrain.run_id": record.get("run_id"),
        "quantrain.status": entry.get("status"),
        "quantrain.store": record.get("store"),
        "quantrain.package_version": entry.get("version"),
        "quantrain.verdict": entry.get("verdict"),
        "quantrain.error": entry.get("error"),
    }
    return {k: _text(v, _MAX_TAG) for k, v in tags.items() if v not in (None, "")}


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 12] + " …(cut)"


def log_run(record: Mapping[str, Any], uri: str, experiment: str | None = None) -> str:
    """Log ``record`` (a run record, see ``jobs.RunSummary.record``) to the MLflow tracking
    store at ``uri``: a parent run named by the run id, a nested run per symbol. Returns a
    line saying where it went."""
    require_mlflow()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name = experiment or str(record.get("job") or "quantrain")
    shown = redact(uri)
    started = _millis(record.get("started_at"))
    finished = _millis(record.get("finished_at"))
    stamp = finished or started or 0
    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else client.create_experiment(name)
        parent = client.create_run(
            experiment_id,
            start_time=started,
            run_name=str(record.get("run_id")),
            tags={
                "quantrain.run_id": str(record.get("run_id")),
                "quantrain.job": str(record.get("job")),
                "quantrain.store": str(record.get("store")),
                "quantrain.version": str(record.get("quantrain_version")),
            },
        ).info.run_id
        failed = False
        for entry in record.get("symbols") or []:
            child = client.create_run(
                experiment_id,
                start_time=started,
                run_name=str(entry.get("symbol")),
                tags={"mlflow.parentRunId": parent},
            ).info.run_id
            client.log_batch(
                child,
                metrics=[Metric(k, v, stamp, 0) for k, v in symbol_metrics(entry).items()],
                params=[Param(k, v) for k, v in symbol_params(record, entry).items()],
                tags=[RunTag(k, v) for k, v in symbol_tags(record, entry).items()],
            )
            ok = entry.get("status") == "ok"
            failed = failed or not ok
            client.set_terminated(child, "FINISHED" if ok else "FAILED", end_time=finished)
        client.set_terminated(parent, "FAILED" if failed else "FINISHED", end_time=finished)
    except MlflowException as error:
        raise TrackingError(
            f"MLflow at {shown}: {redact(str(error))}\n  fix: use a tracking server "
            "(http://HOST:5000) or a local sqlite:///PATH/mlflow.db; the run record and the "
            "packages are in the store regardless"
        ) from None
    return f"MLflow run {parent} in experiment {name!r} at {shown}"
