"""Store URIs: a local directory, ``file://`` path or ``s3://bucket/prefix``."""

from __future__ import annotations

from pathlib import Path

from quantrain.errors import StoreError
from quantrain.store.base import ModelStore


def is_remote(uri: str) -> bool:
    """True when every node of a cluster reaches the store the same way (object storage)."""
    return uri.startswith("s3://")


def open_store(uri: str, *, existing: bool = False) -> ModelStore:
    """The store behind ``uri``; ``existing`` refuses a local directory that is not there
    (reading commands: an empty listing would hide a typo in the path)."""
    from quantrain.store.local import LocalStore

    if uri.startswith("s3://"):
        from quantrain.store.s3 import S3Store  # boto3 loads only when S3 is used

        return S3Store(uri)
    if uri.startswith("file://"):
        return LocalStore(Path(uri.removeprefix("file://")), existing=existing)
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise StoreError(
            f"store URI {uri!r}: the {scheme}:// scheme is not supported; use a local "
            "directory or s3://BUCKET/PREFIX (AWS S3, Cloudflare R2, MinIO)"
        )
    return LocalStore(Path(uri), existing=existing)
