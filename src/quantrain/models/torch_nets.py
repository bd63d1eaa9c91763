"""The ``nn.Module``s behind the torch families, and the inference wrapper that becomes ONNX.

Every network sits inside :class:`HeadNet`, which owns the preprocessing as buffers (so it
travels in the native file and in the ONNX graph, never as a separate scaler): input
standardisation fitted on the training rows, non-finite inputs → 0 after it, and for
regressors the target's mean and scale. Sequence bodies read ``(N, seq, F)`` for any ``seq``
and reduce it with length-free pooling, so one graph serves windows of any length.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class Standardise(nn.Module):
    """``(x - mean) / scale`` per feature; NaN/inf inputs become 0 (the training mean)."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def fit(self, X: np.ndarray) -> None:
        """NaN-aware mean and std of the training rows; constant or empty columns get scale 1."""
        finite = np.where(np.isfinite(X), X, np.nan).astype(np.float64)
        with np.errstate(all="ignore"):
            mean = np.nanmean(finite, axis=0) if len(X) else np.zeros(X.shape[1])
            std = np.nanstd(finite, axis=0) if len(X) else np.ones(X.shape[1])
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.scale.copy_(torch.from_numpy(std.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.scale
        return torch.where(torch.isfinite(z), z, torch.zeros_like(z))


class MLPBody(nn.Module):
    """Row-wise: ``layers`` × (Linear, ReLU, Dropout) then a linear output."""

    def __init__(
        self, n_features: int, n_outputs: int, *, hidden: int, layers: int, dropout: float
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = n_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.hidden = nn.Sequential(*blocks)
        self.out = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


class LSTMBody(nn.Module):
    """An LSTM over the window; the last step's hidden state (the newest bar) predicts."""

    def __init__(
        self, n_features: int, n_outputs: int, *, hidden: int, layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, _ = self.lstm(x)
        return self.out(self.drop(steps[:, -1]))


def _pool(steps: torch.Tensor) -> torch.Tensor:
    """``(N, seq, C)`` → ``(N, 2C)``: the mean over the window and its newest step."""
    return torch.cat([steps.mean(dim=1), steps[:, -1]], dim=-1)


class CNN1dBody(nn.Module):
    """``layers`` × (Conv1d over time, ReLU, Dropout), then mean + last-step pooling."""

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        *,
        hidden: int,
        layers: int,
        dropout: float,
        kernel_size: int,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = n_features
        for _ in range(layers):
            blocks += [
                nn.Conv1d(width, hidden, kernel_size, padding=kernel_size // 2),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width = hidden
        self.conv = nn.Sequential(*blocks)
        self.out = nn.Linear(2 * hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (N, seq, hidden)
        return self.out(_pool(steps))


class TransformerBody(nn.Module):
    """A pre-norm transformer encoder over the window with sinusoidal positions computed for
    the window's own length (no table, so no maximum length), then mean + last-step pooling."""

    inv_freq: torch.Tensor

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        *,
        hidden: int,
        layers: int,
        dropout: float,
        heads: int,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, hidden)
        self.register_buffer(
            "inv_freq",
            torch.exp(torch.arange(0, hidden, 2).float() * (-math.log(10000.0) / hidden)),
        )
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 2 * hidden, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(2 * hidden)
        self.out = nn.Linear(2 * hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], dtype=x.dtype, device=x.device).unsqueeze(1)
        angles = positions * self.inv_freq  # (seq, hidden / 2)
        encoding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        steps = self.encoder(self.embed(x) + encoding)
        return self.out(self.norm(_pool(steps)))


class HeadNet(nn.Module):
    """Standardised inputs → body → raw outputs (logits, or the standardised target)."""

    target_mean: torch.Tensor
    target_scale: torch.Tensor

    def __init__(self, n_features: int, body: nn.Module, n_targets: int = 1) -> None:
        super().__init__()
        self.inputs = Standardise(n_features)
        self.body = body
        self.register_buffer("target_mean", torch.zeros(n_targets))
        self.register_buffer("target_scale", torch.ones(n_targets))

    def fit_target(self, y: np.ndarray) -> None:
        """Regressors learn ``(y - mean) / std`` per target column; the graph maps back with
        these buffers."""
        values = np.asarray(y, dtype=np.float64).reshape(-1, self.target_mean.numel())
        with np.errstate(all="ignore"):
            mean, std = values.mean(axis=0), values.std(axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        self.target_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.target_scale.copy_(torch.from_numpy(std.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.inputs(x))


def infer(net: HeadNet, x: torch.Tensor, classification: bool) -> torch.Tensor:
    """What a head serves: class probabilities ``(N, classes)`` or values ``(N,)``."""
    raw = net(x)
    if classification:
        return torch.softmax(raw, dim=-1)
    return raw[:, 0] * net.target_scale + net.target_mean


class Served(nn.Module):
    """The exported graph: ``(label, probabilities)`` for classifiers, ``value`` for regressors.

    Native predictions run the same :func:`infer`, so ONNX and native compute the same ops.
    """

    def __init__(self, net: HeadNet, classification: bool) -> None:
        super().__init__()
        self.net = net
        self.classification = classification

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = infer(self.net, x, self.classification)
        if self.classification:
            return out.argmax(dim=-1), out
        return (out,)
