"""Discovery: which symbol and timeframe each data file holds, from ``<SYMBOL>_<timeframe>.<ext>``.

Symbols become safe keys that keep the full pair (``BTC/EUR`` and ``BTC/USDT`` never collide),
because model paths and store prefixes are built from them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quantrain.data.readers import SUPPORTED_EXTENSIONS, local_path, split_extension
from quantrain.data.remote import list_prefix, object_exists, parse_data_uri, source_name
from quantrain.data.validate import format_timeframe, parse_timeframe
from quantrain.errors import DataError
from quantrain.names import symbol_key
from quantrain.runtime.cloud import is_s3, new_client

logger = logging.getLogger(__name__)

_NAMING = (
    "<SYMBOL>_<timeframe>.<ext>, e.g. ETH-BTC_5m.parquet or BTC_USDT_1h.csv.gz; "
    f"ext one of {', '.join(SUPPORTED_EXTENSIONS)}"
)
_LISTED = 10


@dataclass(frozen=True)
class DataSource:
    """One file holding one symbol at one timeframe (``""`` when the name does not say).

    ``path`` is a ``Path`` for a local file and the URI string for an ``s3://`` object.
    """

    symbol: str
    timeframe: str
    path: str | Path

    @property
    def name(self) -> str:
        """The file name (``ETH-BTC_5m.parquet``), local or in object storage."""
        return source_name(self.path)


def _from_name(path: str | Path, name: str) -> DataSource | None:
    """``ETH-BTC_5m.parquet`` -> (ETH-BTC, 5m); None if the name does not follow the pattern."""
    parts = split_extension(name)
    if parts is None or "_" not in parts[0]:
        return None
    raw_symbol, raw_timeframe = parts[0].rsplit("_", 1)
    try:
        timeframe = format_timeframe(parse_timeframe(raw_timeframe))
        symbol = symbol_key(raw_symbol)
    except DataError:
        return None
    return DataSource(symbol, timeframe, path)


def _single_file(path: str | Path, source: str) -> DataSource:
    name = source_name(path)
    stem = split_extension(name)
    if stem is None:
        raise DataError(
            f"{source}: unsupported file type\n  fix: use one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    named = _from_name(path, name)
    if named is not None:
        return named
    return DataSource(symbol_key(stem[0]), "", path)


def _collect(
    files: Sequence[tuple[str | Path, str]], names: Sequence[str], source: str
) -> list[DataSource]:
    """The data sources among ``files`` (path, name); ``names`` is everything listed, for errors."""
    found: list[DataSource] = []
    for path, name in files:
        named = _from_name(path, name)
        if named is not None:
            found.append(named)
        elif split_extension(name) is not None:
            logger.warning("%s: ignored, the name does not follow %s", path, _NAMING)
    if not found:
        listed = ", ".join(names[:_LISTED]) or "nothing"
        if len(names) > _LISTED:
            listed += f" (and {len(names) - _LISTED} more)"
        raise DataError(
            f"{source}: no data files found\n  found: {listed}\n  fix: name files {_NAMING}"
        )
    return found


def _directory(path: Path, source: str) -> list[DataSource]:
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    files: list[tuple[str | Path, str]] = [(p, p.name) for p in entries if p.is_file()]
    return _collect(files, [p.name for p in entries], source)


def _s3(uri: str) -> list[DataSource]:
    """An object (a single file) or the objects directly under a prefix (a directory)."""
    location = parse_data_uri(uri)
    client = new_client(location.addressing_style)
    if not location.is_prefix and object_exists(uri, client=client):
        return [_single_file(uri, uri)]
    listing = list_prefix(uri, client=client)
    files: list[tuple[str | Path, str]] = [
        (child, name) for child, name in listing.objects if not name.startswith(".")
    ]
    folders = [name for name in listing.folders if not name.startswith(".")]
    if not listing.objects and not listing.folders:
        prefix = location.key if location.is_prefix else location.key + "/"
        raise DataError(
            f"{uri}: no such object or prefix\n"
            f"  fix: check the data path (list it: aws s3 ls s3://{location.bucket}/{prefix})"
        )
    return _collect(files, sorted([name for _, name in files] + folders), uri)


def _check_unique(sources: list[DataSource], source: str) -> None:
    seen: dict[tuple[str, str], DataSource] = {}
    for item in sources:
        key = (item.symbol, item.timeframe)
        if key in seen:
            raise DataError(
                f"{source}: two files hold {item.symbol} {item.timeframe}: "
                f"{seen[key].name} and {item.name}\n"
                "  fix: keep one file per symbol and timeframe (move or delete the other)"
            )
        seen[key] = item


def one_timeframe_per_symbol(sources: Sequence[DataSource], source: str) -> None:
    """``DataError`` naming the files when a symbol comes at several timeframes: a training job
    makes one package per symbol, so it could not tell which one to train."""
    by_symbol: dict[str, list[DataSource]] = {}
    for item in sources:
        by_symbol.setdefault(item.symbol, []).append(item)
    mixed = {symbol: items for symbol, items in by_symbol.items() if len(items) > 1}
    if mixed:
        lines = "\n".join(
            f"  {symbol}: " + ", ".join(f"{i.name} ({i.timeframe or '?'})" for i in items)
            for symbol, items in sorted(mixed.items())
        )
        raise DataError(
            f"{source}: a symbol at more than one timeframe; a job trains one timeframe per "
            f"symbol:\n{lines}\n  fix: keep one timeframe per symbol in the data directory "
            "(move the others to a directory of their own)"
        )


def discover(
    path: str | os.PathLike[str], symbols: Sequence[str] | None = None
) -> list[DataSource]:
    """The data sources in a file or directory, optionally only ``symbols``, sorted by symbol.

    ``path`` may be an ``s3://bucket/prefix/`` URI (the objects directly under it, like a
    directory) or an ``s3://bucket/key.ext`` object (a single file).
    """
    source = os.fspath(path)
    if is_s3(source):
        found = _s3(source)
    else:
        local = local_path(path)
        if local.is_dir():
            found = _directory(local, source)
        elif local.is_file():
            found = [_single_file(local, source)]
        elif local.exists():
            raise DataError(
                f"{source}: not a regular file or directory (a FIFO, socket or device)\n"
                "  fix: pass a data file or a directory of them"
            )
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
    return sorted(found, key=lambda item: (item.symbol, _step_ns(item.timeframe), item.name))


def _step_ns(timeframe: str) -> int:
    return int(parse_timeframe(timeframe).value) if timeframe else 0
