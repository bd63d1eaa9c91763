"""What the multi-output torch heads earn, out of sample, on the bundled pairs.

For each pair, on the package's own walk-forward folds (development rows, the holdout left
alone), pooled over folds:

- ``trade_path``: ``mlp_multitask`` (one body, a head per task, equal loss weights) against
  three single-target ``mlp`` heads with the same architecture and budget, and against each
  task's baseline (the training mean): MAE per task;
- ``mlp_gaussian`` on ``mfe`` and ``position_size``: NLL and 90 % coverage beside one Gaussian
  fitted to the training rows (the baseline), and MAE of its mean beside plain ``mlp``'s.

    python benchmarks/bench_torch_heads.py            # every bundled pair
    python benchmarks/bench_torch_heads.py --quick    # ETH-BTC only
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from quantrain.config import build_job
from quantrain.data import read_ohlcv
from quantrain.jobs import sample_data_dir
from quantrain.pipeline import tuning_inputs
from quantrain.suite.fit import head_folds

NET = {"hidden": 32, "layers": 2, "epochs": 30, "early_stopping_rounds": 3}
PARTS = ("time_to_hit", "mae", "mfe")


def pooled(name: str, target: str, family: str, frame: Any, symbol: str) -> dict[str, float]:
    head = {"name": name, "target": target, "family": family, "params": NET}
    job = build_job({"split": {"n_folds": 3}, "suite": {"name": "b", "heads": [head]}})
    data, folds = tuning_inputs(frame, symbol=symbol, job=job)
    return head_folds(job.suite.heads[0], data, folds, job, importance=False).pooled()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    files = sorted(sample_data_dir().glob("*_5m.parquet"))
    if args.quick:
        files = [f for f in files if f.name.startswith("ETH-BTC")]
    print("pair      task         multitask  single mlp  baseline  (MAE, folds pooled)")
    gaussian_rows = []
    for path in files:
        symbol = path.name.split("_")[0]
        frame = read_ohlcv(path).frame
        start = time.perf_counter()
        multi = pooled("path", "trade_path", "mlp_multitask", frame, symbol)
        for part in PARTS:
            single = pooled(part, part, "mlp", frame, symbol)
            print(
                f"{symbol:9} {part:12} {multi[f'{part}.mae']:9.4f}  {single['mae']:10.4f}"
                f"  {multi[f'{part}.baseline_mae']:8.4f}"
            )
        for target in ("mfe", "position_size"):
            gauss = pooled(target, target, "mlp_gaussian", frame, symbol)
            plain = pooled(target, target, "mlp", frame, symbol)
            gaussian_rows.append((symbol, target, gauss, plain))
        print(f"          ({time.perf_counter() - start:.0f} s for this pair)")
    print()
    print("pair      target         nll  base_nll  cov90  base_cov90  mae(mean)  mae(mlp)")
    for symbol, target, g, p in gaussian_rows:
        print(
            f"{symbol:9} {target:13} {g['nll']:6.3f}  {g['baseline_nll']:8.3f}  "
            f"{g['coverage_90']:5.3f}  {g['baseline_coverage_90']:10.3f}  {g['mae']:9.4f}  "
            f"{p['mae']:8.4f}"
        )


if __name__ == "__main__":
    main()
