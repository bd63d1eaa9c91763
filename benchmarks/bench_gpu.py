"""The CUDA paths on a GPU machine: XGBoost ``device="cuda"`` and the torch families against the
CPU, with ONNX parity of what the GPU trained (the package serves ONNX on the CPU).

Data: seeded regime-switching 5m bars (volatility switches between a calm and a busy state),
quantrain's ``standard`` features and ATR triple-barrier direction labels, split in time order
70 / 15 / 15 (train / early-stopping / test). Every family fits the same matrices on both
devices; the table gives fit seconds, the rounds or epochs early stopping kept, balanced
accuracy on the test rows, the share of test rows where the CPU and GPU models pick the same
class, and the ONNX-vs-native max |diff| of the GPU model. Also runs one symbol end to end
through the pipeline (features → folds → heads → ONNX parity → package) with ``device: cuda``.

    python benchmarks/bench_gpu.py --bars 525000 --torch-rows 60000 --pipeline --out gpu.json

Not part of the test suite (CI has no GPU). Results go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantrain.errors import QuantrainError
from quantrain.export.parity import check_parity
from quantrain.features import atr, compute_feature_matrix, get_feature_set
from quantrain.labels import TripleBarrierParams, triple_barrier
from quantrain.models import ModelFamily, get_family

TORCH_FAMILIES = ("mlp", "lstm", "cnn1d", "transformer")


def regime_bars(n: int, seed: int = 0) -> pd.DataFrame:
    """5m bars whose volatility switches between two regimes (mean stay ~2 days), with
    volume that rises with volatility: the shape of real crypto bars, seeded."""
    rng = np.random.default_rng(seed)
    busy = np.zeros(n, bool)
    state = False
    for start in range(0, n, 576):
        state = bool(rng.random() < (0.7 if state else 0.3))
        busy[start : start + 576] = state
    sigma = np.where(busy, 0.0035, 0.0012)
    drift = np.where(busy, -0.00002, 0.00001)
    close = 100.0 * np.exp(np.cumsum(rng.normal(drift, sigma)))
    open_ = np.r_[close[0], close[:-1]] * (1.0 + rng.normal(0.0, sigma / 10))
    wick = np.abs(rng.normal(0.0, sigma, (2, n)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=n, freq="5min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + wick[0]),
            "low": np.minimum(open_, close) * (1.0 - wick[1]),
            "close": close,
            "volume": rng.lognormal(5.0, 0.6, n) * (1.0 + 2.0 * busy),
        }
    )


def matrices(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows with a label and no warm-up NaN, and their direction classes."""
    spec = get_feature_set("standard")
    X = compute_feature_matrix(bars, spec)
    h, lo, c, o = (bars[k].to_numpy(np.float64) for k in ("high", "low", "close", "open"))
    labels = triple_barrier(h, lo, c, atr(h, lo, c, 14), TripleBarrierParams(), open_=o)
    keep = labels.valid & np.isfinite(X).all(axis=1)
    return X[keep].astype(np.float32), labels.direction[keep].astype(np.int64)


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    recalls = [np.mean(predicted[y == k] == k) for k in np.unique(y)]
    return float(np.mean(recalls))


def fit_one(
    make: Callable[[str], ModelFamily], device: str, splits: dict[str, tuple[np.ndarray, ...]]
) -> dict[str, Any]:
    X_tr, y_tr = splits["train"]
    X_ev, y_ev = splits["eval"]
    X_te, y_te = splits["test"]
    model = make(device)
    started = time.perf_counter()
    model.fit(X_tr, y_tr, eval_set=(X_ev, y_ev))
    seconds = time.perf_counter() - started
    proba = model.predict_proba(X_te)
    return {
        "model": model,
        "device": device,
        "fit_s": seconds,
        "kept": model.best_iteration_,
        "bal_acc": balanced_accuracy(y_te, proba.argmax(axis=1)),
        "classes": proba.argmax(axis=1),
    }


def compare(
    name: str,
    make: Callable[[str], ModelFamily],
    splits: dict[str, tuple[np.ndarray, ...]],
    gpu_device: str,
) -> dict[str, Any]:
    """One family on CPU then CUDA; parity of the CUDA model's ONNX graph on the test rows."""
    cpu = fit_one(make, "cpu", splits)
    gpu = fit_one(make, gpu_device, splits)
    X_te = splits["test"][0]
    try:
        parity = check_parity(
            gpu["model"], gpu["model"].to_onnx(), X_te[:20_000], tolerance=1e-4, head=name
        )
        onnx_diff: float | str = float(f"{parity.max_abs_diff:.3g}")
    except QuantrainError as error:  # the export gate refused: report it, keep timing
        onnx_diff = f"refused: {str(error)[:120]}"
    row = {
        "family": name,
        "train_rows": len(splits["train"][0]),
        "cpu_fit_s": round(cpu["fit_s"], 2),
        "cuda_fit_s": round(gpu["fit_s"], 2),
        "speedup": round(cpu["fit_s"] / gpu["fit_s"], 2),
        "cpu_kept": cpu["kept"],
        "cuda_kept": gpu["kept"],
        "cpu_bal_acc": round(cpu["bal_acc"], 4),
        "cuda_bal_acc": round(gpu["bal_acc"], 4),
        "same_class": round(float(np.mean(cpu["classes"] == gpu["classes"])), 4),
        "onnx_max_diff": onnx_diff,
    }
    print(json.dumps(row), flush=True)
    return row


def split(
    X: np.ndarray, y: np.ndarray, rows: int | None = None
) -> dict[str, tuple[np.ndarray, ...]]:
    if rows is not None:
        X, y = X[-rows:], y[-rows:]
    a, b = int(len(X) * 0.70), int(len(X) * 0.85)
    return {"train": (X[:a], y[:a]), "eval": (X[a:b], y[a:b]), "test": (X[b:], y[b:])}


def end_to_end(sample: Path, store: Path, device: str) -> dict[str, Any]:
    """One bundled pair through the real pipeline with an XGBoost and an MLP head on cuda."""
    from quantrain.config import build_job
    from quantrain.data import DataSource
    from quantrain.package.layout import read_manifest
    from quantrain.pipeline import run_symbol

    heads = [
        {"name": "direction", "target": "direction", "family": "xgboost"},
        {
            "name": "position_size",
            "target": "position_size",
            "family": "mlp",
            "params": {"epochs": 5},
        },
    ]
    job = build_job({"store": str(store), "model": {"device": device}, "suite": {"heads": heads}})
    started = time.perf_counter()
    result = run_symbol(DataSource("ETH-BTC", "5m", sample), job)
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {"ok": result.ok, "seconds": round(seconds, 1), "error": result.error}
    if result.ok:
        (package,) = (store / "ETH-BTC").glob("*/2*")
        manifest = read_manifest(package)
        out["job_device"] = manifest["job"]["config"]["model"]["device"]
        out["heads"] = {
            n: f"{h['family']}, ONNX max |diff| {h['parity_max_abs_diff']:.3g}"
            for n, h in manifest["heads"].items()
        }
    print(json.dumps(out, default=str), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=525_000)
    parser.add_argument("--torch-rows", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--patience", type=int, default=0, help="early stopping (0: every round, for timing)"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--families", default="xgboost," + ",".join(TORCH_FAMILIES))
    parser.add_argument("--pipeline", action="store_true", help="also one pair end to end")
    parser.add_argument("--gpu", default="cuda", help="the device to compare with (cpu: a dry run)")
    args = parser.parse_args()

    from quantrain.runtime.doctor import report_lines

    env = report_lines("ray: not used here")
    print("\n".join(env), flush=True)
    started = time.perf_counter()
    X, y = matrices(regime_bars(args.bars))
    print(f"features+labels: {X.shape} in {time.perf_counter() - started:.1f} s", flush=True)

    threads = os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    wanted = args.families.split(",")
    if "xgboost" in wanted:
        xgb_params = {
            "n_estimators": args.rounds,
            "early_stopping_rounds": args.patience,
            "max_depth": 6,
        }
        rows.append(
            compare(
                "xgboost",
                lambda device: get_family("xgboost")(
                    "classification",
                    xgb_params,
                    n_classes=3,
                    seed=0,
                    device=device,
                    n_jobs=threads,
                ),
                split(X, y),
                args.gpu,
            )
        )
    torch_splits = split(X, y, args.torch_rows)
    for family in (f for f in TORCH_FAMILIES if f in wanted):
        params = {"epochs": args.epochs, "early_stopping_rounds": args.patience, "batch_size": 1024}
        rows.append(
            compare(
                family,
                lambda device, family=family, params=params: get_family(family)(
                    "classification", params, n_classes=3, seed=0, device=device, n_jobs=threads
                ),
                torch_splits,
                args.gpu,
            )
        )
    pipeline = None
    if args.pipeline:
        from quantrain.data.samples import sample_data_dir

        with tempfile.TemporaryDirectory() as tmp:
            sample = sample_data_dir() / "ETH-BTC_5m.parquet"
            pipeline = end_to_end(sample, Path(tmp), args.gpu)

    header = list(rows[0]) if rows else []
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in header) + " |")
    print(f"\nmachine: {platform.processor() or platform.machine()}, {threads} CPUs; {env[2]}")
    if args.out:
        args.out.write_text(
            json.dumps({"env": env, "rows": rows, "pipeline": pipeline}, indent=2, default=str)
        )


if __name__ == "__main__":
    main()
