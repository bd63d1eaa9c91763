"""Run records: one JSON object per job run, kept in the model store beside the packages.

A run's summary used to be a CSV in the working directory, which ``ray job submit`` throws
away. The record goes where the packages go, under ``runs/<run_id>.json``: two path parts,
where every package key has at least four (``<symbol>/<suite>/<version>/<file>``), so a store
listing never mistakes one for the other and verify / gc never touch records.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from quantrain.errors import StoreError
from quantrain.names import is_safe_name

#: Where run records live in a store (relative to its root).
RUNS_DIR = "runs"
#: Bumped when a record's shape changes incompatibly; readers refuse newer formats.
RECORD_FORMAT = 1
_SUFFIX = ".json"


def new_run_id(now: datetime | None = None) -> str:
    """``20260101T120000Z-1a2b3c4d``: sorts by start time, unique by the random tail."""
    return f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def run_key(run_id: str, where: str) -> str:
    """The store key of a run record; an id that could not be one file name is refused."""
    if not is_safe_name(run_id) or run_id.endswith(_SUFFIX):
        raise StoreError(
            f"{where}: {run_id!r} is not a run id (they look like 20260101T120000Z-1a2b3c4d); "
            "fix: copy one from `quantrain runs list`"
        )
    return f"{RUNS_DIR}/{run_id}{_SUFFIX}"


def run_id_of(key: str) -> str | None:
    """The run id a listed key holds, or None when the key is no run record (a package file
    of a symbol that happens to be called ``runs``, a temp file, a lock)."""
    parts = key.split("/")
    if len(parts) != 2 or parts[0] != RUNS_DIR or not parts[1].endswith(_SUFFIX):
        return None
    run_id = parts[1].removesuffix(_SUFFIX)
    return run_id if is_safe_name(run_id) else None


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as null: strict JSON every reader parses."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(jsonable(record), indent=2, sort_keys=True, allow_nan=False).encode()


def decode(body: bytes, where: str) -> dict[str, Any]:
    """A stored record, refused unless it is a JSON object in a format this version reads."""
    try:
        record = json.loads(body)
    except (ValueError, RecursionError):
        raise StoreError(f"{where} is not valid JSON; it was not written by quantrain") from None
    if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
        raise StoreError(f"{where} is not a run record (no run_id)")
    version = record.get("format", 0)
    if not isinstance(version, int) or version > RECORD_FORMAT:
        raise StoreError(
            f"{where} is run-record format {version!r}; this quantrain reads up to "
            f"{RECORD_FORMAT}; fix: upgrade quantrain"
        )
    return record


@dataclass(frozen=True)
class RunInfo:
    """What ``runs list`` shows of one record, and which packages the run made."""

    run_id: str
    job: str
    kind: str
    started_at: str
    seconds: float | None
    ok: int
    failed: int
    store: str
    packages: tuple[tuple[str, str, str], ...]

    @classmethod
    def of(cls, record: dict[str, Any]) -> RunInfo:
        symbols = [s for s in record.get("symbols") or [] if isinstance(s, dict)]
        ok = [s for s in symbols if s.get("status") == "ok"]
        seconds = record.get("seconds")
        return cls(
            run_id=str(record["run_id"]),
            job=str(record.get("job", "?")),
            kind=str(record.get("kind", "?")),
            started_at=str(record.get("started_at", "?")),
            seconds=float(seconds) if isinstance(seconds, int | float) else None,
            ok=len(ok),
            failed=len(symbols) - len(ok),
            store=str(record.get("store", "")),
            packages=tuple(
                (str(s["symbol"]), str(s["suite"]), str(s["version"]))
                for s in ok
                if s.get("version") and s.get("suite")
            ),
        )
