"""Data-parallel XGBoost / LightGBM fits on Ray Train, for symbols with many rows.

Each worker fits the family's own ``fit`` on its shard of the training rows (every k-th row)
inside the library's collective: XGBoost's communicator (set up by ``XGBoostTrainer``) or
LightGBM's socket network (``tree_learner: data_parallel`` with the machines from
``ray.train.lightgbm.get_network_params()``). Histograms are summed over workers, so every
tree is grown from all rows, not from one shard. Every worker holds the whole validation slice,
so early stopping sees the same score everywhere and all workers stop at the same round.

Rank 0 saves the fitted model in the family's native format; the driver loads it back into an
ordinary family object, so export, parity and packaging treat it like any other model.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import ray
import ray.train
from ray.train import Checkpoint, RunConfig, ScalingConfig

from quantrain.config import JobConfig
from quantrain.errors import ModelError
from quantrain.models import ModelFamily
from quantrain.models.device import TORCH_FAMILIES
from quantrain.orchestration.crossover import cluster_shape, goes_data_parallel
from quantrain.orchestration.torch_train import train_torch_head
from quantrain.suite.fit import Fitter, plain_fit

log = logging.getLogger(__name__)

#: Families with a Ray Train trainer here; the torch families go to ``TorchTrainer``.
DATA_PARALLEL_FAMILIES = ("xgboost", "lightgbm")
MODEL_DIR = "model"


@dataclass(frozen=True)
class DataParallelFit:
    """The fitted model and the rows each worker trained on (they sum to every row)."""

    model: ModelFamily
    rows_per_worker: list[int]


def _shard_rows(n: int, workers: int) -> list[np.ndarray]:
    """Every ``workers``-th row per worker: each shard spans the whole period and the class mix."""
    return [np.arange(rank, n, workers) for rank in range(workers)]


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: fit the family on this rank's shard inside the collective."""
    context = ray.train.get_context()
    rank = context.get_world_rank()
    model: ModelFamily = config["model"]
    X, y, weight = ray.get(config["shards"][rank])
    eval_set = ray.get(config["eval_set"]) if config["eval_set"] is not None else None
    own_params = dict(model.params)
    if model.key == "lightgbm":
        from ray.train.lightgbm import get_network_params

        network = get_network_params()
        if not network:  # would silently train on this shard alone
            raise ModelError("LightGBM data-parallel fit got no network params from Ray Train")
        model.params = {
            **own_params,
            "tree_learner": "data_parallel",
            "pre_partition": True,
            **network,
        }
    model.fit(X, y, eval_set=eval_set, sample_weight=weight)
    model.params = own_params  # the network settings are this run's, not the model's
    with tempfile.TemporaryDirectory() as out:
        (Path(out) / f"rows-{rank}.json").write_text(json.dumps({"rank": rank, "rows": len(X)}))
        if rank == 0:
            model.save(Path(out) / MODEL_DIR)
        ray.train.report({"rows": len(X)}, checkpoint=Checkpoint.from_directory(out))


def _trainer(key: str) -> Any:
    if key == "xgboost":
        from ray.train.xgboost import XGBoostTrainer

        return XGBoostTrainer
    if key == "lightgbm":
        from ray.train.lightgbm import LightGBMTrainer

        return LightGBMTrainer
    raise ModelError(
        f"family {key!r} has no data-parallel trainer; data-parallel families: "
        f"{', '.join(DATA_PARALLEL_FAMILIES)}"
    )


def fit_data_parallel(
    model: ModelFamily,
    X: np.ndarray,
    y: np.ndarray,
    *,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
    workers: int = 2,
    storage: str | None = None,
) -> DataParallelFit:
    """Fit ``model`` (unfitted, any warm start already attached) on ``workers`` Ray Train
    workers of ``model.n_jobs`` CPUs each; returns it fitted, as a normal family object."""
    trainer_cls = _trainer(model.key)
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y)
    shards = [
        ray.put((X[rows], y[rows], None if sample_weight is None else sample_weight[rows]))
        for rows in _shard_rows(len(X), workers)
    ]
    own_storage = storage is None
    root = storage or tempfile.mkdtemp(prefix="quantrain-train-")
    try:
        trainer = trainer_cls(
            _worker_loop,
            train_loop_config={
                "model": model,
                "shards": shards,
                "eval_set": None if eval_set is None else ray.put(eval_set),
            },
            scaling_config=ScalingConfig(
                num_workers=workers,
                use_gpu=model.device == "cuda",
                resources_per_worker={"CPU": max(1, model.n_jobs)},
            ),
            run_config=RunConfig(
                name=f"quantrain-{model.key}-{uuid.uuid4().hex[:8]}", storage_path=root
            ),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise ModelError(f"data-parallel {model.key} fit returned no model")
        with result.checkpoint.as_directory() as folder:
            rows = sorted(
                (json.loads(p.read_text()) for p in Path(folder).glob("rows-*.json")),
                key=lambda entry: entry["rank"],
            )
            fitted = type(model).load(Path(folder) / MODEL_DIR)
    finally:
        if own_storage:
            shutil.rmtree(root, ignore_errors=True)
    fitted.n_jobs, fitted.device = model.n_jobs, model.device
    fitted.init_model = model.init_model
    return DataParallelFit(fitted, [int(entry["rows"]) for entry in rows])


@dataclass(frozen=True)
class DistributedFitter:
    """A :class:`~quantrain.suite.fit.Fitter`: a fit with a data-parallel family (XGBoost,
    LightGBM, or a torch family on ``TorchTrainer``) runs on ``workers`` Ray Train workers when
    :func:`~quantrain.orchestration.crossover.goes_data_parallel` says so for its rows and
    ``threshold``; every other fit runs here."""

    workers: int
    threshold: int | Literal["auto"]
    storage: str | None = None

    def _data_parallel(self, rows: int, cpus_per_worker: int) -> bool:
        """The decision; the cluster is asked only when ``auto`` has enough rows to care."""
        return goes_data_parallel(
            rows,
            threshold=self.threshold,
            workers=self.workers,
            cpus_per_worker=cpus_per_worker,
            cluster=lambda: cluster_shape(ray.nodes()),
        )

    def __call__(
        self,
        model: ModelFamily,
        X: np.ndarray,
        y: np.ndarray,
        *,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> ModelFamily:
        torch_family = model.key in TORCH_FAMILIES
        parallel = model.key in DATA_PARALLEL_FAMILIES or torch_family
        if not parallel or not self._data_parallel(len(X), max(1, model.n_jobs)):
            return plain_fit(model, X, y, eval_set=eval_set, sample_weight=sample_weight)
        log.info("%s: %d rows on %d Ray Train workers", model.key, len(X), self.workers)
        if torch_family:  # TorchTrainer (DDP) with the family's own training loop
            return train_torch_head(
                model.key,
                model.task,
                X,
                y,
                params=model.params,
                n_classes=model.n_classes,
                eval_set=eval_set,
                sample_weight=sample_weight,
                seed=model.seed,
                num_workers=self.workers,
                use_gpu=model.device == "cuda",
                threads_per_worker=max(1, model.n_jobs),
                storage_path=self.storage,
            ).model
        return fit_data_parallel(
            model,
            X,
            y,
            eval_set=eval_set,
            sample_weight=sample_weight,
            workers=self.workers,
            storage=self.storage,
        ).model


def fitter_for(job: JobConfig) -> Fitter:
    """The job's fitter: data-parallel as ``ray.distributed_rows_threshold`` decides."""
    settings = job.ray
    if settings.train_workers < 2 or settings.distributed_rows_threshold is None:
        return plain_fit
    return DistributedFitter(
        settings.train_workers, settings.distributed_rows_threshold, settings.train_storage
    )
