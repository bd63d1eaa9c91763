"""Model stores: push, pull, list, promote and gc packages without exposing half-written
versions, on a local filesystem or S3-compatible object storage."""

from quantrain.store.base import (
    DEFAULT_CHANNEL,
    ChannelPointer,
    GcItem,
    ModelStore,
    VersionCheck,
    VersionInfo,
)
from quantrain.store.compare import MetricComparison
from quantrain.store.local import LocalStore
from quantrain.store.uri import is_remote, open_store

__all__ = [
    "DEFAULT_CHANNEL",
    "ChannelPointer",
    "GcItem",
    "LocalStore",
    "MetricComparison",
    "ModelStore",
    "VersionCheck",
    "VersionInfo",
    "is_remote",
    "open_store",
]
