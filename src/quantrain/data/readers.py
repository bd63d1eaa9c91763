"""Readers: one file in any supported format to a raw frame, then to a validated OHLCV frame.

A file is a local path, a ``file://`` URI or an ``s3://bucket/key`` object; an object is
downloaded to a temporary file (see ``quantrain.data.remote``) and read like a local one.

The format is chosen by extension, never sniffed from content, so a file named ``.csv`` that is
really parquet fails loudly. Parser failures become one-line ``DataError``s naming the file, so
the CLI never shows a traceback for bad input.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from quantrain.data.aliases import CANONICAL_COLUMNS
from quantrain.data.remote import downloaded, parse_data_uri
from quantrain.data.validate import LoadedOHLCV, validate_ohlcv
from quantrain.errors import DataError
from quantrain.runtime.cloud import is_s3

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".parquet",
    ".csv",
    ".csv.gz",
    ".json",
    ".jsonl",
    ".ndjson",
    ".feather",
)

# Errors a parser raises for bad content; anything else is a bug and keeps its traceback.
_PARSE_ERRORS = (ValueError, OSError, EOFError, zlib.error, pa.ArrowException)

_JSON_LAYOUT_FIX = (
    'write an array of records ([{"timestamp": ..., "open": ...}, ...]), '
    "pandas to_json(orient='records' or 'split'), or one record per line as .jsonl"
)
_FIXES = {
    ".parquet": "re-export the file; it may be truncated or not be parquet at all",
    ".feather": "re-export the file; it may be truncated or not be feather/Arrow IPC",
    ".csv": "re-export the file as comma-separated text with a header line",
    ".csv.gz": "re-export the file as gzip-compressed comma-separated text with a header line",
    ".json": _JSON_LAYOUT_FIX,
    ".jsonl": "write one JSON object per line (JSON Lines)",
    ".ndjson": "write one JSON object per line (JSON Lines)",
}


def split_extension(name: str) -> tuple[str, str] | None:
    """``("ETH-BTC_5m", ".csv.gz")`` for a supported file name, else None (case-insensitive)."""
    lower = name.lower()
    for extension in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(extension) and len(name) > len(extension):
            return name[: -len(extension)], extension
    return None


def local_path(path: str | os.PathLike[str]) -> Path:
    """A local path from a path or ``file://`` URI; other URI schemes are refused clearly.

    ``s3://`` URIs are not local: callers branch on ``is_s3`` first (never ``Path()`` one, it
    collapses ``//``), so reaching here with one is a bug, reported as such.
    """
    text = os.fspath(path)
    if is_s3(text):
        raise ValueError(f"{text}: an s3:// URI is not a local path; branch on is_s3() first")
    if text.startswith("file://"):
        return Path(text.removeprefix("file://")).expanduser()
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise DataError(
            f"{text}: {scheme}:// data sources are not supported\n"
            "  fix: pass a local path or an s3://BUCKET/KEY URI"
        )
    return Path(text).expanduser()


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _positional(frame: pd.DataFrame) -> pd.DataFrame:
    """Name the first six columns of header-less kline data (ccxt / Binance order)."""
    if frame.shape[1] < len(CANONICAL_COLUMNS):
        raise ValueError(
            f"rows have {frame.shape[1]} fields; header-less data needs at least 6 "
            "(timestamp, open, high, low, close, volume)"
        )
    names = [*CANONICAL_COLUMNS, *(f"extra_{i}" for i in range(6, frame.shape[1]))]
    logger.info("no header: reading the first six fields as %s", ", ".join(CANONICAL_COLUMNS))
    return frame.set_axis(names, axis=1)


def _frame_from_json(obj: Any) -> pd.DataFrame:
    """Records, pandas split/table/columns orientations, or ccxt-style arrays of arrays."""
    if isinstance(obj, dict):
        data = obj.get("data")
        if isinstance(data, list):
            if "columns" in obj:
                return pd.DataFrame(data, columns=obj["columns"])
            return _frame_from_json(data)
        if obj and all(isinstance(v, list | dict) for v in obj.values()):
            return pd.DataFrame(obj)
        raise ValueError(f"unrecognised JSON layout: an object with keys {list(obj)[:8]}")
    if isinstance(obj, list):
        if not obj:
            return pd.DataFrame()
        if all(isinstance(record, dict) for record in obj):
            return pd.DataFrame.from_records(obj)
        if all(isinstance(record, list) for record in obj):
            return _positional(pd.DataFrame(obj))
        raise ValueError("unrecognised JSON layout: an array mixing records and other values")
    raise ValueError(f"unrecognised JSON layout: top level is {type(obj).__name__}")


def _read_json(path: Path) -> pd.DataFrame:
    with path.open("r", encoding="utf-8-sig") as handle:
        return _frame_from_json(json.load(handle))


def _read_json_lines(path: Path) -> pd.DataFrame:
    records: list[Any] = []
    with path.open("r", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number}: {exc.msg} (column {exc.colno})") from exc
    return _frame_from_json(records)


def _first_line(path: Path) -> str:
    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
        for _, line in zip(range(100), handle, strict=False):
            if line.strip():
                return str(line).strip()
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> pd.DataFrame:
    """CSV with a comma, semicolon or tab delimiter; a header-less numeric file is kline data."""
    first = _first_line(path)
    if not first:
        return pd.DataFrame()
    sep = max((",", ";", "\t"), key=first.count)
    headerless = all(_is_number(field) for field in first.split(sep))
    frame = pd.read_csv(
        path,
        sep=sep,
        header=None if headerless else "infer",
        encoding="utf-8-sig",
        low_memory=False,
    )
    return _positional(frame) if headerless else frame


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".parquet": pd.read_parquet,
    ".feather": pd.read_feather,
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
    ".json": _read_json,
    ".jsonl": _read_json_lines,
    ".ndjson": _read_json_lines,
}


def _unsupported(source: str) -> DataError:
    return DataError(
        f"{source}: unsupported file type\n  fix: use one of {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def _parse(local: Path, source: str, extension: str) -> pd.DataFrame:
    try:
        frame = _READERS[extension](local)
    except _PARSE_ERRORS as exc:
        # A parser may quote the file it read: show the source, never a temporary download.
        detail = _one_line(exc).replace(str(local), source)
        raise DataError(
            f"{source}: cannot be read as {extension}: {detail}\n  fix: {_FIXES[extension]}"
        ) from exc
    logger.debug("%s: read %d rows, columns %s", source, len(frame), list(frame.columns))
    return frame


def _read_s3(uri: str) -> pd.DataFrame:
    location = parse_data_uri(uri)
    if location.is_prefix:
        raise DataError(
            f"{uri}: is a prefix (folder), not a data file\n"
            "  fix: pass one object, or use discover() / a data directory setting for many"
        )
    parts = split_extension(location.name)
    if parts is None:
        raise _unsupported(uri)
    with downloaded(uri, parts[1]) as local:
        return _parse(local, uri, parts[1])


def read_raw(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a local file or ``s3://`` object as it is (no aliasing, no checks).

    Raise ``DataError`` if it cannot be read.
    """
    source = os.fspath(path)
    if is_s3(source):
        return _read_s3(source)
    local = local_path(path)
    parts = split_extension(local.name)
    if parts is None:
        raise _unsupported(source)
    existing_file(local, source, "a data file (use a data directory setting for many)")
    return _parse(local, source, parts[1])


def existing_file(local: Path, source: str, what: str) -> Path:
    """``local`` if it is a regular file; else a ``DataError`` saying it is missing, a
    directory, or something that would block or never end when read (a FIFO, a device)."""
    if not local.exists():
        raise DataError(
            f"{source}: file not found\n"
            f"  fix: check the path (relative paths start at {Path.cwd()})"
        )
    if local.is_dir():
        raise DataError(f"{source}: is a directory, not {what}\n  fix: pass one file")
    if not local.is_file():
        raise DataError(
            f"{source}: not a regular file (a FIFO, socket or device), so not {what}\n"
            "  fix: pass a regular file; copy a stream to a file first"
        )
    return local


def read_ohlcv(path: str | os.PathLike[str]) -> LoadedOHLCV:
    """Read, alias and validate one file into the OHLCV contract; ``DataError`` if unusable."""
    return validate_ohlcv(read_raw(path), os.fspath(path))
