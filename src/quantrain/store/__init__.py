"""Model stores: push, pull, list and promote packages without exposing half-written versions."""

from quantrain.store.base import (
    ChannelPointer,
    ModelStore,
    VersionCheck,
    VersionInfo,
    open_store,
)
from quantrain.store.local import LocalStore

__all__ = [
    "ChannelPointer",
    "LocalStore",
    "ModelStore",
    "VersionCheck",
    "VersionInfo",
    "open_store",
]
