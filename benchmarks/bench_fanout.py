"""Per-symbol fan-out: 8 symbols as Ray tasks on 2 CPUs versus a sequential loop in one process.

The 8 symbols are the six bundled pairs plus ETH-BTC and LTC-BTC copied under two more names
(``ETHX-BTC``, ``LTCX-BTC``). Every shape trains, evaluates, exports and packages each symbol
with the same job; each writes to its own temporary store. Shapes:

- ``fan-out``: ``runner.run_job``: one Ray task per symbol with 1 CPU, 1 thread each, so two
  symbols train at a time on the 2 CPUs;
- ``loop 1 thread``: ``pipeline.run_symbol`` for each symbol in turn with 1 thread;
- ``loop 2 threads``: the same with 2 threads per fit (the libraries' own parallelism).

Ray's start-up is measured separately and excluded from the ratios (a job pays it once).
Targets: fan-out at least 1.8x faster than the 1-thread loop and 1.15x faster than the
2-thread loop.

    python benchmarks/bench_fanout.py            # the default job (3 folds, 300 rounds max)
    python benchmarks/bench_fanout.py --quick    # a smoke run: 2 folds, 30 rounds max
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from quantrain.config import JobConfig, build_job
from quantrain.data import DataSource, discover
from quantrain.pipeline import run_symbol
from quantrain.runner import run_job, sample_data_dir

COPIES = {"ETHX-BTC": "ETH-BTC", "LTCX-BTC": "LTC-BTC"}


def eight_symbols(folder: Path) -> Path:
    """The six bundled pairs plus two copies under other names: 8 symbol files."""
    samples = sample_data_dir()
    for path in samples.glob("*_5m.parquet"):
        shutil.copy(path, folder / path.name)
    for name, source in COPIES.items():
        shutil.copy(samples / f"{source}_5m.parquet", folder / f"{name}_5m.parquet")
    return folder


def make_job(data: Path, store: Path, quick: bool) -> JobConfig:
    raw: dict[str, Any] = {
        "name": "bench-fanout",
        "data": {"path": str(data)},
        "store": str(store),
        "ray": {"num_cpus_per_symbol": 1},
    }
    if quick:
        heads = [
            {"name": n, "target": n, "params": {"n_estimators": 30, "early_stopping_rounds": 10}}
            for n in ("direction", "position_size")
        ]
        raw.update(
            split={"n_folds": 2},
            suite={"heads": heads},
            evaluate={"random_strategies": 10},
        )
    return build_job(raw)


def fan_out(job: JobConfig) -> float:
    started = time.perf_counter()
    summary = run_job(job)
    seconds = time.perf_counter() - started
    assert not summary.failed, [r.error for r in summary.failed]
    return seconds


def loop(job: JobConfig, sources: list[DataSource], n_jobs: int) -> float:
    started = time.perf_counter()
    for source in sources:
        result = run_symbol(source, job, n_jobs=n_jobs)
        assert result.ok, result.error
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 folds, 30 rounds max")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        data = eight_symbols(root / "data")
        sources = discover(data)
        assert len(sources) == 8, [s.symbol for s in sources]

        def job(store: str) -> JobConfig:
            return make_job(data, root / store, args.quick)

        # Warm-up outside the timings: numba caches, imports.
        run_symbol(sources[0], job("warmup"), n_jobs=1)

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        fanned = fan_out(job("fanout"))
        ray.shutdown()
        one = loop(job("loop1"), sources, n_jobs=1)
        two = loop(job("loop2"), sources, n_jobs=2)

    print(
        f"\n8 symbols ({', '.join(s.symbol for s in sources)}), 2 CPUs; "
        f"Ray start-up {ray_start:.1f} s (excluded)\n"
    )
    print("| shape | wall s | speed-up of fan-out | target |")
    print("| --- | --- | --- | --- |")
    print(f"| fan-out (8 tasks, 1 CPU each) | {fanned:.1f} | - | - |")
    print(f"| loop, 1 thread | {one:.1f} | {one / fanned:.2f}x | >= 1.8x |")
    print(f"| loop, 2 threads | {two:.1f} | {two / fanned:.2f}x | >= 1.15x |")


if __name__ == "__main__":
    main()
