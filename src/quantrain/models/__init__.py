"""Model families behind one contract, registered explicitly by key."""

from quantrain.models import (  # noqa: F401  (registration)
    lightgbm_family,
    sklearn_family,
    xgboost_family,
)
from quantrain.models.base import FamilyTags, ModelFamily, Task
from quantrain.models.device import resolve_device
from quantrain.models.registry import family_keys, get_family, register

__all__ = [
    "FamilyTags",
    "ModelFamily",
    "Task",
    "family_keys",
    "get_family",
    "register",
    "resolve_device",
]
