"""Training targets computed from future bars; never used at inference."""

from quantrain.labels.bars import BarLabels, BarLabelSettings, DirectionMethod, label_bars
from quantrain.labels.excursions import Excursions, excursions
from quantrain.labels.fixed_horizon import fixed_horizon_direction
from quantrain.labels.news import EVENT_COLUMNS, minutes_to_event, news_override, volume_zscore
from quantrain.labels.regime import (
    REGIME_CLASSES,
    bin_by_thresholds,
    forward_volatility,
    quantile_thresholds,
)
from quantrain.labels.targets import (
    BarContext,
    Source,
    TargetDef,
    Task,
    register_target,
    taken_trade_r,
    target_def,
    target_names,
    unregister_target,
)
from quantrain.labels.timing import TIMING_CLASSES, time_to_hit, timing
from quantrain.labels.triple_barrier import (
    BARRIER_DEFAULTS,
    BUY,
    DIRECTION_CLASSES,
    ENTRY_RULES,
    HOLD,
    INVALID,
    SELL,
    EntryRule,
    TripleBarrierLabels,
    TripleBarrierParams,
    entry_prices,
    triple_barrier,
    validate_params,
)
from quantrain.labels.uniqueness import average_uniqueness

__all__ = [
    "BARRIER_DEFAULTS",
    "BUY",
    "DIRECTION_CLASSES",
    "ENTRY_RULES",
    "EVENT_COLUMNS",
    "HOLD",
    "INVALID",
    "REGIME_CLASSES",
    "SELL",
    "TIMING_CLASSES",
    "BarContext",
    "BarLabelSettings",
    "BarLabels",
    "DirectionMethod",
    "EntryRule",
    "Excursions",
    "Source",
    "TargetDef",
    "Task",
    "TripleBarrierLabels",
    "TripleBarrierParams",
    "average_uniqueness",
    "bin_by_thresholds",
    "entry_prices",
    "excursions",
    "fixed_horizon_direction",
    "forward_volatility",
    "label_bars",
    "minutes_to_event",
    "news_override",
    "quantile_thresholds",
    "register_target",
    "taken_trade_r",
    "target_def",
    "target_names",
    "time_to_hit",
    "timing",
    "triple_barrier",
    "unregister_target",
    "validate_params",
    "volume_zscore",
]
