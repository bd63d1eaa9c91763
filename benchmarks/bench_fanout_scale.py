"""The fan-out at scale: N synthetic symbols x B bars as Ray tasks versus a 1-thread loop.

``--symbols`` seeded ``synthetic_ohlcv`` series (bench_scale.py) of ``--bars`` 5m bars are
written as parquet files to a temporary folder first (not timed). Then, one round each, every
symbol trains, evaluates, exports and packages with the same job (``--suite core`` or
``direction-only``) into its own temporary store:

- ``fan-out``: ``jobs.run_job`` on a local Ray started with ``--cpus`` CPUs (2), one task per
  symbol with 1 CPU and 1 thread, so ``--cpus`` symbols train at a time (Ray's start-up is
  reported, not timed; the workers start cold inside the timing, as in a one-off job);
- ``loop``: ``pipeline.run_symbol`` for each symbol in turn with 1 thread, in one process.

Each shape runs in a child process of its own; a thread here sums the RSS of that child and of
its processes every 0.2 s: the driver, and for the fan-out the Ray workers (``ray::`` processes)
beside Ray's own daemons (GCS, raylet, agents), given apart. RSS counts pages shared between
processes (libraries, the object store's mapped memory) once per process, so the sums are an
upper bound. If memory is bounded by the workers and not by the symbols, the fan-out's peak
stays near ``--cpus`` times one symbol's, whatever ``--symbols`` is.

    python benchmarks/bench_fanout_scale.py --symbols 50 --bars 105000 --suite core
    python benchmarks/bench_fanout_scale.py --symbols 4 --bars 20000 --suite direction-only
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The script's folder is on sys.path: bench_scale.py beside it.
from bench_scale import synthetic_ohlcv

SAMPLE_S = 0.2


def _psutil() -> Any:
    """psutil is no dependency of quantrain; Ray ships a copy (``ray/thirdparty_files``) and
    puts it on ``sys.path`` when imported (an installed psutil is found first)."""
    import ray  # noqa: F401

    return importlib.import_module("psutil")


SUITES: dict[str, Any] = {
    "core": "core",
    "direction-only": {
        "name": "direction-only",
        "heads": [{"name": "direction", "target": "direction"}],
    },
}


def make_job(data: Path, store: Path, suite: str) -> Any:
    from quantrain.config import build_job

    return build_job(
        {
            "name": "bench-fanout-scale",
            "data": {"path": str(data)},
            "store": str(store),
            "suite": SUITES[suite],
            "ray": {"num_cpus_per_symbol": 1},
        }
    )


def child(shape: str, data: Path, store: Path, suite: str, cpus: int) -> dict[str, Any]:
    """One shape in this process: its wall time (and Ray's start-up for the fan-out)."""
    from quantrain.data import discover

    job = make_job(data, store, suite)
    out: dict[str, Any] = {"shape": shape}
    if shape == "fan-out":
        import ray

        from quantrain.jobs import run_job

        started = time.perf_counter()
        ray.init(
            num_cpus=cpus, include_dashboard=False, configure_logging=False, log_to_driver=False
        )
        out["ray_start_s"] = time.perf_counter() - started
        started = time.perf_counter()
        summary = run_job(job)
        out["wall_s"] = time.perf_counter() - started
        failed = [r.error for r in summary.failed]
        ray.shutdown()
    else:
        from quantrain.pipeline import run_symbol
        from quantrain.runtime.cpus import thread_budget

        started = time.perf_counter()
        failed = []
        with thread_budget(1):
            for source in discover(data):
                result = run_symbol(source, job, n_jobs=1)
                if not result.ok:
                    failed.append(result.error)
        out["wall_s"] = time.perf_counter() - started
    if failed:
        raise SystemExit(f"{shape}: {len(failed)} symbols failed: {failed[:3]}")
    return out


def _worker_title(process: Any) -> str | None:
    """A Ray worker's title, ``ray::<task>`` (``ray::IDLE`` between tasks); None for others."""
    try:
        title = " ".join(process.cmdline()) or process.name()
    except _psutil().Error:
        return None
    return title if title.startswith("ray::") or "default_worker.py" in title else None


@dataclass
class Peaks:
    """Peaks of the summed RSS (MB) of a process tree, sampled every ``SAMPLE_S`` seconds."""

    driver: float = 0.0
    workers: float = 0.0
    driver_and_workers: float = 0.0
    tree: float = 0.0
    max_workers: int = 0
    #: Workers running a symbol's task (``ray::_train_one``) at once, at most.
    max_busy: int = 0
    samples: int = 0
    seen_workers: set[int] = field(default_factory=set)


def sample(root: Any, peaks: Peaks, stop: threading.Event) -> None:
    psutil = _psutil()
    while not stop.is_set():
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        driver = workers = other = 0.0
        running = busy = 0
        for process in processes:
            try:
                rss = process.memory_info().rss / 2**20
            except psutil.Error:
                continue
            if process.pid == root.pid:
                driver += rss
            elif (title := _worker_title(process)) is not None:
                workers += rss
                running += 1
                busy += "_train_one" in title
                peaks.seen_workers.add(process.pid)
            else:
                other += rss
        peaks.driver = max(peaks.driver, driver)
        peaks.workers = max(peaks.workers, workers)
        peaks.driver_and_workers = max(peaks.driver_and_workers, driver + workers)
        peaks.tree = max(peaks.tree, driver + workers + other)
        peaks.max_workers = max(peaks.max_workers, running)
        peaks.max_busy = max(peaks.max_busy, busy)
        peaks.samples += 1
        stop.wait(SAMPLE_S)


def run_shape(shape: str, data: Path, store: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``shape`` in a child process, its tree's RSS sampled from here."""
    command = [sys.executable, __file__, "--child", shape, str(data), str(store)]
    command += ["--suite", args.suite, "--cpus", str(args.cpus)]
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peaks, stop = Peaks(), threading.Event()
    sampler = threading.Thread(target=sample, args=(_psutil().Process(proc.pid), peaks, stop))
    sampler.start()
    stdout, stderr = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{shape} failed:\n{stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    result["peaks"] = peaks
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--bars", type=int, default=105_000)
    parser.add_argument("--suite", choices=sorted(SUITES), default="core")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument(
        "--child", nargs=3, metavar=("SHAPE", "DATA", "STORE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        shape, data, store = args.child
        print(json.dumps(child(shape, Path(data), Path(store), args.suite, args.cpus)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        started = time.perf_counter()
        for i in range(args.symbols):
            synthetic_ohlcv(args.bars, seed=i).to_parquet(data / f"SYN{i:03d}-USDT_5m.parquet")
        written = time.perf_counter() - started
        print(f"# {args.symbols} x {args.bars:,} bars written in {written:.0f} s", file=sys.stderr)
        fan = run_shape("fan-out", data, root / "store-fanout", args)
        print(f"# fan-out: {fan['wall_s']:.1f} s", file=sys.stderr)
        loop = run_shape("loop", data, root / "store-loop", args)
        print(f"# loop: {loop['wall_s']:.1f} s", file=sys.stderr)

    fp: Peaks = fan["peaks"]
    lp: Peaks = loop["peaks"]
    print(
        f"\n{args.symbols} symbols x {args.bars:,} 5m bars, suite {args.suite}, "
        f"{args.cpus} CPUs, one round; Ray start-up {fan['ray_start_s']:.1f} s (not timed); "
        f"RSS sampled every {SAMPLE_S} s\n"
    )
    print("| shape | wall s | speed-up | peak RSS, driver + workers | peak RSS, workers |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| loop, 1 thread | {loop['wall_s']:.1f} | 1.00x | {lp.driver:,.0f} MB | — |")
    print(
        f"| fan-out, {args.cpus} x 1 CPU | {fan['wall_s']:.1f} | "
        f"{loop['wall_s'] / fan['wall_s']:.2f}x | {fp.driver_and_workers:,.0f} MB | "
        f"{fp.workers:,.0f} MB |"
    )
    print(
        f"\nfan-out: at most {fp.max_workers} Ray worker processes alive at once "
        f"({fp.max_busy} training a symbol), {len(fp.seen_workers)} over the run, for "
        f"{args.symbols} symbols; driver peak "
        f"{fp.driver:,.0f} MB; whole tree with Ray's daemons (GCS, raylet, agents) "
        f"{fp.tree:,.0f} MB; fan-out / loop peak (driver + workers): "
        f"{fp.driver_and_workers / max(lp.driver, 1e-9):.2f}x"
    )


if __name__ == "__main__":
    main()
