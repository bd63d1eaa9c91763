"""Tuning overhead: the same trials through quantrain's Ray Tune search versus a plain Optuna
loop in one process.

Same seeded TPE sampler, same search space, same objective (``tuning.fold_scores``: the head
trained and scored on each purged walk-forward fold by the pipeline's own code). Early stopping
is off in every shape so all of them do exactly the same work. Shapes, all at 2 CPUs in total:

- ``optuna``: a plain loop, one trial at a time, each training with 2 threads (the baseline);
- ``tune 1x2``: Ray Tune, one trial at a time with 2 CPUs / 2 threads: the same trials in the
  same order, so it proposes the same params; the difference is Tune's overhead;
- ``tune 2x1``: Ray Tune, two concurrent trials of 1 CPU / 1 thread each: how quantrain tunes
  by default. TPE sees results in a different order, so its params differ after the random
  start-up trials.

Ray's start-up (once per process, ~5 s) is measured separately and excluded from the ratios.

    python benchmarks/bench_tune.py               # 20 trials, 100 rounds, 3 folds
    python benchmarks/bench_tune.py --quick       # a smoke run: 6 trials, 20 rounds, 2 folds
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Any

import optuna

from quantrain.config import JobConfig, build_job
from quantrain.data import read_ohlcv
from quantrain.jobs import sample_data_dir
from quantrain.pipeline import tuning_inputs
from quantrain.split import Fold
from quantrain.suite.dataset import Dataset
from quantrain.tuning.search import fold_scores, head_metric, running_mean, space_for
from quantrain.tuning.space import trial_params


@dataclass
class Shape:
    name: str
    seconds: float
    params: list[dict[str, Any]]
    best: float


def make_job(trials: int, rounds: int, folds: int, seed: int) -> JobConfig:
    head = {
        "name": "direction",
        "target": "direction",
        "params": {"n_estimators": rounds, "early_stopping_rounds": max(5, rounds // 5)},
    }
    return build_job(
        {
            "split": {"n_folds": folds},
            "suite": {"heads": [head]},
            "tune": {"num_samples": trials, "seed": seed, "early_stopping": False},
        }
    )


def plain_optuna(job: JobConfig, data: Dataset, folds: list[Fold], n_jobs: int) -> Shape:
    head = job.suite.heads[0]
    space = space_for(job, head)
    metric, higher = head_metric(job, head)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if higher else "minimize",
        sampler=optuna.samplers.TPESampler(seed=job.tune.seed),
    )
    proposed = []
    started = time.perf_counter()
    for _ in range(job.tune.num_samples):
        trial = study.ask()
        params = trial_params(trial, space)
        proposed.append(params)
        scores: list[float] = []
        for step, score in enumerate(
            fold_scores(head, data, folds, job, params, metric=metric, n_jobs=n_jobs)
        ):
            scores.append(score)
            trial.report(running_mean(scores), step + 1)
        study.tell(trial, running_mean(scores))
    seconds = time.perf_counter() - started
    return Shape(f"optuna 1x{n_jobs}", seconds, proposed, study.best_value)


def ray_tune(job: JobConfig, data: Dataset, folds: list[Fold], concurrent: int, cpus: int) -> Shape:
    from quantrain.orchestration.tune import search_head

    settings = job.tune.model_copy(
        update={"max_concurrent_trials": concurrent, "cpus_per_trial": float(cpus)}
    )
    tuned_job = job.model_copy(update={"tune": settings})
    started = time.perf_counter()
    search = search_head(tuned_job.suite.heads[0], data, folds, tuned_job, symbol="ETH-BTC")
    seconds = time.perf_counter() - started
    ordered = sorted(search.trials, key=lambda t: t.trial)
    return Shape(
        f"tune {concurrent}x{cpus}",
        seconds,
        [t.params for t in ordered],
        search.best().mean,
    )


def same_params(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def key(p: dict[str, Any]) -> str:
        return repr(sorted(p.items()))

    return sorted(map(key, a)) == sorted(map(key, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="6 trials, 20 rounds, 2 folds")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.rounds, args.folds = 6, 20, 2

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    job = make_job(args.trials, args.rounds, args.folds, args.seed)
    frame = read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame
    data, folds = tuning_inputs(frame, symbol="ETH-BTC", job=job)
    head = job.suite.heads[0]
    metric, _ = head_metric(job, head)
    list(fold_scores(head, data, folds[:1], job, {}, metric=metric))  # warm caches, imports

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    ray_start = time.perf_counter() - started

    baseline = plain_optuna(job, data, folds, n_jobs=2)
    sequential = ray_tune(job, data, folds, concurrent=1, cpus=2)
    concurrent = ray_tune(job, data, folds, concurrent=2, cpus=1)
    ray.shutdown()

    print(
        f"\n{args.trials} trials x {args.folds} folds, ETH-BTC direction head, "
        f"{args.rounds} rounds max, 2 CPUs in total; Ray start-up {ray_start:.1f} s (excluded)\n"
    )
    print("| shape | wall s | s/trial | ratio vs optuna | best balanced acc | same params |")
    print("| --- | --- | --- | --- | --- | --- |")
    for shape in (baseline, sequential, concurrent):
        print(
            f"| {shape.name} | {shape.seconds:.1f} | {shape.seconds / args.trials:.2f} | "
            f"{shape.seconds / baseline.seconds:.2f}x | {shape.best:.4f} | "
            f"{'yes' if same_params(shape.params, baseline.params) else 'no'} |"
        )


if __name__ == "__main__":
    main()
