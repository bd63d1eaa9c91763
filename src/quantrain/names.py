"""Names that become paths: symbols, suites, versions, channels, heads, job names and the files
a manifest lists. One pattern decides them all, so no name from a job file, the command line,
a manifest or a store listing can climb out of the directory it is joined to.
"""

from __future__ import annotations

import re
from pathlib import Path

from quantrain.errors import ConfigError, DataError, QuantrainError

#: The store a job writes to and the CLI reads when none is given: ./models, relative to the
#: working directory (resolved on the driver before a job is submitted).
DEFAULT_STORE = "./models"
#: The channel bots pull and ``promote`` moves when none is named.
DEFAULT_CHANNEL = "approved"
#: Stands for the newest complete version (of a symbol\'s suite) or the newest run record.
LATEST = "latest"

#: One path component: starts with a letter or digit (so never ``.``, ``..`` or hidden), then
#: letters, digits, ``.``, ``-`` and ``_``; no separator, no space, at most 128 characters.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SAFE_NAME_RULE = (
    "1 to 128 letters, digits, '.', '-' or '_', starting with a letter or digit "
    "(no '/', '\\', spaces or '..')"
)
#: A package holds a handful of files a few directories deep; more is not a package.
MAX_PATH_PARTS = 8

_SYMBOL_SEPARATORS = re.compile(r"[/:_\s]+")


def is_safe_name(value: object) -> bool:
    """True when ``value`` is text matching :data:`SAFE_NAME` whole."""
    return isinstance(value, str) and SAFE_NAME.fullmatch(value) is not None


def check_name(
    kind: str,
    value: object,
    *,
    where: str,
    error: type[QuantrainError] = ConfigError,
    fix: str = f"use {SAFE_NAME_RULE}",
) -> str:
    """``value`` if it is a safe name; else ``error`` saying what, where and how to fix it."""
    if is_safe_name(value):
        return str(value)
    raise error(f"{where}: {kind} {value!r} is not a safe name\n  fix: {fix}")


def check_relative(rel: object, *, where: str, error: type[QuantrainError]) -> str:
    """A manifest ``files`` entry: a relative POSIX path whose every part is a safe name."""
    parts = rel.split("/") if isinstance(rel, str) else []
    if not parts or len(parts) > MAX_PATH_PARTS or not all(map(is_safe_name, parts)):
        raise error(
            f"{where}: file path {rel!r} is not a safe relative path\n"
            f"  fix: list package files as relative paths of up to {MAX_PATH_PARTS} parts, "
            f"each {SAFE_NAME_RULE}; this package may have been tampered with"
        )
    return "/".join(parts)


def inside(root: Path, path: Path, *, error: type[QuantrainError]) -> Path:
    """``path`` resolved (symlinks followed) if it stays under ``root`` resolved; else ``error``."""
    base = Path(root).resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(base):
        raise error(
            f"{path}: refused to write outside {root} (it resolves to {resolved})\n"
            "  fix: remove the '..' parts, absolute paths or symlinks that lead out of it"
        )
    return resolved


def symbol_key(raw_symbol: str) -> str:
    """Safe key for a pair: ``ETH/USDT:USDT`` -> ``ETH-USDT-USDT``; refuse what cannot be a key.

    Keys keep the full pair (``BTC/EUR`` and ``BTC/USDT`` never collide) because model paths
    and store prefixes are built from them.
    """
    key = _SYMBOL_SEPARATORS.sub("-", str(raw_symbol).strip().upper())
    key = re.sub(r"-{2,}", "-", key).strip("-")
    if not is_safe_name(key):
        raise DataError(
            f"symbol {raw_symbol!r} cannot be made a safe key (got {key!r})\n"
            "  fix: use letters, digits, '.', '-', '/', ':' or '_' (e.g. ETH/USDT or ETH-BTC), "
            "starting with a letter or digit, at most 128 characters"
        )
    return key
