"""What a bot pays (issue 18): import, per-bar prediction and a 200-symbol universe.

Runs against a real package trained on the bundled ETH-BTC 5m pair (trained here into a
temporary store when none is given) and the pair's bars: warm up on 3,000 bars, then stream the
remaining 2,760 one at a time. Prints a Markdown table. Not part of the test suite.

    python benchmarks/bench_serving.py [--package DIR] [--symbols 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IMPORT = (
    "import time, sys; t = time.perf_counter(); from quantrain.package import Predictor; "
    "print(time.perf_counter() - t, len(sys.modules), "
    "sorted({m.split('.')[0] for m in sys.modules} & {'xgboost', 'lightgbm', 'sklearn', "
    "'scipy', 'ray', 'torch', 'onnxmltools', 'skl2onnx', 'boto3', 'optuna'}))"
)


def import_cost(runs: int = 5) -> tuple[float, int, str]:
    """Median seconds and module count of ``from quantrain.package import Predictor`` in
    fresh processes, and the training libraries it loaded (scipy: numba's own optional
    import, absent from a serving install)."""
    seconds, modules, loaded = [], 0, ""
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT], capture_output=True, text=True, check=True
        ).stdout.split(maxsplit=2)
        seconds.append(float(out[0]))
        modules, loaded = int(out[1]), out[2].strip()
    return statistics.median(seconds), modules, loaded


def percentiles(ns: list[int]) -> str:
    a = np.asarray(ns) / 1e3
    return f"{np.percentile(a, 50):.1f} / {np.percentile(a, 99):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=None)
    parser.add_argument("--symbols", type=int, default=200)
    args = parser.parse_args()

    from quantrain.data import read_ohlcv
    from quantrain.data.samples import sample_data_dir
    from quantrain.features import FeatureStream
    from quantrain.package import Predictor, PredictorPool

    frame = read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame
    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or _train(Path(tmp))
        predictor = Predictor(package)
        warm, bars = 3000, [frame.iloc[t].to_dict() for t in range(3000, len(frame))]

        latest = []
        for t in range(3000, 3300):
            window = frame.iloc[t - 2999 : t + 1]
            started = time.perf_counter_ns()
            predictor.predict_latest(window)
            latest.append(time.perf_counter_ns() - started)

        stream = FeatureStream(predictor.spec, predictor.package.timeframe)  # type: ignore[arg-type]
        stream.warm_up(frame.iloc[:warm])
        features = []
        for bar in bars:
            started = time.perf_counter_ns()
            stream.update(bar)
            features.append(time.perf_counter_ns() - started)

        live = predictor.live(frame.iloc[:warm])
        updates = []
        for bar in bars:
            started = time.perf_counter_ns()
            live.update(bar)
            updates.append(time.perf_counter_ns() - started)

        pool = PredictorPool()
        for i in range(args.symbols):
            pool.add(f"S{i}", predictor, frame.iloc[:warm])
        universe = []
        for bar in bars[:200]:
            started = time.perf_counter_ns()
            pool.update_all({f"S{i}": bar for i in range(args.symbols)})
            universe.append(time.perf_counter_ns() - started)

    seconds, modules, loaded = import_cost()
    rows = [
        (
            "import `Predictor` (median of 5 fresh processes)",
            f"{seconds:.2f} s, {modules} modules, training libraries loaded: {loaded}",
        ),
        ("`predict_latest`, 3,000-bar window, p50 / p99 µs", percentiles(latest)),
        (
            f"`FeatureStream.update`, {len(predictor.spec.columns())} features, p50 / p99 µs",
            percentiles(features),
        ),
        (
            "`LivePredictor.update` (features + heads + ood + action), p50 / p99 µs",
            percentiles(updates),
        ),
        (
            f"{args.symbols} symbols, one bar each (`PredictorPool.update_all`), p50 / p99 ms",
            f"{np.percentile(universe, 50) / 1e6:.1f} / {np.percentile(universe, 99) / 1e6:.1f}",
        ),
    ]
    print("| what | figure |\n| --- | --- |")
    for what, figure in rows:
        print(f"| {what} | {figure} |")
    print(json.dumps({"heads": predictor.heads, "history_bars": predictor.history_bars}))


def _train(store: Path) -> Path:
    from quantrain.config import build_job
    from quantrain.data import DataSource
    from quantrain.data.samples import sample_data_dir
    from quantrain.pipeline import run_symbol

    result = run_symbol(
        DataSource("ETH-BTC", "5m", sample_data_dir() / "ETH-BTC_5m.parquet"),
        build_job({"store": str(store)}),
    )
    assert result.ok, result.error
    (package,) = (store / "ETH-BTC").glob("*/2*")
    return package


if __name__ == "__main__":
    main()
