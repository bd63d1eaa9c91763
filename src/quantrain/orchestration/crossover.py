"""Whether one fit trains data-parallel on Ray Train or stays in the symbol's task.

``ray.distributed_rows_threshold: auto`` (the default) decides from two facts, both needed:

1. **Rows.** A Ray Train run has a fixed cost (placement group, worker processes, collective
   set-up, shards through the object store, the booster back through a checkpoint): 13 s
   per run on the benchmark VM, against 2.2 s for a whole 100k-row, 100-round fit in
   process. ``benchmarks/bench_train_crossover.py`` fits the same XGBoost model at several
   row counts in process with 2 threads and on Ray Train with 2 workers x 1 CPU (the same
   CPUs); :data:`AUTO_MIN_ROWS` is the crossover it measured, or, where it found none, the
   largest size it measured. ``auto`` never goes data-parallel below it.
2. **CPUs beyond one node.** On one node Ray Train adds its fixed cost and the collective's
   traffic to the same work, while an in-process fit gets the node's cores by raising
   ``num_cpus_per_symbol``. So ``auto`` goes data-parallel only when the workers need more
   CPUs than the largest node has and the cluster has them in all: then the fit reaches CPUs
   no in-process fit can. On one node it never does, which also keeps a fan-out whose CPUs
   are all held by symbol tasks from waiting on Train workers that cannot be placed.

An integer threshold is the user's own measurement and is taken as is (rows only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

#: Rows from which ``auto`` may train data-parallel (with CPUs beyond one node, above).
#: Measured 2026-12-05 on the quiet 2-vCPU CI VM (AMD EPYC, 24 GB, Ray 2.60, XGBoost 3.2 hist,
#: 82 features, 3 classes, 100 rounds; ``bench_train_crossover.py --rows 100000 500000 2000000``):
#: in process 2.2 / 9.7 / 36.8 s, Ray Train with 2 workers x 1 CPU 15.3 / 22.8 / 55.0 s. No
#: crossover up to 2M rows, and the gap does not close (13 s, 13 s, 18 s): on one node the
#: same CPUs do the same work plus Ray Train's start-up and the collective. So this is the
#: largest size measured, and the CPUs-beyond-one-node rule is what really decides; on other
#: machines, run the benchmark there and set ``distributed_rows_threshold`` to its crossover.
AUTO_MIN_ROWS = 2_000_000

Threshold = int | Literal["auto"] | None


@dataclass(frozen=True)
class ClusterShape:
    """The CPUs of each alive node of the Ray cluster."""

    node_cpus: tuple[float, ...]

    @property
    def total(self) -> float:
        return float(sum(self.node_cpus))

    @property
    def largest_node(self) -> float:
        return max(self.node_cpus, default=0.0)


def workers_outgrow_one_node(cluster: ClusterShape, workers: int, cpus_per_worker: int) -> bool:
    """The workers need more CPUs than the largest node has, and the cluster has them all."""
    needed = workers * cpus_per_worker
    return needed > cluster.largest_node and needed <= cluster.total


def rows_qualify(rows: int, *, threshold: Threshold, workers: int) -> bool:
    """The row part of the decision: enough rows (and workers) for data-parallel to be asked."""
    if workers < 2 or threshold is None:
        return False
    return rows >= (AUTO_MIN_ROWS if threshold == "auto" else threshold)


def goes_data_parallel(
    rows: int,
    *,
    threshold: Threshold,
    workers: int,
    cpus_per_worker: int,
    cluster: ClusterShape | Callable[[], ClusterShape] | None,
) -> bool:
    """Whether a fit of ``rows`` rows runs on ``workers`` Ray Train workers of
    ``cpus_per_worker`` CPUs each. ``cluster`` (or the call that reads it) is only read for
    ``auto`` once the rows qualify; None: unknown."""
    if not rows_qualify(rows, threshold=threshold, workers=workers):
        return False
    if threshold != "auto":
        return True
    shape = cluster() if callable(cluster) else cluster
    return shape is not None and workers_outgrow_one_node(shape, workers, cpus_per_worker)


def cluster_shape(nodes: Sequence[dict[str, object]]) -> ClusterShape:
    """The shape of ``ray.nodes()``: the CPUs of every alive node."""
    cpus = []
    for node in nodes:
        resources = node.get("Resources")
        if node.get("Alive") and isinstance(resources, dict):
            cpus.append(float(resources.get("CPU", 0.0)))
    return ClusterShape(tuple(cpus))
