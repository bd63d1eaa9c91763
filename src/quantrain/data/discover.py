"""Discovery: which symbol and timeframe each data file holds, from ``<SYMBOL>_<timeframe>.<ext>``.

Symbols become safe keys that keep the full pair (``BTC/EUR`` and ``BTC/USDT`` never collide),
because model paths and store prefixes are built from them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quantrain.data.readers import SUPPORTED_EXTENSIONS, local_path, split_extension
from quantrain.data.validate import format_timeframe, parse_timeframe
from quantrain.errors import DataError

logger = logging.getLogger(__name__)

_SAFE_KEY = re.compile(r"^[A-Z0-9][A-Z0-9.-]*$")
_SEPARATORS = re.compile(r"[/:_\s]+")
_NAMING = (
    "<SYMBOL>_<timeframe>.<ext>, e.g. ETH-BTC_5m.parquet or BTC_USDT_1h.csv.gz; "
    f"ext one of {', '.join(SUPPORTED_EXTENSIONS)}"
)
_LISTED = 10


@dataclass(frozen=True)
class DataSource:
    """One file holding one symbol at one timeframe (``""`` when the name does not say)."""

    symbol: str
    timeframe: str
    path: Path


def symbol_key(raw_symbol: str) -> str:
    """Safe key for a pair: ``ETH/USDT:USDT`` -> ``ETH-USDT-USDT``; refuse what cannot be a key."""
    key = _SEPARATORS.sub("-", str(raw_symbol).strip().upper())
    key = re.sub(r"-{2,}", "-", key).strip("-")
    if not _SAFE_KEY.match(key):
        raise DataError(
            f"symbol {raw_symbol!r} cannot be made a safe key (got {key!r})\n"
            "  fix: use letters, digits, '.', '-', '/', ':' or '_' (e.g. ETH/USDT or ETH-BTC)"
        )
    return key


def _from_name(path: Path) -> DataSource | None:
    """``ETH-BTC_5m.parquet`` -> (ETH-BTC, 5m); None if the name does not follow the pattern."""
    parts = split_extension(path.name)
    if parts is None or "_" not in parts[0]:
        return None
    raw_symbol, raw_timeframe = parts[0].rsplit("_", 1)
    try:
        timeframe = format_timeframe(parse_timeframe(raw_timeframe))
        symbol = symbol_key(raw_symbol)
    except DataError:
        return None
    return DataSource(symbol, timeframe, path)


def _single_file(path: Path, source: str) -> DataSource:
    if split_extension(path.name) is None:
        raise DataError(
            f"{source}: unsupported file type\n  fix: use one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    named = _from_name(path)
    if named is not None:
        return named
    stem = split_extension(path.name)
    assert stem is not None
    return DataSource(symbol_key(stem[0]), "", path)


def _directory(path: Path, source: str) -> list[DataSource]:
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    found: list[DataSource] = []
    for entry in entries:
        if not entry.is_file():
            continue
        named = _from_name(entry)
        if named is not None:
            found.append(named)
        elif split_extension(entry.name) is not None:
            logger.warning("%s: ignored, the name does not follow %s", entry, _NAMING)
    if not found:
        names = [p.name for p in entries]
        listed = ", ".join(names[:_LISTED]) or "nothing"
        if len(names) > _LISTED:
            listed += f" (and {len(names) - _LISTED} more)"
        raise DataError(
            f"{source}: no data files found\n  found: {listed}\n  fix: name files {_NAMING}"
        )
    return found


def _check_unique(sources: list[DataSource], source: str) -> None:
    seen: dict[tuple[str, str], Path] = {}
    for item in sources:
        key = (item.symbol, item.timeframe)
        if key in seen:
            raise DataError(
                f"{source}: two files hold {item.symbol} {item.timeframe}: "
                f"{seen[key].name} and {item.path.name}\n"
                "  fix: keep one file per symbol and timeframe (move or delete the other)"
            )
        seen[key] = item.path


def discover(
    path: str | os.PathLike[str], symbols: Sequence[str] | None = None
) -> list[DataSource]:
    """The data sources in a file or directory, optionally only ``symbols``, sorted by symbol."""
    source = os.fspath(path)
    local = local_path(path)
    if local.is_dir():
        found = _directory(local, source)
    elif local.is_file():
        found = [_single_file(local, source)]
    else:
        raise DataError(f"{source}: no such file or directory\n  fix: check the data path")
    _check_unique(found, source)
    if symbols is not None:
        wanted = {symbol_key(s) for s in symbols}
        available = sorted({item.symbol for item in found})
        unknown = sorted(wanted - set(available))
        if unknown:
            raise DataError(
                f"{source}: no data for {', '.join(unknown)}\n"
                f"  available: {', '.join(available)}\n"
                "  fix: request available symbols, or add files named " + _NAMING
            )
        found = [item for item in found if item.symbol in wanted]
    return sorted(found, key=lambda item: (item.symbol, _step_ns(item.timeframe), item.path.name))


def _step_ns(timeframe: str) -> int:
    return int(parse_timeframe(timeframe).value) if timeframe else 0
