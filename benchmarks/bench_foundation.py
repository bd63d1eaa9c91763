"""Foundation benchmarks: demo wall time, quantrain-vs-bare XGBoost overhead, Predictor latency.

Run with ``make bench`` (or ``python benchmarks/bench_foundation.py``). Prints a Markdown block
to paste into benchmarks/RESULTS.md with the machine description. Not part of the test suite.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xgboost as xgb

from quantrain.config import JobConfig, build_job
from quantrain.data import DataSource, read_ohlcv
from quantrain.features import get_feature_set
from quantrain.jobs import sample_data_dir
from quantrain.models import get_family
from quantrain.package import Predictor
from quantrain.package.predictor import RECOMMENDED_HISTORY
from quantrain.pipeline import build_dataset, run_symbol
from quantrain.suite.fit import balanced_weights

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 200


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}, xgboost {xgb.__version__}"
    )


def demo_wall_time(runs: int = 2) -> list[float]:
    """`quantrain run jobs/demo.yaml` as a user runs it: new process, new Ray cluster."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as store:
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "quantrain",
                    "run",
                    str(ROOT / "jobs/demo.yaml"),
                    "--set",
                    f"store={store}",
                ],
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - started)
    return times


def overhead_ratio(repeats: int = 15) -> tuple[float, float, float, float, float]:
    """One direction head, same matrix, same params, one thread: quantrain fit vs xgb.train."""
    frame = read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame
    data = build_dataset(frame, get_feature_set("standard"), JobConfig())
    X, y = data.X, data.target("direction").astype(np.int64)
    weights = balanced_weights(y, 3)
    family = get_family("xgboost")
    params = {"n_estimators": ROUNDS, "early_stopping_rounds": 0}
    model = family("classification", params, n_classes=3, seed=42, n_jobs=1)
    bare_params = model._library_params(model.round_params()[2])

    def through_quantrain() -> None:
        family("classification", params, n_classes=3, seed=42, n_jobs=1).fit(
            X, y, sample_weight=weights
        )

    def bare() -> None:
        dtrain = xgb.DMatrix(X, label=y, weight=weights, nthread=1)
        xgb.train(bare_params, dtrain, num_boost_round=ROUNDS)

    def timed(fn: Callable[[], None]) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    bare()  # warm caches
    # Alternate the two so that load from anything else on the machine hits both alike.
    pairs = [(timed(through_quantrain), timed(bare)) for _ in range(repeats)]
    q = statistics.median(p[0] for p in pairs)
    b = statistics.median(p[1] for p in pairs)
    ratios = sorted(p[0] / p[1] for p in pairs)
    return q, b, statistics.median(ratios), ratios[len(ratios) // 4], ratios[3 * len(ratios) // 4]


def predictor_latency(
    calls: int = 2000, window: int = RECOMMENDED_HISTORY
) -> dict[str, tuple[float, float]]:
    """Newest-bar prediction on a live-sized window, all heads, through onnxruntime.

    The window is the history the Predictor recommends (the slowest recursive feature settled).
    """
    with tempfile.TemporaryDirectory() as store:
        job = build_job({"store": store})
        source = DataSource("ETH-BTC", "5m", sample_data_dir() / "ETH-BTC_5m.parquet")
        result = run_symbol(source, job)
        assert result.ok, result.error
        (package,) = Path(store, "ETH-BTC", "core").glob("2*")
        predictor = Predictor(package)
        frame = read_ohlcv(source.path).frame.tail(window).reset_index(drop=True)
        calls_by_name: dict[str, Callable[[], object]] = {
            "predict_latest(window)": lambda: predictor.predict_latest(frame),
            "predict(window, last=1)": lambda: predictor.predict(frame, last=1),
        }
        latencies = {}
        for name, call in calls_by_name.items():
            for _ in range(50):
                call()
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                call()
                samples.append(time.perf_counter() - started)
            ms = np.array(samples) * 1e3
            latencies[name] = (float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))
    return latencies


def main() -> None:
    print(f"machine: {machine()}")
    demo = demo_wall_time()
    runs = ", ".join(f"{t:.1f}s" for t in demo)
    print(f"demo wall time (6 symbols, fresh process + local Ray): {runs}")
    q, b, ratio, low, high = overhead_ratio()
    print(
        f"direction head, {ROUNDS} rounds: quantrain {q:.3f}s, bare {b:.3f}s; "
        f"median ratio {ratio:.3f}x (interquartile {low:.2f}-{high:.2f})"
    )
    for name, (p50, p99) in predictor_latency().items():
        print(
            f"Predictor.{name}, {RECOMMENDED_HISTORY}-bar window: "
            f"p50 {p50:.3f} ms, p99 {p99:.3f} ms"
        )


if __name__ == "__main__":
    main()
