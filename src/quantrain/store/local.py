"""A model store on a local (or shared) filesystem.

A version appears by one atomic rename of a fully written, verified directory, so readers never
see half a package. Channel pointers are replaced under an ``flock`` after checking that they
still hold what the promoter read (the local twin of S3's ``If-Match``).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantrain.errors import StoreConflictError, StoreError
from quantrain.names import inside
from quantrain.package.layout import MANIFEST, verify_package
from quantrain.store.base import (
    ModelStore,
    PointerConflict,
    StoredObject,
    download_path,
    staging_name,
)


class LocalStore(ModelStore):
    def __init__(self, root: Path, *, existing: bool = False) -> None:
        self.root = Path(root)
        self.uri = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(
                f"store {self.uri} is a file, not a directory; fix: point --store (or the "
                "job's store:) at a directory, or at s3://BUCKET/PREFIX"
            )
        if existing and not self.root.exists():
            raise StoreError(
                f"no model store at {self.uri} (the directory does not exist); fix: check "
                "--store (default ./models), or train or push a package there first"
            )

    def _list(self, prefix: str) -> list[StoredObject]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        objects = []
        for path in base.rglob("*"):
            if path.is_file() and path.name != ".lock":
                stat = path.stat()
                objects.append(
                    StoredObject(
                        key=path.relative_to(self.root).as_posix(),
                        size=stat.st_size,
                        modified=datetime.fromtimestamp(stat.st_mtime, UTC),
                    )
                )
        return objects

    def _get(self, key: str) -> tuple[bytes, str] | None:
        path = self.root / key
        if not path.is_file():
            return None
        body = path.read_bytes()
        return body, hashlib.sha256(body).hexdigest()

    @contextmanager
    def _locked(self, directory: Path) -> Iterator[None]:
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _put_pointer(self, key: str, body: bytes, expected: str | None) -> None:
        path = inside(self.root, self.root / key, error=StoreError)
        with self._locked(path.parent):
            found = self._get(key)
            if (found[1] if found else None) != expected:
                raise PointerConflict(key)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
            tmp.write_bytes(body)
            os.replace(tmp, path)

    def _put_version(self, package_dir: Path, prefix: str) -> None:
        """Copy in under a hidden name, verify, then rename into place in one step."""
        final = inside(self.root, self.root / prefix, error=StoreError)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / staging_name(final.name)
        try:
            shutil.copytree(package_dir, staging, ignore=shutil.ignore_patterns(MANIFEST))
            shutil.copy2(package_dir / MANIFEST, staging / MANIFEST)  # manifest last
            verify_package(staging)
            try:
                # Fails (ENOTEMPTY) once a concurrent push's directory holds the name: the
                # winner's files are never touched.
                os.rename(staging, final)
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise StoreError(f"{self.uri}: cannot publish {prefix}: {error}") from None
                raise StoreConflictError(
                    f"{self.uri}: {prefix.rstrip('/')} was completed by another push while this "
                    "one ran, so this package was NOT published; versions are immutable"
                ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fetch_version(self, prefix: str, manifest: dict[str, Any], into: Path) -> None:
        for rel in manifest["files"]:
            source = self.root / prefix / rel
            if source.is_file():  # a missing file is reported by verification, by name
                target = download_path(into, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)

    def _check_version(self, symbol: str, suite: str, version: str) -> None:
        name = f"{symbol}/{suite}/{version}"
        self._raise_if_damaged(self.root / self._prefix(symbol, suite, version), name)

    def _delete_version(self, prefix: str) -> None:
        directory = inside(self.root, self.root / prefix, error=StoreError)
        doomed = directory.parent / f".deleting-{directory.name}-{uuid.uuid4().hex[:8]}"
        os.rename(directory, doomed)  # disappears in one step
        shutil.rmtree(doomed)
