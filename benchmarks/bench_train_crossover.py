"""When Ray Train is worth it: one XGBoost fit in-process versus data-parallel, by row count.

The matrix is the real one: ``synthetic_ohlcv`` bars (bench_scale.py) through the job's
feature and label pipeline (``pipeline.build_dataset``, the default feature set), the
``direction`` target with the job's balanced class weights; each size is the first N rows of
one matrix. Every size fits the same model (the job's xgboost defaults, a fixed number of
rounds, no early stopping, so both shapes do the same work):

- ``in-process``: the family's ``fit`` here with 2 threads (what a symbol's task does);
- ``Ray Train``: ``gbdt_train.fit_data_parallel`` with 2 workers x 1 CPU (every other row per
  worker, histograms summed by XGBoost's collective), shards put into the object store and the
  booster handed back through a checkpoint, as in a job.

Ray runs locally with 2 CPUs, started once (not timed). The shapes alternate, and their
order flips every repeat, so drift of a shared machine hits both; the table gives medians.
The crossover is the smallest size from which Ray Train stays faster at every larger size.

    python benchmarks/bench_train_crossover.py                    # 50k ... 2M rows, 3 repeats
    python benchmarks/bench_train_crossover.py --rows 20000 50000 --repeat 1 --rounds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

# The script's folder is on sys.path: bench_scale.py beside it.
from bench_scale import synthetic_ohlcv

from quantrain.config import build_job
from quantrain.features import resolve_feature_set
from quantrain.models import ModelFamily, get_family
from quantrain.pipeline import build_dataset
from quantrain.suite.fit import balanced_weights

IN_PROCESS, RAY_TRAIN = "in-process, 2 threads", "Ray Train, 2 workers x 1 CPU"
#: Bars the feature and label warm-up drops (indicator windows, the label horizon).
MARGIN = 2_000


def matrix(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At least ``rows`` rows of the real feature matrix, the direction target and weights."""
    job = build_job({})
    frame = synthetic_ohlcv(rows + MARGIN)
    data = build_dataset(frame, resolve_feature_set(job.features, "5m"), job)
    X = np.ascontiguousarray(data.X, dtype=np.float32)
    y = data.target("direction").astype(np.int64)
    if len(X) < rows:
        raise SystemExit(f"the pipeline kept {len(X)} rows of {rows + MARGIN} bars; raise MARGIN")
    return X, y, balanced_weights(y, 3)


def model(rounds: int, threads: int) -> ModelFamily:
    params = {"n_estimators": rounds, "early_stopping_rounds": 0}
    return get_family("xgboost")("classification", params, n_classes=3, seed=42, n_jobs=threads)


def fit_in_process(X: np.ndarray, y: np.ndarray, w: np.ndarray, rounds: int) -> float:
    started = time.perf_counter()
    fitted = model(rounds, threads=2).fit(X, y, sample_weight=w)
    seconds = time.perf_counter() - started
    assert fitted.best_iteration_ == rounds
    return seconds


def fit_ray_train(X: np.ndarray, y: np.ndarray, w: np.ndarray, rounds: int, root: str) -> float:
    from quantrain.orchestration.gbdt_train import fit_data_parallel

    started = time.perf_counter()
    run = fit_data_parallel(
        model(rounds, threads=1), X, y, sample_weight=w, workers=2, storage=root
    )
    seconds = time.perf_counter() - started
    assert sum(run.rows_per_worker) == len(X) and run.model.best_iteration_ == rounds
    return seconds


def crossover(sizes: list[int], inproc: dict[int, float], dp: dict[int, float]) -> int | None:
    """The smallest size from which data-parallel is faster at this and every larger size."""
    found = None
    for rows in reversed(sizes):
        if dp[rows] >= inproc[rows]:
            break
        found = rows
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[50_000, 200_000, 500_000, 1_000_000, 2_000_000]
    )
    parser.add_argument("--repeat", type=int, default=3, help="fits per shape and size (median)")
    parser.add_argument("--rounds", type=int, default=100, help="boosting rounds of every fit")
    args = parser.parse_args()
    sizes = sorted(args.rows)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    started = time.perf_counter()
    X_all, y_all, w_all = matrix(sizes[-1])
    print(
        f"# matrix: {len(X_all):,} rows x {X_all.shape[1]} features "
        f"({time.perf_counter() - started:.0f} s to build, not timed)",
        file=sys.stderr,
    )
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    times: dict[str, dict[int, list[float]]] = {IN_PROCESS: {}, RAY_TRAIN: {}}
    with tempfile.TemporaryDirectory() as root:
        for repeat in range(args.repeat):
            for rows in sizes:
                X, y, w = X_all[:rows], y_all[:rows], w_all[:rows]
                shapes = [IN_PROCESS, RAY_TRAIN]
                for shape in shapes if repeat % 2 == 0 else shapes[::-1]:
                    if shape == IN_PROCESS:
                        seconds = fit_in_process(X, y, w, args.rounds)
                    else:
                        seconds = fit_ray_train(X, y, w, args.rounds, root)
                    times[shape].setdefault(rows, []).append(seconds)
                    print(f"# {repeat} {rows:,} {shape}: {seconds:.2f} s", file=sys.stderr)
    ray.shutdown()

    inproc = {rows: statistics.median(times[IN_PROCESS][rows]) for rows in sizes}
    dp = {rows: statistics.median(times[RAY_TRAIN][rows]) for rows in sizes}
    print(
        f"\nxgboost, {args.rounds} rounds, {X_all.shape[1]} features, 2 CPUs, "
        f"median of {args.repeat}\n"
    )
    print(f"| rows | {IN_PROCESS} s | {RAY_TRAIN} s | in-process / Ray Train |")
    print("| --- | --- | --- | --- |")
    for rows in sizes:
        print(
            f"| {rows:,} | {inproc[rows]:.2f} | {dp[rows]:.2f} | {inproc[rows] / dp[rows]:.2f}x |"
        )
    found = crossover(sizes, inproc, dp)
    if found is None:
        print(f"\ncrossover: none up to {sizes[-1]:,} rows on this machine")
    else:
        print(f"\ncrossover: {found:,} rows")


if __name__ == "__main__":
    main()
