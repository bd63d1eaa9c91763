"""Market data in S3-compatible object storage: list a prefix, fetch one object to a temp file.

Ray workers on other nodes read the same ``s3://bucket/prefix/`` the driver discovered, so every
data path may be an S3 URI. Objects are downloaded to a temporary file that keeps the object's
extension (the readers choose the format by extension) and is deleted once read. Endpoint,
credentials and region come from the standard AWS chain (see ``quantrain.runtime.cloud``); botocore
failures become one-line ``DataError``s that name the URI and the fix.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from quantrain.errors import DataError
from quantrain.runtime.cloud import (
    MISSING_CODES,
    error_code,
    is_s3,
    new_client,
    parse_s3_uri,
    s3_errors,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

#: Temporary downloads start with this, so a leftover one is easy to recognise (and to test for).
TEMP_PREFIX = "quantrain-data-"

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class S3Location:
    """A parsed data URI: bucket, key (no leading slash; ends with ``/`` for a prefix)."""

    uri: str
    bucket: str
    key: str
    addressing_style: str | None

    @property
    def is_prefix(self) -> bool:
        """True for the bucket root or a URI ending in ``/`` (a "directory")."""
        return self.key == "" or self.key.endswith("/")

    @property
    def name(self) -> str:
        """The last segment of the key, like ``Path.name`` (``""`` for a prefix)."""
        return self.key.rsplit("/", 1)[-1]

    def child(self, key: str) -> str:
        """The URI of another object in this bucket, keeping the addressing option."""
        query = urlsplit(self.uri).query
        return f"s3://{self.bucket}/{key}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class S3Listing:
    """What lies directly under a prefix: object URIs and names, and sub-prefix names."""

    objects: list[tuple[str, str]]  # (uri, name), sorted by name
    folders: list[str]  # names of "subdirectories", each ending in "/"


def parse_data_uri(uri: str) -> S3Location:
    """``s3://bucket/data/ETH-BTC_5m.parquet?addressing=path`` → its bucket, key and style."""
    try:
        bucket, prefix, style = parse_s3_uri(uri, error=DataError)
    except DataError as exc:
        raise DataError(str(exc).replace("store URI", "data URI", 1)) from None
    path = urlsplit(uri).path
    key = prefix if path.endswith("/") or not prefix else prefix.rstrip("/")
    return S3Location(uri, bucket, key, style)


def object_name(uri: str) -> str:
    """The file name of an object URI (``""`` for a prefix), without any ``?`` options."""
    return parse_data_uri(uri).name


def source_name(path: str | os.PathLike[str]) -> str:
    """The file name of a data path: the last key segment of an S3 URI, else ``Path.name``."""
    text = os.fspath(path)
    return object_name(text) if is_s3(text) else Path(text).name


def _errors(location: S3Location, client: S3Client, action: str) -> AbstractContextManager[None]:
    """Botocore failures as ``DataError``s that say what to fix."""
    folder = location.key.rpartition("/")[0]
    listing = f"s3://{location.bucket}/{folder}/" if folder else f"s3://{location.bucket}"
    return s3_errors(
        DataError,
        location.uri,
        action,
        client=client,
        bucket=location.bucket,
        missing=f"file not found\n  fix: check the key (list them: aws s3 ls {listing})",
    )


def list_prefix(
    uri: str, *, client: S3Client | None = None, page_size: int | None = None
) -> S3Listing:
    """The objects and sub-prefixes directly under ``uri`` (paginated, not recursive)."""
    location = parse_data_uri(uri)
    prefix = location.key if location.is_prefix else location.key + "/"
    location = S3Location(uri, location.bucket, prefix, location.addressing_style)
    client = client or new_client(location.addressing_style)
    objects: list[tuple[str, str]] = []
    folders: list[str] = []
    with _errors(location, client, "list the data files"):
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket,
            Prefix=prefix,
            Delimiter="/",
            PaginationConfig={"PageSize": page_size} if page_size else {},
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if name and "/" not in name:  # skip the folder marker object itself
                    objects.append((location.child(item["Key"]), name))
            for common in page.get("CommonPrefixes", []):
                folders.append(common["Prefix"][len(prefix) :])
    return S3Listing(sorted(objects, key=lambda o: o[1]), sorted(folders))


def object_exists(uri: str, *, client: S3Client | None = None) -> bool:
    """True if ``uri`` names an object (not a prefix); other failures raise ``DataError``."""
    location = parse_data_uri(uri)
    if location.is_prefix:
        return False
    from botocore.exceptions import ClientError  # botocore loads only when S3 is used

    client = client or new_client(location.addressing_style)
    with _errors(location, client, "read the data file"):
        try:
            client.head_object(Bucket=location.bucket, Key=location.key)
        except ClientError as error:
            if error_code(error) in MISSING_CODES:
                return False
            raise
    return True


@contextmanager
def downloaded(uri: str, suffix: str, *, client: S3Client | None = None) -> Iterator[Path]:
    """Download one object to a temp file ending in ``suffix``; delete it on exit."""
    location = parse_data_uri(uri)
    if location.is_prefix:
        raise DataError(
            f"{uri}: is a prefix (folder), not a data file\n"
            "  fix: pass one object, or use discover() / a data directory setting for many"
        )
    client = client or new_client(location.addressing_style)
    handle, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out, _errors(location, client, "download the data file"):
            response = client.get_object(Bucket=location.bucket, Key=location.key)
            body = response["Body"]
            try:
                shutil.copyfileobj(body, out, _CHUNK)
            finally:
                body.close()
        logger.debug("%s: downloaded %d bytes to %s", uri, path.stat().st_size, path)
        yield path
    finally:
        path.unlink(missing_ok=True)
