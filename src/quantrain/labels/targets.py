"""The target catalogue: every label a head can learn, declared once.

An entry says what the target is (task, class names), which data can label it (OHLCV bars, trade
journals), whether its classes are quantile bins fitted on training rows only, and, for bars,
how it is computed from the shared labelling context. The job config, the dataset, the trainer,
the tuner and the journal reader all read this table, so a new target is one entry here (see
``register_target``), not an edit in five files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from quantrain.errors import ConfigError
from quantrain.labels.excursions import Excursions
from quantrain.labels.regime import REGIME_CLASSES, forward_volatility
from quantrain.labels.timing import TIMING_CLASSES, time_to_hit, timing
from quantrain.labels.triple_barrier import (
    BUY,
    DIRECTION_CLASSES,
    SELL,
    TripleBarrierLabels,
)

Task = Literal["classification", "regression"]
Source = Literal["ohlcv", "journal"]
SOURCES: tuple[Source, ...] = ("ohlcv", "journal")


@dataclass(frozen=True)
class BarContext:
    """What every bar target is computed from, all arrays full length: the triple barrier, the
    excursions of its labelled side, the direction label (after its method), the closes, the
    ATR and each bar's fill price, and the label settings the recipes read."""

    barrier: TripleBarrierLabels
    excursions: Excursions
    direction: npt.NDArray[np.int8]
    close: npt.NDArray[np.float64]
    atr: npt.NDArray[np.float64]
    entry: npt.NDArray[np.float64]
    horizon: int
    k_sl: float
    timing_fast: float
    timing_clean: float


BarRecipe = Callable[[BarContext], npt.NDArray[np.generic]]


@dataclass(frozen=True)
class TargetDef:
    """One target: identity, the data that can label it and (bars) how."""

    name: str
    task: Task
    description: str
    classes: tuple[str, ...] | None = None
    sources: tuple[Source, ...] = ("ohlcv",)
    #: The labels-section field holding the quantiles whose values on each fold's training
    #: rows split the classes (the stored target is then the raw value).
    binned_by: str | None = None
    #: How bars are labelled with it; meaningful where the triple barrier is valid.
    from_bars: BarRecipe | None = None
    #: A composite regression target's parts: its labels are ``(n, len(columns))`` and only
    #: a family with ``tags.multi_target`` learns it.
    columns: tuple[str, ...] | None = None
    #: ``"primary_side"``: the stored array is each side's outcome (``side_outcomes``) and a
    #: cascade head's labels come from the side its direction input takes (``meta_labels``).
    resolved_by: str | None = None


def taken_trade_r(
    direction: npt.NDArray[np.int8], barrier: TripleBarrierLabels
) -> npt.NDArray[np.float64]:
    """The R of the trade a direction label takes (BUY: the long, SELL: the short) and 0 where
    it takes none (HOLD); NaN where there is no label. A HOLD row used to carry the better
    side's R, which averages well above 0 even on a random walk: hindsight, not a trade."""
    out = np.where(barrier.valid, 0.0, np.nan)
    out = np.where(direction == BUY, barrier.r_long, out)
    return np.where(direction == SELL, barrier.r_short, out)


#: ``side_outcomes`` bits: the long / the short trade entered at the fill ends with R > 0.
LONG_WINS, SHORT_WINS = 1, 2


def side_outcomes(barrier: TripleBarrierLabels) -> npt.NDArray[np.int8]:
    """Per bar, which side's trade would have been profitable (R > 0 under the triple
    barrier): ``LONG_WINS | SHORT_WINS`` bits, 0 where neither, -1 where there is no label."""
    long_wins = np.nan_to_num(barrier.r_long, nan=0.0) > 0
    short_wins = np.nan_to_num(barrier.r_short, nan=0.0) > 0
    codes = long_wins * LONG_WINS + short_wins * SHORT_WINS
    return np.where(barrier.valid, codes, -1).astype(np.int8)


def meta_labels(outcomes: npt.ArrayLike, side: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """The meta-label (López de Prado): 1 where taking the primary head's ``side`` (+1 BUY,
    −1 SELL, 0 HOLD) would have been profitable, else 0 (a HOLD takes no trade: 0)."""
    codes = np.maximum(np.asarray(outcomes, dtype=np.int8), 0)  # no label: nothing won
    sides = np.asarray(side)
    won = np.where(sides > 0, codes & LONG_WINS, np.where(sides < 0, codes & SHORT_WINS, 0))
    return (won > 0).astype(np.int8)


def _timing(c: BarContext) -> npt.NDArray[np.int8]:
    b = c.barrier
    return timing(
        b.direction,
        b.exit_offset,
        c.excursions.adverse_before_tp,
        b.valid,
        horizon=c.horizon,
        k_sl=c.k_sl,
        fast_within=c.timing_fast,
        clean_below=c.timing_clean,
    )


#: The parts of the ``trade_path`` target, in column order.
TRADE_PATH = ("time_to_hit", "mae", "mfe")


def trade_path(c: BarContext) -> npt.NDArray[np.float64]:
    """``(n, 3)``: the labelled trade's time to hit, adverse and favourable excursion."""
    hit = time_to_hit(c.barrier.exit_offset, c.barrier.valid, c.horizon)
    return np.column_stack([hit, c.excursions.mae, c.excursions.mfe]).astype(np.float64)


_CATALOGUE: dict[str, TargetDef] = {}


def register_target(target: TargetDef) -> TargetDef:
    """Add a target to the catalogue (names are unique; a bar target needs its recipe)."""
    if target.name in _CATALOGUE:
        raise ConfigError(f"target {target.name!r} is already in the catalogue")
    if not target.name.replace("_", "").isalnum():
        raise ConfigError(f"target names use letters, digits and '_', got {target.name!r}")
    if "ohlcv" in target.sources and target.from_bars is None:
        raise ConfigError(f"target {target.name!r}: an OHLCV target needs from_bars")
    if (target.task == "classification") != bool(target.classes):
        raise ConfigError(f"target {target.name!r}: classifiers, and only they, name classes")
    _CATALOGUE[target.name] = target
    return target


def unregister_target(name: str) -> None:
    """Take a target out again (tests, plug-ins that unload)."""
    _CATALOGUE.pop(name, None)


def target_def(name: str) -> TargetDef:
    """The catalogue entry of ``name``; an unknown name lists the known ones."""
    found = _CATALOGUE.get(name)
    if found is None:
        raise ConfigError(f"unknown target {name!r}; targets: {', '.join(_CATALOGUE)}")
    return found


def target_names(source: Source | None = None) -> tuple[str, ...]:
    """Every target in catalogue order, or those ``source`` data can label."""
    return tuple(n for n, t in _CATALOGUE.items() if source is None or source in t.sources)


for _target in (
    TargetDef(
        "direction",
        "classification",
        "SELL / HOLD / BUY: the first take-profit of the long and short trade (or the "
        "horizon's move outside a neutral band); optionally HOLD near news",
        classes=DIRECTION_CLASSES,
        from_bars=lambda c: c.direction,
    ),
    TargetDef(
        "signal_quality",
        "classification",
        "journals: was the trade profitable (WIN) or not (LOSS)",
        classes=("LOSS", "WIN"),
        sources=("journal",),
    ),
    TargetDef(
        "position_size",
        "regression",
        "R-multiple of the trade the direction label takes (0 for HOLD); journals: the "
        "trade's realised R",
        sources=("ohlcv", "journal"),
        from_bars=lambda c: taken_trade_r(c.direction, c.barrier),
    ),
    TargetDef(
        "volatility_regime",
        "classification",
        "LOW / NORMAL / HIGH / EXTREME forward volatility, binned on training rows",
        classes=REGIME_CLASSES,
        binned_by="regime_quantiles",
        from_bars=lambda c: forward_volatility(c.close, c.horizon),
    ),
    TargetDef(
        "timing",
        "classification",
        "NONE / SLOW / FAST: how soon and how cleanly the take-profit was hit",
        classes=TIMING_CLASSES,
        from_bars=_timing,
    ),
    TargetDef(
        "tp_level",
        "classification",
        "TP0..TP3: how many take-profit levels the labelled side reached before its stop",
        classes=("TP0", "TP1", "TP2", "TP3"),
        sources=("ohlcv", "journal"),
        from_bars=lambda c: c.excursions.tp_level,
    ),
    TargetDef(
        "stop_loss",
        "regression",
        "adverse excursion of the labelled side until its take-profit (heads learn quantiles)",
        from_bars=lambda c: c.excursions.adverse_before_tp,
    ),
    TargetDef(
        "mfe",
        "regression",
        "favourable excursion of the labelled side over the horizon",
        from_bars=lambda c: c.excursions.mfe,
    ),
    TargetDef(
        "mae",
        "regression",
        "adverse excursion of the labelled side over the horizon",
        from_bars=lambda c: c.excursions.mae,
    ),
    TargetDef(
        "time_to_hit",
        "regression",
        "bars until the labelled trade's exit / horizon, in (0, 1]",
        from_bars=lambda c: time_to_hit(c.barrier.exit_offset, c.barrier.valid, c.horizon),
    ),
    TargetDef(
        "trade_path",
        "regression",
        "time_to_hit, mae and mfe of the same trade as one (n, 3) target, for one network "
        "with a head per part (family mlp_multitask)",
        from_bars=trade_path,
        columns=TRADE_PATH,
    ),
    TargetDef(
        "meta_label",
        "classification",
        "SKIP / TAKE: would taking the side of the direction head in `inputs` (its "
        "out-of-fold prediction) have been profitable (R > 0); a cascade head only",
        classes=("SKIP", "TAKE"),
        from_bars=lambda c: side_outcomes(c.barrier),
        resolved_by="primary_side",
    ),
):
    register_target(_target)
