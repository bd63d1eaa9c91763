"""A package fed one bar at a time: what a live bot calls on every new candle.

``Predictor.predict_latest(window)`` recomputes every feature over the whole window on each
bar (milliseconds). ``LivePredictor`` keeps each feature's state instead
(``features.FeatureStream``): warm up once from history, then ``update(bar)`` costs the same
whatever the history's length and returns what ``predict`` on the whole history would give
for that bar (features to ~1e-14, outputs through the same ONNX graphs). ``PredictorPool`` holds
one per symbol for a bot's whole universe.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from quantrain.errors import PackageError
from quantrain.features import FeatureSpec, FeatureStream, compute_feature_matrix
from quantrain.features.journal_spec import JournalSpec
from quantrain.features.spec import FeatureDef
from quantrain.package.manifest import Manifest
from quantrain.policy import TradingPolicy


class Served(Protocol):
    """What streaming needs of a loaded package (``Predictor`` is one)."""

    path: Path
    package: Manifest
    spec: FeatureSpec | JournalSpec
    policy: TradingPolicy | None
    history_bars: int

    @property
    def window_rows(self) -> int: ...

    def run_heads_last(self, X: np.ndarray, complete: np.ndarray) -> dict[str, Any]: ...

    def drift_last(self, row: np.ndarray) -> dict[str, Any]: ...

    def action_last(
        self, policy: TradingPolicy, outputs: Mapping[str, Any], atr: float, reference: float
    ) -> dict[str, Any]: ...


class LivePredictor:
    """One symbol's package, streaming. ``update(bar)`` returns the dict ``predict_latest``
    would for the history so far plus ``bar``: outputs, ``features_complete``, ``ood`` and,
    with a policy, the action."""

    def __init__(self, predictor: Served, history: pd.DataFrame) -> None:
        spec = predictor.spec
        if not isinstance(spec, FeatureSpec):
            raise PackageError(f"{predictor.path}: a journal package has no bar stream")
        self.predictor = predictor
        timeframe = predictor.package.timeframe
        self._features = FeatureStream(spec, timeframe)
        self._features.warm_up(history)
        policy = predictor.policy
        # The policy's ATR (barrier distances) in price units: ATR / close, times the close.
        self._atr = None
        if policy is not None:
            atr_spec = FeatureSpec(
                name="policy_atr",
                features=[FeatureDef(kind="atr_frac", params={"period": policy.atr_period})],
            )
            self._atr = FeatureStream(atr_spec, timeframe)
            self._atr.warm_up(history)
        # Sequence heads read the last L feature rows: a ring seeded from the history.
        self._window = predictor.window_rows
        rows = compute_feature_matrix(history, spec)[-self._window :]  # once, exact
        self._rows = np.full((self._window, len(spec.columns())), np.nan, dtype=np.float32)
        if len(rows):
            self._rows[-len(rows) :] = rows.astype(np.float32)
        self.bars_seen = len(history)

    def update(self, bar: Mapping[str, Any] | Any) -> dict[str, Any]:
        """Advance by one bar (a mapping or object with timestamp, open, high, low, close,
        volume) and return its outputs."""
        row = self._features.update(bar)
        atr_frac = None if self._atr is None else float(self._atr.update(bar)[0])
        if self._window > 1:
            self._rows[:-1] = self._rows[1:]
        self._rows[-1] = row
        self.bars_seen += 1
        X = self._rows
        usable = np.asarray(np.isfinite(X).all(axis=1))
        predictor = self.predictor
        # What ``predict`` gives for this bar, built from Python scalars (no one-row arrays).
        outputs: dict[str, Any] = {
            "timestamp": pd.Timestamp(_field(bar, "timestamp")),
            "features_complete": bool(usable[-1]) and self.bars_seen - 1 >= predictor.history_bars,
            **predictor.run_heads_last(X, usable),
            **predictor.drift_last(X[-1]),
        }
        policy = predictor.policy
        if policy is not None and atr_frac is not None:
            close = float(_field(bar, "close"))
            outputs.update(predictor.action_last(policy, outputs, atr_frac * close, close))
        return outputs


class PredictorPool:
    """Live predictors for a bot's universe: one per symbol, each warmed up once."""

    def __init__(self) -> None:
        self._live: dict[str, LivePredictor] = {}

    def add(self, symbol: str, predictor: Served, history: pd.DataFrame) -> None:
        self._live[symbol] = LivePredictor(predictor, history)

    def update(self, symbol: str, bar: Mapping[str, Any] | Any) -> dict[str, Any]:
        if symbol not in self._live:
            raise PackageError(f"no live predictor for {symbol!r}; add it first")
        return self._live[symbol].update(bar)

    def update_all(self, bars: Mapping[str, Mapping[str, Any] | Any]) -> dict[str, dict[str, Any]]:
        """One new bar per symbol (the symbols that have one this tick)."""
        return {symbol: self.update(symbol, bar) for symbol, bar in bars.items()}

    def __len__(self) -> int:
        return len(self._live)


def _field(bar: Mapping[str, Any] | Any, name: str) -> Any:
    return bar[name] if isinstance(bar, Mapping) else getattr(bar, name)
