"""How a suite would have traded out of sample: the backtest of its fold predictions against
baselines on the same bars and costs, plus the diagnostics the report plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantrain.config import EvaluateConfig
from quantrain.data import parse_timeframe
from quantrain.errors import DataError
from quantrain.evaluate.backtest import (
    MIN_ANNUALISE_DAYS,
    BacktestConfig,
    BacktestResult,
    bars_per_year,
    buy_and_hold,
    flat,
    percentile_of,
    random_strategies,
    run_backtest,
)
from quantrain.evaluate.risk import RiskConfig, RiskOutcome, vetted_risk_model
from quantrain.evaluate.verdict import accuracy_interval, trading_intervals, trading_verdict
from quantrain.features import atr
from quantrain.labels import target_def
from quantrain.policy import TradingPolicy, direction_probabilities, signals_from_probabilities


@dataclass
class Evaluation:
    """Everything the package's ``evaluation/`` files and ``report.html`` are written from."""

    backtest: dict[str, dict[str, float | None]]  # model, buy_and_hold, flat, random_median
    random_percentile: float | None
    equity: pd.DataFrame  # timestamp + equity curves of the model and the baselines
    oos: pd.DataFrame  # timestamp, fold, each head's truth and prediction
    trades: pd.DataFrame
    folds: list[dict[str, Any]] = field(default_factory=list)  # per-fold model backtest
    confusion: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Block-bootstrap intervals (``low``, ``high``, ``estimate``, ...) keyed by metric.
    intervals: dict[str, dict[str, float]] = field(default_factory=dict)
    #: One line: edge after costs or not, against flat and buy-and-hold.
    verdict: str = ""


def confusion(truth: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Out-of-sample counts, rows = true class, columns = predicted class."""
    k = len(classes)
    predicted = probs.argmax(axis=1)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (truth.astype(np.int64), predicted), 1)
    return {"classes": classes, "matrix": matrix.tolist()}


def calibration(
    truth: np.ndarray, probs: np.ndarray, classes: list[str], *, bins: int = 10
) -> dict[str, Any]:
    """Reliability per class: mean predicted probability vs observed frequency in each bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    observed: dict[str, list[float | None]] = {}
    predicted: dict[str, list[float | None]] = {}
    counts: dict[str, list[int]] = {}
    for j, name in enumerate(classes):
        p = probs[:, j]
        hit = truth == j
        which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
        observed[name], predicted[name], counts[name] = [], [], []
        for b in range(bins):
            in_bin = which == b
            n = int(in_bin.sum())
            counts[name].append(n)
            observed[name].append(float(hit[in_bin].mean()) if n else None)
            predicted[name].append(float(p[in_bin].mean()) if n else None)
    return {
        "classes": classes,
        "bins": centres,
        "observed": observed,
        "predicted": predicted,
        "counts": counts,
    }


@dataclass(frozen=True)
class HeadOOS:
    """One head's out-of-sample predictions over dataset rows (fold models, not the final)."""

    name: str
    target: str
    task: str
    classes: tuple[str, ...] | None
    rows: np.ndarray
    outputs: np.ndarray
    truth: np.ndarray


def _oos_frame(stamps: pd.Series, folds: np.ndarray, heads: list[HeadOOS]) -> pd.DataFrame:
    columns: dict[str, Any] = {"timestamp": stamps.to_numpy(), "fold": folds}
    for head in heads:
        if head.outputs.ndim == 2 and head.task == "regression":  # composite: a pair per part
            parts = target_def(head.target).columns or range(head.outputs.shape[1])
            for j, part in enumerate(parts):
                columns[f"{head.name}_{part}_true"] = head.truth[:, j]
                columns[f"{head.name}_{part}_pred"] = head.outputs[:, j]
            continue
        columns[f"{head.name}_true"] = head.truth
        if head.task == "classification" and head.classes:
            for j, cls in enumerate(head.classes):
                columns[f"{head.name}_p_{cls}"] = head.outputs[:, j]
        else:
            columns[f"{head.name}_pred"] = head.outputs
    return pd.DataFrame(columns)


def evaluate_bars(
    frame: pd.DataFrame,
    bars: np.ndarray,
    fold_of_row: np.ndarray,
    heads: list[HeadOOS],
    *,
    timeframe: str,
    policy: TradingPolicy | None,
    settings: EvaluateConfig,
    seed: int,
    baselines: bool = True,
) -> Evaluation:
    """Trade the package's ``policy`` on the heads' out-of-sample outputs, on the bars they
    were predicted for, with costs, beside flat, buy-and-hold and (``baselines``) seeded
    random strategies of the same activity; then the intervals and the one-line verdict."""
    direction = next((h for h in heads if h.target == "direction"), None)
    positions = bars[heads[0].rows]
    oos = _oos_frame(frame["timestamp"].iloc[positions].reset_index(drop=True), fold_of_row, heads)
    if direction is None or policy is None:
        return Evaluation(
            backtest={},
            random_percentile=None,
            equity=pd.DataFrame(),
            oos=oos,
            trades=pd.DataFrame(),
            notes=["no direction head, so no backtest"],
            verdict="no verdict: the suite has no direction head, so it trades nothing",
        )
    config = backtest_config(policy)
    span = _trade_span(frame, positions, policy.horizon)
    prices = {c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")}
    arrays = {c: values[span] for c, values in prices.items()}
    atr_span = atr(prices["high"], prices["low"], prices["close"], policy.atr_period)[span]
    per_year = bars_per_year(timeframe)
    n_span = span.stop - span.start
    at = positions - span.start
    p_sell, p_buy = direction_probabilities(direction.outputs, direction.classes or ())
    signal = np.zeros(n_span, dtype=np.int8)
    p_take = meta_take(heads, policy, direction.rows)
    signal[at] = policy.signals(p_sell, p_buy, p_take)
    size = None
    sizer = next((h for h in heads if h.name == policy.size_head), None)
    if sizer is not None:
        size = np.zeros(n_span)
        size[at] = policy.sizes(sizer.outputs, len(at))

    def backtest(mask: np.ndarray | None = None) -> BacktestResult:
        chosen = signal if mask is None else np.where(mask, signal, 0).astype(np.int8)
        return run_backtest(
            arrays["open"],
            arrays["high"],
            arrays["low"],
            arrays["close"],
            atr_span,
            chosen,
            size=size,
            bars_per_year=per_year,
            config=config,
        )

    model = backtest()
    hold = buy_and_hold(arrays["close"], bars_per_year=per_year, config=config)
    idle = flat(n_span, bars_per_year=per_year)
    trades = model.trades
    curves: dict[str, np.ndarray] = {}
    random_median: dict[str, float | None] = {}
    percentile = None
    if baselines:
        randoms = random_strategies(
            arrays["open"],
            arrays["high"],
            arrays["low"],
            arrays["close"],
            atr_span,
            n_trades=len(trades),
            long_fraction=float((trades["side"] > 0).mean()) if len(trades) else 0.5,
            size=float(trades["size"].mean()) if len(trades) else 1.0,
            bars_per_year=per_year,
            config=config,
            n=max(settings.random_strategies, 1),
            seed=seed,
        )
        curves = percentile_curves([r.equity for r in randoms], (5, 50, 95))
        random_median = _median_metrics([r.metrics for r in randoms])
        percentile = percentile_of(
            _number(model.metrics["total_return"]),
            [_number(r.metrics["total_return"]) for r in randoms],
        )
    equity = pd.DataFrame(
        {
            "timestamp": frame["timestamp"].iloc[span].to_numpy(),
            "model": model.equity,
            "buy_and_hold": hold.equity,
            "flat": idle.equity,
            **curves,
        }
    )
    folds = []
    fold_at = np.full(n_span, -1, dtype=np.int64)
    fold_at[at] = fold_of_row
    for fold in sorted(set(fold_of_row.tolist())):
        folds.append({"fold": fold, **backtest(fold_at == fold).metrics})
    stamps = frame["timestamp"].iloc[span].reset_index(drop=True)
    signal_bars = trades["entry_bar"].to_numpy()
    bar = parse_timeframe(timeframe)
    closes_at = stamps + bar  # bars are stamped by their open
    trades = trades.assign(
        signal_time=stamps.iloc[signal_bars].to_numpy(),
        # A signal bar's close is when a next-open fill (or a fill at that close) happens.
        entry_time=closes_at.iloc[signal_bars].to_numpy(),
        exit_time=closes_at.iloc[trades["exit_bar"].to_numpy()].to_numpy(),  # at the latest
        atr_pct=atr_span[signal_bars] / arrays["close"][signal_bars],
    )
    classes = list(direction.classes or ())
    intervals = trading_intervals(
        model.equity,
        hold.equity,
        bars_per_year=per_year,
        annualised=model.metrics["sharpe"] is not None,
        block=policy.horizon,
        seed=seed,
    )
    intervals["balanced_accuracy"] = accuracy_interval(
        direction.truth, direction.outputs, len(classes), block=policy.horizon, seed=seed
    )
    m, b = model.metrics, hold.metrics
    verdict = trading_verdict(m, intervals, trades=len(trades))
    notes = [
        f"after costs ({settings.fee_bps:g} + {settings.slippage_bps:g} bps per side) the model "
        f"returned {_number(m['total_return']):+.2%} over {n_span} out-of-sample bars in "
        f"{int(_number(m['trades']))} trades; buy-and-hold {_number(b['total_return']):+.2%}",
        fill_note(policy.entry),
        annualise_note(m),
    ]
    if p_take is not None:
        primary = int(np.count_nonzero(signals_from_probabilities(p_sell, p_buy, policy.threshold)))
        notes.append(
            f"meta-labeling: {int(np.count_nonzero(signal))} of {primary} direction signals "
            f"taken (meta head {policy.meta_head!r}: P(TAKE) ≥ {policy.meta_threshold:g})"
        )
    if percentile is not None:
        notes.append(
            f"the model's return beats {percentile:.0f}% of {settings.random_strategies} random "
            "strategies with the same number of trades, sides and size (a ranking, not an edge: "
            "random entries pay the same costs)"
        )
    return Evaluation(
        backtest={
            "model": m,
            "buy_and_hold": b,
            "flat": idle.metrics,
            **({"random_median": random_median} if random_median else {}),
        },
        random_percentile=percentile,
        equity=equity,
        oos=oos,
        trades=trades,
        folds=folds,
        confusion=confusion(direction.truth, direction.outputs, classes),
        calibration=calibration(direction.truth, direction.outputs, classes),
        config={**settings.model_dump(), **policy.to_dict(), "bars_per_year": per_year},
        notes=notes,
        intervals=intervals,
        verdict=verdict,
    )


def meta_take(heads: list[HeadOOS], policy: TradingPolicy, rows: np.ndarray) -> np.ndarray | None:
    """The policy's meta head's P(TAKE) on the direction head's ``rows`` (None: no gate)."""
    if policy.meta_head is None:
        return None
    meta = next((h for h in heads if h.name == policy.meta_head), None)
    if meta is None or "TAKE" not in (meta.classes or ()):
        raise DataError(f"the policy's meta head {policy.meta_head!r} has no P(TAKE) output")
    if not np.array_equal(meta.rows, rows):
        raise DataError(
            f"meta head {policy.meta_head!r} predicted other rows than the direction head "
            f"({len(meta.rows)} against {len(rows)}): its gate cannot be traded"
        )
    return np.asarray(meta.outputs[:, list(meta.classes or ()).index("TAKE")], np.float64)


def backtest_config(policy: TradingPolicy) -> BacktestConfig:
    """The backtest's settings are the policy's: one source for what is traded."""
    return BacktestConfig(
        threshold=policy.threshold,
        k_tp=policy.k_tp,
        k_sl=policy.k_sl,
        horizon=policy.horizon,
        fee_bps=policy.fee_bps,
        slippage_bps=policy.slippage_bps,
        leverage_cap=policy.leverage_cap,
        entry=policy.entry,
    )


#: Bars per block of :func:`percentile_curves`: its sort copies stay a few MB.
PERCENTILE_BLOCK = 8192


def percentile_curves(curves: list[np.ndarray], qs: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per bar, the ``qs`` percentiles across ``curves`` (equally long), named ``random_pNN``.
    A block of bars at a time: stacking the whole curves copies all of them (100 curves × 5
    years of 5m bars is 270 MB per copy); each bar's numbers are the same either way."""
    bars = len(curves[0])
    out = np.empty((len(qs), bars))
    for start in range(0, bars, PERCENTILE_BLOCK):
        block = np.vstack([curve[start : start + PERCENTILE_BLOCK] for curve in curves])
        out[:, start : start + PERCENTILE_BLOCK] = np.percentile(block, qs, axis=0)
    return {f"random_p{q:02d}": out[i] for i, q in enumerate(qs)}


def _trade_span(frame: pd.DataFrame, positions: np.ndarray, horizon: int) -> slice:
    """The bars from the first predicted one to the last one's horizon (its trade's exit)."""
    return slice(int(positions[0]), min(len(frame) - 1, int(positions[-1]) + horizon) + 1)


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _median_metrics(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Per metric, the median over strategies (None where a metric was not computed)."""
    out: dict[str, float | None] = {}
    for key in rows[0]:
        values = [v for v in (r[key] for r in rows) if v is not None]
        out[key] = float(np.median(values)) if values else None
    return out


def fill_note(entry: str) -> str:
    if entry == "next_open":
        return "trades fill at the open of the bar after the signal, as a bot can"
    return "trades fill at the signal bar's own close (labels.entry: close): optimistic"


def annualise_note(metrics: dict[str, float | None]) -> str:
    days = _number(metrics["days"])
    if metrics["sharpe"] is None:
        return (
            f"annual return and annualised Sharpe are not shown: {days:.0f} days of "
            f"out-of-sample bars is under {MIN_ANNUALISE_DAYS}; sharpe_period is over the span"
        )
    return f"annualised over {days:.0f} days of out-of-sample bars"


def train_risk_head(trades: pd.DataFrame, settings: EvaluateConfig, *, seed: int) -> RiskOutcome:
    """The risk-multiplier model from the replayed out-of-sample trades, vetted on the latest
    of them (:func:`~quantrain.evaluate.risk.vetted_risk_model`), or None and why."""
    if not settings.risk.enabled:
        return RiskOutcome(
            None, "risk model disabled (evaluate.risk.enabled: false): bots use 1.0", None
        )
    config = RiskConfig(
        profile=settings.risk.profile,
        max_drawdown=settings.risk.max_drawdown,
        lookahead=settings.risk.lookahead,
    )
    return vetted_risk_model(
        trades["net_return"].to_numpy(dtype=np.float64),
        trades["atr_pct"].to_numpy(dtype=np.float64),
        config,
        seed=seed,
    )
