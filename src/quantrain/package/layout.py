"""The model package on disk: what files it has, its manifest, and how it is verified.

``manifest.json`` is written last and lists the sha256 and size of every other file; a
directory without it is not a package. ``FORMAT_VERSION`` bumps on any reader-breaking change.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from quantrain.errors import PackageError, QuantrainError
from quantrain.names import check_name, check_relative
from quantrain.package.checksums import file_entries, sha256_file
from quantrain.package.manifest import HeadEntry, Manifest, parse_manifest

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FEATURES = "features.json"
METRICS = "metrics.json"
HEADS_DIR = "heads"
ONNX_FILE = "model.onnx"

_SHA256 = re.compile(r"[0-9a-f]{64}")


def write_manifest(root: Path, fields: dict[str, Any], heads: list[HeadEntry]) -> dict[str, Any]:
    """Checksum every file already in ``root`` and write ``manifest.json`` last."""
    if (root / MANIFEST).exists():
        raise PackageError(f"{root}: a manifest already exists; packages are never rewritten")
    manifest = {
        "format_version": FORMAT_VERSION,
        **fields,
        "heads": {h.name: h.model_dump() for h in heads},
        "files": file_entries(root),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


#: What to do about a manifest that is not one quantrain wrote.
_FIX = (
    "use a package written by quantrain (pull or re-train it); this manifest was damaged or "
    "tampered with"
)


def read_manifest(root: str | Path) -> dict[str, Any]:
    """Parse a package's manifest, refusing anything that is not a package of a known format."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise PackageError(
            f"{root}: no {MANIFEST} here, so this is not a complete model package; fix: point "
            f"at a package directory (the one holding {MANIFEST}), or pull the package again"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PackageError(f"{path}: manifest is not valid JSON ({error}); fix: {_FIX}") from None
    except ValueError as error:  # not UTF-8, or an integer of more than 4,300 digits
        raise PackageError(f"{path}: manifest is not JSON text ({error}); fix: {_FIX}") from None
    except RecursionError:
        raise PackageError(
            f"{path}: manifest is nested too deeply to be one; fix: {_FIX}"
        ) from None
    if not isinstance(manifest, dict):
        raise PackageError(
            f"{path}: a manifest is a JSON object, got {type(manifest).__name__}; fix: {_FIX}"
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise PackageError(
            f"{path}: package format_version {version!r}; this quantrain reads {FORMAT_VERSION}. "
            "fix: upgrade quantrain or re-train the package"
        )
    checked = check_manifest(manifest, str(path))
    parse_manifest(checked, str(path))  # every field a reader needs, with its type
    return checked


def load_manifest(root: str | Path) -> Manifest:
    """The package's manifest, typed (``read_manifest`` returns the same checks as plain JSON)."""
    return parse_manifest(read_manifest(root), str(Path(root) / MANIFEST))


def check_manifest(
    manifest: object, source: str, *, error: type[QuantrainError] = PackageError
) -> dict[str, Any]:
    """Refuse a manifest that could lead a reader outside its package or store: symbol, suite,
    version and head names must be safe names, every listed file a safe relative path with an
    integer size and a sha256. Checked before any path is built from it."""
    fix = _FIX
    if not isinstance(manifest, dict):
        raise error(
            f"{source}: a manifest is a JSON object, got {type(manifest).__name__}; fix: {fix}"
        )
    for kind in ("symbol", "suite", "version"):
        check_name(kind, manifest.get(kind), where=source, error=error, fix=fix)
    heads, files = manifest.get("heads"), manifest.get("files")
    if not isinstance(heads, dict) or not isinstance(files, dict):
        raise error(f"{source}: a manifest needs 'heads' and 'files' objects; fix: {fix}")
    if not heads:
        raise error(
            f"{source}: the manifest lists no heads, so there is nothing to run; fix: {fix}"
        )
    for name, head in heads.items():
        check_name("head name", name, where=source, error=error, fix=fix)
        listed = head.get("files", []) if isinstance(head, dict) else None
        if not isinstance(listed, list):
            raise error(f"{source}: head {name!r} is not an object with a 'files' list; fix: {fix}")
        for rel in listed:
            check_relative(rel, where=source, error=error)
    for rel, entry in files.items():
        check_relative(rel, where=source, error=error)
        size = entry.get("size") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if type(size) is not int or size < 0 or not _SHA256.fullmatch(str(digest)):
            raise error(
                f"{source}: files entry {rel!r} needs a size in bytes and a sha256 hex digest, "
                f"got {entry!r}; fix: {fix}"
            )
    _check_listing(manifest, source, error, fix)
    return manifest


def _check_listing(
    manifest: dict[str, Any], source: str, error: type[QuantrainError], fix: str
) -> None:
    """What ``models list`` shows of a version, typed: a store reads nothing else before
    listing it (``created_at`` text, ``summary_metrics`` numbers; both optional)."""
    created = manifest.get("created_at", "")
    if not isinstance(created, str):
        raise error(f"{source}: created_at is not text, got {created!r:.80}; fix: {fix}")
    metrics = manifest.get("summary_metrics", {})
    wrong = (
        [
            f"{key}={value!r:.40}"
            for key, value in metrics.items()
            if isinstance(value, bool) or not isinstance(value, int | float)
        ]
        if isinstance(metrics, dict)
        else [f"{metrics!r:.80}"]
    )
    if wrong:
        raise error(
            f"{source}: summary_metrics is not an object of numbers ({', '.join(wrong[:3])}); "
            f"fix: {fix}"
        )


def package_problems(root: str | Path) -> tuple[dict[str, Any], list[str]]:
    """The manifest and every missing, extra or changed file (empty when the package is whole)."""
    root = Path(root)
    manifest = read_manifest(root)
    listed: dict[str, dict[str, Any]] = manifest["files"]
    problems: list[str] = []
    for rel, entry in listed.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"missing {rel}")
        elif path.stat().st_size != entry["size"]:
            problems.append(f"{rel}: size {path.stat().st_size}, manifest says {entry['size']}")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest (file changed or corrupt)")
    extra = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if not p.is_dir() and p.name != MANIFEST and p.relative_to(root).as_posix() not in listed
    )
    problems += [f"unexpected file {rel}" for rel in extra]
    return manifest, problems


def verify_package(root: str | Path) -> dict[str, Any]:
    """Check every listed file's size and sha256; refuse missing, extra or changed files."""
    manifest, problems = package_problems(root)
    if problems:
        raise PackageError(
            f"{root}: package failed verification:\n  "
            + "\n  ".join(problems)
            + "\n  fix: pull the version again from the store; never edit a package in place."
        )
    return manifest
