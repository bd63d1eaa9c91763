"""A model store on a local (or shared) filesystem.

Layout: ``<root>/<symbol>/<suite>/<version>/`` holds a package; ``<root>/<symbol>/<suite>/
channels/<name>.json`` points a channel at a version. A version appears by one atomic rename
of a fully written, verified directory, so readers never see half a package, and it is never
overwritten.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantrain.errors import PackageError, StoreError
from quantrain.package import MANIFEST, read_manifest, verify_package
from quantrain.store.base import DEFAULT_CHANNEL, ChannelPointer, VersionCheck, VersionInfo

CHANNELS_DIR = "channels"
STAGING_PREFIX = ".incoming-"


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    # -- paths -------------------------------------------------------------------------------
    def _suite_dir(self, symbol: str, suite: str) -> Path:
        return self.root / symbol / suite

    def _suites(self, symbol: str) -> list[str]:
        base = self.root / symbol
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def _resolve_suite(self, symbol: str, suite: str | None) -> str:
        suites = self._suites(symbol)
        if suite is not None:
            if suite not in suites:
                raise StoreError(
                    f"{self.uri}: no suite {suite!r} for {symbol}"
                    + (f"; suites: {', '.join(suites)}" if suites else self._symbols_hint())
                )
            return suite
        if len(suites) == 1:
            return suites[0]
        if not suites:
            raise StoreError(
                f"{self.uri}: no packages for symbol {symbol!r}.{self._symbols_hint()}"
            )
        raise StoreError(f"{symbol} has several suites ({', '.join(suites)}); pass --suite")

    def _symbols_hint(self) -> str:
        symbols = (
            sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        )
        return (
            f" Symbols in this store: {', '.join(symbols)}" if symbols else " The store is empty."
        )

    def _versions(self, symbol: str, suite: str) -> list[str]:
        base = self._suite_dir(symbol, suite)
        return sorted(
            p.name
            for p in base.iterdir()
            if p.is_dir()
            and not p.name.startswith(".")
            and p.name != CHANNELS_DIR
            and (p / MANIFEST).is_file()
        )

    # -- channels ----------------------------------------------------------------------------
    def _channel_path(self, symbol: str, suite: str, channel: str) -> Path:
        if not channel.replace("-", "").replace("_", "").isalnum():
            raise StoreError(f"channel names use letters, digits, '-' and '_', got {channel!r}")
        return self._suite_dir(symbol, suite) / CHANNELS_DIR / f"{channel}.json"

    def channels(self, symbol: str, suite: str) -> dict[str, str]:
        base = self._suite_dir(symbol, suite) / CHANNELS_DIR
        if not base.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text())["version"] for p in sorted(base.glob("*.json"))}

    def resolve(self, symbol: str, suite: str, channel: str) -> str:
        pointer = self._channel_path(symbol, suite, channel)
        if not pointer.is_file():
            raise StoreError(
                f"{symbol}/{suite}: channel {channel!r} points nowhere yet; "
                f"run `quantrain models promote {symbol} VERSION --channel {channel}`"
            )
        version: str = json.loads(pointer.read_text())["version"]
        return version

    @contextmanager
    def _locked(self, symbol: str, suite: str) -> Iterator[None]:
        lock_dir = self._suite_dir(symbol, suite) / CHANNELS_DIR
        lock_dir.mkdir(parents=True, exist_ok=True)
        with (lock_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- the contract ------------------------------------------------------------------------
    def push(self, package_dir: Path) -> VersionInfo:
        """Copy a verified package in under a hidden name, then rename it into place."""
        manifest = verify_package(package_dir)
        symbol, suite, version = manifest["symbol"], manifest["suite"], manifest["version"]
        suite_dir = self._suite_dir(symbol, suite)
        final = suite_dir / version
        if final.exists():
            raise StoreError(
                f"{self.uri}: {symbol}/{suite}/{version} exists; versions are immutable"
            )
        suite_dir.mkdir(parents=True, exist_ok=True)
        staging = suite_dir / f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(package_dir, staging, ignore=shutil.ignore_patterns(MANIFEST))
            shutil.copy2(Path(package_dir) / MANIFEST, staging / MANIFEST)  # manifest last
            verify_package(staging)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self._info(symbol, suite, version, manifest)

    def pull(
        self,
        symbol: str,
        to: Path,
        *,
        suite: str | None = None,
        channel: str | None = None,
        version: str | None = None,
        force: bool = False,
    ) -> Path:
        """Copy one version to ``to`` (the package directory itself), verified before it lands."""
        if channel and version:
            raise StoreError("pass either a channel or a version, not both")
        suite = self._resolve_suite(symbol, suite)
        version = version or self.resolve(symbol, suite, channel or DEFAULT_CHANNEL)
        source = self._suite_dir(symbol, suite) / version
        if not (source / MANIFEST).is_file():
            known = self._versions(symbol, suite)
            raise StoreError(
                f"{self.uri}: no version {version!r} of {symbol}/{suite}; newest: "
                + (", ".join(known[-3:]) if known else "none")
            )
        target = Path(to)
        if target.exists() and not force:
            try:
                if read_manifest(target).get("version") == version:
                    verify_package(target)
                    return target
            except PackageError:
                pass
            raise StoreError(
                f"{target} exists and holds something else; pass --force to replace it"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".pulling-{target.name}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(source, staging)
            verify_package(staging)
            if target.exists():
                retired = target.parent / f".retired-{target.name}-{uuid.uuid4().hex[:8]}"
                os.rename(target, retired)
                os.rename(staging, target)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def versions(self, symbol: str | None = None) -> list[VersionInfo]:
        if not self.root.is_dir():
            return []
        symbols = [symbol] if symbol else sorted(p.name for p in self.root.iterdir() if p.is_dir())
        rows: list[VersionInfo] = []
        for sym in symbols:
            for suite in self._suites(sym):
                for version in self._versions(sym, suite):
                    manifest = read_manifest(self._suite_dir(sym, suite) / version)
                    rows.append(self._info(sym, suite, version, manifest))
        return rows

    def verify(self, symbol: str | None = None) -> list[VersionCheck]:
        """Re-check every complete version's files against its manifest."""
        checks: list[VersionCheck] = []
        for info in self.versions(symbol):
            try:
                verify_package(self._suite_dir(info.symbol, info.suite) / info.version)
                checks.append(VersionCheck(info, None))
            except PackageError as error:
                checks.append(VersionCheck(info, str(error)))
        return checks

    def promote(
        self, symbol: str, version: str, *, suite: str | None = None, channel: str = DEFAULT_CHANNEL
    ) -> ChannelPointer:
        """Point ``channel`` at a complete, verified version (atomic replace under a lock)."""
        suite = self._resolve_suite(symbol, suite)
        if version not in self._versions(symbol, suite):
            known = self._versions(symbol, suite)
            raise StoreError(
                f"{self.uri}: cannot promote {symbol}/{suite}/{version}: no such complete version; "
                + ("newest: " + ", ".join(known[-3:]) if known else "none published")
            )
        verify_package(self._suite_dir(symbol, suite) / version)
        path = self._channel_path(symbol, suite, channel)
        with self._locked(symbol, suite):
            previous = json.loads(path.read_text())["version"] if path.is_file() else None
            pointer = ChannelPointer(
                symbol=symbol,
                suite=suite,
                channel=channel,
                version=version,
                previous=previous,
                promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
            tmp.write_text(json.dumps(pointer.__dict__, indent=2))
            os.replace(tmp, path)
        return pointer

    def _info(self, symbol: str, suite: str, version: str, manifest: dict[str, Any]) -> VersionInfo:
        pointing = tuple(c for c, v in self.channels(symbol, suite).items() if v == version)
        return VersionInfo(
            symbol=symbol,
            suite=suite,
            version=version,
            created_at=manifest["created_at"],
            channels=pointing,
            metrics=manifest.get("summary_metrics", {}),
        )
