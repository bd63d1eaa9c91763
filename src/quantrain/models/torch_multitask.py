"""``mlp_multitask``: one MLP body, one linear head per task, trained on a weighted sum of the
tasks' squared errors (``loss_weights``). It learns a composite target such as ``trade_path``
(time to hit, adverse and favourable excursion of the same trade) whose ``y`` is
``(n, tasks)``; the body is shared so that what predicts one part of the trade's path informs
the others. Each task's target is standardised on its own, so the weights compare like with
like. The graph has one output per task, named after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from quantrain.errors import ModelError
from quantrain.models.base import FamilyTags
from quantrain.models.registry import register
from quantrain.models.torch_family import NATIVE_FILE, TRAINING_DEFAULTS, TorchFamily
from quantrain.models.torch_nets import HeadNet, MLPBody

#: The tasks of the ``trade_path`` target, in its column order.
TRADE_PATH_TASKS = ("time_to_hit", "mae", "mfe")


def task_values(net: HeadNet, x: torch.Tensor) -> torch.Tensor:
    """Every task's value ``(N, tasks)`` in the targets' own units."""
    return net(x) * net.target_scale + net.target_mean


class ServedTasks(nn.Module):
    """The exported graph: one ``(N,)`` output per task (native predictions run the same ops)."""

    def __init__(self, net: HeadNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = task_values(self.net, x)
        return tuple(values[:, i] for i in range(values.shape[1]))


@register
class MultiTaskFamily(TorchFamily):
    """A shared feed-forward body with a head per task of a composite regression target."""

    key = "mlp_multitask"
    tags = FamilyTags(
        tasks=frozenset({"regression"}),
        gpu=True,
        warm_start=False,
        sequence=False,
        native_file=NATIVE_FILE,
        multi_target=True,
    )
    default_params: ClassVar[Mapping[str, Any]] = {
        **TRAINING_DEFAULTS,
        "hidden": 64,
        "layers": 2,
        "dropout": 0.1,
        "tasks": TRADE_PATH_TASKS,
        "loss_weights": None,
    }

    body = MLPBody
    body_keys = ("hidden", "layers", "dropout")

    def _tasks(self) -> list[str]:
        return [str(t) for t in self.resolved_params()["tasks"]]

    def _n_outputs(self) -> int:
        return len(self._tasks())

    def output_names(self) -> list[str]:
        return self._tasks()

    def task_weights(self) -> np.ndarray:
        """Each task's weight in the loss (``loss_weights``; a task left out weighs 1)."""
        weights = self.resolved_params()["loss_weights"] or {}
        return np.array([float(weights.get(t, 1.0)) for t in self._tasks()])

    def _check_architecture(self, arch: Mapping[str, Any]) -> None:
        tasks = arch["tasks"]
        if (
            isinstance(tasks, str)
            or not isinstance(tasks, list | tuple)
            or not tasks
            or not all(isinstance(t, str) and t.isidentifier() for t in tasks)
            or len(set(tasks)) != len(tasks)
        ):
            raise ModelError(
                f"{self.key}: tasks must be a list of distinct names (letters, digits, '_'), "
                f"got {tasks!r}"
            )
        weights = arch["loss_weights"]
        if weights is None:
            return
        if not isinstance(weights, Mapping):
            raise ModelError(
                f"{self.key}: loss_weights must map a task to its weight, e.g. "
                f"{{{tasks[0]}: 2.0}}, got {weights!r}"
            )
        unknown = sorted(set(weights) - set(tasks))
        if unknown:
            raise ModelError(f"{self.key}: loss_weights names {unknown}; tasks: {list(tasks)}")
        bad = {
            k: v
            for k, v in weights.items()
            if isinstance(v, bool) or not isinstance(v, int | float) or not (0 <= v < np.inf)
        }
        if bad:
            raise ModelError(f"{self.key}: loss_weights must be numbers >= 0, got {bad}")
        if sum(float(weights.get(t, 1.0)) for t in tasks) <= 0:
            raise ModelError(f"{self.key}: loss_weights are all 0; give one task a weight > 0")

    def _network(self, n_features: int, arch: Mapping[str, Any]) -> HeadNet:
        n_tasks = len(arch["tasks"])
        return HeadNet(n_features, self._body(n_features, n_tasks, arch), n_targets=n_tasks)

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
    ) -> None:
        self._check_architecture(self.resolved_params())
        tasks = self._tasks()
        for name, values in (("y", y), ("eval_set y", None if eval_set is None else eval_set[1])):
            if values is not None and (values.ndim != 2 or values.shape[1] != len(tasks)):
                raise ModelError(
                    f"{self.key}: {name} must have one column per task {tasks}, got shape "
                    f"{values.shape}; fix: train it on a composite target (target: trade_path)"
                )
        self.loss_weights_ = torch.as_tensor(self.task_weights(), dtype=torch.float32)
        super()._fit(X, y, eval_set, sample_weight)

    def _targets(self, net: HeadNet, y: np.ndarray, device: torch.device) -> torch.Tensor:
        values = torch.as_tensor(np.asarray(y, dtype=np.float32), device=device)
        return (values - net.target_mean) / net.target_scale

    def _loss(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per row: the loss-weighted mean of the tasks' standardised squared errors."""
        weights = self.loss_weights_.to(raw.device)
        return ((raw - target) ** 2 * weights).sum(dim=1) / weights.sum()

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        """Every task's value, ``(n, tasks)``."""
        if len(X) == 0:
            return np.empty((0, self._n_outputs()))
        return self._served_rows(X, lambda x: task_values(self.net_, x))

    def native_outputs(self, X: np.ndarray) -> list[np.ndarray]:
        values = self.predict(X)
        return [values[:, i] for i in range(values.shape[1])]

    def _served(self) -> nn.Module:
        return ServedTasks(self.net_)
