"""How a suite would have traded out of sample: the backtest of its fold predictions against
baselines on the same bars and costs, plus the diagnostics the report plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantrain.config import EvaluateConfig
from quantrain.evaluate.backtest import (
    BacktestConfig,
    BacktestResult,
    bars_per_year,
    buy_and_hold,
    flat,
    percentile_of,
    random_strategies,
    run_backtest,
    signals_from_probabilities,
    sizes_from_r_multiple,
)
from quantrain.evaluate.risk import RiskConfig, train_risk_model
from quantrain.features import atr
from quantrain.models.base import ModelFamily


@dataclass
class Evaluation:
    """Everything the package's ``evaluation/`` files and ``report.html`` are written from."""

    backtest: dict[str, dict[str, float]]  # model, buy_and_hold, flat, random_median
    random_percentile: float | None
    equity: pd.DataFrame  # timestamp + equity curves of the model and the baselines
    oos: pd.DataFrame  # timestamp, fold, each head's truth and prediction
    trades: pd.DataFrame
    folds: list[dict[str, Any]] = field(default_factory=list)  # per-fold model backtest
    confusion: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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


@dataclass(frozen=True)
class BarRules:
    """The label rules the backtest must execute (so labels match execution)."""

    k_tp: float
    k_sl: float
    horizon: int
    atr_period: int
    r_max: float


def _oos_frame(stamps: pd.Series, folds: np.ndarray, heads: list[HeadOOS]) -> pd.DataFrame:
    columns: dict[str, Any] = {"timestamp": stamps.to_numpy(), "fold": folds}
    for head in heads:
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
    rules: BarRules,
    settings: EvaluateConfig,
    seed: int,
) -> Evaluation:
    """Backtest the direction head's out-of-sample entries (sized by the position-size head
    when there is one) on the bars they were predicted for, with costs, beside flat,
    buy-and-hold and seeded random strategies of the same activity."""
    direction = next((h for h in heads if h.target == "direction"), None)
    positions = bars[heads[0].rows]
    oos = _oos_frame(frame["timestamp"].iloc[positions].reset_index(drop=True), fold_of_row, heads)
    if direction is None:
        return Evaluation(
            backtest={},
            random_percentile=None,
            equity=pd.DataFrame(),
            oos=oos,
            trades=pd.DataFrame(),
            notes=["no direction head, so no backtest"],
        )
    config = BacktestConfig(
        threshold=settings.threshold,
        k_tp=rules.k_tp,
        k_sl=rules.k_sl,
        horizon=rules.horizon,
        fee_bps=settings.fee_bps,
        slippage_bps=settings.slippage_bps,
        leverage_cap=settings.leverage_cap,
    )
    high, low, close = (frame[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close"))
    atr_full = atr(high, low, close, rules.atr_period)
    start, end = int(positions[0]), min(len(frame) - 1, int(positions[-1]) + rules.horizon)
    span = slice(start, end + 1)
    arrays = {
        c: frame[c].to_numpy(dtype=np.float64)[span] for c in ("open", "high", "low", "close")
    }
    atr_span = atr_full[span]
    per_year = bars_per_year(timeframe)
    signal = np.zeros(end - start + 1, dtype=np.int8)
    at = positions - start
    signal[at] = signals_from_probabilities(
        direction.outputs[:, 0], direction.outputs[:, -1], settings.threshold
    )
    size = None
    sizer = next((h for h in heads if h.target == "position_size"), None)
    if sizer is not None:
        size = np.zeros(len(signal))
        size[at] = sizes_from_r_multiple(
            sizer.outputs, r_max=rules.r_max, leverage_cap=settings.leverage_cap
        )

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
    idle = flat(len(signal), bars_per_year=per_year)
    trades = model.trades
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
    curves = np.vstack([r.equity for r in randoms])
    equity = pd.DataFrame(
        {
            "timestamp": frame["timestamp"].iloc[span].to_numpy(),
            "model": model.equity,
            "buy_and_hold": hold.equity,
            "flat": idle.equity,
            "random_p05": np.percentile(curves, 5, axis=0),
            "random_p50": np.percentile(curves, 50, axis=0),
            "random_p95": np.percentile(curves, 95, axis=0),
        }
    )
    random_median = {
        key: float(np.median([r.metrics[key] for r in randoms])) for key in model.metrics
    }
    percentile = percentile_of(
        model.metrics["total_return"], [r.metrics["total_return"] for r in randoms]
    )
    folds = []
    fold_at = np.zeros(len(signal), dtype=np.int64) - 1
    fold_at[at] = fold_of_row
    for fold in sorted(set(fold_of_row.tolist())):
        metrics = backtest(fold_at == fold).metrics
        folds.append({"fold": fold, **metrics})
    trades = trades.assign(
        entry_time=frame["timestamp"].iloc[start + trades["entry_bar"].to_numpy()].to_numpy(),
        exit_time=frame["timestamp"].iloc[start + trades["exit_bar"].to_numpy()].to_numpy(),
        atr_pct=atr_span[trades["entry_bar"].to_numpy()] / arrays["close"][trades["entry_bar"]],
    )
    classes = list(direction.classes or ())
    m, b = model.metrics, hold.metrics
    notes = [
        f"after costs ({settings.fee_bps:g} + {settings.slippage_bps:g} bps per side) the model "
        f"returned {m['total_return']:+.2%} over {len(signal)} out-of-sample bars in "
        f"{int(m['trades'])} trades; buy-and-hold {b['total_return']:+.2%}",
        f"the model's return beats {percentile:.0f}% of {len(randoms)} random strategies with "
        "the same number of trades, sides and size",
    ]
    return Evaluation(
        backtest={
            "model": m,
            "buy_and_hold": b,
            "flat": idle.metrics,
            "random_median": random_median,
        },
        random_percentile=percentile,
        equity=equity,
        oos=oos,
        trades=trades,
        folds=folds,
        confusion=confusion(direction.truth, direction.outputs, classes),
        calibration=calibration(direction.truth, direction.outputs, classes),
        config={
            **settings.model_dump(),
            "k_tp": rules.k_tp,
            "k_sl": rules.k_sl,
            "horizon": rules.horizon,
            "bars_per_year": per_year,
        },
        notes=notes,
    )


def train_risk_head(
    trades: pd.DataFrame, settings: EvaluateConfig, *, seed: int
) -> tuple[ModelFamily | None, str]:
    """The risk-multiplier model from the replayed out-of-sample trades, or None and why."""
    if not settings.risk.enabled:
        return None, "risk model disabled (evaluate.risk.enabled: false): bots use 1.0"
    config = RiskConfig(
        profile=settings.risk.profile,
        max_drawdown=settings.risk.max_drawdown,
        lookahead=settings.risk.lookahead,
    )
    if len(trades) < config.min_trades:
        return None, (
            f"risk model not trained: {len(trades)} out-of-sample trades, it needs "
            f"{config.min_trades}; bots use a multiplier of 1.0"
        )
    returns = trades["net_return"].to_numpy(dtype=np.float64)
    model = train_risk_model(
        returns, trades["atr_pct"].to_numpy(dtype=np.float64), config, seed=seed
    )
    return model, (
        f"risk model trained on {len(trades)} out-of-sample trades (profile {config.profile}, "
        f"drawdown ceiling {config.ceiling:.0%}); its output is clamped to [0.10, 1.25]"
    )
