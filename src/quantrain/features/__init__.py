"""Causal, scale-free features: indicator kernels, feature sets as hashed data, spec → matrix."""

from quantrain.features.causality import find_lookahead
from quantrain.features.compute import (
    atr,
    available_indicators,
    compute_feature_matrix,
    compute_features,
    history_to_converge,
)
from quantrain.features.exogenous import merge_exogenous, read_events, read_funding
from quantrain.features.spec import (
    FEATURE_CODE_VERSION,
    FEATURE_SETS,
    FeatureDef,
    FeatureRecipe,
    FeatureSelection,
    FeatureSpec,
    get_feature_set,
    resolve_feature_set,
    standard_spec,
)
from quantrain.features.stream import FeatureStream

__all__ = [
    "FEATURE_CODE_VERSION",
    "FEATURE_SETS",
    "FeatureDef",
    "FeatureRecipe",
    "FeatureSelection",
    "FeatureSpec",
    "FeatureStream",
    "atr",
    "available_indicators",
    "compute_feature_matrix",
    "compute_features",
    "find_lookahead",
    "get_feature_set",
    "history_to_converge",
    "merge_exogenous",
    "read_events",
    "read_funding",
    "resolve_feature_set",
    "standard_spec",
]
