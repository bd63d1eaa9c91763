"""Model-ready samples and the targets heads can learn, whatever the data came from (OHLCV
bars labelled by the triple barrier and its companions, or trade records from a journal)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from quantrain.errors import ConfigError
from quantrain.labels import (
    Task,
    TripleBarrierLabels,
    bin_by_thresholds,
    quantile_thresholds,
    target_def,
)


@dataclass(frozen=True)
class Target:
    """A label a head can learn: its task and, for classifiers, its class names.

    A ``binned`` target stores a raw value per row; its classes are quantile bins whose
    thresholds are fitted on training rows only (:meth:`Dataset.fold_target`). ``fitted`` holds
    what was fitted for a final model (e.g. ``{"thresholds": [...]}``); empty otherwise.
    """

    task: Task
    classes: tuple[str, ...] | None = None
    binned: bool = False
    fitted: Mapping[str, Any] = field(default_factory=dict)


def target_of(name: str) -> Target:
    """The catalogue's target ``name`` as a dataset sees it (task, classes, binned or not)."""
    found = target_def(name)
    return Target(found.task, found.classes, binned=found.binned_by is not None)


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
    #: Binned targets: name -> the quantiles whose values (on training rows) split the classes.
    bins: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: The feature columns' names (what fold-fitted transforms and selection refer to).
    columns: tuple[str, ...] = ()

    def _raw(self, name: str) -> np.ndarray:
        if name not in self.targets:
            raise ConfigError(
                f"target {name!r} is not available from this data; available: "
                f"{', '.join(self.targets)}"
            )
        return self.targets[name]

    def target(self, name: str) -> np.ndarray:
        """The stored label array; a binned target has no labels before its bins are fitted."""
        if name in self.bins:
            raise ConfigError(
                f"target {name!r} is binned on each fold's training rows; use "
                "Dataset.fold_target(name, train_rows)"
            )
        return self._raw(name)

    def fold_target(
        self, name: str, train_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Labels for every row as fitted on ``train_rows`` (None: all rows, the final model),
        and what was fitted. Binned targets fit their thresholds on those rows' raw values only;
        other targets return the stored array and ``{}``."""
        raw = self._raw(name)
        quantiles = self.bins.get(name)
        if quantiles is None:
            return raw, {}
        fit_on = raw if train_rows is None else raw[train_rows]
        thresholds = quantile_thresholds(fit_on, quantiles)
        return bin_by_thresholds(raw, thresholds), {"thresholds": thresholds.tolist()}

    def first(self, n: int) -> Dataset:
        """The first ``n`` rows as a dataset of their own: labels that read past row ``n − 1``
        end there, so folds made on it never reach a later row."""
        return replace(
            self,
            X=self.X[:n],
            targets={name: values[:n] for name, values in self.targets.items()},
            label_end=np.minimum(self.label_end[:n], n - 1),
            stamps=self.stamps.iloc[:n],
            bars=None if self.bars is None else self.bars[:n],
        )

    def final_target(self, name: str) -> Target:
        """``target_of(name)`` with what its final model's labels were fitted with (all rows)."""
        _, fitted = self.fold_target(name)
        return replace(target_of(name), fitted=fitted)
