"""``--if-better``: compare one out-of-sample metric between a candidate and the incumbent:
an ML metric of a head, or a trading metric of the model's backtest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quantrain.errors import StoreError
from quantrain.evaluate import higher_is_better
from quantrain.evaluate.metrics import BACKTEST_SCOPE, SELECTION_SCOPE

#: The manifest section (and metric scope) of the final holdout evaluation, when there is one.
HOLDOUT = "holdout"


@dataclass(frozen=True)
class MetricComparison:
    """A candidate's metric beside the incumbent's (None when the channel points nowhere)."""

    metric: str
    candidate: float
    incumbent: float | None
    incumbent_version: str | None
    higher_is_better: bool

    @property
    def better(self) -> bool:
        """Strictly better: a tie keeps the incumbent, so a re-run never churns the channel."""
        if self.incumbent is None:
            return True
        if self.higher_is_better:
            return self.candidate > self.incumbent
        return self.candidate < self.incumbent

    def describe(self) -> str:
        if self.incumbent is None:
            return f"{self.metric} {self.candidate:.4f}; the channel held nothing to beat"
        delta = self.candidate - self.incumbent
        way = "higher" if self.higher_is_better else "lower"
        verdict = "better" if self.better else "not better"
        return (
            f"{self.metric} {self.candidate:.4f} vs {self.incumbent:.4f} of "
            f"{self.incumbent_version} ({delta:+.4f}; {way} is better, so {verdict})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "candidate": self.candidate,
            "incumbent": self.incumbent,
            "incumbent_version": self.incumbent_version,
        }


def _recorded(manifest: dict[str, Any]) -> dict[str, Any]:
    """Every value a manifest records under a metric key, null included."""
    scopes: list[tuple[str, Any]] = [
        (head, entry.get("metrics"))
        for head, entry in (manifest.get("heads") or {}).items()
        if isinstance(entry, dict)
    ]
    scopes.append(("", manifest.get("summary_metrics")))
    scopes.append((BACKTEST_SCOPE, manifest.get("evaluation")))
    holdout = manifest.get(HOLDOUT)
    if isinstance(holdout, dict):
        heads = holdout.get("heads")
        if isinstance(heads, dict):
            scopes += [(f"{HOLDOUT}.{head}", metrics) for head, metrics in heads.items()]
        scopes.append((f"{HOLDOUT}.{BACKTEST_SCOPE}", holdout.get("backtest")))
    selection = manifest.get(SELECTION_SCOPE)
    if isinstance(selection, dict):
        scopes.append((SELECTION_SCOPE, {"deflated_sharpe": selection.get("deflated_sharpe")}))
        pbo = selection.get("pbo")
        if isinstance(pbo, dict):
            scopes.append(
                (
                    f"{SELECTION_SCOPE}.pbo",
                    {h: e.get("pbo") for h, e in pbo.items() if isinstance(e, dict)},
                )
            )
    found: dict[str, Any] = {}
    for scope, metrics in scopes:
        if isinstance(metrics, dict):
            found.update({f"{scope}.{k}" if scope else k: v for k, v in metrics.items()})
    return found


def recorded_metrics(manifest: dict[str, Any]) -> dict[str, float]:
    """Every number a manifest records, by the key ``--if-better`` takes.

    ``HEAD.METRIC`` (a head's out-of-sample metrics) and the summary keys; ``backtest.METRIC``
    (the model's out-of-sample backtest, the manifest's ``evaluation``); and, where the
    manifest has a ``holdout`` section, ``holdout.HEAD.METRIC`` and ``holdout.backtest.METRIC``.
    """
    return {
        key: float(value)
        for key, value in _recorded(manifest).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _comparable(found: dict[str, float]) -> list[str]:
    """The recorded keys with a known direction (what ``--if-better`` could take)."""
    out = []
    for key in sorted(found):
        try:
            higher_is_better(key)
        except ValueError:
            continue
        out.append(key)
    return out


def metric_of(manifest: dict[str, Any], metric: str) -> float:
    """``metric`` from a manifest (see ``recorded_metrics`` for the keys); a clear
    ``StoreError`` when the package does not record it."""
    found = recorded_metrics(manifest)
    if metric in found:
        return found[metric]
    where = f"{manifest.get('symbol')}/{manifest.get('version')}"
    if metric in (raw := _recorded(manifest)) and raw[metric] is None:
        why = (
            "records it as null (undefined there, e.g. a backtest too short to annualise: "
            "sharpe_period and total_return cover the span itself)"
        )
    elif metric.startswith(f"{BACKTEST_SCOPE}.") and not manifest.get("evaluation"):
        why = (
            "records no out-of-sample backtest (written before backtests were recorded, or its "
            "suite has no direction head)"
        )
    elif metric.startswith(f"{HOLDOUT}.") and not isinstance(manifest.get(HOLDOUT), dict):
        why = "has no holdout evaluation (written before holdouts were recorded)"
    else:
        why = "does not record it (written by an older quantrain, or no such head)"
    available = ", ".join(_comparable(found)) or "(none)"
    raise StoreError(
        f"{where}: no metric {metric!r}: the package {why}\n"
        f"  fix: compare by one it has ({available}), or promote without --if-better"
    )


def unmet_requirements(manifest: dict[str, Any], require: Mapping[str, float]) -> list[str]:
    """Each ``metric=bound`` the package misses, said plainly: a higher-is-better metric must
    reach its bound, a lower-is-better one stay at or under it (e.g. ``selection.pbo.direction
    ≤ 0.5``, ``selection.deflated_sharpe ≥ 0.95``, ``backtest.total_return ≥ 0``)."""
    missed = []
    for metric, bound in require.items():
        try:
            higher = higher_is_better(metric)
        except ValueError as error:
            raise StoreError(f"--require: {error}") from None
        value = metric_of(manifest, metric)
        if (value < bound) if higher else (value > bound):
            relation = "below the required minimum" if higher else "above the allowed maximum"
            missed.append(f"{metric} {value:.4g} is {relation} {bound:g}")
    return missed


def compare(
    metric: str, candidate: dict[str, Any], incumbent: dict[str, Any] | None
) -> MetricComparison:
    """Compare ``metric`` of two manifests; refuses metrics whose direction is unknown."""
    try:
        higher = higher_is_better(metric)
    except ValueError as error:
        raise StoreError(f"--if-better: {error}") from None
    return MetricComparison(
        metric=metric,
        candidate=metric_of(candidate, metric),
        incumbent=metric_of(incumbent, metric) if incumbent else None,
        incumbent_version=incumbent.get("version") if incumbent else None,
        higher_is_better=higher,
    )
