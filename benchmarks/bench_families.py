"""Fit time per model family on one bundled pair, beside XGBoost (issue 20).

Every family usable here (``quantrain.models.family_keys()``) trains the ``direction``
(classification) and ``position_size`` (regression) heads of one pair the way a job does:
the job's walk-forward folds on the development rows (``pipeline.tuning_inputs``, holdout left
out), then the final model on every development row for the folds' round budget
(``--heads`` names others: ``trade_path`` for ``mlp_multitask``, ``volatility_regime`` for
``gmm_regime``). Timed:
the folds plus the final fit, importance off (it is the same code for every family). Each
row also gives the pooled out-of-sample score beside its naive baseline, so a fast family
that learns nothing shows as such.

    python benchmarks/bench_families.py                   # ETH-BTC, 2 threads
    python benchmarks/bench_families.py --pair XMR-BTC --threads 1 --families xgboost ftrl

Prints a Markdown table. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from quantrain.config import HeadConfig, JobConfig, build_job
from quantrain.data import read_ohlcv
from quantrain.data.samples import sample_data_dir
from quantrain.errors import QuantrainError
from quantrain.labels import target_def
from quantrain.models import family_keys, get_family
from quantrain.pipeline import tuning_inputs
from quantrain.suite.dataset import Dataset, target_of
from quantrain.suite.fit import fit_final, head_folds

#: Heads a family is timed on (``--heads``): a head's name is its target's.
DEFAULT_HEADS = ("direction", "position_size")


@dataclass(frozen=True)
class Row:
    family: str
    head: str
    seconds: float
    score: str


def _score(pooled: dict[str, float], task: str) -> str:
    if task == "classification":
        return (
            f"acc {pooled['accuracy']:.3f} (majority class {pooled['baseline_accuracy']:.3f}), "
            f"balanced acc {pooled['balanced_accuracy']:.3f}"
        )
    return f"MAE {pooled['mae']:.3f} (train mean: {pooled['baseline_mae']:.3f})"


def time_family(
    family: str, head: str, target: str, data: Dataset, folds: list, job: JobConfig, threads: int
) -> Row | None:
    """One head of one family: folds + final fit, or None when the family cannot learn it."""
    task = target_of(target).task
    tags = get_family(family).tags
    if task not in tags.tasks or bool(target_def(target).columns) != tags.multi_target:
        return None
    config = HeadConfig(name=head, target=target, family=family)
    start = time.perf_counter()
    result = head_folds(config, data, folds, job, n_jobs=threads, importance=False)
    fit_final(config, data, job, result.budget(), n_jobs=threads)
    seconds = time.perf_counter() - start
    return Row(family, head, seconds, _score(result.pooled(), task))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="ETH-BTC")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument(
        "--heads", nargs="*", default=list(DEFAULT_HEADS), help="targets, e.g. trade_path"
    )
    args = parser.parse_args()

    job = build_job({"name": "bench-families", "suite": "core"})
    loaded = read_ohlcv(sample_data_dir() / f"{args.pair}_5m.parquet")
    data, folds = tuning_inputs(loaded.frame, symbol=args.pair, job=job, timeframe="5m")
    families = args.families or family_keys()
    rows: list[Row] = []
    for family in families:
        for target in args.heads:
            head = target
            try:
                row = time_family(family, head, target, data, folds, job, args.threads)
            except QuantrainError as error:  # a family that needs what this head lacks
                print(f"{family} / {head}: skipped: {error}")
                continue
            if row is not None:
                rows.append(row)
                print(f"{family} / {head}: {row.seconds:.1f} s", flush=True)

    reference = {r.head: r.seconds for r in rows if r.family == "xgboost"}
    print(
        f"\n{args.pair} 5m, {len(data.X):,} development rows x {data.X.shape[1]} features, "
        f"{len(folds)} folds + final fit, {args.threads} threads\n"
    )
    print("| family | head | fit s (folds + final) | vs xgboost | out-of-sample (baseline) |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        ratio = row.seconds / reference[row.head] if row.head in reference else float("nan")
        print(f"| {row.family} | {row.head} | {row.seconds:.2f} | {ratio:.2f}× | {row.score} |")


if __name__ == "__main__":
    main()
