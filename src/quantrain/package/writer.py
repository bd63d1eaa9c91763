"""Write a trained suite as a model package: every head exported behind the parity gate, the
evaluation files and report, and the manifest last."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import quantrain
from quantrain.errors import ExportParityError, PackageError
from quantrain.evaluate import KEY_METRIC
from quantrain.evaluate.evaluation import Evaluation
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
from quantrain.models.base import ModelFamily
from quantrain.models.onnx_outputs import INPUT_NAME
from quantrain.models.windows import sequence_length_of
from quantrain.package import MANIFEST, HeadEntry, write_manifest
from quantrain.package.drift import REFERENCE_FILE
from quantrain.package.manifest import TransformEntry
from quantrain.package.session import onnx_session
from quantrain.package.transforms import TRANSFORMS_DIR, recipe_hash
from quantrain.suite.heads import TrainedHead, TrainedSuite
from quantrain.suite.transforms import TRANSFORM_INPUT


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
    _write_extra_files(directory, extra_files or {})
    (directory / "features.json").write_text(
        json.dumps(suite.spec.to_json_dict(), indent=2, sort_keys=True)
    )
    if suite.reference is not None:
        (directory / REFERENCE_FILE).write_text(json.dumps(suite.reference))
    transforms = _write_transforms(suite, directory)
    heads = [_write_head(suite, head, directory) for head in suite.heads]
    evaluation = write_evaluation(suite.evaluation, directory) if suite.evaluation else None
    if suite.risk_model is not None and suite.evaluation is not None:
        heads.append(_write_risk(suite, suite.risk_model, suite.evaluation, directory))
    _write_metrics(suite, directory)
    fields = {**_manifest_fields(suite, version, created, evaluation), **(extra_fields or {})}
    if transforms:
        spec_hash = fields["features"]["hash"]
        fields["features"] = {
            **fields["features"],
            "spec_hash": spec_hash,
            "hash": recipe_hash(spec_hash, transforms),
            "transforms": [t.model_dump() for t in transforms],
        }
    draft = {**fields, "heads": {h.name: h.__dict__ for h in heads}}
    write_report(report_data(directory, draft), directory / REPORT_FILE)
    return write_manifest(directory, fields, heads)


def _write_extra_files(directory: Path, extra_files: Mapping[str, str]) -> None:
    """Write the caller's root files, refusing a path or a name the package itself writes (a
    clash would be overwritten, or overwrite the package's own file)."""
    for name, text in extra_files.items():
        if "/" in name or name in (MANIFEST, "features.json", "metrics.json"):
            raise PackageError(f"extra package file {name!r}: a plain, unreserved file name")
        (directory / name).write_text(text)


def _write_transforms(suite: TrainedSuite, directory: Path) -> list[TransformEntry]:
    """Export the suite's transforms (fit on every row) to ONNX, refused unless each graph
    matches the fitted step on training rows: the Predictor appends what training appended."""
    fitted = suite.transforms
    if fitted is None:
        return []
    assert suite.transform_rows is not None
    (directory / TRANSFORMS_DIR).mkdir(exist_ok=True)
    X, columns = suite.transform_rows.astype(np.float32), fitted.base
    entries = []
    for step in fitted.steps:
        graph = step.to_onnx()
        data = graph.SerializeToString()
        index = [columns.index(c) for c in step.inputs]
        want = step.apply(X, columns)
        session = onnx_session(data)
        got = session.run([step.model.output_name], {TRANSFORM_INPUT: X[:, index]})[0]
        diff = float(np.max(np.abs(np.asarray(got, np.float64).reshape(want.shape) - want)))
        tolerance = suite.job.model.parity_tolerance
        if not diff <= tolerance:
            raise ExportParityError(
                f"transform {step.config.prefix!r}: ONNX differs from the fitted step by "
                f"{diff:.3g} on {len(X)} training rows (tolerance {tolerance}); fix: raise "
                "model.parity_tolerance or report the transform's kind"
            )
        rel = f"{TRANSFORMS_DIR}/{step.config.prefix}.onnx"
        (directory / rel).write_bytes(data)
        entries.append(
            TransformEntry(
                name=step.config.prefix,
                kind=step.config.kind,
                inputs=list(step.inputs),
                outputs=list(step.outputs),
                file=rel,
                sha256=hashlib.sha256(data).hexdigest(),
                onnx_input=TRANSFORM_INPUT,
                onnx_output=step.model.output_name,
                config=step.config.model_dump(mode="json"),
                rows=step.rows,
                parity_max_abs_diff=diff,
            )
        )
        X = np.concatenate([X, want], axis=1)
        columns = columns + step.outputs
    return entries


def _write_head(suite: TrainedSuite, head: TrainedHead, directory: Path) -> HeadEntry:
    """Export one head to ONNX, refuse it unless the graph matches the native model on held-out
    rows, then save both and its importance: a bot may only get a graph that was checked."""
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
    columns = suite.spec.columns() if suite.transforms is None else list(suite.transforms.columns())
    columns = [*columns, *head.upstream_columns]  # a cascade head also reads its inputs' outputs
    gain = head.model.feature_importance()
    if head.input_columns is not None:  # selected: zero gain for the columns it never read
        gain = np.zeros(len(columns))
        gain[[columns.index(c) for c in head.input_columns]] = head.model.feature_importance()
    importance_frame(columns, head.importance, head.importance_method, gain).to_csv(
        head_dir / "importance.csv", index=False
    )
    return HeadEntry(
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
        onnx_outputs=_graph_outputs(graph),
        opset=_opsets(graph),
        parity_max_abs_diff=head.parity.max_abs_diff,
        parity_rows=head.parity.rows,
        metrics=head.oos,
        sequence_length=sequence_length_of(head.model),
        thresholds=head.target.fitted.get("thresholds"),
        input_columns=head.input_columns,
        upstream=list(head.upstream) or None,
        upstream_columns=list(head.upstream_columns) or None,
        params=head.model.resolved_params(),
        variant=suite.job.variant_of(head.config),
        family_selection=head.family_selection,
    )


def _write_risk(
    suite: TrainedSuite, risk_model: ModelFamily, evaluation: Evaluation, directory: Path
) -> HeadEntry:
    """Write the risk head behind its parity gate, checked on the equity states of the
    backtest's trades: it reads those states, not the feature recipe, so the manifest says so."""
    trades = evaluation.trades
    states = state_features(
        trades["net_return"].to_numpy(dtype=np.float64),
        trades["atr_pct"].to_numpy(dtype=np.float64),
    )
    files, diff = write_risk_head(
        risk_model, states, directory, tolerance=suite.job.model.parity_tolerance
    )
    graph = onnx.load(str(directory / "heads" / RISK_HEAD / "model.onnx"))
    return HeadEntry(
        name=RISK_HEAD,
        target=RISK_HEAD,
        task="regression",
        family=risk_model.key,
        classes=None,
        files=sorted(f.relative_to(directory).as_posix() for f in files),
        onnx_input=INPUT_NAME,
        onnx_outputs=_graph_outputs(graph),
        opset=_opsets(graph),
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


def _graph_outputs(graph: onnx.ModelProto) -> list[str]:
    """The graph's output names, in order: what a bot asks onnxruntime for."""
    return [o.name for o in graph.graph.output]


def _opsets(graph: onnx.ModelProto) -> dict[str, int]:
    """Opset version per domain (the default domain as ``ai.onnx``): what a runtime must
    support to load the graph."""
    return {o.domain or "ai.onnx": o.version for o in graph.opset_import}


def _write_metrics(suite: TrainedSuite, directory: Path) -> None:
    """``metrics.json``: every head's out-of-sample and per-fold metrics, for comparing runs
    without parsing the manifest."""
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


def _manifest_fields(
    suite: TrainedSuite,
    version: str,
    created: datetime,
    evaluation: dict[str, Any] | None,
) -> dict[str, Any]:
    """The manifest's fields beside the heads: what pins the run (job, feature recipe, data,
    code version) and what it found, so a package can be judged and reproduced alone."""
    job = suite.job
    return {
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
            "history_bars": suite.history_bars,
        },
        "data": suite.fingerprint,
        "folds": suite.folds,
        "summary_metrics": summary_metrics(suite),
        "evaluation": evaluation,
        "holdout": holdout_summary(suite),
        "policy": None if suite.policy is None else suite.policy.to_dict(),
    }
