"""Model families registered explicitly by key; an unknown key lists the near matches."""

from __future__ import annotations

import difflib

from quantrain.errors import ModelError
from quantrain.models.base import ModelFamily

_REGISTRY: dict[str, type[ModelFamily]] = {}


def register(cls: type[ModelFamily]) -> type[ModelFamily]:
    """Class decorator: make a family available under its ``key``."""
    if cls.key in _REGISTRY and _REGISTRY[cls.key] is not cls:
        raise ModelError(f"model family {cls.key!r} is registered twice")
    _REGISTRY[cls.key] = cls
    return cls


def get_family(key: str) -> type[ModelFamily]:
    """The family class for ``key``; unknown keys get the near matches and the full list."""
    try:
        return _REGISTRY[key]
    except KeyError:
        near = difflib.get_close_matches(key, _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise ModelError(
            f"unknown model family {key!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def family_keys() -> list[str]:
    return sorted(_REGISTRY)
