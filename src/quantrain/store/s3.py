"""A model store in S3-compatible object storage (AWS S3, Cloudflare R2, MinIO).

Every file is uploaded with its sha256 (as ``ChecksumSHA256``, which S3 verifies on receipt, and
in the ``sha256`` metadata). Two pushes of one version may run at once (a Ray retry reuses the
version name), so a push never uploads straight to the version's keys:

1. it uploads every file, its manifest too, under a prefix of its own beside the version
   (``<symbol>/<suite>/.incoming-<version>-<id>/``) and checks the listing against the package;
2. it claims the version by creating ``<version>/.claim.json`` (naming that prefix) with
   ``If-None-Match: *``: exactly one push of a version ever creates it, and it stays;
3. the claimant copies its staged files to the version's keys (server-side) and creates
   ``manifest.json`` last, again with ``If-None-Match: *``, so a version is visible only once
   complete and can never be overwritten;
4. a push that lost the claim writes none of its own bytes there: it finishes the claimant's
   copy from the claimant's staged files (the very bytes the claimant verified, so a claimant
   killed mid-copy never blocks the version) and fails with ``StoreConflictError``.

Channel pointers move with ``If-Match`` on the ETag that was read. Endpoint, credentials and
region come from the standard AWS chain (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, environment,
instance roles).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from quantrain.errors import StoreConflictError, StoreError
from quantrain.names import is_safe_name
from quantrain.package.checksums import sha256_file
from quantrain.package.layout import MANIFEST, check_manifest
from quantrain.runtime.cloud import MISSING_CODES, error_code, new_client, parse_s3_uri, s3_errors
from quantrain.store.base import (
    STAGING_PREFIX,
    ModelStore,
    PointerConflict,
    StoredObject,
    UnfinishedUpload,
    _who,
    download_path,
    staging_name,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef, ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

#: Files above this go through the transfer manager in parts (S3's minimum part is 5 MiB).
MULTIPART_THRESHOLD = 64 * 1024 * 1024
#: S3 answers a lost conditional write with 412, or 409 while a racing write is in flight.
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
#: 409: a racing conditional write is still in flight; S3 asks for a retry to learn its outcome.
_IN_FLIGHT_CODES = {"ConditionalRequestConflict", "409"}
#: Created beside a version's files with ``If-None-Match: *``: the one push that creates it
#: publishes the version. It names that push's staging prefix and stays with the version.
CLAIM = ".claim.json"
#: CopyObject copies up to 5 GiB in one request; larger staged files are copied in parts.
COPY_OBJECT_LIMIT = 5 * 1024**3


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
        """Stage, check, claim, then copy into place with the manifest last (see the module
        docstring); the loser of the claim never writes its own bytes under ``prefix``."""
        parent, version = prefix.rstrip("/").rsplit("/", 1)
        staging = f"{parent}/{staging_name(version)}/"
        manifest = (package_dir / MANIFEST).read_bytes()
        try:
            self._stage(package_dir, staging, manifest)
        except Exception:
            self._discard(staging)
            raise
        # An error while claiming keeps the staged copy: the claim may name it.
        if not self._claim(prefix, staging):
            self._discard(staging)
            self._finish_claimed(prefix)
        # An error from here on keeps it too, so a retry of this version can finish it.
        self._complete(staging, prefix, manifest)
        self._discard(staging)

    def _stage(self, package_dir: Path, staging: str, manifest: bytes) -> None:
        """Upload the manifest's files and the manifest under ``staging``; refuse unless the
        listing then holds exactly those objects at their sizes."""
        expected = {rel: entry["size"] for rel, entry in json.loads(manifest)["files"].items()} | {
            MANIFEST: len(manifest)
        }
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda rel: self._upload(package_dir / rel, staging + rel), expected))
        found = {obj.key.removeprefix(staging): obj.size for obj in self._list(staging)}
        if found != expected:
            wrong = sorted(
                set(found) ^ set(expected) | {k for k in found if found[k] != expected.get(k)}
            )
            raise StoreError(
                f"{self.uri}: the upload to {staging} does not hold the package "
                f"(missing, extra or resized: {', '.join(wrong[:5])}); nothing was published"
            )

    def _claim(self, prefix: str, staging: str) -> bool:
        """Create the version's claim naming ``staging``: False if another push holds it."""
        name = staging.rstrip("/").rsplit("/", 1)[1]
        at = datetime.now(UTC).isoformat(timespec="seconds")
        body = json.dumps({"staging": name, "by": _who(), "at": at}, sort_keys=True).encode()
        if self._create(prefix + CLAIM, body):
            return True
        held = self._get(prefix + CLAIM)  # ours if a retried request of ours had landed
        return held is not None and self._read_claim(prefix, held[0])["staging"] == name

    def _read_claim(self, prefix: str, body: bytes) -> dict[str, str]:
        """A claim's fields, refused unless it names a staging prefix beside the version."""
        try:
            claim = json.loads(body)
        except (ValueError, RecursionError):
            claim = None
        name = claim.get("staging") if isinstance(claim, dict) else None
        if not (
            isinstance(claim, dict)
            and isinstance(name, str)
            and name.startswith(STAGING_PREFIX)
            and is_safe_name(name.removeprefix("."))
        ):
            raise StoreError(
                f"{self.uri}: {prefix}{CLAIM} was not written by quantrain, and it blocks "
                f"{prefix.rstrip('/')}\n  fix: `quantrain models gc` removes this incomplete "
                "version once it is older than --stale-after"
            )
        return {"staging": name, "by": str(claim.get("by", "?")), "at": str(claim.get("at", "?"))}

    def _complete(self, staging: str, prefix: str, manifest: bytes) -> None:
        """Copy the staged files to the version's keys, then create its manifest. Done also
        when a racing push already finished this same claimed package; any other version
        already there is a ``StoreConflictError``."""
        files = json.loads(manifest)["files"]
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(
                    pool.map(
                        lambda rel: self._copy(staging + rel, prefix + rel, files[rel]["size"]),
                        sorted(files),
                    )
                )
            if self._create(prefix + MANIFEST, manifest):
                return
        except StoreError:
            if not self._holds(prefix, manifest):
                raise
            return
        if not self._holds(prefix, manifest):
            raise StoreConflictError(
                f"{self.uri}: {prefix.rstrip('/')} was completed by another push; "
                "versions are immutable"
            )

    def _holds(self, prefix: str, manifest: bytes) -> bool:
        found = self._get(prefix + MANIFEST)
        return found is not None and found[0] == manifest

    def _finish_claimed(self, prefix: str) -> NoReturn:
        """Another push claimed the version: finish it from that push's staged files (so a
        claimant killed mid-copy never blocks it), then refuse this push."""
        lost = (
            f"{self.uri}: {prefix.rstrip('/')} was claimed by another push while this one ran, "
            "so this package was NOT published; versions are immutable"
        )
        if self._get(prefix + MANIFEST) is None:
            held = self._get(prefix + CLAIM)
            if held is None:  # removed (by gc) between our claim and this read
                raise StoreError(f"{lost}; that claim is gone now: push again")
            claim = self._read_claim(prefix, held[0])
            lost += f" (claimed by {claim['by']} at {claim['at']})"
            staging = f"{prefix.rstrip('/').rsplit('/', 1)[0]}/{claim['staging']}/"
            try:
                self._finish(prefix, staging)
            except StoreError as error:
                if self._get(prefix + MANIFEST) is None:
                    raise StoreError(
                        f"{lost}; finishing that push failed: {error}\n  fix: retry; if that "
                        "push died, `quantrain models gc` removes its incomplete version once "
                        "it is older than --stale-after"
                    ) from None
        raise StoreConflictError(lost)

    def _finish(self, prefix: str, staging: str) -> None:
        """Complete ``prefix`` from another push's checked staging copy."""
        staged = self._get(staging + MANIFEST)
        if staged is None:
            raise StoreError(f"its staged copy {staging} is gone")
        where = f"{self.uri}: {staging}{MANIFEST}"
        try:
            manifest = json.loads(staged[0])
        except (ValueError, RecursionError):
            raise StoreError(f"{where} is not JSON") from None
        check_manifest(manifest, where, error=StoreError)
        names = "/".join(str(manifest.get(k)) for k in ("symbol", "suite", "version"))
        if f"{names}/" != prefix:
            raise StoreError(f"{where} is the manifest of {names}, not of {prefix}")
        self._complete(staging, prefix, staged[0])

    def _create(self, key: str, body: bytes) -> bool:
        """Write ``key`` only if absent (``If-None-Match: *``): False if it exists already."""
        for attempt in range(4):
            with self._errors(f"write {key}"):
                try:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=self._key(key),
                        Body=body,
                        ContentType="application/json",
                        ChecksumSHA256=_b64_sha256(body),
                        Metadata={"sha256": hashlib.sha256(body).hexdigest()},
                        IfNoneMatch="*",
                    )
                    return True
                except ClientError as error:
                    code = error_code(error)
                    if code in _IN_FLIGHT_CODES and attempt < 3:
                        time.sleep(0.2 * (attempt + 1))  # learn how the racing write ended
                        continue
                    if code in _CONFLICT_CODES:
                        return False
                    raise
        return False  # unreachable: the last attempt returns or raises

    def _copy(self, source: str, key: str, size: int) -> None:
        """A server-side copy of a staged object, its ``sha256`` metadata included."""
        copy_source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": self._key(source)}
        with self._errors(f"copy {source} to {key}"):
            if size < COPY_OBJECT_LIMIT:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    CopySource=copy_source,
                    MetadataDirective="COPY",
                )
            else:
                self.client.copy(copy_source, self.bucket, self._key(key), Config=self.transfer)

    def _discard(self, staging: str) -> None:
        """Remove this push's staged copy; if that fails, gc removes it once stale."""
        try:
            self._delete_version(staging)
        except StoreError as error:
            log.warning("%s (gc removes the staged copy once it is stale)", error)

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

    def _unfinished_uploads(self, prefix: str) -> list[UnfinishedUpload]:
        uploads: list[UnfinishedUpload] = []
        with self._errors("list unfinished multipart uploads"):
            try:
                pages = self.client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.bucket, Prefix=self._key(prefix)
                )
                for page in pages:
                    for item in page.get("Uploads", []):
                        key = item["Key"][len(self.prefix) :]
                        uploads.append(UnfinishedUpload(key, item["UploadId"], item["Initiated"]))
            except ClientError as error:
                if error_code(error) not in ("AccessDenied", "NotImplemented"):
                    raise
                log.warning(
                    "%s: cannot list unfinished multipart uploads (%s); a bucket lifecycle "
                    "rule (AbortIncompleteMultipartUpload) can remove them instead",
                    self.uri,
                    error_code(error),
                )
        return uploads

    def _abort_upload(self, upload: UnfinishedUpload) -> None:
        with self._errors(f"abort the multipart upload of {upload.key}"):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._key(upload.key), UploadId=upload.upload_id
            )

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
