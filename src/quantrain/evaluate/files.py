"""The package's ``evaluation/`` files and its risk head: written at training, read back by
``quantrain report`` and by bots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantrain.errors import DataError, ExportParityError
from quantrain.evaluate.evaluation import Evaluation
from quantrain.evaluate.metrics import BACKTEST_HIGHER_IS_BETTER, BACKTEST_LOWER_IS_BETTER
from quantrain.evaluate.report import REPORT_FILE, ReportData, write_report
from quantrain.evaluate.risk import CLAMP, STATE_FEATURES, clamp_multiplier, clip_onnx_output
from quantrain.models.base import ModelFamily
from quantrain.models.onnx_outputs import INPUT_NAME
from quantrain.package.layout import verify_package
from quantrain.package.session import onnx_session

EVALUATION_DIR = "evaluation"
BACKTEST_FILE = "backtest.json"
RISK_HEAD = "risk_multiplier"


def write_evaluation(evaluation: Evaluation, directory: Path) -> dict[str, Any]:
    """Write ``evaluation/``; return the summary that goes into the manifest."""
    out = directory / EVALUATION_DIR
    out.mkdir(parents=True, exist_ok=True)
    body = {
        "config": evaluation.config,
        "backtest": evaluation.backtest,
        "random_percentile": evaluation.random_percentile,
        "folds": evaluation.folds,
        "confusion": evaluation.confusion,
        "calibration": evaluation.calibration,
        "notes": evaluation.notes,
        "intervals": evaluation.intervals,
        "verdict": evaluation.verdict,
    }
    (out / BACKTEST_FILE).write_text(json.dumps(body, indent=2, sort_keys=True, default=float))
    evaluation.oos.to_parquet(out / "oos_predictions.parquet", index=False)
    if len(evaluation.equity):
        evaluation.equity.to_parquet(out / "equity.parquet", index=False)
    if len(evaluation.trades):
        evaluation.trades.to_parquet(out / "trades.parquet", index=False)
    model = evaluation.backtest.get("model", {})
    # Every metric ``--if-better backtest.<metric>`` compares, plus context.
    compared = sorted(BACKTEST_HIGHER_IS_BETTER | BACKTEST_LOWER_IS_BETTER)
    return {
        **{name: model.get(name) for name in compared},
        "trades": model.get("trades"),
        "buy_and_hold_return": evaluation.backtest.get("buy_and_hold", {}).get("total_return"),
        "random_percentile": evaluation.random_percentile,
        "verdict": evaluation.verdict,
        "intervals": evaluation.intervals,
    }


def read_evaluation(package: Path) -> dict[str, Any] | None:
    path = package / EVALUATION_DIR / BACKTEST_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_risk_head(
    model: ModelFamily, states: np.ndarray, directory: Path, *, tolerance: float
) -> tuple[list[Path], float]:
    """Save the risk model and its clamped ONNX graph; the graph must reproduce the clamped
    native output on ``states`` (the parity gate), else nothing ships."""
    head_dir = directory / "heads" / RISK_HEAD
    graph = clip_onnx_output(model.to_onnx())
    X = np.ascontiguousarray(states, dtype=np.float32)
    (onnx_value,) = onnx_session(graph.SerializeToString()).run(None, {INPUT_NAME: X})
    diff = float(np.max(np.abs(np.ravel(onnx_value) - clamp_multiplier(model.predict(X)))))
    if not diff <= tolerance:
        raise ExportParityError(
            f"head {RISK_HEAD!r}: clamped ONNX differs from the native model by {diff:.3g} "
            f"(tolerance {tolerance:g}); the package was not written"
        )
    files = model.save(head_dir)
    (head_dir / "model.onnx").write_bytes(graph.SerializeToString())
    pd.DataFrame({"feature": STATE_FEATURES, "gain": model.feature_importance()}).to_csv(
        head_dir / "importance.csv", index=False
    )
    return [*files, head_dir / "model.onnx", head_dir / "importance.csv"], diff


RISK_CLAMP = CLAMP


def report_data(package: Path, manifest: dict[str, Any]) -> ReportData:
    """Everything ``report.html`` shows, read from the package's own files (so it can be
    rebuilt from any copy of a package)."""
    metrics = json.loads((package / "metrics.json").read_text())
    folds: list[dict[str, Any]] = []
    for i, fold in enumerate(manifest["folds"]):
        row = dict(fold)
        for head, entry in metrics["heads"].items():
            for key, value in entry["folds"][i].items():
                if key != "rows":
                    row[f"{head}.{key}"] = value
        folds.append(row)
    evaluation = read_evaluation(package) or {}
    equity_file = package / EVALUATION_DIR / "equity.parquet"
    importance = {
        head: pd.read_csv(package / "heads" / head / "importance.csv")
        for head, entry in manifest["heads"].items()
        if entry.get("inputs", "features") == "features"
    }
    summary = {
        "symbol": manifest["symbol"],
        "suite": manifest["suite"],
        "version": manifest["version"],
        "timeframe": manifest["timeframe"],
        "created_at": manifest["created_at"],
        "rows": manifest["data"]["rows"],
        "feature set": manifest["features"]["name"],
        "code version": manifest["code_version"],
    }
    return ReportData(
        title=f"{manifest['symbol']} / {manifest['suite']} / {manifest['version']}",
        summary=summary,
        folds=folds,
        backtest=evaluation.get("backtest", {}),
        random_percentile=evaluation.get("random_percentile"),
        equity=pd.read_parquet(equity_file) if equity_file.is_file() else pd.DataFrame(),
        confusion=evaluation.get("confusion"),
        calibration=evaluation.get("calibration"),
        importance={
            head: frame.rename(columns={"importance": "mean_abs_shap"})
            if "importance" in frame
            else frame
            for head, frame in importance.items()
        },
        notes=list(evaluation.get("notes", [])),
        verdict=str(evaluation.get("verdict") or ""),
        intervals=evaluation.get("intervals") or {},
        holdout=manifest.get("holdout"),
    )


#: What ``report --out`` writes: one self-contained HTML file.
REPORT_SUFFIXES = (".html", ".htm")


def check_report_out(out: Path) -> Path:
    """``--out`` for a report, refused before any work: an HTML name in an existing folder."""
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise DataError(
            f"--out {out}: unknown format {out.suffix or '(no suffix)'!r}; fix: name the file "
            f"with one of {', '.join(REPORT_SUFFIXES)}"
        )
    if not out.parent.is_dir():
        raise DataError(f"--out {out}: the directory {out.parent} does not exist; fix: create it")
    if out.is_dir():
        raise DataError(f"--out {out} is a directory; fix: give a file name")
    return out


def locate_report(package: Path, out: Path | None = None) -> Path:
    """The package's verified ``report.html``, or with ``out`` a copy written there (made
    from the package's files when it has none); the package itself is never modified."""
    if out is not None:
        check_report_out(out)
    manifest = verify_package(package)
    inside = package / REPORT_FILE
    if inside.is_file() and out is None:
        return inside
    target = out or Path(f"report-{manifest['symbol']}-{manifest['version']}.html")
    if inside.is_file():
        shutil.copyfile(inside, target)  # verified above: the package's own report
        return target
    return write_report(report_data(package, manifest), target)
