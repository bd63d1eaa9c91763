"""The data bundled with quantrain, so a demo or a test needs nothing else."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sample_data_dir() -> Path:
    """The six bundled 5m crypto pairs (Binance, January 2018) and a sample trade journal."""
    return Path(str(files("quantrain") / "sample_data"))
