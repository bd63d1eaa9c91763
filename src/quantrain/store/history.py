"""A symbol's versions over time and what changed between two of them, read from manifests.

``models history`` answers "is the model getting better, and which run made each version";
``models diff`` answers "what differs between these two packages": their out-of-sample metrics
side by side (``compare.recorded_metrics``, the keys ``--if-better`` takes), and the inputs
that explain a change (feature recipe, head params, data range and rows, configuration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from quantrain.errors import StoreError
from quantrain.evaluate import higher_is_better
from quantrain.names import LATEST, is_safe_name, symbol_key
from quantrain.store.base import Catalog, ModelStore
from quantrain.store.compare import recorded_metrics

#: Besides every head's summary metric: the net-of-costs backtest and the untouched holdout.
_TRADING_KEYS = ("backtest.total_return", "backtest.sharpe_period", "holdout.backtest.total_return")


@dataclass(frozen=True)
class Ref:
    """One complete version of a store, as a reference resolved to it."""

    symbol: str
    suite: str
    version: str

    def __str__(self) -> str:
        return f"{self.symbol}/{self.suite}/{self.version}"


@dataclass(frozen=True)
class HistoryEntry:
    """One version of a symbol: when, which channels point at it, which run made it."""

    ref: Ref
    created_at: str
    channels: tuple[str, ...]
    run_id: str | None
    rows: int | None
    data_first: str | None
    data_last: str | None
    metrics: dict[str, float]


def key_metrics(manifest: dict[str, Any]) -> dict[str, float]:
    """Each head's summary metric (no baselines) and the trading results, where recorded."""
    found = recorded_metrics(manifest)
    summary = [k for k in manifest.get("summary_metrics") or {} if "baseline" not in k]
    return {k: found[k] for k in (*summary, *_TRADING_KEYS) if k in found}


def made_by(store: ModelStore) -> dict[tuple[str, str, str], str]:
    """``(symbol, suite, version) -> run id`` from the store's run records."""
    return {package: info.run_id for info in store.runs() for package in info.packages}


def history(store: ModelStore, symbol: str, suite: str | None = None) -> list[HistoryEntry]:
    """Every complete version of ``symbol`` (one suite, or all of them), newest first."""
    symbol = symbol_key(symbol)
    catalog = store._catalog(symbol)
    suites = [store._resolve_suite(symbol, suite, catalog)] if suite else catalog.suites(symbol)
    if not suites:
        store._resolve_suite(symbol, None, catalog)  # raises, naming the symbols there are
    refs = [Ref(symbol, s, v) for s in suites for v in catalog.versions(symbol, s)]
    manifests = store._manifests([(r.symbol, r.suite, r.version) for r in refs])
    channels = {s: store._channel_versions(catalog, symbol, s) for s in suites}
    runs = made_by(store)
    entries = []
    for ref, manifest in zip(refs, manifests, strict=True):
        found = manifest or {}
        data = _section(found, "data")
        pointing = channels[ref.suite]
        entries.append(
            HistoryEntry(
                ref=ref,
                created_at=str(found.get("created_at", "?")),
                channels=tuple(c for c, v in sorted(pointing.items()) if v == ref.version),
                run_id=found.get("run_id") or runs.get((ref.symbol, ref.suite, ref.version)),
                rows=data.get("rows"),
                data_first=data.get("first"),
                data_last=data.get("last"),
                metrics=key_metrics(found),
            )
        )
    # Version names start with their UTC creation time: newest first across suites too.
    return sorted(entries, key=lambda e: (e.ref.version, e.ref.suite), reverse=True)


def resolve_ref(store: ModelStore, text: str, suite: str | None = None) -> Ref:
    """``SYMBOL@CHANNEL``, ``SYMBOL@VERSION``, ``SYMBOL@latest`` or a bare version id (found
    wherever it is in the store) as one complete version; a clear ``StoreError`` otherwise."""
    symbol_text, at, name = text.rpartition("@")
    if not is_safe_name(name):
        raise StoreError(
            f"{text!r} is not a version reference; fix: write VERSION, SYMBOL@VERSION, "
            "SYMBOL@CHANNEL (e.g. ETH-BTC@approved) or SYMBOL@latest"
        )
    if not at:
        return _find_version(store, name, suite)
    symbol = symbol_key(symbol_text)
    catalog = store._catalog(symbol)
    chosen = store._resolve_suite(symbol, suite, catalog)
    versions = catalog.versions(symbol, chosen)
    channels = store._channel_versions(catalog, symbol, chosen)
    if name in channels:
        return Ref(symbol, chosen, channels[name])
    if name in versions:
        return Ref(symbol, chosen, name)
    if name == LATEST and versions:
        return Ref(symbol, chosen, versions[-1])
    raise StoreError(
        f"{store.uri}: {text}: {symbol}/{chosen} has no channel or version {name!r}; channels: "
        f"{', '.join(sorted(channels)) or 'none'}; newest versions: "
        f"{', '.join(versions[-3:]) or 'none'}"
    )


def _find_version(store: ModelStore, version: str, suite: str | None) -> Ref:
    catalog: Catalog = store._catalog()
    found = [
        Ref(symbol, s, version)
        for (symbol, s), names in sorted(catalog.complete.items())
        if version in names and suite in (None, s)
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise StoreError(
            f"{store.uri}: no complete version {version!r}; fix: copy one from `quantrain "
            "models history SYMBOL`, or write SYMBOL@approved / SYMBOL@latest"
        )
    raise StoreError(
        f"{store.uri}: version {version!r} exists for {', '.join(map(str, found))}; "
        "fix: write SYMBOL@VERSION (and --suite)"
    )


@dataclass(frozen=True)
class MetricChange:
    """One out-of-sample metric of A beside B's (None where a package lacks it)."""

    metric: str
    a: float | None
    b: float | None

    @property
    def change(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def verdict(self) -> str:
        """How B did against A: ``better``, ``worse`` or ``same`` (by the metric's direction)."""
        if self.change is None:
            return ""
        if self.change == 0:
            return "same"
        return "better" if (self.change > 0) == higher_is_better(self.metric) else "worse"


@dataclass(frozen=True)
class FieldChange:
    """One input of A beside B's, as text."""

    what: str
    a: str
    b: str

    @property
    def changed(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True)
class VersionDiff:
    a: Ref
    b: Ref
    metrics: list[MetricChange]
    fields: list[FieldChange]


def diff(store: ModelStore, a: str, b: str, suite: str | None = None) -> VersionDiff:
    """Resolve two references and compare their manifests."""
    refs = (resolve_ref(store, a, suite), resolve_ref(store, b, suite))
    manifests = []
    for ref in refs:
        manifest = store.manifest(ref.symbol, ref.suite, ref.version)
        if manifest is None:
            raise StoreError(f"{store.uri}: {ref} vanished while reading it")
        manifests.append(manifest)
    metrics, fields = diff_manifests(*manifests)
    return VersionDiff(refs[0], refs[1], metrics, fields)


def _comparable(metric: str) -> bool:
    try:
        higher_is_better(metric)
    except ValueError:
        return False
    return True


def diff_manifests(
    a: dict[str, Any], b: dict[str, Any]
) -> tuple[list[MetricChange], list[FieldChange]]:
    """Every comparable metric either records (side by side), then the fixed inputs, then
    every configuration key whose value differs."""
    found_a, found_b = recorded_metrics(a), recorded_metrics(b)
    metrics = [
        MetricChange(k, found_a.get(k), found_b.get(k))
        for k in sorted(set(found_a) | set(found_b))
        if _comparable(k)
    ]
    inputs_a, inputs_b = _inputs(a), _inputs(b)
    fields = [FieldChange(k, inputs_a.get(k, "-"), inputs_b.get(k, "-")) for k in inputs_a]
    fields += [
        FieldChange(k, v, inputs_b.get(k, "-")) for k, v in inputs_b.items() if k not in inputs_a
    ]
    config_a, config_b = (_flat(_section(m, "job").get("config")) for m in (a, b))
    for key in sorted(set(config_a) | set(config_b)):
        if config_a.get(key) != config_b.get(key):
            fields.append(
                FieldChange(f"config.{key}", config_a.get(key, "-"), config_b.get(key, "-"))
            )
    return metrics, fields


def _section(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    value = manifest.get(name)
    return value if isinstance(value, dict) else {}


def _inputs(manifest: dict[str, Any]) -> dict[str, str]:
    """What a package was made from, as text: the rows ``models diff`` always shows."""
    features, data = _section(manifest, "features"), _section(manifest, "data")
    holdout = _section(manifest, "holdout")
    out = {
        "version": manifest.get("version"),
        "created": manifest.get("created_at"),
        "code version": manifest.get("code_version"),
        "timeframe": manifest.get("timeframe"),
        "config hash": str(_section(manifest, "job").get("hash", ""))[:12] or None,
        "feature set": features.get("name") or features.get("kind"),
        "feature recipe hash": str(features.get("hash", ""))[:12] or None,
        "feature columns": len(features.get("columns") or []) or None,
        "data rows": data.get("rows"),
        "data from": data.get("first"),
        "data to": data.get("last"),
        "data sha256": str(data.get("sha256", ""))[:12] or None,
        "folds": len(manifest.get("folds") or []) or None,
        "holdout rows": holdout.get("rows"),
    }
    for head, entry in sorted(_section(manifest, "heads").items()):
        if isinstance(entry, dict):
            out[f"head {head}"] = f"{entry.get('target', '?')} / {entry.get('family', '?')}"
    config = _section(_section(manifest, "job"), "config")
    for head in _section(config, "suite").get("heads") or []:
        if isinstance(head, dict) and head.get("name"):
            out[f"head {head['name']} params"] = json.dumps(
                head.get("params") or {}, sort_keys=True
            )
    return {k: "-" if v is None else str(v) for k, v in out.items()}


def _flat(value: Any, prefix: str = "") -> dict[str, str]:
    """A config as ``dotted.key -> JSON text``; lists of named items keyed by their names."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    if (
        isinstance(value, list)
        and value
        and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in value)
    ):
        out = {}
        for item in value:
            out.update(
                _flat({k: v for k, v in item.items() if k != "name"}, f"{prefix}{item['name']}.")
            )
        return out
    return {prefix.rstrip("."): json.dumps(value, sort_keys=True)}
