"""A model store in S3-compatible object storage (AWS S3, Cloudflare R2, MinIO).

Every file is uploaded with its sha256 (as ``ChecksumSHA256``, which S3 verifies on receipt, and
in the ``sha256`` metadata); ``manifest.json`` goes last with ``If-None-Match: *``, so a version
is visible only once complete and can never be overwritten. Channel pointers move with
``If-Match`` on the ETag that was read. Endpoint, credentials and region come from the standard
AWS chain (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, environment, instance roles).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from quantrain.errors import StoreError
from quantrain.package.checksums import sha256_file
from quantrain.package.layout import MANIFEST
from quantrain.runtime.cloud import MISSING_CODES, error_code, new_client, parse_s3_uri, s3_errors
from quantrain.store.base import ModelStore, PointerConflict, StoredObject, download_path

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

#: Files above this go through the transfer manager in parts (S3's minimum part is 5 MiB).
MULTIPART_THRESHOLD = 64 * 1024 * 1024
#: S3 answers a lost conditional write with 412, or 409 while a racing write is in flight.
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


class S3Store(ModelStore):
    def __init__(
        self,
        uri: str,
        *,
        client: S3Client | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> None:
        self.bucket, self.prefix, style = parse_s3_uri(uri)
        self.uri = uri.split("?", 1)[0].rstrip("/")
        self.client: S3Client = client or new_client(style)
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=max(multipart_threshold, 8 * 1024 * 1024),
            max_concurrency=8,
        )
        self.multipart_threshold = multipart_threshold

    # -- errors -----------------------------------------------------------------------------
    def _errors(self, action: str) -> AbstractContextManager[None]:
        """Botocore failures as ``StoreError``s that say what to fix."""
        return s3_errors(StoreError, self.uri, action, client=self.client, bucket=self.bucket)

    def _key(self, key: str) -> str:
        return self.prefix + key

    # -- primitives -------------------------------------------------------------------------
    def _list(self, prefix: str) -> list[StoredObject]:
        objects: list[StoredObject] = []
        with self._errors("list the store"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    objects.append(
                        StoredObject(
                            key=item["Key"][len(self.prefix) :],
                            size=item["Size"],
                            modified=item["LastModified"],
                        )
                    )
        return objects

    def _get(self, key: str) -> tuple[bytes, str] | None:
        with self._errors(f"read {key}"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as error:
                if error_code(error) in MISSING_CODES:
                    return None
                raise
            return response["Body"].read(), response["ETag"]

    def _put_pointer(self, key: str, body: bytes, expected: str | None) -> None:
        condition = {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}
        with self._errors(f"write {key}"):
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=body,
                    ContentType="application/json",
                    ChecksumSHA256=_b64_sha256(body),
                    **condition,  # type: ignore[arg-type]
                )
            except ClientError as error:
                if error_code(error) in _CONFLICT_CODES | MISSING_CODES:
                    raise PointerConflict(key) from None
                raise

    def _put_version(self, package_dir: Path, prefix: str) -> None:
        files = sorted(p for p in package_dir.rglob("*") if p.is_file() and p.name != MANIFEST)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda p: self._upload(p, prefix + _rel(p, package_dir)), files))
        manifest = (package_dir / MANIFEST).read_bytes()
        with self._errors(f"write {prefix}{MANIFEST}"):
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(prefix + MANIFEST),
                    Body=manifest,
                    ContentType="application/json",
                    ChecksumSHA256=_b64_sha256(manifest),
                    Metadata={"sha256": hashlib.sha256(manifest).hexdigest()},
                    IfNoneMatch="*",
                )
            except ClientError as error:
                if error_code(error) in _CONFLICT_CODES:
                    raise StoreError(
                        f"{self.uri}: {prefix.rstrip('/')} was completed by another push; "
                        "versions are immutable"
                    ) from None
                raise

    def _upload(self, path: Path, key: str) -> None:
        """One file with its sha256; large files in parts through the transfer manager."""
        digest = sha256_file(path)
        with self._errors(f"upload {key}"):
            if path.stat().st_size < self.multipart_threshold:
                body = path.read_bytes()
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=body,
                    ChecksumSHA256=_b64_sha256(body),
                    Metadata={"sha256": digest},
                )
            else:
                # Multipart checksums are per part; the whole-file sha256 rides in metadata and
                # is checked end to end against the manifest on every pull.
                self.client.upload_file(
                    str(path),
                    self.bucket,
                    self._key(key),
                    ExtraArgs={"Metadata": {"sha256": digest}},
                    Config=self.transfer,
                )
        log.debug("uploaded %s", key)

    def _fetch_version(self, prefix: str, manifest: dict[str, Any], into: Path) -> None:
        def fetch(rel: str) -> None:
            target = download_path(into, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._errors(f"download {prefix}{rel}"):
                try:
                    if manifest["files"][rel]["size"] < self.multipart_threshold:
                        response = self.client.get_object(
                            Bucket=self.bucket, Key=self._key(prefix + rel)
                        )
                        target.write_bytes(response["Body"].read())
                    else:  # ranged GETs in parallel, to a temporary name, by the transfer manager
                        self.client.download_file(
                            self.bucket, self._key(prefix + rel), str(target), Config=self.transfer
                        )
                except ClientError as error:
                    if error_code(error) not in MISSING_CODES:
                        raise
                    # a missing file is reported by verification, by name

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(fetch, sorted(manifest["files"])))

    def _delete_version(self, prefix: str) -> None:
        with self._errors(f"delete {prefix}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(prefix + MANIFEST))
            keys = [obj.key for obj in self._list(prefix)]
            for start in range(0, len(keys), 1000):
                batch: list[ObjectIdentifierTypeDef] = [
                    {"Key": self._key(k)} for k in keys[start : start + 1000]
                ]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _b64_sha256(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()
