"""The indicator table: every feature kind a spec may name, by key.

Each indicator is a small function ``(bars, params) -> array`` plus its declared parameters and
warm-up; adding one is an entry here, never an ``if kind == ...`` branch. Specs validate against
this table and ``compute`` evaluates from it; neither imports the other for it.
"""

from __future__ import annotations

from quantrain.features.base import Indicator
from quantrain.features.calendar import TIME_ENTRIES
from quantrain.features.exogenous import EXOGENOUS_ENTRIES
from quantrain.features.indicators import PRICE_ENTRIES
from quantrain.features.timeframes import higher_timeframe

_ENTRIES: tuple[Indicator, ...] = (
    *PRICE_ENTRIES,
    *TIME_ENTRIES,
    *EXOGENOUS_ENTRIES,
    *(higher_timeframe(entry) for entry in PRICE_ENTRIES),
)

INDICATORS: dict[str, Indicator] = {entry.key: entry for entry in _ENTRIES}


def available_indicators() -> list[str]:
    """Registry keys, sorted: what a ``FeatureDef.kind`` may name."""
    return sorted(INDICATORS)
