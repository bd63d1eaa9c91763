"""Model-ready samples and the targets heads can learn, whatever the data came from (OHLCV
bars labelled by the triple barrier, or trade records from a journal)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantrain.errors import ConfigError
from quantrain.labels import DIRECTION_CLASSES, TripleBarrierLabels
from quantrain.models import Task


@dataclass(frozen=True)
class Target:
    """A label a head can learn: its task and, for classifiers, its class names."""

    task: Task
    classes: tuple[str, ...] | None = None


#: Every target a head can name: from OHLCV bars (triple barrier) or from a trade journal.
TARGETS: dict[str, Target] = {
    "direction": Target("classification", DIRECTION_CLASSES),
    "position_size": Target("regression"),
    "signal_quality": Target("classification", ("LOSS", "WIN")),
    "tp_level": Target("classification", ("TP0", "TP1", "TP2", "TP3")),
}
#: The targets the triple barrier labels on OHLCV bars.
BAR_TARGETS = ("direction", "position_size")


@dataclass(frozen=True)
class Dataset:
    """Model-ready samples in time order: features, one array per target, and for each row the
    last row its label looks at (what purging needs)."""

    X: np.ndarray
    targets: dict[str, np.ndarray]
    label_end: np.ndarray
    stamps: pd.Series  # each row's time, for the fold table
    bars: np.ndarray | None = None  # bar positions in the source frame (OHLCV datasets)
    labels: TripleBarrierLabels | None = None

    def target(self, name: str) -> np.ndarray:
        if name not in self.targets:
            raise ConfigError(
                f"target {name!r} is not available from this data; available: "
                f"{', '.join(self.targets)}"
            )
        return self.targets[name]
