"""Model families behind one contract, registered explicitly by key."""

from quantrain.models import (  # noqa: F401  (registration)
    ftrl_family,
    gmm_regime,
    lightgbm_family,
    sklearn,
    xgboost_family,
)
from quantrain.models.base import FamilyTags, ModelFamily, Task
from quantrain.models.device import resolve_device
from quantrain.models.registry import family_keys, get_family, register, register_optional

# Imported on first use, so neither quantrain nor a bot's Predictor pays for importing torch.
for _keys, _module in (
    (("mlp", "lstm", "cnn1d", "transformer"), "quantrain.models.torch_family"),
    (("mlp_multitask",), "quantrain.models.torch_multitask"),
    (("mlp_gaussian",), "quantrain.models.torch_gaussian"),
):
    register_optional(_keys, _module, requires=("torch", "onnxscript"), extra="torch")

__all__ = [
    "FamilyTags",
    "ModelFamily",
    "Task",
    "family_keys",
    "get_family",
    "register",
    "resolve_device",
]
