"""Streaming features vs recomputation per bar: ``FeatureStream.update`` against
``compute_feature_matrix`` on a trailing window, for the ``standard`` set (82 features).

Real sample bars (ETH-BTC 5m, 5,760 bars). Three numbers, each from ``time.perf_counter_ns``:

1. ``FeatureStream.update(bar)`` after a warm-up: p50 / p99 / max per bar (µs);
2. today's cost: ``compute_feature_matrix`` over the trailing ``--window`` bars, per bar;
3. a universe: ``--symbols`` streams (a pool-style loop, one bar each), total ms per bar.

Not part of the test suite:

    python benchmarks/bench_stream.py --window 3000 --symbols 200
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from quantrain.data import read_ohlcv
from quantrain.features import FeatureStream, compute_feature_matrix, get_feature_set
from quantrain.jobs import sample_data_dir


def _pct(samples_ns: list[int], q: float) -> float:
    return float(np.percentile(np.asarray(samples_ns) / 1e3, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=3000, help="bars recomputed per bar")
    parser.add_argument("--symbols", type=int, default=200, help="streams in the universe")
    parser.add_argument("--universe-warm", type=int, default=1500, help="warm-up per symbol")
    parser.add_argument("--universe-bars", type=int, default=300, help="bars timed, universe")
    parser.add_argument("--batch-bars", type=int, default=300, help="windows timed, batch")
    args = parser.parse_args()

    frame = read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame
    spec = get_feature_set("standard")
    records = frame.to_dict("records")
    window = min(args.window, len(frame) - args.batch_bars)

    # compile (or load the numba cache) outside the timings
    FeatureStream(spec, "5m").warm_up(frame.iloc[:50])
    compute_feature_matrix(frame.iloc[:window], spec)

    # 1. one stream: warm up on `window` bars, then time every remaining bar
    stream = FeatureStream(spec, "5m")
    start = time.perf_counter()
    stream.warm_up(frame.iloc[:window])
    warm_s = time.perf_counter() - start
    update_ns: list[int] = []
    for bar in records[window:]:
        t0 = time.perf_counter_ns()
        stream.update(bar)
        update_ns.append(time.perf_counter_ns() - t0)

    # 2. today's path: recompute the whole trailing window for each new bar
    batch_ns: list[int] = []
    for end in range(window, window + args.batch_bars):
        sub = frame.iloc[end - window + 1 : end + 1]
        t0 = time.perf_counter_ns()
        compute_feature_matrix(sub, spec)
        batch_ns.append(time.perf_counter_ns() - t0)

    # 3. a universe of streams, one bar each per step (the sample bars stand in for every symbol)
    warm = args.universe_warm
    history = frame.iloc[:warm]
    streams = []
    start = time.perf_counter()
    for _ in range(args.symbols):
        s = FeatureStream(spec, "5m")
        s.warm_up(history)
        streams.append(s)
    universe_warm_s = time.perf_counter() - start
    universe_ns: list[int] = []
    for bar in records[warm : warm + args.universe_bars]:
        t0 = time.perf_counter_ns()
        for s in streams:
            s.update(bar)
        universe_ns.append(time.perf_counter_ns() - t0)

    print(
        f"# bench_stream: {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {len(spec.columns())} features (standard), ETH-BTC 5m sample"
    )
    print("| measurement | p50 | p99 | max |")
    print("|---|---|---|---|")
    print(
        f"| `FeatureStream.update(bar)`, {len(update_ns)} bars after a {window}-bar warm-up "
        f"| {_pct(update_ns, 50):.1f} µs | {_pct(update_ns, 99):.1f} µs "
        f"| {max(update_ns) / 1e3:.1f} µs |"
    )
    print(
        f"| `compute_feature_matrix` on a {window}-bar window, per bar ({args.batch_bars} bars) "
        f"| {_pct(batch_ns, 50) / 1e3:.2f} ms | {_pct(batch_ns, 99) / 1e3:.2f} ms "
        f"| {max(batch_ns) / 1e6:.2f} ms |"
    )
    print(
        f"| {args.symbols} streams × one bar, total per bar ({len(universe_ns)} bars) "
        f"| {_pct(universe_ns, 50) / 1e3:.2f} ms | {_pct(universe_ns, 99) / 1e3:.2f} ms "
        f"| {max(universe_ns) / 1e6:.2f} ms |"
    )
    print(
        f"\nwarm-up: {warm_s * 1e3:.0f} ms for {window} bars (one stream); "
        f"{universe_warm_s:.1f} s for {args.symbols} streams × {warm} bars"
    )
    speedup = _pct(batch_ns, 50) / _pct(update_ns, 50)
    print(f"update vs recomputation, p50: {speedup:.0f}x faster")


if __name__ == "__main__":
    main()
