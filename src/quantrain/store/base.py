"""What every model store does, written once over a handful of storage primitives.

A store holds ``<symbol>/<suite>/<version>/`` package trees, ``<symbol>/<suite>/channels/
<name>.json`` pointers and ``runs/<run_id>.json`` run records (store/runs.py). Two rules make it
safe to share between trainers and bots:

- a version is complete exactly when its ``manifest.json`` exists, and the manifest is written
  last and never overwritten, so readers never see half a package;
- a channel pointer moves only by a conditional write against the state the writer read, so two
  promoters can never silently overwrite each other.

Backends (``LocalStore``, ``S3Store``) supply the primitives; the algorithms live here.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from quantrain.errors import PackageError, PromotionRefused, StoreConflictError, StoreError
from quantrain.names import DEFAULT_CHANNEL, LATEST, check_name, inside, is_safe_name
from quantrain.package.layout import (
    MANIFEST,
    check_manifest,
    package_problems,
    read_manifest,
    verify_package,
)
from quantrain.store.compare import MetricComparison, compare, unmet_requirements
from quantrain.store.runs import RUNS_DIR, RunInfo, decode, encode, run_id_of, run_key

log = logging.getLogger(__name__)

CHANNELS_DIR = "channels"
#: An incomplete version younger than this may still be uploading; gc leaves it alone.
INCOMPLETE_GRACE = timedelta(hours=24)
#: A push writes its files under a hidden sibling of the version first (gc removes leftovers).
STAGING_PREFIX = ".incoming-"
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def staging_name(version: str) -> str:
    """A hidden name beside ``version`` unique to one push of it, short enough to stay a safe
    name (so listings see it and gc can remove it)."""
    return f"{STAGING_PREFIX}{version[:100]}-{uuid.uuid4().hex[:12]}"


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``90s`` as a timedelta (what ``gc --stale-after`` takes)."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        raise StoreError(
            f"--stale-after must be a whole number with a unit s, m, h or d (30m, 2h, 1d), "
            f"got {text!r}"
        )
    return timedelta(seconds=int(found[1]) * _UNIT_SECONDS[found[2]])


def _stale_cutoff(
    stale_after: timedelta | str | None, now: datetime | None
) -> tuple[datetime, str]:
    """When leftovers become stale (``now`` minus ``stale_after``, default 24h) and that age
    in words."""
    if isinstance(stale_after, str):
        stale_after = parse_duration(stale_after)
    age = INCOMPLETE_GRACE if stale_after is None else stale_after
    if age < timedelta(0):
        raise StoreError(f"gc stale_after must not be negative, got {age}")
    seconds = int(age.total_seconds())
    unit = next((u for u in "dhm" if seconds and seconds % _UNIT_SECONDS[u] == 0), "s")
    return (now or datetime.now(UTC)) - age, f"{seconds // _UNIT_SECONDS[unit]}{unit}"


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
    promoted_by: str = ""
    comparison: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True).encode()


@dataclass(frozen=True)
class GcItem:
    """A version gc removes (or would remove, with ``--dry-run``) and why."""

    symbol: str
    suite: str
    version: str
    reason: str


@dataclass(frozen=True)
class UnfinishedUpload:
    """A multipart upload begun and never completed or aborted (a killed push leaves these;
    the store bills their parts but lists none of them as objects)."""

    key: str
    upload_id: str
    started: datetime


@dataclass(frozen=True)
class StoredObject:
    """One object (file) in a store: its key relative to the store root, size and mtime."""

    key: str
    size: int
    modified: datetime


class PointerConflict(Exception):
    """Raised by ``_put_pointer`` when the pointer is not in the state the caller read."""


@dataclass
class Catalog:
    """A store's contents, parsed from one listing."""

    complete: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    incomplete: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    channel_keys: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, objects: list[StoredObject]) -> Catalog:
        catalog = cls()
        seen: dict[tuple[str, str, str], datetime] = {}
        ignored: set[str] = set()
        for obj in objects:
            parts = obj.key.split("/")
            if len(parts) < 4:
                continue
            symbol, suite, name = parts[:3]
            if not _listable(symbol, suite, name):
                ignored.add("/".join(parts[:3]))
                continue
            if name == CHANNELS_DIR:
                channel = parts[3].removesuffix(".json")
                if len(parts) == 4 and parts[3].endswith(".json") and is_safe_name(channel):
                    channels = catalog.channel_keys.setdefault((symbol, suite), {})
                    channels[channel] = obj.key
                continue
            if parts[3:] == [MANIFEST] and not name.startswith("."):
                catalog.complete.setdefault((symbol, suite), set()).add(name)
            newest = seen.get((symbol, suite, name))
            seen[(symbol, suite, name)] = max(newest, obj.modified) if newest else obj.modified
        for (symbol, suite, name), modified in seen.items():
            if name not in catalog.complete.get((symbol, suite), set()):
                catalog.incomplete[(symbol, suite, name)] = modified
        for prefix in sorted(ignored):
            log.warning("store: ignored %s/ (not made of safe names, so not a package)", prefix)
        return catalog

    def symbols(self) -> list[str]:
        return sorted({s for s, _ in self.complete} | {s for s, _ in self.channel_keys})

    def suites(self, symbol: str) -> list[str]:
        keys = set(self.complete) | set(self.channel_keys)
        return sorted(suite for s, suite in keys if s == symbol)

    def versions(self, symbol: str, suite: str) -> list[str]:
        return sorted(self.complete.get((symbol, suite), set()))


def _listable(symbol: str, suite: str, name: str) -> bool:
    """Whether a listed key's first three parts are names a store writes: anything else
    (``..``, odd characters) was not put there by quantrain and is never turned into a path.
    A version may be hidden (``.incoming-…``): gc removes such leftovers."""
    return is_safe_name(symbol) and is_safe_name(suite) and is_safe_name(name.removeprefix("."))


def _package_parts(key: str) -> tuple[str, str, str]:
    """The symbol, suite and version (or hidden staging name) a key of 4+ parts is under."""
    symbol, suite, name = key.split("/")[:3]
    return symbol, suite, name


def _check_channel_name(channel: str) -> None:
    if not channel or not channel.replace("-", "").replace("_", "").isalnum():
        raise StoreError(f"channel names use letters, digits, '-' and '_', got {channel!r}")


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


class ModelStore(ABC):
    """A place packages are pushed to, pulled from and promoted in."""

    uri: str

    # -- primitives every backend supplies --------------------------------------------------
    @abstractmethod
    def _list(self, prefix: str) -> list[StoredObject]:
        """Every object whose key starts with ``prefix`` (keys relative to the store root)."""

    @abstractmethod
    def _get(self, key: str) -> tuple[bytes, str] | None:
        """An object's bytes and a token for conditional writes (an ETag), or None."""

    @abstractmethod
    def _put_pointer(self, key: str, body: bytes, expected: str | None) -> None:
        """Write ``key`` only if its token is still ``expected`` (None: only if absent);
        otherwise raise ``PointerConflict``."""

    @abstractmethod
    def _put_version(self, package_dir: Path, prefix: str) -> None:
        """Store a verified package under ``prefix`` with its manifest last; refuse to
        overwrite a complete version."""

    @abstractmethod
    def _fetch_version(self, prefix: str, manifest: dict[str, Any], into: Path) -> None:
        """Download every file the manifest lists into ``into`` (a fresh directory)."""

    @abstractmethod
    def _delete_version(self, prefix: str) -> None:
        """Remove a version, its manifest first so it stops being visible at once."""

    def _unfinished_uploads(self, prefix: str) -> list[UnfinishedUpload]:
        """Multipart uploads under ``prefix`` never completed (none outside object storage)."""
        return []

    def _abort_upload(self, upload: UnfinishedUpload) -> None:
        """Abort one of ``_unfinished_uploads``, freeing its parts."""
        raise NotImplementedError

    # -- shared helpers ---------------------------------------------------------------------
    def _names(self, symbol: str, suite: str | None = None, version: str | None = None) -> None:
        """Refuse names that could not be one path part each: every key is built from them."""
        for kind, value in (("symbol", symbol), ("suite", suite), ("version", version)):
            if value is not None:
                check_name(kind, value, where=self.uri, error=StoreError)

    def _prefix(self, symbol: str, suite: str, version: str) -> str:
        # gc also removes hidden staging leftovers (``.incoming-…``): one leading dot may stay.
        self._names(symbol, suite, version.removeprefix("."))
        return f"{symbol}/{suite}/{version}/"

    def _channel_key(self, symbol: str, suite: str, channel: str) -> str:
        self._names(symbol, suite)
        _check_channel_name(channel)
        return f"{symbol}/{suite}/{CHANNELS_DIR}/{channel}.json"

    def _catalog(self, symbol: str | None = None) -> Catalog:
        if symbol is not None:
            self._names(symbol)
        return Catalog.parse(self._list(f"{symbol}/" if symbol else ""))

    def manifest(self, symbol: str, suite: str, version: str) -> dict[str, Any] | None:
        """The manifest of a complete version, or None if there is no such complete version."""
        return self._manifest(symbol, suite, version)

    def _manifest(self, symbol: str, suite: str, version: str) -> dict[str, Any] | None:
        found = self._get(self._prefix(symbol, suite, version) + MANIFEST)
        if found is None:
            return None
        where = f"{self.uri}: {symbol}/{suite}/{version}/{MANIFEST}"
        try:
            manifest = json.loads(found[0])
        except ValueError as error:  # not JSON, not UTF-8, or an integer Python refuses
            raise StoreError(f"{where} is not valid JSON ({error})") from None
        except RecursionError:
            raise StoreError(f"{where} is nested too deeply to be a manifest") from None
        return check_manifest(manifest, where, error=StoreError)

    def _pointer(self, symbol: str, suite: str, channel: str) -> tuple[dict[str, Any], str] | None:
        key = self._channel_key(symbol, suite, channel)
        found = self._get(key)
        if found is None:
            return None
        return self._read_pointer(key, found[0]), found[1]

    def _read_pointer(self, key: str, body: bytes) -> dict[str, Any]:
        """A channel pointer's JSON, refused unless it names a version by a safe name."""
        where = f"{self.uri}: channel pointer {key}"
        fix = "fix: promote a version again to rewrite the pointer"
        try:
            pointer = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested absurdly deep
            raise StoreError(f"{where} is not a JSON object; {fix}") from None
        if not isinstance(pointer, dict) or "version" not in pointer:
            raise StoreError(f"{where} names no 'version'; {fix}")
        version = pointer["version"]
        check_name(
            "version",
            version,
            where=where,
            error=StoreError,
            fix=fix.removeprefix("fix: "),
        )
        return dict(pointer)

    def _resolve_suite(self, symbol: str, suite: str | None, catalog: Catalog) -> str:
        suites = catalog.suites(symbol)
        if suite is not None and suite in suites:
            return suite
        if suite is None and len(suites) == 1:
            return suites[0]
        if not suites:
            symbols = self._catalog().symbols()
            hint = f"symbols in this store: {', '.join(symbols)}" if symbols else "it is empty"
            raise StoreError(f"{self.uri}: no packages for symbol {symbol!r}; {hint}")
        if suite is None:
            raise StoreError(f"{symbol} has several suites ({', '.join(suites)}); pass --suite")
        raise StoreError(
            f"{self.uri}: no suite {suite!r} for {symbol}; suites: {', '.join(suites)}"
        )

    def _require_version(self, symbol: str, suite: str, version: str, catalog: Catalog) -> None:
        known = catalog.versions(symbol, suite)
        if version not in known:
            raise StoreError(
                f"{self.uri}: no complete version {version!r} of {symbol}/{suite}; newest first: "
                + (", ".join(reversed(known[-3:])) if known else "none published")
            )

    def resolve(
        self, symbol: str, *, suite: str | None = None, channel: str = DEFAULT_CHANNEL
    ) -> tuple[str, str]:
        """``(suite, version)`` that ``channel`` points at for ``symbol``."""
        suite = self._resolve_suite(symbol, suite, self._catalog(symbol))
        pointer = self._pointer(symbol, suite, channel)
        if pointer is None:
            raise StoreError(
                f"{symbol}/{suite}: channel {channel!r} points nowhere yet; "
                f"run `quantrain models promote {symbol} VERSION --channel {channel}`"
            )
        return suite, str(pointer[0]["version"])

    def channels(self, symbol: str, suite: str) -> dict[str, str]:
        """``{channel: version}`` for one symbol's suite."""
        catalog = self._catalog(symbol)
        return self._channel_versions(catalog, symbol, suite)

    def _channel_versions(self, catalog: Catalog, symbol: str, suite: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for channel, key in catalog.channel_keys.get((symbol, suite), {}).items():
            found = self._get(key)
            if found is not None:
                out[channel] = self._read_pointer(key, found[0])["version"]
        return out

    # -- the contract -----------------------------------------------------------------------
    def push(self, package_dir: Path) -> VersionInfo:
        """Publish a verified package; an existing version is refused and left as it was."""
        manifest = verify_package(package_dir)
        symbol, suite, version = manifest["symbol"], manifest["suite"], manifest["version"]
        prefix = self._prefix(symbol, suite, version)
        if self._get(prefix + MANIFEST) is not None:
            raise StoreError(
                f"{self.uri}: {symbol}/{suite}/{version} exists; versions are immutable"
            )
        self._put_version(Path(package_dir), prefix)
        log.info("pushed %s/%s/%s to %s", symbol, suite, version, self.uri)
        return self._info(symbol, suite, version, manifest, {})

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
        """Download one version to ``to`` (the package directory itself), verified before it
        appears there; on any failure ``to`` is left exactly as it was."""
        if channel and version:
            raise StoreError("pass either a channel or a version, not both")
        if version is None:
            suite, version = self.resolve(symbol, suite=suite, channel=channel or DEFAULT_CHANNEL)
        else:
            catalog = self._catalog(symbol)
            suite = self._resolve_suite(symbol, suite, catalog)
            self._require_version(symbol, suite, version, catalog)
        target = Path(to)
        if _already_there(target, version, force):
            return target
        manifest = self._manifest(symbol, suite, version)
        if manifest is None:
            raise StoreError(f"{self.uri}: {symbol}/{suite}/{version} vanished while pulling")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".pulling-{target.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            self._fetch_version(self._prefix(symbol, suite, version), manifest, staging)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            self._raise_if_damaged(staging, f"{symbol}/{suite}/{version}", target)
            _swap_into(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def versions(self, symbol: str | None = None) -> list[VersionInfo]:
        """Every complete version (optionally of one symbol), oldest first per suite."""
        catalog = self._catalog(symbol)
        wanted = [
            (sym, suite, version)
            for (sym, suite), names in sorted(catalog.complete.items())
            if not symbol or sym == symbol
            for version in sorted(names)
        ]
        manifests = [m or {} for m in self._manifests(wanted)]
        channels = {
            (sym, suite): self._channel_versions(catalog, sym, suite) for sym, suite, _ in wanted
        }
        return [
            self._info(sym, suite, version, manifest, channels[(sym, suite)])
            for (sym, suite, version), manifest in zip(wanted, manifests, strict=True)
        ]

    def newest_manifests(self, suite: str, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The manifest of each symbol's newest complete version of ``suite`` (symbols with
        none are left out): one listing, then one read per symbol."""
        catalog = self._catalog()
        newest = [
            (sym, suite, versions[-1])  # version names start with their UTC creation time
            for sym in dict.fromkeys(symbols)
            if (versions := catalog.versions(sym, suite))
        ]
        return {
            key[0]: manifest
            for key, manifest in zip(newest, self._manifests(newest), strict=True)
            if manifest
        }

    def _manifests(self, keys: list[tuple[str, str, str]]) -> list[dict[str, Any] | None]:
        """The manifests of ``(symbol, suite, version)`` keys, read concurrently, in order; one
        that cannot be read is None (and logged): verify, pull and promote refuse it by name."""

        def read(key: tuple[str, str, str]) -> dict[str, Any] | None:
            try:
                return self._manifest(*key)
            except StoreError as error:
                log.warning("%s", error)
                return None

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(read, keys))

    def verify(self, symbol: str | None = None) -> list[VersionCheck]:
        """Re-check every complete version's stored bytes against its manifest; a version
        directory without a manifest (deleted, or a push still running) fails too."""
        checks: list[VersionCheck] = []
        for sym, suite, name in sorted(self._catalog(symbol).incomplete):
            if not name.startswith("."):  # staging copies are gc's, not verify's
                checks.append(
                    VersionCheck(
                        VersionInfo(sym, suite, name, created_at="?"),
                        f"{self.uri}: {sym}/{suite}/{name} has files but no {MANIFEST} "
                        "(deleted, or a push still running); fix: push the package again, or "
                        "if no push is running remove it with `quantrain models gc "
                        "--stale-after 0s`",
                    )
                )
        for info in self.versions(symbol):
            try:
                self._check_version(info.symbol, info.suite, info.version)
                checks.append(VersionCheck(info, None))
            except (PackageError, StoreError) as error:
                checks.append(VersionCheck(info, str(error)))
        return checks

    def _check_version(self, symbol: str, suite: str, version: str) -> None:
        """Raise if the stored version does not match its manifest (default: download it)."""
        manifest = self._manifest(symbol, suite, version)
        if manifest is None:
            raise StoreError(f"{self.uri}: {symbol}/{suite}/{version} has no manifest")
        with tempfile.TemporaryDirectory(prefix="quantrain-verify-") as tmp:
            self._fetch_version(self._prefix(symbol, suite, version), manifest, Path(tmp))
            (Path(tmp) / MANIFEST).write_text(json.dumps(manifest))
            self._raise_if_damaged(Path(tmp), f"{symbol}/{suite}/{version}")

    def _raise_if_damaged(self, copy: Path, name: str, target: Path | None = None) -> None:
        """Verify a downloaded copy; the error names the store, the version and each file."""
        _, problems = package_problems(copy)
        if problems:
            untouched = f"; nothing was written to {target}" if target else ""
            raise StoreError(
                f"{self.uri}: the stored copy of {name} is damaged{untouched}:\n  "
                + "\n  ".join(problems)
                + "\n  fix: promote or pull another version, or push this one again from "
                "its source package"
            )

    def promote(
        self,
        symbol: str,
        version: str,
        *,
        suite: str | None = None,
        channel: str = DEFAULT_CHANNEL,
        if_better: str | None = None,
        require: Mapping[str, float] | None = None,
    ) -> ChannelPointer:
        """Point ``channel`` at a complete, verified version.

        The write is conditional on the pointer still being what we read, so a concurrent
        promoter makes this call fail with ``StoreConflictError`` naming the winner. With
        ``if_better``, the version must beat the incumbent on that out-of-sample metric; with
        ``require`` (``{metric: bound}``), it must meet every bound on its own.
        """
        _check_channel_name(channel)
        catalog = self._catalog(symbol)
        suite = self._resolve_suite(symbol, suite, catalog)
        if version == LATEST and version not in catalog.versions(symbol, suite):
            version = self._newest(symbol, suite, catalog)
        self._require_version(symbol, suite, version, catalog)
        self._check_version(symbol, suite, version)
        key = self._channel_key(symbol, suite, channel)
        current = self._pointer(symbol, suite, channel)
        previous = str(current[0]["version"]) if current else None
        comparison: MetricComparison | None = None
        if require:
            missed = unmet_requirements(self._manifest(symbol, suite, version) or {}, require)
            if missed:
                raise PromotionRefused(
                    f"{symbol}/{suite}: {version} not promoted to {channel}: " + "; ".join(missed)
                )
        if if_better and previous != version:
            candidate = self._manifest(symbol, suite, version) or {}
            incumbent = self._manifest(symbol, suite, previous) if previous else None
            comparison = compare(if_better, candidate, incumbent)
            if not comparison.better:
                raise PromotionRefused(
                    f"{symbol}/{suite}: {version} not promoted to {channel}: "
                    f"{comparison.describe()}"
                )
        pointer = ChannelPointer(
            symbol=symbol,
            suite=suite,
            channel=channel,
            version=version,
            previous=previous,
            promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
            promoted_by=_who(),
            comparison=comparison.as_dict() if comparison else None,
        )
        if previous == version:
            return pointer
        try:
            self._put_pointer(key, pointer.to_json(), current[1] if current else None)
        except PointerConflict:
            raise StoreConflictError(self._lost_race(symbol, suite, channel, version)) from None
        return pointer

    def _lost_race(self, symbol: str, suite: str, channel: str, version: str) -> str:
        winner = self._pointer(symbol, suite, channel)
        now = (
            f"{winner[0]['version']} (promoted {winner[0].get('promoted_at', '?')} by "
            f"{winner[0].get('promoted_by') or 'unknown'})"
            if winner
            else "nothing (it was deleted)"
        )
        return (
            f"{symbol}/{suite}: another promoter moved {channel!r} while this one ran, so "
            f"{version} was NOT promoted; {channel} now points at {now}. "
            "Check that version, then promote again if you still want yours."
        )

    def gc(
        self,
        keep: int,
        *,
        symbol: str | None = None,
        dry_run: bool = False,
        stale_after: timedelta | str | None = None,
        now: datetime | None = None,
    ) -> list[GcItem]:
        """Delete all but the newest ``keep`` versions per symbol and suite, never one a
        channel points at, plus what killed pushes left (incomplete versions, staging copies,
        unfinished multipart uploads) once older than ``stale_after`` (default 24h): younger
        ones may belong to a push still running."""
        if keep < 1:
            raise StoreError(f"gc --keep must be at least 1, got {keep}")
        cutoff, age = _stale_cutoff(stale_after, now)
        catalog = self._catalog(symbol)
        items: list[GcItem] = []
        for (sym, suite), names in sorted(catalog.complete.items()):
            pinned = set(self._channel_versions(catalog, sym, suite).values())
            for version in sorted(names)[:-keep]:
                if version not in pinned:
                    items.append(GcItem(sym, suite, version, f"older than the newest {keep}"))
        for (sym, suite, name), modified in sorted(catalog.incomplete.items()):
            if modified < cutoff:
                items.append(GcItem(sym, suite, name, f"incomplete upload older than {age}"))
        uploads = self._stale_uploads(symbol, cutoff)
        reason = f"unfinished multipart upload older than {age}"
        stale = [GcItem(*_package_parts(u.key), f"{reason}: {u.key}") for u in uploads]
        if dry_run:
            return items + stale
        done: list[GcItem] = []
        for item in items:
            # Re-read the channels right before deleting: a promotion may have landed since.
            if item.version in self.channels(item.symbol, item.suite).values():
                log.warning("gc: %s/%s/%s was just promoted; kept", *astuple(item)[:3])
                continue
            self._delete_version(self._prefix(item.symbol, item.suite, item.version))
            done.append(item)
        for upload, item in zip(uploads, stale, strict=True):
            self._abort_upload(upload)
            done.append(item)
        return done

    def _stale_uploads(self, symbol: str | None, cutoff: datetime) -> list[UnfinishedUpload]:
        """Unfinished multipart uploads begun before ``cutoff`` under package keys."""
        return [
            upload
            for upload in self._unfinished_uploads(f"{symbol}/" if symbol else "")
            if upload.started < cutoff
            and upload.key.count("/") >= 3
            and _listable(*_package_parts(upload.key))
        ]

    # -- run records (``runs/<run_id>.json``, see store/runs.py) ----------------------------
    def record_run(self, record: Mapping[str, Any]) -> str:
        """Store one run's record, created once and never overwritten; returns where it went.

        The write is the channels' conditional create (local: temp file, then a rename under a
        lock; S3: ``If-None-Match: *``), so a reader never sees half a record."""
        run_id = str(record.get("run_id", ""))
        key = run_key(run_id, self.uri)
        try:
            self._put_pointer(key, encode(dict(record)), None)
        except PointerConflict:
            raise StoreConflictError(f"{self.uri}: run {run_id} is already recorded") from None
        log.info("recorded run %s in %s", run_id, self.uri)
        return f"{self.uri.rstrip('/')}/{key}"

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's record (``latest``: the newest); a clear ``StoreError`` naming the newest
        runs when it is absent."""
        if run_id == LATEST:
            recorded = sorted(self._run_ids())
            if not recorded:
                raise StoreError(f"{self.uri}: this store has no run records yet")
            run_id = recorded[-1]
        key = run_key(run_id, self.uri)
        found = self._get(key)
        if found is None:
            newest = sorted(self._run_ids(), reverse=True)[:3]
            hint = f"newest: {', '.join(newest)}" if newest else "this store has no run records"
            raise StoreError(f"{self.uri}: no run {run_id!r}; {hint}")
        return decode(found[0], f"{self.uri}: {key}")

    def runs(self, job: str | None = None) -> list[RunInfo]:
        """Every readable run record (optionally of one job), newest first; an unreadable one
        is logged and left out, so one bad record does not hide the others."""

        def read(run_id: str) -> RunInfo | None:
            try:
                return RunInfo.of(self.run(run_id))
            except StoreError as error:
                log.warning("%s", error)
                return None

        with ThreadPoolExecutor(max_workers=8) as pool:
            found = [i for i in pool.map(read, self._run_ids()) if i is not None]
        return sorted(
            (i for i in found if job is None or i.job == job),
            key=lambda i: i.run_id,
            reverse=True,
        )

    def _newest(self, symbol: str, suite: str, catalog: Catalog) -> str:
        """``latest``: the newest complete version of ``symbol``/``suite``."""
        known = catalog.versions(symbol, suite)
        if not known:
            raise StoreError(f"{self.uri}: {symbol}/{suite} has no complete version yet")
        return known[-1]

    def _run_ids(self) -> list[str]:
        keys = (run_id_of(obj.key) for obj in self._list(f"{RUNS_DIR}/"))
        return [run_id for run_id in keys if run_id is not None]

    def _info(
        self,
        symbol: str,
        suite: str,
        version: str,
        manifest: dict[str, Any],
        channels: dict[str, str],
    ) -> VersionInfo:
        return VersionInfo(
            symbol=symbol,
            suite=suite,
            version=version,
            created_at=manifest.get("created_at", "?"),
            channels=tuple(c for c, v in sorted(channels.items()) if v == version),
            metrics=manifest.get("summary_metrics", {}),
        )


def download_path(into: Path, rel: str) -> Path:
    """Where a manifest's file lands in a download: never outside ``into``. Manifests are
    checked when read; this is the last guard before the write."""
    return inside(into, into / rel, error=StoreError)


def _already_there(target: Path, version: str, force: bool) -> bool:
    """True if ``target`` already holds this verified version; refuse other content."""
    if not target.exists():
        return False
    if not force:
        try:
            if read_manifest(target).get("version") == version:
                verify_package(target)
                return True
        except PackageError:
            pass
        raise StoreError(f"{target} exists and holds something else; pass --force to replace it")
    return False


def _swap_into(staging: Path, target: Path) -> None:
    """Move a verified ``staging`` directory to ``target``, replacing what was there."""
    if target.exists():
        retired = target.parent / f".retired-{target.name}-{uuid.uuid4().hex[:8]}"
        os.rename(target, retired)
        os.rename(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, target)
