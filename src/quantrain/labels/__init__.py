"""Training targets computed from future bars; never used at inference."""

from quantrain.labels.bars import (
    BAR_TARGETS,
    BarLabels,
    BarLabelSettings,
    DirectionMethod,
    label_bars,
    taken_trade_r,
)
from quantrain.labels.excursions import Excursions, excursions
from quantrain.labels.fixed_horizon import fixed_horizon_direction
from quantrain.labels.news import EVENT_COLUMNS, minutes_to_event, news_override, volume_zscore
from quantrain.labels.regime import (
    REGIME_CLASSES,
    bin_by_thresholds,
    forward_volatility,
    quantile_thresholds,
)
from quantrain.labels.timing import TIMING_CLASSES, time_to_hit, timing
from quantrain.labels.triple_barrier import (
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
    "BAR_TARGETS",
    "BUY",
    "DIRECTION_CLASSES",
    "ENTRY_RULES",
    "EVENT_COLUMNS",
    "HOLD",
    "INVALID",
    "REGIME_CLASSES",
    "SELL",
    "TIMING_CLASSES",
    "BarLabelSettings",
    "BarLabels",
    "DirectionMethod",
    "EntryRule",
    "Excursions",
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
    "taken_trade_r",
    "time_to_hit",
    "timing",
    "triple_barrier",
    "validate_params",
    "volume_zscore",
]
