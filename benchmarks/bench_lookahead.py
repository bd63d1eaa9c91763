"""Cost of the look-ahead gate against one symbol's training time.

Times ``refuse_lookahead`` on a bundled 5m pair with the ``standard`` set, and with
``standard_exo`` on the same bars with a seeded 8-hourly funding table and the fixture event
calendar merged in, then ``train_suite`` on that pair with the default ``JobConfig`` (which
runs the gate once itself). One warm-up run each, then ``--repeat`` interleaved runs; prints
the medians (wall and CPU seconds) and gate / training. ``--synthetic N`` uses a seeded
N-bar 5m random walk instead (the gate's cost is bounded, training grows with history).
Not part of the test suite.

    python benchmarks/bench_lookahead.py --pair ETH-BTC --repeat 3
    python benchmarks/bench_lookahead.py --synthetic 50000 --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from quantrain.config import JobConfig
from quantrain.data import read_ohlcv
from quantrain.features import get_feature_set, merge_exogenous, resolve_feature_set
from quantrain.features.causality import refuse_lookahead
from quantrain.pipeline import train_suite

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "quantrain" / "sample_data"
CALENDAR = ROOT / "tests" / "fixtures" / "exogenous" / "calendar_2018-01.csv"


def with_exogenous(frame: pd.DataFrame) -> pd.DataFrame:
    """The bars with a seeded funding rate every 8 hours and the fixture calendar merged in."""
    start, end = frame["timestamp"].iloc[0], frame["timestamp"].iloc[-1]
    times = pd.date_range(start.floor("8h"), end, freq="8h")
    rates = np.random.default_rng(5).normal(1e-4, 2e-4, len(times))
    funding = pd.DataFrame({"timestamp": times, "funding_rate": rates})
    return merge_exogenous(frame, funding=funding, events=CALENDAR, min_impact="medium")


def random_walk(n: int, seed: int = 0) -> pd.DataFrame:
    """A seeded 5m log random walk with consistent OHLC, dated like the bundled pairs."""
    rng = np.random.default_rng(seed)
    close = 0.1 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.0015, (2, n)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2018-01-10", periods=n, freq="5min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + spread[0]),
            "low": np.minimum(open_, close) * (1.0 - spread[1]),
            "close": close,
            "volume": rng.lognormal(5.0, 1.0, n),
        }
    )


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and process CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pair", default="ETH-BTC", help="a bundled pair, e.g. ETH-BTC")
    parser.add_argument("--synthetic", type=int, default=0, help="bars of a random walk instead")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    if args.synthetic:
        frame, label = random_walk(args.synthetic), "seeded random walk"
    else:
        frame, label = read_ohlcv(SAMPLE / f"{args.pair}_5m.parquet").frame, args.pair
    exo_frame = with_exogenous(frame)
    job = JobConfig()
    standard = resolve_feature_set(job.features)
    standard_exo = get_feature_set("standard_exo")
    runs: dict[str, Callable[[], object]] = {
        "gate, standard": lambda: refuse_lookahead(frame, standard),
        "gate, standard_exo + funding + events": lambda: refuse_lookahead(exo_frame, standard_exo),
        "train_suite, default job": lambda: train_suite(
            frame, symbol=args.pair.replace("-", "/"), timeframe="5m", job=job
        ),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for fn in runs.values():
        fn()  # warm-up: numba cache load, imports
    for _ in range(args.repeat):
        for name, fn in runs.items():
            times[name].append(timed(fn))

    def median(name: str, which: int) -> float:
        return statistics.median(t[which] for t in times[name])

    print(f"\n{label} 5m, {len(frame):,} bars; median of {args.repeat}\n")
    print("| what | wall s | CPU s |")
    print("| --- | --- | --- |")
    for name in runs:
        print(f"| {name} | {median(name, 0):.3f} | {median(name, 1):.3f} |")
    train = "train_suite, default job"
    print()
    for name in list(runs)[:2]:
        print(
            f"- {name} / training: {median(name, 0) / median(train, 0):.1%} wall, "
            f"{median(name, 1) / median(train, 1):.1%} CPU"
        )


if __name__ == "__main__":
    main()
