"""Train one torch head data-parallel with Ray Train's ``TorchTrainer`` (DDP).

The training loop is the family's own (``quantrain.models.torch_family``); this module only
passes it :class:`~quantrain.models.torch_family.TrainHooks`: the worker's rank, Ray's
``prepare_model`` (DDP), an all-reduce mean so every worker takes the same early-stopping
decision, and ``ray.train.report`` for each epoch's metrics. Every worker holds the training
rows and trains on its shard of each epoch's seeded permutation (rows ``rank::world_size``, no
padding), so across workers every row is seen once per epoch. Rank 0 saves the fitted model in
the native format as the run's checkpoint; the caller gets it back as an ordinary family object
that exports to ONNX like a single-process one.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantrain.errors import ModelError
from quantrain.models import ModelFamily, Task, get_family


@dataclass(frozen=True)
class DataParallelFit:
    """The fitted model (rank 0's weights) and what the workers did."""

    model: ModelFamily
    #: Rows each worker trained on, summed over its epochs (index = rank).
    rows_per_worker: list[int]
    epochs: int
    metrics: dict[str, Any]


def train_torch_head(
    family: str,
    task: Task,
    X: np.ndarray,
    y: np.ndarray,
    *,
    params: dict[str, Any] | None = None,
    n_classes: int | None = None,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
    seed: int = 0,
    num_workers: int = 2,
    use_gpu: bool = False,
    threads_per_worker: int = 1,
    storage_path: str | Path | None = None,
) -> DataParallelFit:
    """Fit ``family`` on ``X, y`` with ``num_workers`` Ray Train workers (DDP).

    ``storage_path`` is where Ray Train keeps the run and its checkpoint (a path or URI every
    node reaches, e.g. ``s3://…`` on a multi-node cluster); by default a temporary directory,
    removed once the model is loaded back.
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from quantrain.models.torch_family import TorchFamily

    cls = get_family(family)
    if not issubclass(cls, TorchFamily):
        raise ModelError(f"data-parallel torch training needs a torch family, got {family!r}")
    scratch = None if storage_path is not None else tempfile.mkdtemp(prefix="quantrain-train-")
    config = {
        "family": family,
        "task": task,
        "params": dict(params or {}),
        "n_classes": n_classes,
        "seed": seed,
        "threads": threads_per_worker,
        "X": np.ascontiguousarray(X, dtype=np.float32),
        "y": np.asarray(y),
        "eval_set": eval_set,
        "sample_weight": sample_weight,
    }
    try:
        trainer = TorchTrainer(
            _train_worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
            run_config=RunConfig(
                name=f"quantrain-{family}-{uuid.uuid4().hex[:8]}",
                storage_path=str(storage_path or scratch),
            ),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise ModelError(f"{family}: data-parallel training finished without a checkpoint")
        with result.checkpoint.as_directory() as directory:
            model = cls.load(directory)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    metrics = dict(result.metrics or {})
    return DataParallelFit(
        model=model,
        rows_per_worker=[int(n) for n in metrics["rows_per_worker"]],
        epochs=int(metrics["epochs"]),
        metrics=metrics,
    )


def _train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the family's training loop with DDP hooks, then rank 0 saves."""
    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist

    from quantrain.models.torch_family import TorchFamily, TrainHooks

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()

    def reduce_mean(value: float) -> float:
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / world

    def report(metrics: dict[str, float]) -> None:
        ray.train.report({**metrics, "rank": rank})

    model = get_family(config["family"])(
        config["task"],
        config["params"],
        n_classes=config["n_classes"],
        seed=config["seed"],
        device=str(device),
        n_jobs=config["threads"],
    )
    assert isinstance(model, TorchFamily)
    hooks = TrainHooks(
        rank=rank,
        world_size=world,
        wrap_model=ray.train.torch.prepare_model,
        reduce_mean=reduce_mean,
        report=report,
    )
    model.fit(
        config["X"],
        config["y"],
        eval_set=config["eval_set"],
        sample_weight=config["sample_weight"],
        hooks=hooks,
    )
    counts = torch.zeros(world, dtype=torch.int64, device=device)
    counts[rank] = sum(model.rows_seen_)
    dist.all_reduce(counts)
    final = {
        "rows_per_worker": counts.cpu().tolist(),
        "epochs": len(model.rows_seen_),
        "best_iteration": model.best_iteration_,
    }
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = None
        if rank == 0:
            model.save(directory)
            checkpoint = ray.train.Checkpoint.from_directory(directory)
        ray.train.report(final, checkpoint=checkpoint)
