"""sha256 of files and trees: how a package proves that nothing changed since it was built."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(
    root: Path, *, exclude: frozenset[str] = frozenset()
) -> dict[str, dict[str, object]]:
    """``{relative posix path: {"sha256", "size"}}`` for every file under ``root``."""
    entries: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in exclude:
            continue
        entries[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return entries
