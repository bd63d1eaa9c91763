"""A small variational autoencoder fit on one fold's training rows (issue 20): its encoder's
latent means become feature columns, and the encoder (with the training rows' standardisation
inside) is what ships as ONNX. Needs torch (the ``torch`` extra), imported only when asked.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx

from quantrain.config import TransformConfig
from quantrain.errors import ConfigError

#: Rows per optimiser step; rows per forward pass when encoding.
BATCH = 256
CHUNK = 8192
#: Weight of the KL term (a beta-VAE with beta < 1 keeps the means informative).
BETA = 0.5
LEARNING_RATE = 1e-3
#: Opset of the exported encoder (the torch families use the same).
ONNX_OPSET = 20


def fit_vae(X: np.ndarray, config: TransformConfig, *, seed: int) -> LatentMeans:
    """Train the VAE on ``X`` (training rows only) and return its encoder."""
    try:
        import torch
    except ImportError:
        raise ConfigError(
            "suite.transforms kind 'vae' needs torch; fix: pip install 'quantrain[torch]'"
        ) from None
    from torch import nn

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mean = X.mean(axis=0)
    std = np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    data = torch.from_numpy(((X - mean) / std).astype(np.float32))
    width, hidden, latent = X.shape[1], config.hidden, config.latent
    encoder = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
    decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, width))
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], LEARNING_RATE)
    for _ in range(config.epochs):
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(data), BATCH):
            batch = data[order[start : start + BATCH]]
            mu, log_var = encoder(batch).chunk(2, dim=1)
            noise = torch.randn(mu.shape, generator=generator)
            z = mu + noise * torch.exp(0.5 * log_var)
            reconstruction = ((decoder(z) - batch) ** 2).sum(dim=1).mean()
            kl = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(dim=1).mean()
            loss = reconstruction + BETA * kl
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return LatentMeans(_encoder(encoder, mean, std, latent).eval())


def _encoder(net: Any, mean: np.ndarray, std: np.ndarray, latent: int) -> Any:
    """The served encoder: standardise with the training rows' statistics, return the means."""
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
            self.register_buffer("std", torch.from_numpy(std.astype(np.float32)))

        def forward(self, x: Any) -> Any:
            return self.net((x - self.mean) / self.std)[:, :latent]

    return Encoder()


class LatentMeans:
    """The fitted encoder: each row's latent means."""

    output_name = "latent"

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def outputs(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            parts = [
                self.encoder(torch.from_numpy(np.ascontiguousarray(X[i : i + CHUNK]))).numpy()
                for i in range(0, len(X), CHUNK)
            ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def to_onnx(self, n_inputs: int, input_name: str) -> onnx.ModelProto:
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                self.encoder,
                (torch.zeros(3, n_inputs),),
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("N", min=1)},),
                input_names=[input_name],
                output_names=[self.output_name],
                opset_version=ONNX_OPSET,
                external_data=False,
                verbose=False,
            )
        assert program is not None  # None only when writing to a file
        return program.model_proto
