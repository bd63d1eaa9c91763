"""Causal, scale-free features: indicator kernels, feature sets as hashed data, spec → matrix."""

from quantrain.features.causality import find_lookahead
from quantrain.features.compute import (
    atr,
    available_indicators,
    compute_feature_matrix,
    compute_features,
)
from quantrain.features.spec import (
    FEATURE_CODE_VERSION,
    FeatureDef,
    FeatureRecipe,
    FeatureSpec,
    get_feature_set,
    standard_spec,
)

__all__ = [
    "FEATURE_CODE_VERSION",
    "FeatureDef",
    "FeatureRecipe",
    "FeatureSpec",
    "atr",
    "available_indicators",
    "compute_feature_matrix",
    "compute_features",
    "find_lookahead",
    "get_feature_set",
    "standard_spec",
]
