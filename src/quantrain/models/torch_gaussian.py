"""``mlp_gaussian``: distributional regression, the job NGBoost does, as a small torch MLP.

The network predicts each row's mean and scale of a Gaussian and trains on its negative
log-likelihood, so a head says how sure it is as well as what it expects (a bot can size by
the scale, or skip rows whose interval is wide). NGBoost itself is not used: its releases pin
scikit-learn below what quantrain needs. Scale is ``softplus(raw) + MIN_SCALE`` in standardised
units (positive, smooth, never 0). ``predict`` is the mean (the contract's value); the graph's
outputs are ``value`` (mean) and ``scale``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from quantrain.models.base import FamilyTags, _as_matrix
from quantrain.models.registry import register
from quantrain.models.torch_family import NATIVE_FILE, TRAINING_DEFAULTS, TorchFamily
from quantrain.models.torch_nets import HeadNet, MLPBody

#: The smallest scale, in standard deviations of the training target: keeps the likelihood
#: finite on rows the network is (wrongly) certain about.
MIN_SCALE = 1e-3
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def standard_normal(net: HeadNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and scale in standardised target units."""
    raw = net(x)
    return raw[:, 0], F.softplus(raw[:, 1]) + MIN_SCALE


def mean_and_scale(net: HeadNet, x: torch.Tensor) -> torch.Tensor:
    """``(N, 2)``: each row's mean and scale in the target's own units."""
    mean, scale = standard_normal(net, x)
    return torch.stack([mean * net.target_scale + net.target_mean, scale * net.target_scale], 1)


class ServedGaussian(nn.Module):
    """The exported graph: ``value`` (mean) and ``scale``, both ``(N,)``."""

    def __init__(self, net: HeadNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = mean_and_scale(self.net, x)
        return out[:, 0], out[:, 1]


@register
class GaussianFamily(TorchFamily):
    """A feed-forward network predicting a Gaussian per row (mean and scale)."""

    key = "mlp_gaussian"
    tags = FamilyTags(
        tasks=frozenset({"regression"}),
        gpu=True,
        warm_start=False,
        sequence=False,
        native_file=NATIVE_FILE,
    )
    default_params: ClassVar[Mapping[str, Any]] = {
        **TRAINING_DEFAULTS,
        "hidden": 64,
        "layers": 2,
        "dropout": 0.1,
    }

    body = MLPBody
    body_keys = ("hidden", "layers", "dropout")

    def _n_outputs(self) -> int:
        return 2

    def output_names(self) -> list[str]:
        return ["value", "scale"]

    def _network(self, n_features: int, arch: Mapping[str, Any]) -> HeadNet:
        return HeadNet(n_features, self._body(n_features, 2, arch))

    def _loss(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-row Gaussian negative log-likelihood of the standardised target."""
        mean, scale = raw[:, 0], F.softplus(raw[:, 1]) + MIN_SCALE
        return 0.5 * ((target - mean) / scale) ** 2 + torch.log(scale) + _HALF_LOG_2PI

    def predict_distribution(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's mean and scale (standard deviation), in the target's units."""
        X = _as_matrix(X)
        if len(X) == 0:
            return np.empty(0), np.empty(0)
        out = self._served_rows(X, lambda x: mean_and_scale(self.net_, x))
        return out[:, 0], out[:, 1]

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_distribution(X)[0]

    def native_outputs(self, X: np.ndarray) -> list[np.ndarray]:
        return list(self.predict_distribution(X))

    def _served(self) -> nn.Module:
        return ServedGaussian(self.net_)
