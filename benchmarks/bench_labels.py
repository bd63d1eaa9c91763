"""Label kernels: bars labelled per second on synthetic bars, one thread vs several.

Run: ``python benchmarks/bench_labels.py [--bars 1000000] [--threads 1,2] [--repeats 5]``.
Prints a Markdown table for benchmarks/RESULTS.md. Each kernel is warmed up (numba compiles or
loads its cache) before timing; the best of ``--repeats`` runs is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numba
import numpy as np

from quantrain.features import atr
from quantrain.labels import (
    BarLabelSettings,
    TripleBarrierParams,
    excursions,
    fixed_horizon_direction,
    forward_volatility,
    label_bars,
    time_to_hit,
    timing,
    triple_barrier,
    volume_zscore,
)

PARAMS = TripleBarrierParams(
    entry="close",
)  # k_tp 1.5, k_sl 0.8, horizon 48: the demo's labels
LEVELS = (1.0, 2.0, 3.0)


def synthetic_bars(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A geometric random walk with 5m-crypto-like noise and a 14-bar Wilder ATR."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.003, n)))
    high = close * np.exp(np.abs(rng.normal(0.0, 0.002, n)))
    low = close * np.exp(-np.abs(rng.normal(0.0, 0.002, n)))
    volume = rng.lognormal(3.0, 1.0, n)
    return {
        "high": high,
        "low": low,
        "close": close,
        "atr": atr(high, low, close, 14),
        "volume": volume,
    }


def kernels(bars: dict[str, np.ndarray]) -> dict[str, Callable[[], object]]:
    h, lo, c, a = bars["high"], bars["low"], bars["close"], bars["atr"]
    tb = triple_barrier(h, lo, c, a, PARAMS)
    ex = excursions(
        h,
        lo,
        c,
        a,
        tb.side,
        horizon=PARAMS.horizon,
        k_tp=PARAMS.k_tp,
        k_sl=PARAMS.k_sl,
        levels=LEVELS,
    )
    settings = BarLabelSettings(PARAMS, "triple_barrier", 1.0, LEVELS, 1 / 3, 0.5)
    return {
        "triple barrier (direction, R, exit, side)": lambda: triple_barrier(h, lo, c, a, PARAMS),
        "excursions (mfe, mae, stop_loss, tp_level)": lambda: excursions(
            h,
            lo,
            c,
            a,
            tb.side,
            horizon=PARAMS.horizon,
            k_tp=PARAMS.k_tp,
            k_sl=PARAMS.k_sl,
            levels=LEVELS,
        ),
        "forward volatility (volatility_regime)": lambda: forward_volatility(c, PARAMS.horizon),
        "fixed-horizon direction": lambda: fixed_horizon_direction(
            c, a, horizon=PARAMS.horizon, neutral_band=1.0
        ),
        "timing + time_to_hit (numpy)": lambda: (
            timing(
                tb.direction,
                tb.exit_offset,
                ex.adverse_before_tp,
                tb.valid,
                horizon=PARAMS.horizon,
                k_sl=PARAMS.k_sl,
                fast_within=1 / 3,
                clean_below=0.5,
            ),
            time_to_hit(tb.exit_offset, tb.valid, PARAMS.horizon),
        ),
        "volume z-score (news override, window 96)": lambda: volume_zscore(bars["volume"], 96),
        "all bar targets (label_bars)": lambda: label_bars(h, lo, c, a, settings),
    }


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: JIT compile / cache load, page faults
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = [min(int(t), numba.config.NUMBA_NUM_THREADS) for t in args.threads.split(",")]
    bars = synthetic_bars(args.bars)
    work = kernels(bars)
    rates: dict[str, list[float]] = {name: [] for name in work}
    for count in threads:
        numba.set_num_threads(count)
        for name, fn in work.items():
            rates[name].append(args.bars / best_seconds(fn, args.repeats))
    print(
        f"### Label kernels — {args.bars:,} synthetic bars, horizon {PARAMS.horizon}, "
        f"best of {args.repeats}\n\n{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, numba {numba.__version__} "
        f"(threading layer {numba.threading_layer()})\n"
    )
    print(
        "| kernel | " + " | ".join(f"{t} thread{'s' * (t > 1)} (M bars/s)" for t in threads) + " |"
    )
    print("| --- |" + " ---: |" * len(threads))
    for name, values in rates.items():
        print(f"| {name} | " + " | ".join(f"{v / 1e6:.1f}" for v in values) + " |")


if __name__ == "__main__":
    main()
