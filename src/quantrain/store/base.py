"""The model store contract and URI dispatch: a local path today, ``s3://`` in a later issue."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from quantrain.errors import StoreError

DEFAULT_CHANNEL = "approved"


@dataclass(frozen=True)
class VersionInfo:
    """One complete package version in a store."""

    symbol: str
    suite: str
    version: str
    created_at: str
    channels: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionCheck:
    """One version's verification: ``error`` is None when every checksum matched."""

    info: VersionInfo
    error: str | None


@dataclass(frozen=True)
class ChannelPointer:
    """Where a channel (``approved``, ``staging``…) points and what it pointed to before."""

    symbol: str
    suite: str
    channel: str
    version: str
    previous: str | None
    promoted_at: str


class ModelStore(Protocol):
    uri: str

    def push(self, package_dir: Path) -> VersionInfo: ...

    def pull(
        self,
        symbol: str,
        to: Path,
        *,
        suite: str | None = None,
        channel: str | None = None,
        version: str | None = None,
        force: bool = False,
    ) -> Path: ...

    def versions(self, symbol: str | None = None) -> list[VersionInfo]: ...

    def verify(self, symbol: str | None = None) -> list[VersionCheck]: ...

    def promote(
        self, symbol: str, version: str, *, suite: str | None = None, channel: str = DEFAULT_CHANNEL
    ) -> ChannelPointer: ...


def open_store(uri: str) -> ModelStore:
    """A store for ``uri``: a local directory or ``file://`` path."""
    from quantrain.store.local import LocalStore

    if uri.startswith("file://"):
        return LocalStore(Path(uri.removeprefix("file://")))
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise StoreError(
            f"store URI {uri!r}: the {scheme}:// scheme is not supported yet; "
            "use a local directory (s3:// arrives with the object-storage release)"
        )
    return LocalStore(Path(uri))
