"""Per-symbol fan-out: 8 symbols as Ray tasks on 2 CPUs versus a sequential loop in one process.

The 8 symbols are the six bundled pairs plus ETH-BTC and LTC-BTC copied under two more names
(``ETHX-BTC``, ``LTCX-BTC``). Every shape trains, evaluates, exports and packages each symbol
with the same job; each writes to its own temporary store. Shapes:

- ``fan-out``: ``runner.run_job``: one Ray task per symbol with 1 CPU, 1 thread each, so two
  symbols train at a time on the 2 CPUs; measured three times in one Ray session:
  - ``first run, cold workers``: the job's worker processes start and import quantrain
    (what a one-off job on a fresh cluster pays);
  - ``first run, warm workers``: a second job into an empty store: workers already warm, no
    training history, so symbols go out in row order (here: file order, equal rows);
  - ``retrain, warm workers``: the same job again into that store: each symbol's previous
    ``train_seconds`` orders the fan-out longest first (a scheduled retrain);
- ``loop 1 thread``: ``pipeline.run_symbol`` for each symbol in turn with 1 thread;
- ``loop 2 threads``: the same with 2 threads per fit (the libraries' own parallelism).

The loops run in a process warmed up by one symbol first, so the warm-worker rows compare like
with like. Every shape runs ``--rounds`` times (3) in rounds, Ray started afresh each round;
the table gives medians, and each ratio is the median of the per-round ratios with its range
(this VM's speed drifts by up to 40 % over minutes). Cold costs are reported beside the
table: Ray's start-up (a job pays it once) and importing the pipeline in a fresh process (each
Ray worker pays it; so does a loop script).
Targets: fan-out at least 1.8x faster than the 1-thread loop and 1.15x faster than the
2-thread loop.

    python benchmarks/bench_fanout.py            # the default job (3 folds, 300 rounds max)
    python benchmarks/bench_fanout.py --quick    # a smoke run: 2 folds, 30 rounds max
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantrain.config import JobConfig, build_job
from quantrain.data import DataSource, discover
from quantrain.jobs import run_job, sample_data_dir
from quantrain.pipeline import run_symbol

COPIES = {"ETHX-BTC": "ETH-BTC", "LTCX-BTC": "LTC-BTC"}
COLD = "first run, cold workers"
WARM = "first run, warm workers"
RETRAIN = "retrain, warm workers (longest first)"
LOOP1, LOOP2 = "loop, 1 thread", "loop, 2 threads"


@dataclass(frozen=True)
class Round:
    ray_start: float
    seconds: dict[str, float]


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


def import_seconds() -> float:
    """Importing the pipeline in a fresh interpreter: what each worker (or a loop) pays once."""
    code = "import time; t = time.perf_counter(); import quantrain.pipeline; "
    code += "print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def one_round(job: Callable[[str], JobConfig], sources: list[DataSource], tag: str) -> Round:
    """Every shape once, Ray started afresh so the first fan-out meets cold workers."""
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    ray_start = time.perf_counter() - started
    warm = job(f"fanout-warm-{tag}")
    seconds = {
        COLD: fan_out(job(f"fanout-cold-{tag}")),
        WARM: fan_out(warm),
        RETRAIN: fan_out(warm),  # the store now holds each symbol's training time
    }
    ray.shutdown()
    seconds[LOOP1] = loop(job(f"loop1-{tag}"), sources, n_jobs=1)
    seconds[LOOP2] = loop(job(f"loop2-{tag}"), sources, n_jobs=2)
    return Round(ray_start, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 folds, 30 rounds max")
    parser.add_argument("--rounds", type=int, default=3, help="repeat every shape (median)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        data = eight_symbols(root / "data")
        sources = discover(data)
        assert len(sources) == 8, [s.symbol for s in sources]

        def job(store: str) -> JobConfig:
            return make_job(data, root / store, args.quick)

        # Warm-up of this process (numba caches, imports), outside the timings.
        run_symbol(sources[0], job("warmup"), n_jobs=1)
        imports = statistics.median(import_seconds() for _ in range(3))
        rounds = [one_round(job, sources, str(i)) for i in range(args.rounds)]

    def median(shape: str) -> float:
        return statistics.median(r.seconds[shape] for r in rounds)

    def ratio(loop_shape: str, shape: str) -> str:
        """Median over rounds of the per-round ratio (a round's shapes ran minutes apart)."""
        values = [r.seconds[loop_shape] / r.seconds[shape] for r in rounds]
        return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"

    print(
        f"\n8 symbols ({', '.join(s.symbol for s in sources)}), 2 CPUs, {len(rounds)} rounds, "
        f"medians; Ray start-up {statistics.median(r.ray_start for r in rounds):.1f} s "
        f"(excluded); importing the pipeline in a fresh process {imports:.1f} s"
    )
    print(f"loop, 1 thread: {median(LOOP1):.1f} s; loop, 2 threads: {median(LOOP2):.1f} s\n")
    print("| fan-out (8 tasks, 1 CPU each) | wall s | vs loop, 1 thread | vs loop, 2 threads |")
    print("| --- | --- | --- | --- |")
    for shape in (COLD, WARM, RETRAIN):
        print(f"| {shape} | {median(shape):.1f} | {ratio(LOOP1, shape)} | {ratio(LOOP2, shape)} |")
    print(
        "\nPer round (s): "
        + "; ".join(
            ", ".join(f"{r.seconds[shape]:.1f}" for shape in (LOOP1, LOOP2, COLD, WARM, RETRAIN))
            for r in rounds
        )
        + f"  ({LOOP1}, {LOOP2}, {COLD}, {WARM}, {RETRAIN})"
    )
    both_cold = [(r.seconds[LOOP1] + imports) / r.seconds[COLD] for r in rounds]
    print(
        f"\nBoth cold (the loop also pays the {imports:.1f} s import): "
        f"{statistics.median(both_cold):.2f}x vs the 1-thread loop"
    )


if __name__ == "__main__":
    main()
