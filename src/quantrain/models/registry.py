"""Model families registered explicitly by key; an unknown key lists the near matches.

Families that need an optional extra (the torch families) are registered *lazily*: their
module is imported the first time one of their keys is asked for, so ``import quantrain`` (and
a bot's ``Predictor``) never pays for importing torch. Without the extra installed the keys stay
out of :func:`family_keys`, and asking for one says which ``pip install`` brings it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass

from quantrain.errors import ModelError
from quantrain.models.base import ModelFamily

_REGISTRY: dict[str, type[ModelFamily]] = {}


@dataclass(frozen=True)
class _Optional:
    """Where an optional family lives and what it needs."""

    module: str
    requires: tuple[str, ...]
    extra: str


_OPTIONAL: dict[str, _Optional] = {}


def register(cls: type[ModelFamily]) -> type[ModelFamily]:
    """Class decorator: make a family available under its ``key``."""
    if cls.key in _REGISTRY and _REGISTRY[cls.key] is not cls:
        raise ModelError(f"model family {cls.key!r} is registered twice")
    _REGISTRY[cls.key] = cls
    return cls


def register_optional(
    keys: Iterable[str], module: str, *, requires: Iterable[str], extra: str
) -> None:
    """Declare families that ``module`` registers when imported, needing ``requires``
    (top-level packages) from the ``extra`` of ``quantrain``."""
    entry = _Optional(module, tuple(requires), extra)
    for key in keys:
        _OPTIONAL[key] = entry


def _missing(packages: Iterable[str]) -> list[str]:
    """The packages that cannot be found (a ``None`` in ``sys.modules`` counts as missing)."""
    missing = []
    for name in packages:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def _install_hint(key: str, entry: _Optional, why: str) -> ModelError:
    return ModelError(
        f"model family {key!r} needs {why}; fix: pip install 'quantrain[{entry.extra}]'"
    )


def _load_optional(key: str) -> type[ModelFamily]:
    entry = _OPTIONAL[key]
    missing = _missing(entry.requires)
    if missing:
        raise _install_hint(key, entry, f"{', '.join(missing)}, which is not installed here")
    try:
        importlib.import_module(entry.module)
    except ImportError as error:
        top = (error.name or "").split(".")[0]
        if top not in entry.requires:
            raise
        raise _install_hint(key, entry, f"{top}, which failed to import ({error})") from None
    return _REGISTRY[key]


def get_family(key: str) -> type[ModelFamily]:
    """The family class for ``key``; unknown keys get the near matches and the full list."""
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key in _OPTIONAL:
        return _load_optional(key)
    known = sorted(set(_REGISTRY) | set(_OPTIONAL))
    near = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise ModelError(f"unknown model family {key!r}.{hint} Available: {', '.join(family_keys())}")


def family_keys() -> list[str]:
    """Every family usable here: the registered ones and the optional ones whose extra is
    installed."""
    usable = {key for key, entry in _OPTIONAL.items() if not _missing(entry.requires)}
    return sorted(set(_REGISTRY) | usable)
