"""Write a trained suite as a model package: every head exported behind the parity gate, the
evaluation files and report, and the manifest last."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import quantrain
from quantrain.errors import PackageError
from quantrain.evaluate import KEY_METRIC
from quantrain.evaluate.files import (
    RISK_CLAMP,
    RISK_HEAD,
    report_data,
    write_evaluation,
    write_risk_head,
)
from quantrain.evaluate.importance import importance_frame
from quantrain.evaluate.report import REPORT_FILE, write_report
from quantrain.evaluate.risk import STATE_FEATURES, state_features
from quantrain.export import check_parity
from quantrain.models.onnx_outputs import INPUT_NAME
from quantrain.models.windows import sequence_length_of
from quantrain.package import MANIFEST, HeadManifest, write_manifest
from quantrain.suite.heads import TrainedSuite


def summary_metrics(suite: TrainedSuite) -> dict[str, float]:
    """``head.metric`` for each head's key metric and its baseline: what tables show."""
    out: dict[str, float] = {}
    for head in suite.heads:
        key = KEY_METRIC[head.target.task]
        out[f"{head.config.name}.{key}"] = head.oos[key]
        if head.target.task == "classification":
            out[f"{head.config.name}.accuracy"] = head.oos["accuracy"]
            out[f"{head.config.name}.baseline_accuracy"] = head.oos["baseline_accuracy"]
        else:
            out[f"{head.config.name}.baseline_mae"] = head.oos["baseline_mae"]
    return out


def holdout_summary(suite: TrainedSuite) -> dict[str, Any]:
    """What the untouched final segment says: each head's metrics and the policy's backtest
    there, scored by models that never saw it (or why there is no such segment)."""
    rows = suite.holdout_rows
    if rows is None:
        return {"rows": 0, "note": suite.holdout_note}
    summary: dict[str, Any] = {
        "rows": len(rows),
        "start": suite.holdout_span[0],
        "end": suite.holdout_span[1],
        "heads": {h.config.name: h.holdout for h in suite.heads if h.holdout is not None},
    }
    evaluation = suite.holdout_evaluation
    if evaluation is not None and evaluation.backtest:
        summary["backtest"] = evaluation.backtest["model"]
        summary["buy_and_hold_return"] = evaluation.backtest["buy_and_hold"]["total_return"]
        summary["intervals"] = evaluation.intervals
        summary["verdict"] = evaluation.verdict
    return summary


def new_version(created: datetime) -> str:
    """``20260101T120000Z-3f9a1c``: sorts by time, unique by its random tail."""
    return f"{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def write_package(
    suite: TrainedSuite,
    directory: Path,
    *,
    version: str | None = None,
    extra_files: Mapping[str, str] | None = None,
    extra_fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Export every head (parity-gated), write the package files, and the manifest last.

    ``extra_files`` (``{name: text}``, e.g. ``tuning.csv``) are written at the package root
    before the manifest, so it lists and checksums them; ``extra_fields`` go into it."""
    created = datetime.now(UTC)
    version = version or new_version(created)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (extra_files or {}).items():
        if "/" in name or name in (MANIFEST, "features.json", "metrics.json"):
            raise PackageError(f"extra package file {name!r}: a plain, unreserved file name")
        (directory / name).write_text(text)
    (directory / "features.json").write_text(
        json.dumps(suite.spec.to_json_dict(), indent=2, sort_keys=True)
    )
    heads: list[HeadManifest] = []
    for head in suite.heads:
        name = head.config.name
        head_dir = directory / "heads" / name
        graph = head.model.to_onnx()
        head.parity = check_parity(
            head.model,
            graph,
            head.parity_rows,
            tolerance=suite.job.model.parity_tolerance,
            head=name,
        )
        files = head.model.save(head_dir)
        (head_dir / "model.onnx").write_bytes(graph.SerializeToString())
        importance_frame(
            suite.spec.columns(),
            head.importance,
            head.importance_method,
            head.model.feature_importance(),
        ).to_csv(head_dir / "importance.csv", index=False)
        heads.append(
            HeadManifest(
                name=name,
                target=head.config.target,
                task=head.target.task,
                family=head.family,
                classes=list(head.target.classes) if head.target.classes else None,
                files=sorted(
                    [f.relative_to(directory).as_posix() for f in files]
                    + [f"heads/{name}/model.onnx", f"heads/{name}/importance.csv"]
                ),
                onnx_input=INPUT_NAME,
                onnx_outputs=[o.name for o in graph.graph.output],
                opset={o.domain or "ai.onnx": o.version for o in graph.opset_import},
                parity_max_abs_diff=head.parity.max_abs_diff,
                parity_rows=head.parity.rows,
                metrics=head.oos,
                sequence_length=sequence_length_of(head.model),
                thresholds=head.target.fitted.get("thresholds"),
            )
        )
    evaluation = write_evaluation(suite.evaluation, directory) if suite.evaluation else None
    if suite.risk_model is not None and suite.evaluation is not None:
        trades = suite.evaluation.trades
        states = state_features(
            trades["net_return"].to_numpy(dtype=np.float64),
            trades["atr_pct"].to_numpy(dtype=np.float64),
        )
        files, diff = write_risk_head(
            suite.risk_model, states, directory, tolerance=suite.job.model.parity_tolerance
        )
        graph = onnx.load(str(directory / "heads" / RISK_HEAD / "model.onnx"))
        heads.append(
            HeadManifest(
                name=RISK_HEAD,
                target=RISK_HEAD,
                task="regression",
                family=suite.risk_model.key,
                classes=None,
                files=sorted(f.relative_to(directory).as_posix() for f in files),
                onnx_input=INPUT_NAME,
                onnx_outputs=[o.name for o in graph.graph.output],
                opset={o.domain or "ai.onnx": o.version for o in graph.opset_import},
                parity_max_abs_diff=diff,
                parity_rows=len(states),
                metrics={
                    "trades": float(len(trades)),
                    "clamp_low": RISK_CLAMP[0],
                    "clamp_high": RISK_CLAMP[1],
                    **{f"heldout_{k}": v for k, v in (suite.risk_heldout or {}).items()},
                },
                inputs="equity_state",
                input_columns=list(STATE_FEATURES),
            )
        )
    (directory / "metrics.json").write_text(
        json.dumps(
            {
                "folds": suite.folds,
                "heads": {h.config.name: {"oos": h.oos, "folds": h.folds} for h in suite.heads},
            },
            indent=2,
            sort_keys=True,
        )
    )
    job = suite.job
    fields = {
        "version": version,
        "symbol": suite.symbol,
        "suite": job.suite.name,
        "timeframe": suite.timeframe,
        "created_at": created.isoformat(timespec="seconds"),
        "code_version": quantrain.__version__,
        "job": {"config": job.model_dump(mode="json"), "hash": job.config_hash()},
        "features": {
            "kind": suite.spec.kind,
            "name": suite.spec.name,
            "hash": suite.spec.spec_hash(),
            "columns": suite.spec.columns(),
            "warmup_bars": suite.spec.warmup_bars(suite.timeframe),
        },
        "data": suite.fingerprint,
        "folds": suite.folds,
        "summary_metrics": summary_metrics(suite),
        "evaluation": evaluation,
        "holdout": holdout_summary(suite),
        "policy": None if suite.policy is None else suite.policy.to_dict(),
        **(extra_fields or {}),
    }
    draft = {**fields, "heads": {h.name: h.__dict__ for h in heads}}
    write_report(report_data(directory, draft), directory / REPORT_FILE)
    return write_manifest(directory, fields, heads)
