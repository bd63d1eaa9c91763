"""``--if-better``: compare one out-of-sample metric between a candidate and the incumbent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantrain.errors import StoreError
from quantrain.evaluate import higher_is_better


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


def metric_of(manifest: dict[str, Any], metric: str) -> float:
    """``metric`` from a manifest: a summary key (``direction.balanced_accuracy``) or
    ``head.metric`` from a head's out-of-sample metrics."""
    summary: dict[str, float] = manifest.get("summary_metrics", {})
    if metric in summary:
        return float(summary[metric])
    head, _, name = metric.rpartition(".")
    head_metrics = manifest.get("heads", {}).get(head, {}).get("metrics", {})
    if name in head_metrics:
        return float(head_metrics[name])
    available = sorted(summary) or ["(none)"]
    raise StoreError(
        f"{manifest.get('symbol')}/{manifest.get('version')}: no metric {metric!r}; "
        f"use HEAD.METRIC, e.g. {', '.join(available)}"
    )


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
