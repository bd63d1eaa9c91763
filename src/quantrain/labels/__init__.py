"""Training targets computed from future bars; never used at inference."""

from quantrain.labels.triple_barrier import (
    BUY,
    DIRECTION_CLASSES,
    HOLD,
    INVALID,
    SELL,
    TripleBarrierLabels,
    TripleBarrierParams,
    triple_barrier,
    validate_params,
)

__all__ = [
    "BUY",
    "DIRECTION_CLASSES",
    "HOLD",
    "INVALID",
    "SELL",
    "TripleBarrierLabels",
    "TripleBarrierParams",
    "triple_barrier",
    "validate_params",
]
