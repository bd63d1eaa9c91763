"""The risk-multiplier model: scale the next trades' size by the bot's equity state.

The trainer replays an ordered out-of-sample trade sequence from several starting balances.
At every trade it records the state the bot would see *before* that trade (equity, drawdown,
recent win rate, ...) and labels it with the multiplier that would have served the next
``lookahead`` trades best without breaching the profile's drawdown ceiling. A LightGBM
regressor learns state -> multiplier; the bot multiplies its base risk by the clamped output
and falls back to 1.0 (no effect) when the model is missing or disabled.

Before it ships, the model must earn its place (:func:`vetted_risk_model`): fitted on the
earlier trades, it is replayed over the later ones against a constant multiplier of 1.0 and
refused when it loses by the labeller's own score, or when it sizes up in deep drawdown.

Units: a trade return is the fractional change of account equity the trade caused at full
size (``+0.0075`` is +1.5R at 0.5% risk). Equity is in units of the nominal deposit, 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view

from quantrain.errors import ConfigError, DataError, ModelError
from quantrain.models.base import ModelFamily
from quantrain.models.registry import get_family

#: Profile 1..5 -> maximum total drawdown allowed (fraction of the running equity peak).
#: These are defaults only: a job's config overrides them through ``RiskConfig.max_drawdown``.
RISK_PROFILES: dict[int, float] = {1: 0.05, 2: 0.10, 3: 0.15, 4: 0.20, 5: 0.30}
#: Candidate multipliers the labeller tries, smallest first (0.15 .. 1.20 in 9 steps).
MULTIPLIERS: tuple[float, ...] = tuple(float(m) for m in np.round(np.linspace(0.15, 1.20, 9), 4))
#: What the bot may ever apply, whatever the model says.
CLAMP = (0.10, 1.25)
STATE_FEATURES = (
    "equity_ratio",
    "drawdown",
    "win_rate_10",
    "win_rate_20",
    "profit_factor_10",
    "consecutive_losses",
    "atr_pct",
)
#: Profit factor reported when there are wins and no losses (and the cap on any other).
PF_CAP = 10.0
#: Smallest MaxDD the objective divides by: a loss-free path would otherwise score infinity.
MAX_DD_FLOOR = 1e-3
#: The nominal deposit: equity 1.0. A replay starting below it starts in drawdown.
DEPOSIT = 1.0
#: Neutral state values before any trade exists (no evidence either way).
NEUTRAL_WIN_RATE = 0.5
NEUTRAL_PROFIT_FACTOR = 1.0
#: A regressor's parameters: small trees, a fixed budget (no slice is spent on early stopping).
RISK_PARAMS = {
    "n_estimators": 200,
    "early_stopping_rounds": 0,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
}
#: Output name every regressor graph carries (see ``quantrain.models.onnx_outputs``).
VALUE_OUTPUT = "value"
#: Share of the out-of-sample trades, the latest, the held-out score is measured on.
HELDOUT_FRACTION = 0.3
#: Fewest held-out trades a score is taken from (the fit still needs ``min_trades``).
MIN_HELDOUT_TRADES = 20
#: Shipping rule: the model's held-out label score must reach the constant 1.0's plus this
#: share of its magnitude. 0.0: a tie ships, a loss of any size does not.
HELDOUT_MIN_EDGE = 0.0
#: Deep drawdown states the shipped model may not size up in: drawdowns of these shares of
#: the ceiling, after losing runs of these lengths, at these quantiles of the trades' ATR.
DEEP_DRAWDOWN_SHARES = (0.8, 1.0, 1.5)
DEEP_LOSING_RUNS = (5, 10)
CHECK_ATR_QUANTILES = (0.25, 0.5, 0.75)
#: How far above the neutral multiplier a deep-drawdown one may sit before it counts as sizing
#: up: tree noise, well under the 0.13 between candidate multipliers.
DRAWDOWN_TOLERANCE = 0.01


@dataclass(frozen=True)
class RiskConfig:
    """How states are replayed and labelled; ``max_drawdown=None`` takes the profile's."""

    profile: int = 3
    max_drawdown: float | None = None
    lookahead: int = 20
    multipliers: tuple[float, ...] = MULTIPLIERS
    #: Equity (in deposits) each replay starts from: 0.8 starts 20% under the deposit.
    starting_balances: tuple[float, ...] = (0.8, 1.0, 1.2)
    min_trades: int = 40

    def __post_init__(self) -> None:
        if self.max_drawdown is None and self.profile not in RISK_PROFILES:
            raise ConfigError(
                f"risk profile must be one of {sorted(RISK_PROFILES)}, got {self.profile!r}"
            )
        if not 0.0 < self.ceiling < 1.0:
            raise ConfigError(f"max_drawdown must lie in (0, 1), got {self.ceiling!r}")
        if self.lookahead < 1:
            raise ConfigError(f"lookahead must be >= 1, got {self.lookahead}")
        if not self.multipliers or min(self.multipliers) <= 0:
            raise ConfigError(f"multipliers must be positive and non-empty: {self.multipliers}")
        if not self.starting_balances or min(self.starting_balances) <= 0:
            raise ConfigError(f"starting_balances must be positive: {self.starting_balances}")
        if self.min_trades <= self.lookahead:
            raise ConfigError(
                f"min_trades ({self.min_trades}) must exceed lookahead ({self.lookahead})"
            )

    @property
    def ceiling(self) -> float:
        """The drawdown no replayed path may reach."""
        if self.max_drawdown is not None:
            return float(self.max_drawdown)
        return RISK_PROFILES[self.profile]


# ----------------------------------------------------------------------------- state features


def state_features(
    trade_returns: np.ndarray, atr_pct: np.ndarray, *, start_equity: float = 1.0
) -> np.ndarray:
    """Row ``i``: the state before trade ``i``, built from trades ``< i`` only (plus the ATR of
    trade ``i``'s entry bar, known at entry), so the bot can compute it live.

    Columns are :data:`STATE_FEATURES`: equity in deposits (starting at ``start_equity``);
    drawdown ``1 - equity / peak`` where the peak starts at ``max(start_equity, DEPOSIT)``;
    win rates over the last 10 and 20 trades (fewer when fewer exist, 0.5 before the first);
    profit factor over the last 10 (capped at :data:`PF_CAP`, 1.0 before the first trade);
    the current run of losing trades; ``atr_pct`` of trade ``i``.
    """
    returns, atr = _check_inputs(trade_returns, atr_pct)
    n = len(returns)
    equity, peak = _equity_and_peak(returns, start_equity)
    out = np.empty((n, len(STATE_FEATURES)), dtype=np.float64)
    out[:, 0] = equity[:n]
    out[:, 1] = 1.0 - equity[:n] / peak[:n]
    out[:, 2] = _rolling_win_rate(returns, 10)
    out[:, 3] = _rolling_win_rate(returns, 20)
    out[:, 4] = _rolling_profit_factor(returns, 10)
    out[:, 5] = _losing_run(returns)
    out[:, 6] = atr
    return out.astype(np.float32)


def _check_inputs(trade_returns: np.ndarray, atr_pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    returns = np.asarray(trade_returns, dtype=np.float64)
    atr = np.asarray(atr_pct, dtype=np.float64)
    if returns.ndim != 1 or atr.shape != returns.shape:
        raise DataError(
            f"trade returns and atr_pct must be 1-D and equally long, got shapes "
            f"{returns.shape} and {atr.shape}"
        )
    if not np.all(np.isfinite(returns)) or np.any(returns <= -1.0):
        raise DataError("trade returns must be finite fractions of equity above -1 (-100%)")
    return returns, atr


def _equity_and_peak(returns: np.ndarray, start_equity: float) -> tuple[np.ndarray, np.ndarray]:
    """Equity before each trade and after the last (n + 1 values) and its running peak."""
    if not start_equity > 0:
        raise DataError(f"start_equity must be positive, got {start_equity!r}")
    equity = start_equity * np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    peak = np.maximum(np.maximum.accumulate(equity), max(start_equity, DEPOSIT))
    return equity, peak


def _trailing_windows(values: np.ndarray, window: int) -> np.ndarray:
    """Row ``i`` holds ``values[i - window : i]`` (zero-padded): only what precedes ``i``."""
    padded = np.concatenate([np.zeros(window), values])
    return sliding_window_view(padded, window)[: len(values)]


def _history_length(n: int, window: int) -> np.ndarray:
    return np.minimum(np.arange(n), window).astype(np.float64)


def _rolling_win_rate(returns: np.ndarray, window: int) -> np.ndarray:
    wins = _trailing_windows((returns > 0).astype(np.float64), window).sum(axis=1)
    count = _history_length(len(returns), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, wins / count, NEUTRAL_WIN_RATE)


def _rolling_profit_factor(returns: np.ndarray, window: int) -> np.ndarray:
    windows = _trailing_windows(returns, window)
    gain = np.where(windows > 0, windows, 0.0).sum(axis=1)
    loss = -np.where(windows < 0, windows, 0.0).sum(axis=1)
    return _profit_factor(gain, loss)


def _profit_factor(gain: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Gross gain / gross loss, capped; wins without losses -> cap; neither -> neutral 1.0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(loss > 0, gain / np.where(loss > 0, loss, 1.0), PF_CAP)
    ratio = np.where((loss == 0) & (gain == 0), NEUTRAL_PROFIT_FACTOR, ratio)
    return np.minimum(ratio, PF_CAP)


def _losing_run(returns: np.ndarray) -> np.ndarray:
    """Losing trades in a row just before each trade; a win or a flat trade ends the run."""
    run = np.zeros(len(returns), dtype=np.float64)
    current = 0
    for i, r in enumerate(returns):
        run[i] = current
        current = current + 1 if r < 0 else 0
    return run


# --------------------------------------------------------------------------------- objective


def objective(returns: np.ndarray) -> float:
    """WR × PF / √MaxDD of a return sequence compounded from 1.0 (the seed's quality score).

    WR: share of trades with a positive return. PF: gross gain / gross loss, capped at
    :data:`PF_CAP` (so wins without losses score the cap). MaxDD: the largest fall of equity
    from its running peak (the peak starts at 1.0), floored at :data:`MAX_DD_FLOOR` so a
    loss-free path stays finite. No trades -> 0; no wins -> 0 (WR and PF are both 0).
    """
    rows = np.asarray(returns, dtype=np.float64).reshape(1, -1)
    if rows.shape[1] == 0:
        return 0.0
    return float(_objective_rows(rows)[0])


def _objective_rows(rows: np.ndarray) -> np.ndarray:
    """:func:`objective` of every row of a 2-D return matrix."""
    win_rate = (rows > 0).mean(axis=1)
    gain = np.where(rows > 0, rows, 0.0).sum(axis=1)
    loss = -np.where(rows < 0, rows, 0.0).sum(axis=1)
    pf = np.where(gain > 0, _profit_factor(gain, loss), 0.0)
    equity = _compound(rows, 1.0)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), 1.0)
    max_dd = np.max(1.0 - equity / peak, axis=1)
    return np.asarray(win_rate * pf / np.sqrt(np.maximum(max_dd, MAX_DD_FLOOR)))


def _compound(rows: np.ndarray, start: np.ndarray | float) -> np.ndarray:
    """Equity after each trade of each row; a trade losing everything leaves 0, not less."""
    return np.asarray(start * np.cumprod(np.maximum(1.0 + rows, 0.0), axis=1))


def label_score(returns: np.ndarray) -> float:
    """What a label maximises: ``objective(returns) × (compounded return)``.

    WR and PF do not change when every return is scaled by a multiplier ``m`` and MaxDD grows
    about linearly with ``m``, so the objective alone would always pick the smallest multiplier.
    Weighting it by the compounded return makes the score grow like √m on a window that pays
    and fall like -√m on one that loses: the label is the largest size the drawdown ceiling
    allows ahead of winning trades and the smallest ahead of losing ones.
    """
    rows = np.asarray(returns, dtype=np.float64).reshape(1, -1)
    if rows.shape[1] == 0:
        return 0.0
    return float(_score_rows(rows)[0])


def _score_rows(rows: np.ndarray) -> np.ndarray:
    growth = _compound(rows, 1.0)[:, -1] - 1.0
    return _objective_rows(rows) * growth


# ------------------------------------------------------------------------------------ labels


def risk_labels(
    trade_returns: np.ndarray, atr_pct: np.ndarray, config: RiskConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Replay the trades from every starting balance; one ``(state, multiplier)`` row per trade
    ``i`` with ``lookahead`` trades from ``i`` on (``i + lookahead <= n``).

    The replayed history runs at full size (multiplier 1). Candidate ``m`` then scales
    ``returns[i : i + lookahead]``; it *qualifies* when equity ``E_i · Π(1 + m·r)`` keeps its
    drawdown ``1 - E / peak`` strictly below the ceiling at the state and after every trade of
    the window, where ``peak`` is the running maximum since the replay began (starting at
    ``max(balance, DEPOSIT)``), so drawdown already suffered counts. The label is the qualifying
    ``m`` with the highest :func:`label_score` of ``m · window``; exact ties go to the smaller
    multiplier; if none qualifies (e.g. the state is already at the ceiling), the smallest.

    Returns ``X`` (rows, 7) float32 grouped by starting balance, then trade; ``y`` (rows,).
    """
    returns, atr = _check_inputs(trade_returns, atr_pct)
    horizon = config.lookahead
    multipliers = np.array(sorted(config.multipliers), dtype=np.float64)
    n_states = len(returns) - horizon + 1
    if n_states <= 0:
        return np.empty((0, len(STATE_FEATURES)), dtype=np.float32), np.empty(0)
    windows = sliding_window_view(returns, horizon)[:n_states]
    # The score only depends on the window, not on the balance: compute it once per multiplier.
    scores = np.stack([_score_rows(m * windows) for m in multipliers], axis=1)
    xs, ys = [], []
    for balance in config.starting_balances:
        equity, peak = _equity_and_peak(returns, balance)
        qualifies = np.stack(
            [
                _stays_under(equity[:n_states], peak[:n_states], m * windows, config.ceiling)
                for m in multipliers
            ],
            axis=1,
        )
        masked = np.where(qualifies, scores, -np.inf)
        best = np.argmax(masked, axis=1)  # first maximum = smallest multiplier on ties
        best = np.where(qualifies.any(axis=1), best, 0)
        xs.append(state_features(returns, atr, start_equity=balance)[:n_states])
        ys.append(multipliers[best])
    return np.concatenate(xs), np.concatenate(ys)


def _stays_under(
    equity: np.ndarray, peak: np.ndarray, scaled: np.ndarray, ceiling: float
) -> np.ndarray:
    """Per state: does the path from ``equity`` keep ``1 - E/peak`` below ``ceiling``?"""
    path = _compound(scaled, equity[:, None])
    running = np.maximum(np.maximum.accumulate(path, axis=1), peak[:, None])
    worst = np.max(1.0 - path / running, axis=1)
    return np.asarray((worst < ceiling) & (1.0 - equity / peak < ceiling))


# ------------------------------------------------------------------------------ train, apply


def train_risk_model(
    trade_returns: np.ndarray, atr_pct: np.ndarray, config: RiskConfig, *, seed: int = 0
) -> ModelFamily:
    """Fit the LightGBM regressor state -> multiplier on :func:`risk_labels`.

    Refuses short sequences: a few trades say nothing about how equity states play out.
    """
    n = len(np.asarray(trade_returns))
    if n < config.min_trades:
        raise ModelError(
            f"the risk model needs at least {config.min_trades} out-of-sample trades, got {n}; "
            "run a longer backtest or lower risk.min_trades"
        )
    X, y = risk_labels(trade_returns, atr_pct, config)
    family = get_family("lightgbm")
    model = family("regression", RISK_PARAMS, seed=seed)
    return model.fit(X, y)


def clamp_multiplier(values: np.ndarray) -> np.ndarray:
    """Bound to :data:`CLAMP`; NaN (no usable answer) becomes 1.0, the no-effect multiplier."""
    array = np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(array), 1.0, np.clip(array, CLAMP[0], CLAMP[1]))


def predict_multiplier(model: ModelFamily | None, state: np.ndarray) -> np.ndarray:
    """Multiplier per state row; a missing or disabled model (None) leaves sizing at 1.0."""
    rows = np.asarray(state, dtype=np.float64)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    if model is None:
        return np.ones(len(rows))
    return clamp_multiplier(model.predict(rows))


def clip_onnx_output(
    graph: onnx.ModelProto, low: float = CLAMP[0], high: float = CLAMP[1]
) -> onnx.ModelProto:
    """A copy of a regressor graph whose ``value`` output is clipped to ``[low, high]``.

    A bot that runs the ONNX graph directly then gets the same bound as
    :func:`predict_multiplier` without re-implementing it. The output keeps its name. The
    graph's opset is left alone (the tree converters emit ai.onnx opset 8): from opset 11 Clip
    takes its bounds as inputs (initializers here), before that as attributes.
    """
    outputs = [out.name for out in graph.graph.output]
    if VALUE_OUTPUT not in outputs:
        raise ModelError(f"expected a regressor graph with output {VALUE_OUTPUT!r}, got {outputs}")
    opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 6:
        raise ModelError(f"clipping needs ai.onnx opset >= 6, the graph has {opset}")
    clipped = onnx.ModelProto()
    clipped.CopyFrom(graph)
    body = clipped.graph
    taken = {name for node in body.node for name in (*node.input, *node.output)}
    taken |= {init.name for init in body.initializer} | {i.name for i in body.input}
    raw = _fresh("value_raw", taken)
    for node in body.node:
        for i, name in enumerate(node.output):
            if name == VALUE_OUTPUT:
                node.output[i] = raw
    if opset >= 11:
        elem = next(o for o in body.output if o.name == VALUE_OUTPUT).type.tensor_type.elem_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
        lo, hi = _fresh("clip_low", taken), _fresh("clip_high", taken)
        body.initializer.extend(
            [
                onnx.numpy_helper.from_array(np.array(low, dtype=dtype), lo),
                onnx.numpy_helper.from_array(np.array(high, dtype=dtype), hi),
            ]
        )
        clip = onnx.helper.make_node("Clip", [raw, lo, hi], [VALUE_OUTPUT])
    else:
        clip = onnx.helper.make_node("Clip", [raw], [VALUE_OUTPUT], min=float(low), max=float(high))
    body.node.append(clip)
    return clipped


def _fresh(name: str, taken: set[str]) -> str:
    candidate, k = name, 0
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    taken.add(candidate)
    return candidate


# -------------------------------------------------------------------------- held-out vetting


@dataclass(frozen=True)
class RiskOutcome:
    """What training the risk head gave: the model to ship (None: bots use 1.0), a note for
    the evaluation, and the held-out report (None when no held-out replay was run)."""

    model: ModelFamily | None
    note: str
    heldout: dict[str, float] | None


@dataclass(frozen=True)
class HeldoutSplit:
    """Trades ``[0, evaluation_start)`` are fitted, ``[evaluation_start, n)`` held out.

    Chronological, never shuffled. A label reads ``lookahead`` trades ahead of its state, so the
    fit's states stop ``lookahead`` trades short of the evaluation: the last fit state is trade
    ``evaluation_start - lookahead`` and its label reads up to ``evaluation_start - 1``. Those
    gap trades are look-ahead for the fit's last labels only; no fit label reads a held-out one.
    """

    n: int
    evaluation_start: int
    lookahead: int

    @property
    def fit(self) -> slice:
        return slice(0, self.evaluation_start)

    @property
    def evaluation(self) -> slice:
        return slice(self.evaluation_start, self.n)

    @property
    def last_fit_state(self) -> int:
        return self.evaluation_start - self.lookahead


def heldout_split(n: int, config: RiskConfig) -> HeldoutSplit | None:
    """Hold out the latest :data:`HELDOUT_FRACTION` of ``n`` trades (at least
    :data:`MIN_HELDOUT_TRADES`); None when the rest is shorter than ``config.min_trades``."""
    held = max(math.ceil(HELDOUT_FRACTION * n), MIN_HELDOUT_TRADES)
    if n - held < config.min_trades:
        return None
    return HeldoutSplit(n=n, evaluation_start=n - held, lookahead=config.lookahead)


def replay_with_model(
    model: ModelFamily | None,
    trade_returns: np.ndarray,
    atr_pct: np.ndarray,
    *,
    start_equity: float = DEPOSIT,
) -> tuple[np.ndarray, np.ndarray]:
    """Replay trades as a bot would: before each trade, compute the state from the *multiplied*
    equity path so far (:func:`state_features`, causal), ask the model, scale the trade.

    Returns the multipliers applied and the multiplied returns. ``model=None`` is the constant
    1.0: the trades as they were. A scaled loss cannot take more than the whole account.
    """
    returns, atr = _check_inputs(trade_returns, atr_pct)
    if model is None:
        return np.ones(len(returns)), returns.copy()
    multipliers = np.empty(len(returns))
    applied = np.empty(len(returns))
    worst = np.nextafter(-1.0, 0.0)
    for i, r in enumerate(returns):
        # Row i of the state reads trades < i only: the placeholder for trade i is never read.
        history = np.append(applied[:i], 0.0)
        state = state_features(history, atr[: i + 1], start_equity=start_equity)[-1]
        multipliers[i] = predict_multiplier(model, state)[0]
        applied[i] = max(multipliers[i] * r, worst)
    return multipliers, applied


def path_metrics(returns: np.ndarray, ceiling: float) -> dict[str, float]:
    """Total return, max drawdown (peak starting at the deposit), :func:`objective`,
    :func:`label_score`, and 1.0 when the drawdown reached ``ceiling`` (0.0 otherwise)."""
    rows = np.asarray(returns, dtype=np.float64).reshape(1, -1)
    equity = np.concatenate([[DEPOSIT], _compound(rows, DEPOSIT)[0]])
    max_dd = float(np.max(1.0 - equity / np.maximum.accumulate(equity)))
    return {
        "total_return": float(equity[-1] / DEPOSIT - 1.0),
        "max_drawdown": max_dd,
        "objective": objective(rows[0]),
        "label_score": label_score(rows[0]),
        "breached": float(max_dd >= ceiling),
    }


def heldout_report(
    model: ModelFamily | None, trade_returns: np.ndarray, atr_pct: np.ndarray, config: RiskConfig
) -> dict[str, float]:
    """The held-out trades replayed from the deposit with the model (``model_*``) and with a
    constant 1.0 (``constant_*``): :func:`path_metrics` of each, the trade count and the
    model's mean multiplier."""
    multipliers, applied = replay_with_model(model, trade_returns, atr_pct)
    _, constant = replay_with_model(None, trade_returns, atr_pct)
    report = {"trades": float(len(applied)), "mean_multiplier": float(multipliers.mean())}
    for prefix, path in (("model", applied), ("constant", constant)):
        report |= {f"{prefix}_{k}": v for k, v in path_metrics(path, config.ceiling).items()}
    return report


def loses_to_constant(report: dict[str, float]) -> bool:
    """The labeller's own rule, applied to the held-out replay: staying under the ceiling comes
    first, then :func:`label_score`. A model that breaches where the constant does not loses;
    otherwise it loses when its score is below the constant's plus :data:`HELDOUT_MIN_EDGE` × the
    constant's magnitude."""
    if report["model_breached"] != report["constant_breached"]:
        return bool(report["model_breached"])
    constant = report["constant_label_score"]
    return report["model_label_score"] < constant + HELDOUT_MIN_EDGE * abs(constant)


@dataclass(frozen=True)
class DrawdownCheck:
    """The model's multiplier in a neutral state and its largest in any deep drawdown state,
    compared at the same ATR (``excess``: the worst deep-minus-neutral difference). Passed
    when no deep state sizes more than :data:`DRAWDOWN_TOLERANCE` above the neutral one."""

    neutral: float
    deep: float
    excess: float

    @property
    def passed(self) -> bool:
        return self.excess <= DRAWDOWN_TOLERANCE


@dataclass(frozen=True)
class TradeProfile:
    """What the trades look like on average: the rates a neutral state shows."""

    win_rate: float
    mean_win: float
    mean_loss: float  # a positive size

    @classmethod
    def of(cls, trade_returns: np.ndarray) -> TradeProfile:
        returns = np.asarray(trade_returns, dtype=np.float64)
        wins, losses = returns[returns > 0], -returns[returns < 0]
        return cls(
            win_rate=float(len(wins) / len(returns)) if len(returns) else NEUTRAL_WIN_RATE,
            mean_win=float(wins.mean()) if len(wins) else 0.0,
            mean_loss=float(losses.mean()) if len(losses) else 0.0,
        )

    def state(self, *, drawdown: float, losing_run: int, atr: float) -> list[float]:
        """A state ``drawdown`` under a deposit peak, after ``losing_run`` losses in a row; the
        trades before the run won at :attr:`win_rate` with the mean win and loss sizes."""
        others_10, others_20 = max(10 - losing_run, 0), max(20 - losing_run, 0)
        gain = self.win_rate * others_10 * self.mean_win
        loss = (losing_run + (1 - self.win_rate) * others_10) * self.mean_loss
        return [
            DEPOSIT * (1.0 - drawdown),
            drawdown,
            self.win_rate * others_10 / 10,
            self.win_rate * others_20 / 20,
            float(_profit_factor(np.array([gain]), np.array([loss]))[0]),
            float(losing_run),
            atr,
        ]


def deep_drawdown_states(
    trade_returns: np.ndarray, atr_pct: np.ndarray, config: RiskConfig
) -> np.ndarray:
    """States at least ``min(DEEP_DRAWDOWN_SHARES)`` of the ceiling under the peak after at
    least ``min(DEEP_LOSING_RUNS)`` losses in a row: a grid built from the trades' profile
    (:data:`DEEP_DRAWDOWN_SHARES` × :data:`DEEP_LOSING_RUNS` at :data:`CHECK_ATR_QUANTILES` of
    their ATR), plus every such state the replays of the trades themselves pass through."""
    returns, atr = _check_inputs(trade_returns, atr_pct)
    profile = TradeProfile.of(returns)
    grid = [
        profile.state(drawdown=share * config.ceiling, losing_run=run, atr=float(level))
        for level in np.quantile(atr, CHECK_ATR_QUANTILES)
        for share in DEEP_DRAWDOWN_SHARES
        for run in DEEP_LOSING_RUNS
    ]
    replayed = np.concatenate(
        [state_features(returns, atr, start_equity=b) for b in config.starting_balances]
    )
    deep = (replayed[:, 1] >= min(DEEP_DRAWDOWN_SHARES) * config.ceiling) & (
        replayed[:, 5] >= min(DEEP_LOSING_RUNS)
    )
    return np.concatenate([np.array(grid, dtype=np.float32), replayed[deep]])


def drawdown_check(
    model: ModelFamily, config: RiskConfig, trade_returns: np.ndarray, atr_pct: np.ndarray
) -> DrawdownCheck:
    """Does the model size up in deep drawdown? Each of :func:`deep_drawdown_states` is compared
    with the neutral state at its ATR: at the deposit, no drawdown, no losing run, the win rate
    and profit factor of the trades (:class:`TradeProfile`)."""
    profile = TradeProfile.of(trade_returns)
    deep = deep_drawdown_states(trade_returns, atr_pct, config)
    rest = np.array(
        [profile.state(drawdown=0.0, losing_run=0, atr=float(level)) for level in deep[:, 6]],
        dtype=np.float32,
    )
    down, neutral = predict_multiplier(model, deep), predict_multiplier(model, rest)
    i = int(np.argmax(down - neutral))
    return DrawdownCheck(
        neutral=float(neutral[i]), deep=float(down[i]), excess=float(down[i] - neutral[i])
    )


def vetted_risk_model(
    trade_returns: np.ndarray, atr_pct: np.ndarray, config: RiskConfig, *, seed: int = 0
) -> RiskOutcome:
    """Fit on the earlier trades, score on the held-out later ones, refit on all and ship, or
    refuse (model None, bots use 1.0) with a note saying why.

    Refused: too few trades to fit and hold out; held out, the early fit loses to the constant
    1.0 (:func:`loses_to_constant`); the refitted model sizes up in deep drawdown
    (:func:`drawdown_check`). The shipped model is refitted on all trades: the latest trades are
    the nearest to live trading and an early-fit model would never see them. The held-out
    report therefore scores the procedure (fit on the past, trade the future), not these trees.
    """
    returns, atr = _check_inputs(trade_returns, atr_pct)
    n = len(returns)
    split = heldout_split(n, config)
    if split is None:
        needed = config.min_trades + MIN_HELDOUT_TRADES
        return RiskOutcome(
            None,
            f"risk model not trained: {n} out-of-sample trades, it needs {needed} "
            f"({config.min_trades} to fit, {MIN_HELDOUT_TRADES} held out); bots use a "
            "multiplier of 1.0",
            None,
        )
    early = train_risk_model(returns[split.fit], atr[split.fit], config, seed=seed)
    report = {
        "fit_trades": float(split.evaluation_start),
        **heldout_report(early, returns[split.evaluation], atr[split.evaluation], config),
    }
    scored = _heldout_summary(report, config)
    if loses_to_constant(report):
        return RiskOutcome(
            None, f"risk model not shipped: it loses to a constant 1.0 held out ({scored})", report
        )
    model = train_risk_model(returns, atr, config, seed=seed)
    check = drawdown_check(model, config, returns, atr)
    if not check.passed:
        return RiskOutcome(
            None,
            f"risk model not shipped: it sizes up in deep drawdown (≥ "
            f"{DEEP_DRAWDOWN_SHARES[0]:.0%} of the {config.ceiling:.0%} ceiling, losing runs of "
            f"{DEEP_LOSING_RUNS[0]}+): {check.deep:.2f} there against {check.neutral:.2f} in a "
            "neutral state; bots use a multiplier of 1.0",
            report,
        )
    return RiskOutcome(
        model,
        f"risk model trained on {n} out-of-sample trades (profile {config.profile}, drawdown "
        f"ceiling {config.ceiling:.0%}); held out ({scored}); its output is clamped to "
        f"[{CLAMP[0]:.2f}, {CLAMP[1]:.2f}]",
        report,
    )


def _heldout_summary(report: dict[str, float], config: RiskConfig) -> str:
    def side(prefix: str) -> str:
        breach = ", ceiling breached" if report[f"{prefix}_breached"] else ""
        return (
            f"score {report[f'{prefix}_label_score']:.4g}, return "
            f"{report[f'{prefix}_total_return']:+.2%}, max drawdown "
            f"{report[f'{prefix}_max_drawdown']:.2%}{breach}"
        )

    return (
        f"last {report['trades']:.0f} trades after fitting on {report['fit_trades']:.0f}: "
        f"model {side('model')}, mean multiplier {report['mean_multiplier']:.2f}; "
        f"constant 1.0 {side('constant')}; ceiling {config.ceiling:.0%}"
    )
