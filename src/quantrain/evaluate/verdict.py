"""The verdict a package carries: net-of-costs return against doing nothing and against holding,
with block-bootstrap intervals, in one line a trader can act on.

Intervals resample the out-of-sample bars in blocks of the label horizon (overlapping trades
stay together), so they say how much a different ordering of the same market could move the
figure. "Edge" needs the whole 90 % interval of the net return above zero.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Final

import numpy as np

from quantrain.errors import DataError
from quantrain.evaluate.backtest import bar_returns
from quantrain.evaluate.uncertainty import (
    Interval,
    balanced_accuracy_interval,
    deflated_sharpe_ratio,
    excess_return_interval,
    probability_of_overfitting,
    return_interval,
    sharpe_interval,
)

#: Two-sided level of every interval the package reports.
LEVEL: Final = 0.9
#: Resamples per interval: enough for the 5 % / 95 % quantiles to settle to ~1e-3.
RESAMPLES: Final = 1000


def _as_dict(interval: Interval) -> dict[str, float]:
    return {key: float(value) for key, value in asdict(interval).items()}


def trading_intervals(
    model_equity: np.ndarray,
    hold_equity: np.ndarray,
    *,
    bars_per_year: float,
    annualised: bool,
    block: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Intervals of the model's net total return, its Sharpe (annualised, or over the span when
    ``annualised`` is False) and its return in excess of buy-and-hold (paired resamples)."""
    model, hold = bar_returns(model_equity), bar_returns(hold_equity)
    if len(model) < 2:
        return {}
    block = min(block, len(model))
    scale = bars_per_year if annualised else float(len(model))
    total = return_interval(model, block=block, n_resamples=RESAMPLES, seed=seed, level=LEVEL)
    sharpe = sharpe_interval(
        model, scale, block=block, n_resamples=RESAMPLES, seed=seed, level=LEVEL
    )
    excess = excess_return_interval(
        model, hold, block=block, n_resamples=RESAMPLES, seed=seed, level=LEVEL
    )
    return {
        "total_return": _as_dict(total),
        "sharpe" if annualised else "sharpe_period": _as_dict(sharpe),
        "excess_over_buy_and_hold": _as_dict(excess),
    }


def accuracy_interval(
    truth: np.ndarray, probs: np.ndarray, n_classes: int, *, block: int, seed: int
) -> dict[str, float]:
    """Interval of a classifier's out-of-sample balanced accuracy (chance: 1 / classes)."""
    predicted = np.asarray(probs).argmax(axis=1)
    interval = balanced_accuracy_interval(
        np.asarray(truth),
        predicted,
        n_classes,
        block=min(block, len(predicted)),
        n_resamples=RESAMPLES,
        seed=seed,
        level=LEVEL,
    )
    return _as_dict(interval) | {"chance": 1.0 / n_classes}


def _span(interval: dict[str, float]) -> str:
    return f"{interval['low']:+.1%} … {interval['high']:+.1%}"


def trading_verdict(
    metrics: dict[str, Any], intervals: dict[str, dict[str, float]], *, trades: int
) -> str:
    """One line: is there an edge after costs, against flat and against buy-and-hold?"""
    net = intervals.get("total_return")
    if trades == 0 or net is None:
        return "no edge shown: the policy took no trade out of sample (flat)"
    head = (
        f"net return {metrics['total_return']:+.2%} in {trades} trade{'' if trades == 1 else 's'} "
        f"({LEVEL:.0%} interval {_span(net)})"
    )
    if net["low"] > 0:
        verdict = f"edge after costs, p = {net['share_at_or_below_zero']:.3f}: {head}, above flat"
    elif net["high"] < 0:
        verdict = f"no edge after costs: {head}, below flat (losing)"
    else:
        verdict = f"no edge after costs: {head} includes flat"
    excess = intervals.get("excess_over_buy_and_hold")
    if excess is not None:
        relation = (
            "beats"
            if excess["low"] > 0
            else "trails"
            if excess["high"] < 0
            else "is not distinguishable from"
        )
        verdict += f"; {relation} buy-and-hold by {excess['estimate']:+.2%} ({_span(excess)})"
    return verdict


def selection_bias(
    model_equity: np.ndarray, *, n_trials: int, trial_scores: dict[str, np.ndarray]
) -> dict[str, Any]:
    """How much picking the best of ``n_trials`` could explain: the deflated Sharpe ratio of
    the out-of-sample backtest (the probability its true Sharpe beats the best of that many
    null trials) and, per tuned head, the probability of backtest overfitting by CSCV over its
    trial × fold scores (None, with the reason, where too few trials completed)."""
    returns = bar_returns(model_equity)
    out: dict[str, Any] = {"trials": int(n_trials), "deflated_sharpe": None, "pbo": {}}
    if len(returns) >= 2:
        dsr = deflated_sharpe_ratio(returns, max(int(n_trials), 1))
        out["deflated_sharpe"] = float(dsr.dsr)
        out["sharpe_per_bar"] = float(dsr.sharpe)
        out["sharpe_benchmark"] = float(dsr.benchmark)
    for head, matrix in trial_scores.items():
        try:
            pbo = probability_of_overfitting(matrix)
        except DataError as error:
            out["pbo"][head] = {"pbo": None, "reason": str(error)}
            continue
        out["pbo"][head] = {
            "pbo": float(pbo.pbo),
            "trials": pbo.n_trials,
            "folds": pbo.n_blocks,
            "combinations": pbo.n_combinations,
            "dropped": pbo.dropped,
        }
    return out
