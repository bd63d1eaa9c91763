"""Model families behind one contract, registered explicitly by key."""

from quantrain.models import (  # noqa: F401  (registration)
    ftrl_family,
    gmm_regime,
    lightgbm_family,
    sklearn,
    xgboost_family,
)
from quantrain.models.base import FamilyTags, ModelFamily, Task
from quantrain.models.device import TORCH_FAMILIES, resolve_device
from quantrain.models.registry import family_keys, get_family, register, register_optional

# Imported on first use, so neither quantrain nor a bot's Predictor pays for importing torch.
register_optional(
    TORCH_FAMILIES,
    "quantrain.models.torch_family",
    requires=("torch", "onnxscript"),
    extra="torch",
)

__all__ = [
    "FamilyTags",
    "ModelFamily",
    "Task",
    "family_keys",
    "get_family",
    "register",
    "resolve_device",
]
