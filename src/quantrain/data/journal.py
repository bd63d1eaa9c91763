"""Trade journals in: nested JSON trade records → one flat, typed row per trade.

A trading bot's journal holds one record per closed (paper or live) trade. Records are nested
objects; any key may be missing, ``null`` or of the wrong type, and reading never fails on that
(no ``record["market"]["regime"]`` KeyErrors): the value becomes NaN and is counted, per field,
in ``Journal.fields``. Only input that cannot be a journal at all (not JSON, a record that is not
an object, no records) raises a ``DataError`` naming the file, the line or record, and the fix.

One record (``outcome`` and ``closed_at`` are filled in when the trade closes; everything else is
known at entry, and only such fields may be model inputs: see ``POST_ENTRY_FIELDS``)::

    {"id": "ETH-BTC-000123", "asset": "ETH-BTC",
     "opened_at": "2018-01-12T03:05:00Z", "closed_at": "2018-01-12T06:40:00Z",
     "signal": {"direction": "long", "strength": 0.62, "sources": ["ema_cross", "rsi_reversal"]},
     "market": {"regime": "trending", "volatility": 0.0121, "funding": null,
                "atr_pct": 0.0093, "trend_strength": 0.41},
     "session": {"utcHour": 3, "weekday": 4},
     "outcome": {"pnl": 0.0031, "r_multiple": 1.2, "max_adverse_excursion": 0.004,
                 "max_favourable_excursion": 0.009, "tp_level": 2, "bars_held": 43}}

Flattening rules (``flatten_record``):

* nested objects join their keys with ``.``: ``market.regime``;
* a list becomes ``<name>_count`` and, when every item is a number, also ``<name>_mean``
  (``signal.sources`` → ``signal.sources_count``);
* booleans become 0/1, numbers stay numbers, strings stay strings;
* a missing key or an explicit ``null`` is NaN.

Typing (``read_journal``): a field whose values are mostly numbers is numeric, and a string in
it (``"abc"``) is NaN and counted ``invalid`` (numeric strings such as ``"0.5"`` are accepted).
``signal.direction`` and ``market.regime`` are categorical with fixed vocabularies
(``DIRECTION_CODES``, ``REGIME_CODES``), matched case-insensitively; a value outside the
vocabulary is NaN and counted invalid. ``session.utcHour`` (0..23), ``session.weekday`` (0..6)
and ``outcome.tp_level`` (0..3) must be integers in range.

Timestamps (``opened_at``, ``closed_at``) are ISO-8601 strings (no zone means UTC) or epoch
seconds / milliseconds (by magnitude), read as UTC. A record without a usable ``opened_at``
cannot be ordered: it is dropped, and the drop is logged and counted (``Journal.dropped``,
``Journal.first_dropped`` and the ``opened_at`` field report). A missing ``asset`` is
``"UNKNOWN"``; assets are normalised with ``symbol_key`` (``eth/btc`` → ``ETH-BTC``).

Layouts: a JSON array of records, a JSON object with a ``"trades"`` (or ``"records"``) list, or
JSON Lines (``.jsonl``/``.ndjson``; a ``.json`` file that is really JSON Lines is read as such).
Paths may be local, ``file://`` or ``s3://bucket/key`` (downloaded to a temporary file).

``encode_features`` turns the flat frame into the float32 model matrix with the same fixed
vocabularies at training and inference time; ``journal_targets`` derives the three heads.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, TypeGuard

import numpy as np
import pandas as pd

from quantrain.data.discover import symbol_key
from quantrain.data.readers import existing_file, local_path
from quantrain.data.remote import downloaded, object_name
from quantrain.errors import ConfigError, DataError
from quantrain.runtime.cloud import is_s3

logger = logging.getLogger(__name__)

#: Journal file extensions (case-insensitive); the layout inside a ``.json`` file is detected.
JOURNAL_EXTENSIONS: Final = (".json", ".jsonl", ".ndjson")

#: Default model inputs, as flattened field names; all are known when the trade opens.
JOURNAL_FEATURES: Final[tuple[str, ...]] = (
    "signal.direction",
    "signal.strength",
    "signal.sources_count",
    "market.regime",
    "market.volatility",
    "market.funding",
    "market.atr_pct",
    "market.trend_strength",
    "session.utcHour",
    "session.weekday",
)

#: Fields known only after the trade opened: every field under these prefixes (its outcome,
#: exit or result object) ...
POST_ENTRY_PREFIXES: Final[tuple[str, ...]] = ("outcome.", "exit.", "result.")
#: ... and every field whose last part is one of these (case, ``_`` and a list's ``_count`` /
#: ``_mean`` suffix aside): a consequence of the trade. As model inputs they leak its result.
POST_ENTRY_FIELDS: Final[frozenset[str]] = frozenset(
    {
        # when and how it closed
        "closed_at", "close_time", "exit", "exit_at", "exit_time", "exit_price", "close_price",
        "exit_reason", "close_reason", "duration", "bars_held", "holding_time", "hold_time",
        # what it made
        "outcome", "result", "pnl", "pnl_pct", "realized_pnl", "realised_pnl", "profit",
        "net_return", "gross_return", "r_multiple", "realized_r", "realised_r", "win", "won",
        # how far it went
        "mfe", "mae", "max_favourable_excursion", "max_favorable_excursion",
        "max_adverse_excursion", "tp_level", "tp_hit", "sl_hit", "stopped_out",
    }
)  # fmt: skip

#: ``signal.direction`` → model input. Fixed, so inference encodes exactly as training did.
DIRECTION_CODES: Final[Mapping[str, int]] = {
    "long": 1,
    "buy": 1,
    "short": -1,
    "sell": -1,
    "flat": 0,
    "none": 0,
    "neutral": 0,
}

#: ``market.regime`` → model input: 0 ranging, 1 trending (either way), 2 volatile.
REGIME_CODES: Final[Mapping[str, int]] = {
    "ranging": 0,
    "range": 0,
    "sideways": 0,
    "trending": 1,
    "trending_up": 1,
    "trending_down": 1,
    "volatile": 2,
    "high_volatility": 2,
}

#: Categorical fields and their vocabularies; every other feature is numeric.
CATEGORICAL_CODES: Final[Mapping[str, Mapping[str, int]]] = {
    "signal.direction": DIRECTION_CODES,
    "market.regime": REGIME_CODES,
}

# Integer fields with a fixed range: anything else in them is invalid.
_INTEGER_RANGES: Final[Mapping[str, tuple[int, int]]] = {
    "session.utcHour": (0, 23),
    "session.weekday": (0, 6),
    "outcome.tp_level": (0, 3),
}

# Top-level keys with their own handling (not flattened features).
_META_COLUMNS: Final = ("id", "asset", "opened_at", "closed_at")
_TIME_COLUMNS: Final = ("opened_at", "closed_at")
UNKNOWN_ASSET: Final = "UNKNOWN"


@dataclass(frozen=True)
class JournalTarget:
    """How a journal labels one catalogue target (``quantrain.labels.targets`` says what the
    target is): the flattened outcome field it is read from, and how."""

    name: str
    field: str  # the flattened outcome field it is computed from
    description: str
    levels: int | None = None  # integer targets: values 0 .. levels-1
    clip: tuple[float, float] | None = None  # regression targets are clipped to this range


JOURNAL_TARGETS: Final[dict[str, JournalTarget]] = {
    "signal_quality": JournalTarget(
        "signal_quality",
        "outcome.pnl",
        "was the trade profitable: 1 (WIN) if outcome.pnl > 0, else 0 (LOSS)",
    ),
    "position_size": JournalTarget(
        "position_size",
        "outcome.r_multiple",
        "outcome.r_multiple clipped to [-2, 3]: how large a position the signal deserved",
        clip=(-2.0, 3.0),
    ),
    "tp_level": JournalTarget(
        "tp_level",
        "outcome.tp_level",
        "highest take-profit level reached, an integer 0..3",
        levels=4,
    ),
}

_LAYOUT_FIX: Final = (
    'write a JSON array of trade objects, an object {"trades": [...]}, '
    "or one trade object per line as .jsonl"
)


@dataclass(frozen=True)
class FieldReport:
    """How often one flattened field held a usable value, nothing, or something unusable."""

    name: str
    present: int
    missing: int  # key absent or null
    invalid: int  # wrong type, outside its vocabulary or range: read as NaN


@dataclass(frozen=True, eq=False)
class Journal:
    """A read journal: the flat frame, per-field completeness and what was dropped."""

    frame: pd.DataFrame  # one row per kept record, sorted by opened_at (stable)
    fields: list[FieldReport]  # one per frame column, in column order (kept records only)
    source: str
    records: int  # rows in ``frame``
    dropped: int = 0  # records without a usable opened_at
    first_dropped: str | None = None  # where the first one was, e.g. "line 17" or "record 5"

    def report(self, name: str) -> FieldReport:
        """The report of one field; ``KeyError`` listing the known fields if there is none."""
        for found in self.fields:
            if found.name == name:
                return found
        raise KeyError(f"no field {name!r}; fields: {[r.name for r in self.fields]}")

    def incomplete_fields(self) -> list[FieldReport]:
        """Fields with any missing or invalid value, most affected first."""
        bad = [r for r in self.fields if r.missing or r.invalid]
        return sorted(bad, key=lambda r: (-(r.missing + r.invalid), r.name))


# -- inputs known at entry ---------------------------------------------------------------------


def _leaf(name: str) -> str:
    """``trade.exitPrice`` → ``exitprice``: the last part of a name, compared loosely."""
    last = name.rsplit(".", 1)[-1].lower()
    for suffix in ("_count", "_mean"):
        last = last.removesuffix(suffix)
    return last.replace("_", "").replace("-", "")


_POST_ENTRY_LEAVES: Final = frozenset(_leaf(name) for name in POST_ENTRY_FIELDS)


def post_entry_fields(names: Iterable[str]) -> list[str]:
    """The names among ``names`` known only after the trade opened (``POST_ENTRY_*``)."""
    return [
        name
        for name in names
        if name.lower().startswith(POST_ENTRY_PREFIXES) or _leaf(name) in _POST_ENTRY_LEAVES
    ]


def check_known_at_entry(names: Iterable[str], where: str) -> None:
    """Refuse model inputs known only after the trade opened: they leak the trade's result
    into its own prediction (the heads' targets are computed from them)."""
    leaked = post_entry_fields(names)
    if not leaked:
        return
    verb, leaks = (
        ("is", "as a model input it leaks")
        if len(leaked) == 1
        else ("are", "as model inputs they leak")
    )
    raise ConfigError(
        f"{where}: {', '.join(leaked)} {verb} known only after the trade opened (its outcome, "
        f"exit or duration); {leaks} the result the heads predict\n"
        f"  fix: use fields known at entry, e.g. {', '.join(JOURNAL_FEATURES)}"
    )


# -- flattening --------------------------------------------------------------------------------


def _is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number (booleans are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flatten_into(out: dict[str, Any], prefix: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten_into(out, f"{prefix}.{key}" if prefix else str(key), item)
    elif isinstance(value, list | tuple):
        out[f"{prefix}_count"] = len(value)
        if value and all(_is_number(item) or isinstance(item, bool) for item in value):
            out[f"{prefix}_mean"] = float(np.mean([float(item) for item in value]))
    elif value is None:
        out[prefix] = math.nan
    elif isinstance(value, bool):
        out[prefix] = int(value)
    else:
        out[prefix] = value


def flatten_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """One nested trade record → ``{"market.regime": "trending", "signal.sources_count": 2, ...}``.

    Pure and total: see the module docstring for the rules. Typing and vocabularies are applied
    by ``read_journal`` (across records) and ``encode_features``, not here.
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"a trade record must be a mapping, got {type(record).__name__}")
    out: dict[str, Any] = {}
    _flatten_into(out, "", record)
    return out


# -- parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    """One record as found, with where it was found ("line 3", "record 2")."""

    where: str
    record: Mapping[str, Any]


def _type_name(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if _is_number(value) else type(value).__name__


def _not_object(source: str, where: str, value: object) -> DataError:
    return DataError(
        f"{source}: {where} is {_type_name(value)}, expected an object (one trade)\n"
        f"  fix: {_LAYOUT_FIX}"
    )


def _json_lines(text: str, source: str) -> list[_Raw]:
    raws: list[_Raw] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{source}: line {number}: not valid JSON: {exc.msg} (column {exc.colno})\n"
                "  fix: write one complete JSON object per line (JSON Lines)"
            ) from None
        if not isinstance(value, dict):
            raise _not_object(source, f"line {number}", value)
        raws.append(_Raw(f"line {number}", value))
    return raws


def _records_of(value: Any, source: str) -> list[_Raw]:
    """The records of a parsed JSON document (array, {"trades": [...]}, or one record)."""
    container = "record"
    if isinstance(value, dict):
        for key in ("trades", "records"):
            if isinstance(value.get(key), list):
                value, container = value[key], f"{key}"
                break
        else:
            if "opened_at" in value:  # a single trade
                return [_Raw("record 0", value)]
            raise DataError(
                f"{source}: a JSON object without a 'trades' or 'records' list "
                f"(keys: {sorted(value)[:8]})\n  fix: {_LAYOUT_FIX}"
            )
    if not isinstance(value, list):
        raise DataError(f"{source}: top level is {_type_name(value)}\n  fix: {_LAYOUT_FIX}")
    raws: list[_Raw] = []
    for index, item in enumerate(value):
        where = f"record {index}" if container == "record" else f"{container}[{index}]"
        if not isinstance(item, dict):
            raise _not_object(source, f"{where} (0-based)", item)
        raws.append(_Raw(where, item))
    return raws


def _parse_text(text: str, source: str, extension: str) -> list[_Raw]:
    if extension != ".json":
        return _json_lines(text, source)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file that is really JSON Lines fails with "Extra data" after its first line.
        first = next((line for line in text.split("\n") if line.strip()), "")
        try:
            looks_like_lines = exc.msg == "Extra data" and isinstance(json.loads(first), dict)
        except json.JSONDecodeError:
            looks_like_lines = False
        if looks_like_lines:
            logger.info("%s: not one JSON document; reading it as JSON Lines", source)
            return _json_lines(text, source)
        raise DataError(
            f"{source}: line {exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})\n"
            f"  fix: {_LAYOUT_FIX}"
        ) from None
    return _records_of(document, source)


def _extension(name: str) -> str | None:
    lower = name.lower()
    return next((ext for ext in JOURNAL_EXTENSIONS if lower.endswith(ext)), None)


def _unsupported(source: str) -> DataError:
    return DataError(
        f"{source}: unsupported journal file type\n"
        f"  fix: use one of {', '.join(JOURNAL_EXTENSIONS)} ({_LAYOUT_FIX})"
    )


def _read_text(path: Path, source: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source}: not UTF-8 text (byte {exc.start}): is it a JSON journal?\n"
            "  fix: save the journal as UTF-8 JSON"
        ) from None


def _load(path: str | os.PathLike[str]) -> tuple[list[_Raw], str]:
    source = os.fspath(path)
    if is_s3(source):
        extension = _extension(object_name(source))
        if extension is None:
            raise _unsupported(source)
        with downloaded(source, extension) as local:
            return _parse_text(_read_text(local, source), source, extension), source
    local = local_path(path)
    extension = _extension(local.name)
    if extension is None:
        raise _unsupported(source)
    existing_file(local, source, "a journal file")
    return _parse_text(_read_text(local, source), source, extension), source


# -- typing ------------------------------------------------------------------------------------


class _Absent:
    """A key the record does not have (distinct from an explicit null)."""


_ABSENT: Final = _Absent()


def _missing(value: object) -> bool:
    """Absent, null, or NaN (what ``flatten_record`` makes of null)."""
    return value is _ABSENT or value is None or (isinstance(value, float) and math.isnan(value))


def _epoch(number: float) -> pd.Timestamp | None:
    if not math.isfinite(number):
        return None
    magnitude = abs(number)
    unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us"
    return pd.Timestamp(number, unit=unit if magnitude < 1e17 else "ns", tz="UTC")


def _timestamp(value: object) -> pd.Timestamp | None:
    """ISO-8601 string (no zone = UTC) or epoch s/ms/µs/ns by magnitude → UTC; None if unusable."""
    try:
        if _is_number(value):
            return _epoch(float(value))
        if not isinstance(value, str) or not value.strip():
            return None
        text = value.strip()
        try:
            return _epoch(float(text))
        except ValueError:
            pass
        stamp = pd.Timestamp(text)
        if pd.isna(stamp):
            return None
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    except (ValueError, OverflowError, TypeError, pd.errors.OutOfBoundsDatetime):
        return None


def _normal_category(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def _as_number(value: object) -> float | None:
    """A finite float, or None for what cannot be one (numeric strings are accepted)."""
    if _is_number(value):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _typed(name: str, kind: str, value: object) -> Any:
    """One present value as its field's type, or None if it is invalid there."""
    vocabulary = CATEGORICAL_CODES.get(name)
    if vocabulary is not None:
        ok = isinstance(value, str) and _normal_category(value) in vocabulary
        return value if ok else None
    if kind == "string":
        return value if isinstance(value, str) else None
    number = _as_number(value)
    bounds = _INTEGER_RANGES.get(name)
    in_range = bounds is None or (bounds[0] <= (number or 0.0) <= bounds[1])
    if number is not None and bounds is not None and not (number.is_integer() and in_range):
        return None
    return number


def _column(name: str, values: list[Any]) -> tuple[list[Any], FieldReport]:
    """One field's values typed (NaN where missing or invalid), and its report.

    A field is numeric unless more of its values are strings than numbers; categorical fields
    keep their strings (encoded later, by ``encode_features``).
    """
    numbers = sum(1 for v in values if _is_number(v))
    strings = sum(1 for v in values if isinstance(v, str))
    kind = "number" if numbers >= strings else "string"
    out: list[Any] = []
    missing = invalid = 0
    for value in values:
        if _missing(value):
            missing += 1
            out.append(math.nan)
            continue
        typed = _typed(name, kind, value)
        if typed is None:
            invalid += 1
            out.append(math.nan)
        else:
            out.append(typed)
    return out, FieldReport(name, len(values) - missing - invalid, missing, invalid)


def _label(
    name: str, values: list[Any], check: Callable[[object], Any]
) -> tuple[list[Any], FieldReport]:
    """A meta column: ``check(value)`` gives the kept value or None (invalid)."""
    out: list[Any] = []
    missing = invalid = 0
    for value in values:
        if _missing(value):
            missing += 1
            out.append(None)
            continue
        kept = check(value)
        invalid += kept is None
        out.append(kept)
    return out, FieldReport(name, len(values) - missing - invalid, missing, invalid)


def _asset(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return symbol_key(value)
    except DataError:
        return None


def _record_id(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _shadowed(flat: list[dict[str, Any]], names: Iterable[str]) -> tuple[set[str], set[str]]:
    """Names that are not fields of their own, and those that conflict.

    A parent (``market`` beside ``market.regime``) is a record disagreeing on the field's shape:
    a null there is the whole object missing, a value is a conflict (logged). A list's base
    (``signal.sources`` beside ``signal.sources_count``) that is only ever null is that list
    missing.
    """
    names = set(names)
    parents: set[str] = set()
    for name in names:
        parts = name.split(".")
        parents.update(".".join(parts[:i]) for i in range(1, len(parts)))
    conflicts = {
        name for name in names & parents if any(not _missing(row.get(name)) for row in flat)
    }
    null_lists = {
        base
        for name in names
        if name.endswith("_count")
        and (base := name.removesuffix("_count")) in names
        and all(_missing(row.get(base)) for row in flat)
    }
    return (names & parents) | null_lists, conflicts


def _build(raws: list[_Raw], source: str) -> Journal:
    flat: list[dict[str, Any]] = []
    opened: list[pd.Timestamp] = []
    wheres: list[str] = []
    dropped: list[str] = []
    unusable_opened = 0
    for raw in raws:
        row = flatten_record(raw.record)
        value = row.get("opened_at", _ABSENT)
        stamp = _timestamp(value)
        if stamp is None:
            dropped.append(raw.where)
            unusable_opened += not _missing(value)
            continue
        flat.append(row)
        opened.append(stamp)
        wheres.append(raw.where)
    if dropped:
        logger.warning(
            "%s: dropped %d record(s) without a usable opened_at (first: %s); "
            "they cannot be ordered in time",
            source,
            len(dropped),
            dropped[0],
        )
    if not flat:
        what = "no trade records" if not raws else f"none of {len(raws)} records has an opened_at"
        raise DataError(
            f"{source}: {what}\n  fix: give every trade an 'opened_at' (ISO-8601 or epoch "
            f"seconds/ms); {_LAYOUT_FIX}"
        )

    names: dict[str, None] = {}
    for row in flat:
        names.update(dict.fromkeys(row))
    for required in (*JOURNAL_FEATURES, *(t.field for t in JOURNAL_TARGETS.values())):
        names.setdefault(required, None)
    shadowed, conflicts = _shadowed(flat, names)
    for name in sorted(conflicts):
        logger.warning(
            "%s: %s is a plain value in some records but an object in others; ignored there",
            source,
            name,
        )

    def values(name: str) -> list[Any]:
        return [row.get(name, _ABSENT) for row in flat]

    ids, id_report = _label("id", values("id"), _record_id)
    assets, asset_report = _label("asset", values("asset"), _asset)
    closed, closed_report = _label("closed_at", values("closed_at"), _timestamp)
    early = [i for i, stamp in enumerate(closed) if stamp is not None and stamp < opened[i]]
    for i in early:  # closed before it opened: a clock or unit mistake, not a time
        closed[i] = None
    closed_report = replace(
        closed_report,
        present=closed_report.present - len(early),
        invalid=closed_report.invalid + len(early),
    )
    repeated = len(ids) - len({found for found in ids if found is not None})
    repeated -= sum(found is None for found in ids)
    if repeated:
        logger.warning("%s: %d record(s) repeat an earlier id", source, repeated)
    columns: dict[str, Any] = {
        "id": [found or where for found, where in zip(ids, wheres, strict=True)],
        "asset": [found or UNKNOWN_ASSET for found in assets],
        "opened_at": pd.DatetimeIndex(opened).as_unit("ns"),
        "closed_at": pd.DatetimeIndex(closed, tz="UTC").as_unit("ns"),
    }
    reports = [
        id_report,
        asset_report,
        FieldReport("opened_at", len(flat), len(dropped) - unusable_opened, unusable_opened),
        closed_report,
    ]
    for name in names:
        if name in _META_COLUMNS or name in shadowed:
            continue
        columns[name], report = _column(name, values(name))
        reports.append(report)

    frame = pd.DataFrame(columns)
    frame = frame.iloc[np.argsort(frame["opened_at"].to_numpy(), kind="stable")]
    frame = frame.reset_index(drop=True)
    gaps = [r.name for r in reports if r.missing or r.invalid]
    logger.info(
        "%s: %d trade record(s), %d field(s); with gaps: %s",
        source,
        len(flat),
        len(reports),
        ", ".join(gaps) or "none",
    )
    return Journal(
        frame=frame,
        fields=reports,
        source=source,
        records=len(flat),
        dropped=len(dropped),
        first_dropped=dropped[0] if dropped else None,
    )


def read_journal(path: str | os.PathLike[str]) -> Journal:
    """Read a trade journal (local, ``file://`` or ``s3://``) into a flat, typed ``Journal``.

    Never fails on a missing or mistyped field (NaN, counted per field); raises ``DataError``
    naming the file, the line or record, and the fix when the file is not a journal.
    """
    raws, source = _load(path)
    return _build(raws, source)


# -- model inputs and targets ------------------------------------------------------------------


def _encode_category(values: pd.Series, vocabulary: Mapping[str, int]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values.to_numpy()):
        if isinstance(value, str):
            code = vocabulary.get(_normal_category(value))
            if code is not None:
                out[i] = code
    return out


def _numeric(values: pd.Series) -> np.ndarray:
    """Float64 copy; anything that is not a number (or numeric string, or bool) is NaN."""
    if values.dtype == bool:
        return values.to_numpy(dtype=np.float64)
    return np.array(pd.to_numeric(values, errors="coerce"), dtype=np.float64)


def encode_features(frame: pd.DataFrame, columns: Sequence[str] = JOURNAL_FEATURES) -> np.ndarray:
    """The float32 model matrix ``(len(frame), len(columns))``.

    Categorical fields use the module's fixed vocabularies (``CATEGORICAL_CODES``), so a bot
    encoding one live record (``pd.DataFrame([flatten_record(r)])``) gets what training got.
    Missing values, unknown categories, non-numbers and columns absent from ``frame`` are NaN
    (the tree models handle NaN natively).
    """
    matrix = np.full((len(frame), len(columns)), np.nan, dtype=np.float32)
    for j, name in enumerate(columns):
        if name not in frame.columns:
            logger.debug("encode_features: no column %r; it is NaN", name)
            continue
        vocabulary = CATEGORICAL_CODES.get(name)
        series = frame[name]
        values = _encode_category(series, vocabulary) if vocabulary else _numeric(series)
        values[~np.isfinite(values)] = np.nan
        matrix[:, j] = values
    return matrix


def journal_targets(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every ``JOURNAL_TARGETS`` head as a float64 array, NaN where its outcome is missing.

    ``signal_quality``: 1.0 if ``outcome.pnl > 0`` else 0.0; ``position_size``: the clipped
    R-multiple; ``tp_level``: 0..3 (anything else, e.g. 2.5 or 7, is NaN).
    """
    n = len(frame)

    def column(name: str) -> np.ndarray:
        if name not in frame.columns:
            return np.full(n, np.nan)
        values = _numeric(frame[name])
        values[~np.isfinite(values)] = np.nan
        return values

    targets: dict[str, np.ndarray] = {}
    for name, target in JOURNAL_TARGETS.items():
        values = column(target.field)
        if name == "signal_quality":
            out = np.where(np.isnan(values), np.nan, (values > 0).astype(np.float64))
        elif target.clip is not None:
            out = np.clip(values, *target.clip)
        else:
            assert target.levels is not None
            valid = (values == np.round(values)) & (values >= 0) & (values < target.levels)
            out = np.where(valid, values, np.nan)
        targets[name] = out.astype(np.float64)
    return targets
