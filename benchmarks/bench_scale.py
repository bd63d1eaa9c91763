"""Real scale (issue 21): one symbol's whole job at 26k / 105k / 525k 5m bars, stage by stage.

Synthetic but realistic OHLCV (``synthetic_ohlcv``: a seeded two-regime GBM — calm and
volatile, each with its own drift — switching by a Markov chain, intrabar ranges and volume
that grow with the move). Each (bars, suite) case runs ``pipeline.run_symbol`` in a fresh
process, so its peak RSS is its own, and reports:

- wall time per pipeline stage (from the stage events the CLI's progress shows);
- the time inside the model library's own ``fit`` calls (a timing ``Fitter`` wraps the real
  one: the same matrices, rows and rounds), and the whole job as a multiple of it;
- the job's peak RSS (taken before the features-alone timing, whose matrix is not the job's)
  beside the size of the float64 feature matrix.

    python benchmarks/bench_scale.py                       # 26k and 105k bars, core suite
    python benchmarks/bench_scale.py --bars 26000 105000 525000 --suite core full

Prints a Markdown table per suite. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Where each pipeline stage's time is booked (stage names as ``pipeline.run_symbol`` emits).
STAGES = (
    "read",
    "features + labels",
    "walk-forward folds",
    "holdout",
    "final fits",
    "evaluation + report",
    "export + package",
    "push",
)


def synthetic_ohlcv(bars: int, seed: int = 7, start: str = "2020-01-01") -> pd.DataFrame:
    """``bars`` 5m candles of a regime-switching GBM with volume, the same for the same seed."""
    rng = np.random.default_rng(seed)
    stay = 0.998  # a regime lasts ~500 bars (~1.7 days) on average
    sigma = np.array([0.0012, 0.0035])  # per-bar volatility: calm, volatile
    # Per-bar drift of each regime: calm markets creep up, volatile ones give some of it back;
    # the log drift nets to about +1.5e-6 per bar (x2.2 over 5 years), no secular crash.
    drift = np.array([0.00002, -0.00001])
    regime = np.empty(bars, dtype=np.int64)
    state = 0
    flips = rng.random(bars) > stay
    for i in range(bars):
        state ^= int(flips[i])
        regime[i] = state
    returns = drift[regime] + sigma[regime] * rng.standard_normal(bars)
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(
        0.1 * sigma[regime] * rng.standard_normal(bars)
    )
    wick = sigma[regime] * np.abs(rng.standard_normal((2, bars))) * 0.7
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(3.0, 0.5, bars) * (1.0 + np.abs(returns) / sigma[regime])
    stamps = pd.date_range(start, periods=bars, freq="5min", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def _stage_of(name: str) -> str:
    if name == "read data":
        return "read"
    if name == "features and labels":
        return "features + labels"
    if " fold " in name:
        return "walk-forward folds"
    if name.endswith(" holdout"):
        return "holdout"
    if name.endswith(" final fit"):
        return "final fits"
    if name == "backtest":
        return "evaluation + report"
    if name == "export and package":
        return "export + package"
    return name


def run_case(bars: int, suite: str, workdir: Path) -> dict[str, Any]:
    """One case in this process: the job, its stage times, fit time and peak RSS."""
    from quantrain.config import build_job
    from quantrain.data import DataSource
    from quantrain.features import compute_features, resolve_feature_set
    from quantrain.pipeline import run_symbol
    from quantrain.suite.fit import plain_fit

    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # libraries loaded
    frame = synthetic_ohlcv(bars)
    path = workdir / "SYN_5m.parquet"
    frame.to_parquet(path, index=False)
    job = build_job({"store": str(workdir / "models"), "suite": suite})
    threads = len(os.sched_getaffinity(0))

    fit_seconds = 0.0

    def timed_fit(model: Any, X: np.ndarray, y: np.ndarray, **kwargs: Any) -> Any:
        nonlocal fit_seconds
        started = time.perf_counter()
        try:
            return plain_fit(model, X, y, **kwargs)
        finally:
            fit_seconds += time.perf_counter() - started

    events: list[tuple[str, float]] = []
    started = time.perf_counter()
    result = run_symbol(
        DataSource("SYN", "5m", path),
        job,
        n_jobs=threads,
        fit=timed_fit,
        on_stage=lambda stage: events.append((stage, time.perf_counter())),
    )
    total = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"{bars} bars, {suite}: {result.error}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the job's, not below
    stages: dict[str, float] = defaultdict(float)
    ends = [t for _, t in events[1:]] + [started + total]
    for (name, begun), ended in zip(events, ends, strict=True):
        stages[_stage_of(name)] += ended - begun

    spec = resolve_feature_set(job.features, "5m")
    began = time.perf_counter()
    features = compute_features(frame, spec)
    features_alone = time.perf_counter() - began
    return {
        "bars": bars,
        "suite": suite,
        "heads": len(job.suite.heads),
        "threads": threads,
        "total_s": total,
        "stages_s": dict(stages),
        "fit_s": fit_seconds,
        "features_alone_s": features_alone,
        "feature_columns": features.shape[1],
        "matrix_mb": features.shape[0] * features.shape[1] * 8 / 2**20,
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": baseline_mb,
    }


def _table(cases: list[dict[str, Any]]) -> str:
    head = "| stage | " + " | ".join(f"{c['bars']:,} bars" for c in cases) + " |"
    lines = [head, "| --- |" + " --- |" * len(cases)]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for stage in STAGES:
        row(stage, [f"{c['stages_s'].get(stage, 0.0):.1f} s" for c in cases])
    row("**whole job**", [f"**{c['total_s']:.1f} s**" for c in cases])
    row("inside the library's fit calls", [f"{c['fit_s']:.1f} s" for c in cases])
    row("whole job / fit calls", [f"{c['total_s'] / max(c['fit_s'], 1e-9):.2f}×" for c in cases])
    row("features alone (kernel)", [f"{c['features_alone_s'] * 1e3:.0f} ms" for c in cases])
    row("peak RSS", [f"{c['peak_rss_mb']:,.0f} MB" for c in cases])
    row(
        "peak RSS above the loaded libraries",
        [f"{c['peak_rss_mb'] - c['baseline_rss_mb']:,.0f} MB" for c in cases],
    )
    row(
        "feature matrix (float64)",
        [f"{c['matrix_mb']:,.0f} MB ({c['feature_columns']} cols)" for c in cases],
    )
    row(
        "(peak RSS above libraries) / matrix",
        [f"{(c['peak_rss_mb'] - c['baseline_rss_mb']) / c['matrix_mb']:.1f}×" for c in cases],
    )
    row("µs per bar, whole job", [f"{c['total_s'] / c['bars'] * 1e6:.0f}" for c in cases])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[26_000, 105_000])
    parser.add_argument("--suite", nargs="+", default=["core"])
    parser.add_argument("--child", nargs=2, metavar=("BARS", "SUITE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_case(int(args.child[0]), args.child[1], Path(tmp))))
        return
    for suite in args.suite:
        cases = []
        for bars in args.bars:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(bars), suite],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            cases.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"# {suite}, {bars:,} bars: {cases[-1]['total_s']:.1f} s", file=sys.stderr)
        print(f"\n### `{suite}` suite ({cases[0]['heads']} heads), {cases[0]['threads']} threads\n")
        print(_table(cases))


if __name__ == "__main__":
    main()
