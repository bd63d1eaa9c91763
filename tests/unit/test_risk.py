"""The risk-multiplier model: causal equity states, hand-checked labels, a bounded multiplier,
and the held-out vetting that decides whether it ships."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantrain.errors import ConfigError, ModelError
from quantrain.evaluate import risk as risk_module
from quantrain.evaluate.risk import (
    CLAMP,
    DEEP_DRAWDOWN_SHARES,
    DEEP_LOSING_RUNS,
    DRAWDOWN_TOLERANCE,
    HELDOUT_FRACTION,
    MAX_DD_FLOOR,
    MIN_HELDOUT_TRADES,
    MULTIPLIERS,
    PF_CAP,
    RISK_PROFILES,
    STATE_FEATURES,
    RiskConfig,
    TradeProfile,
    clamp_multiplier,
    clip_onnx_output,
    deep_drawdown_states,
    drawdown_check,
    heldout_split,
    label_score,
    loses_to_constant,
    objective,
    path_metrics,
    predict_multiplier,
    replay_with_model,
    risk_labels,
    state_features,
    train_risk_model,
    vetted_risk_model,
)
from quantrain.models.base import ModelFamily
from quantrain.models.onnx_outputs import INPUT_NAME
from quantrain.models.registry import get_family
from quantrain.package.session import onnx_session

W, L = 0.02, -0.01
#: 10 wins, 10 losses, 6 wins: states 0..21 have a full 5-trade window ahead.
HAND = np.array([W] * 10 + [L] * 10 + [W] * 6)
HAND_ATR = np.linspace(0.001, 0.026, len(HAND))


def hand_config(max_drawdown: float, balances: tuple[float, ...] = (1.0,)) -> RiskConfig:
    return RiskConfig(
        max_drawdown=max_drawdown,
        lookahead=5,
        multipliers=(0.5, 1.0, 1.5),
        starting_balances=balances,
        min_trades=10,
    )


def realistic_trades(n: int = 300, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """~40% wins of +1.5R, losses of -1R at 0.5% risk, with streaks (a sticky win/loss chain)."""
    rng = np.random.default_rng(seed)
    wins = np.empty(n, dtype=bool)
    previous = bool(rng.random() < 0.4)
    for i in range(n):
        previous = bool(rng.random() < (0.55 if previous else 0.30))  # stationary rate 0.40
        wins[i] = previous
    returns = np.where(wins, 1.5 * 0.005, -0.005) * rng.uniform(0.8, 1.2, n)
    atr = rng.lognormal(np.log(0.005), 0.3, n)
    return returns, atr


def streaky_trades(
    n: int, seed: int, *, stay_win: float, stay_loss: float
) -> tuple[np.ndarray, np.ndarray]:
    """+1.5R wins and -1R losses at 0.5% risk from a two-state chain: after a win the next trade
    wins with ``stay_win``, after a loss it loses with ``stay_loss``."""
    rng = np.random.default_rng(seed)
    wins = np.empty(n, dtype=bool)
    previous = bool(rng.random() < 0.5)
    for i in range(n):
        previous = bool(rng.random() < (stay_win if previous else 1.0 - stay_loss))
        wins[i] = previous
    returns = np.where(wins, 1.5 * 0.005, -0.005) * rng.uniform(0.8, 1.2, n)
    return returns, rng.lognormal(np.log(0.005), 0.3, n)


class RuleModel:
    """A stand-in fitted model: multiplier ``base + slope × drawdown``; records what it is asked."""

    def __init__(self, base: float, slope: float) -> None:
        self.base, self.slope = base, slope
        self.seen: list[np.ndarray] = []

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.seen.append(np.array(X))
        return self.base + self.slope * np.asarray(X)[:, 1]


class SizesUpInDrawdown:
    """A fitted model with the top of the clamp bolted on wherever drawdown is deep."""

    def __init__(self, inner: ModelFamily, ceiling: float) -> None:
        self.inner, self.ceiling = inner, ceiling

    def predict(self, X: np.ndarray) -> np.ndarray:
        deep = np.asarray(X)[:, 1] >= min(DEEP_DRAWDOWN_SHARES) * self.ceiling
        return np.where(deep, CLAMP[1], self.inner.predict(X))


@pytest.fixture(scope="module")
def trained() -> tuple[ModelFamily, np.ndarray, np.ndarray]:
    returns, atr = realistic_trades()
    X, y = risk_labels(returns, atr, RiskConfig())
    return train_risk_model(returns, atr, RiskConfig(), seed=3), X, y


# ----------------------------------------------------------------------------------- config


def test_config_takes_the_profile_ceiling_unless_overridden() -> None:
    assert RiskConfig(profile=1).ceiling == RISK_PROFILES[1]
    assert RiskConfig(profile=1, max_drawdown=0.42).ceiling == 0.42
    assert len(MULTIPLIERS) == 9
    assert (MULTIPLIERS[0], MULTIPLIERS[-1]) == (0.15, 1.2)
    with pytest.raises(ConfigError, match="risk profile"):
        RiskConfig(profile=9)
    with pytest.raises(ConfigError, match="max_drawdown"):
        RiskConfig(max_drawdown=1.5)


# ------------------------------------------------------------------------------- objective


def test_objective_edge_cases() -> None:
    assert objective(np.array([])) == 0.0  # no trades
    assert objective(np.array([-0.01, -0.02])) == 0.0  # no wins: WR = PF = 0
    assert objective(np.zeros(4)) == 0.0  # flat trades are not wins
    # No losses: PF = cap, MaxDD 0 -> floor.
    assert objective(np.array([0.01, 0.02])) == pytest.approx(PF_CAP / math.sqrt(MAX_DD_FLOOR))
    # WR 2/3, PF 0.03/0.01 = 3, MaxDD 0.01 -> 2 / 0.1 = 20.
    assert objective(np.array([0.02, -0.01, 0.01])) == pytest.approx(20.0)
    # PF 100 is capped to 10; MaxDD 1e-4 is floored to 1e-3: 0.5 * 10 / sqrt(1e-3).
    assert objective(np.array([0.01, -0.0001])) == pytest.approx(5 / math.sqrt(1e-3))


def test_label_score_follows_the_sign_of_the_window() -> None:
    assert label_score(np.array([0.02, -0.01, 0.01])) > 0
    assert label_score(np.array([0.01, -0.02, -0.01])) < 0
    assert label_score(np.array([])) == 0.0
    # WR and PF ignore scale, so the objective alone prefers the smaller size; the score does not.
    window = np.array([0.02, -0.01, 0.01])
    assert objective(0.5 * window) > objective(window)
    assert label_score(0.5 * window) < label_score(window)


# ------------------------------------------------------------------------- state features


def test_state_features_by_hand() -> None:
    X = state_features(HAND, HAND_ATR)
    assert X.shape == (len(HAND), len(STATE_FEATURES))
    assert X.dtype == np.float32
    # Before any trade: deposit equity, no drawdown, neutral rates and PF, no losing run.
    np.testing.assert_allclose(X[0], [1.0, 0.0, 0.5, 0.5, 1.0, 0.0, HAND_ATR[0]], rtol=1e-6)
    # Before trade 12: 10 wins then 2 losses. Last 10 = trades 2..11: 8 wins (0.16), 2 losses
    # (0.02) -> WR 0.8, PF 8; last 20 = all 12 so far -> 10/12; drawdown 1 - 0.99².
    expected = [1.02**10 * 0.99**2, 1 - 0.99**2, 0.8, 10 / 12, 8.0, 2.0, HAND_ATR[12]]
    np.testing.assert_allclose(X[12], expected, rtol=1e-5)
    # Before trade 21: one win after 10 losses ends the losing run.
    assert X[21, 5] == 0.0
    assert X[20, 5] == 10.0
    # A replay starting at 0.8 deposits starts 20% under its peak (the deposit).
    start_low = state_features(HAND, HAND_ATR, start_equity=0.8)
    np.testing.assert_allclose(start_low[0, :2], [0.8, 0.2], rtol=1e-6)
    # Above the deposit, the peak is the starting balance.
    np.testing.assert_allclose(state_features(HAND, HAND_ATR, start_equity=1.2)[0, :2], [1.2, 0])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    cut=st.floats(0, 1, exclude_max=True),
)
def test_state_features_are_causal(seed: int, n: int, cut: float) -> None:
    """Changing trade i and later (and the ATR of later entries) never moves rows <= i."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.01, n)
    atr = rng.uniform(0.001, 0.02, n)
    i = int(cut * n)
    changed_returns, changed_atr = returns.copy(), atr.copy()
    changed_returns[i:] = rng.normal(0.0, 0.05, n - i)
    changed_atr[i + 1 :] = rng.uniform(0.001, 0.02, n - i - 1)
    before = state_features(returns, atr, start_equity=0.9)
    after = state_features(changed_returns, changed_atr, start_equity=0.9)
    np.testing.assert_array_equal(before[: i + 1], after[: i + 1])


# ---------------------------------------------------------------------------------- labels


def test_labels_pick_the_best_candidate_by_hand() -> None:
    X, y = risk_labels(HAND, HAND_ATR, hand_config(0.04))
    assert X.shape == (len(HAND) - 5 + 1, 7)
    assert y.shape == (len(X),)
    np.testing.assert_array_equal(X, state_features(HAND, HAND_ATR)[: len(X)])

    # State 0, window W W W W W: WR 1, PF = cap 10, MaxDD 0 -> floor, objective 10/√0.001
    # ≈ 316.23 for every m; compounded return (1 + 0.02m)^5 - 1 = 0.0510, 0.1041, 0.1593 for
    # m = 0.5, 1.0, 1.5 -> the score grows with m and nothing falls: 1.5.
    for m, growth in [(0.5, 0.05101), (1.0, 0.10408), (1.5, 0.15927)]:
        assert objective(m * HAND[0:5]) == pytest.approx(316.2278, rel=1e-5)
        assert label_score(m * HAND[0:5]) == pytest.approx(316.2278 * growth, rel=1e-3)
    assert y[0] == 1.5

    # State 9, window W L L L L loses at any size (1.01·0.995⁴ - 1 = -0.0100 at m = 0.5,
    # 1.02·0.99⁴ - 1 = -0.0202 at m = 1): WR 0.2 × PF 0.5 = 0.1; MaxDD 1 - 0.995⁴ = 0.01985
    # -> objective 0.7098, score -0.00713; m = 1: MaxDD 0.03940 -> 0.5038, score -0.01017.
    # The least negative score is the smallest multiplier.
    assert objective(0.5 * HAND[9:14]) == pytest.approx(0.70977, rel=1e-4)
    assert label_score(0.5 * HAND[9:14]) == pytest.approx(-0.0071325, rel=1e-3)
    assert label_score(1.0 * HAND[9:14]) == pytest.approx(-0.010172, rel=1e-3)
    assert y[9] == 0.5


def test_the_drawdown_ceiling_vetoes_the_best_score() -> None:
    # State 8, window W W L L L: WR 0.4 × PF (0.04m / 0.03m = 4/3) = 0.5333 at every m.
    #   m = 0.5: MaxDD 1 - 0.995³ = 0.014925 -> objective 4.3655; growth 1.01²·0.995³ - 1
    #            = 0.004875 -> score 0.02128
    #   m = 1.0: MaxDD 1 - 0.99³  = 0.029701 -> objective 3.0946; growth 0.009499 -> 0.02940
    #   m = 1.5: MaxDD 1 - 0.985³ = 0.044337 -> objective 2.5329; growth 0.013872 -> 0.03514
    # m = 1.5 scores best but falls 4.43% from the peak: with a 4% ceiling 1.0 is chosen.
    window = HAND[8:13]
    for m, obj, score in [(0.5, 4.3655, 0.02128), (1.0, 3.0946, 0.02940), (1.5, 2.5329, 0.03514)]:
        assert objective(m * window) == pytest.approx(obj, rel=1e-4)
        assert label_score(m * window) == pytest.approx(score, rel=1e-3)
    assert risk_labels(HAND, HAND_ATR, hand_config(0.04))[1][8] == 1.0
    assert risk_labels(HAND, HAND_ATR, hand_config(0.05))[1][8] == 1.5

    # State 19 carries history: 10 wins then 9 losses, 1 - 0.99⁹ = 8.65% under the peak.
    # Window L W W W W pays at every size (0.985·1.03⁴ - 1 = 0.1086 at m = 1.5), so the score
    # prefers 1.5 (WR 0.8 × PF 8 / √0.015 × 0.1086 = 5.68 vs 64 × 0.0716 = 4.58 at m = 1);
    # but the first loss takes the drawdown from the replay's peak to 1 - 0.99⁹·(1 - 0.01m):
    # 9.11% (0.5), 9.56% (1.0), 10.02% (1.5) -> a 10% ceiling vetoes 1.5.
    assert label_score(1.5 * HAND[19:24]) == pytest.approx(5.677, rel=1e-3)
    assert label_score(1.0 * HAND[19:24]) == pytest.approx(4.583, rel=1e-3)
    assert risk_labels(HAND, HAND_ATR, hand_config(0.10))[1][19] == 1.0


def test_no_qualifying_multiplier_falls_back_to_the_smallest() -> None:
    # State 19 is already 8.65% under its peak: with a 4% ceiling every size is in breach.
    assert risk_labels(HAND, HAND_ATR, hand_config(0.04))[1][19] == 0.5
    # A replay starting at 0.8 deposits is 20% down before its first trade: state 0's all-win
    # window (1.5 from a 1.0 start) gets the smallest multiplier.
    X, y = risk_labels(HAND, HAND_ATR, hand_config(0.04, balances=(1.0, 0.8)))
    n_states = len(HAND) - 5 + 1
    assert y[0] == 1.5
    assert X[n_states, 0] == pytest.approx(0.8)
    assert X[n_states, 1] == pytest.approx(0.2)
    assert y[n_states] == 0.5


def test_too_short_a_sequence_gives_no_rows() -> None:
    X, y = risk_labels(HAND[:4], HAND_ATR[:4], hand_config(0.1))
    assert X.shape == (0, 7)
    assert y.shape == (0,)


# ------------------------------------------------------------------------- train and apply


def test_the_model_learns_from_the_equity_state(
    trained: tuple[ModelFamily, np.ndarray, np.ndarray],
) -> None:
    model, X, y = trained
    predicted = predict_multiplier(model, X)
    assert predicted.std() > 0.1  # not a constant
    assert np.corrcoef(predicted, y)[0, 1] > 0.5
    # Rows at or beyond the 15% ceiling (the replay that starts 20% down) size down.
    breached = X[:, 1] >= RiskConfig().ceiling
    assert breached.any()
    assert predicted[breached].mean() < predicted[~breached].mean() - 0.2
    # Deterministic with the seed.
    returns, atr = realistic_trades()
    again = train_risk_model(returns, atr, RiskConfig(), seed=3)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


@settings(max_examples=50, deadline=None)
@given(
    states=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 20), st.just(len(STATE_FEATURES))),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
    )
)
def test_the_multiplier_is_always_within_the_clamp(
    trained: tuple[ModelFamily, np.ndarray, np.ndarray], states: np.ndarray
) -> None:
    multiplier = predict_multiplier(trained[0], states)
    assert multiplier.shape == (len(states),)
    assert np.all((multiplier >= CLAMP[0]) & (multiplier <= CLAMP[1]))


def test_clamp_and_the_missing_model() -> None:
    np.testing.assert_array_equal(
        clamp_multiplier(np.array([np.nan, np.inf, -np.inf, 0.0, 0.5, 3.0])),
        [1.0, 1.25, 0.10, 0.10, 0.5, 1.25],
    )
    np.testing.assert_array_equal(predict_multiplier(None, np.zeros((4, 7))), np.ones(4))
    assert predict_multiplier(None, np.zeros(7)).shape == (1,)


def test_too_few_trades_is_refused() -> None:
    returns, atr = realistic_trades(n=39)
    with pytest.raises(ModelError, match=r"at least 40 out-of-sample trades, got 39"):
        train_risk_model(returns, atr, RiskConfig())


# ------------------------------------------------------------------------------------ ONNX


def run_value(graph: onnx.ModelProto, X: np.ndarray) -> tuple[list[str], np.ndarray]:
    session = onnx_session(graph.SerializeToString())
    names = [out.name for out in session.get_outputs()]
    (value,) = session.run(None, {INPUT_NAME: X.astype(np.float32)})
    return names, np.asarray(value, dtype=np.float64).reshape(-1)


def test_clipped_graph_matches_the_clamped_native_model() -> None:
    # A regressor whose raw output spans [-1, 3], well outside the clamp on both sides.
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (400, len(STATE_FEATURES))).astype(np.float32)
    y = 4 * X[:, 0] - 1
    family = get_family("lightgbm")
    params = {"n_estimators": 60, "early_stopping_rounds": 0, "min_data_in_leaf": 5}
    model = family("regression", params, seed=0).fit(X, y)
    native = model.predict(X)
    assert native.min() < CLAMP[0] and native.max() > CLAMP[1]

    graph = model.to_onnx()
    before = graph.SerializeToString()
    clipped = clip_onnx_output(graph)
    assert graph.SerializeToString() == before  # the input graph is left alone
    onnx.checker.check_model(clipped)
    names, value = run_value(clipped, X)
    assert names == ["value"]
    np.testing.assert_allclose(value, clamp_multiplier(native), atol=1e-5)

    # From opset 11 the bounds are initializers, not attributes: same answer.
    modern = onnx.ModelProto()
    modern.CopyFrom(graph)
    for entry in modern.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 15
    clipped15 = clip_onnx_output(modern)
    assert clipped15.graph.node[-1].op_type == "Clip"
    assert len(clipped15.graph.node[-1].input) == 3
    onnx.checker.check_model(clipped15)
    names, value15 = run_value(clipped15, X)
    assert names == ["value"]
    np.testing.assert_allclose(value15, clamp_multiplier(native), atol=1e-5)


def test_clipped_risk_model_graph(trained: tuple[ModelFamily, np.ndarray, np.ndarray]) -> None:
    model, X, _ = trained
    names, value = run_value(clip_onnx_output(model.to_onnx()), X)
    assert names == ["value"]
    np.testing.assert_allclose(value, predict_multiplier(model, X), atol=1e-5)


def test_clip_refuses_a_graph_without_a_value_output() -> None:
    node = onnx.helper.make_node("Identity", ["x"], ["label"])
    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [tensor("x", onnx.TensorProto.FLOAT, [1])],
        [tensor("label", onnx.TensorProto.FLOAT, [1])],
    )
    with pytest.raises(ModelError, match="value"):
        clip_onnx_output(onnx.helper.make_model(graph))


# ------------------------------------------------------------------------- held-out vetting


@pytest.mark.parametrize("lookahead", [5, 20])
@pytest.mark.parametrize("n", [60, 100, 301, 1000])
def test_the_split_is_chronological_with_a_lookahead_gap(n: int, lookahead: int) -> None:
    config = RiskConfig(lookahead=lookahead)
    split = heldout_split(n, config)
    assert split is not None
    assert split.fit.start == 0 and split.fit.stop == split.evaluation.start  # in time order
    assert split.evaluation.stop == n
    held = n - split.evaluation.start
    assert held >= MIN_HELDOUT_TRADES and held >= HELDOUT_FRACTION * n
    assert held < HELDOUT_FRACTION * n + 1 or held == MIN_HELDOUT_TRADES
    assert split.evaluation.start >= config.min_trades
    # The fit's states stop `lookahead` trades short of the evaluation; the last label reads
    # trades last_fit_state .. last_fit_state + lookahead - 1, the trade before the evaluation.
    assert split.evaluation.start - split.last_fit_state == lookahead
    returns, atr = realistic_trades(n, seed=n)
    X, _ = risk_labels(returns[split.fit], atr[split.fit], config)
    assert len(X) == (split.last_fit_state + 1) * len(config.starting_balances)
    assert split.last_fit_state + lookahead - 1 < split.evaluation.start


def test_too_few_trades_to_hold_out_is_refused() -> None:
    config = RiskConfig()
    needed = config.min_trades + MIN_HELDOUT_TRADES
    assert heldout_split(needed - 1, config) is None
    assert heldout_split(needed, config) is not None
    returns, atr = realistic_trades(n=needed - 1)
    outcome = vetted_risk_model(returns, atr, config)
    assert outcome.model is None and outcome.heldout is None
    assert f"{needed - 1} out-of-sample trades, it needs {needed}" in outcome.note
    assert "multiplier of 1.0" in outcome.note


def test_no_fit_label_reads_a_heldout_trade() -> None:
    """The fit's rows and labels are those the whole sequence gives its early states, and
    rewriting every held-out trade leaves them alone."""
    config = RiskConfig(lookahead=10, min_trades=40)
    returns, atr = realistic_trades(200, seed=11)
    split = heldout_split(len(returns), config)
    assert split is not None
    fit_X, fit_y = risk_labels(returns[split.fit], atr[split.fit], config)
    states = split.last_fit_state + 1
    rng = np.random.default_rng(0)
    rewritten = returns.copy()
    rewritten[split.evaluation] = rng.normal(0.0, 0.05, len(returns) - split.evaluation.start)
    for sequence in (returns, rewritten):
        X, y = risk_labels(sequence, atr, config)
        per_balance = len(X) // len(config.starting_balances)
        keep = np.concatenate(
            [np.arange(b * per_balance, b * per_balance + states) for b in range(3)]
        )
        np.testing.assert_array_equal(X[keep], fit_X)
        np.testing.assert_array_equal(y[keep], fit_y)


def test_vetting_fits_the_early_trades_then_refits_on_all(monkeypatch: pytest.MonkeyPatch) -> None:
    returns, atr = streaky_trades(300, 0, stay_win=0.85, stay_loss=0.7)
    fitted_on: list[np.ndarray] = []

    def recording_fit(
        r: np.ndarray, a: np.ndarray, config: RiskConfig, *, seed: int = 0
    ) -> ModelFamily:
        fitted_on.append(r.copy())
        return train_risk_model(r, a, config, seed=seed)

    monkeypatch.setattr(risk_module, "train_risk_model", recording_fit)
    outcome = vetted_risk_model(returns, atr, RiskConfig(), seed=3)
    split = heldout_split(len(returns), RiskConfig())
    assert split is not None and outcome.heldout is not None
    assert len(fitted_on) == 2
    np.testing.assert_array_equal(fitted_on[0], returns[split.fit])
    np.testing.assert_array_equal(fitted_on[1], returns)
    assert outcome.heldout["fit_trades"] == split.evaluation.start
    assert outcome.heldout["trades"] == len(returns) - split.evaluation.start


def test_the_replay_sizes_each_trade_from_the_multiplied_path_so_far() -> None:
    returns, atr = realistic_trades(80, seed=5)
    model = RuleModel(base=1.0, slope=-4.0)  # sizes down as drawdown grows
    multipliers, applied = replay_with_model(model, returns, atr)  # type: ignore[arg-type]
    asked = np.concatenate(model.seen)
    # Each trade's state is what state_features gives the multiplied path: the bot's view.
    np.testing.assert_allclose(asked, state_features(applied, atr), rtol=1e-6)
    np.testing.assert_allclose(multipliers, clamp_multiplier(1.0 - 4.0 * asked[:, 1]))
    np.testing.assert_allclose(applied, multipliers * returns)
    assert multipliers[0] == 1.0 and multipliers.min() < 0.9
    # Causal: rewriting trade i and later leaves the multipliers up to trade i alone.
    i = 40
    changed = returns.copy()
    changed[i:] = -0.02
    again, _ = replay_with_model(RuleModel(1.0, -4.0), changed, atr)  # type: ignore[arg-type]
    np.testing.assert_array_equal(again[: i + 1], multipliers[: i + 1])
    # No model: the constant 1.0, the trades as they were.
    ones, same = replay_with_model(None, returns, atr)
    np.testing.assert_array_equal(ones, np.ones(len(returns)))
    np.testing.assert_array_equal(same, returns)


def test_path_metrics_by_hand() -> None:
    # Equity 1 -> 1.1 -> 0.88 -> 0.924: -7.6%, drawdown 1 - 0.88/1.1 = 20%. WR 2/3, PF 0.15/0.2
    # -> objective 0.5 / √0.2 = 1.1180; label score 1.1180 × -0.076 = -0.084971.
    returns = np.array([0.1, -0.2, 0.05])
    metrics = path_metrics(returns, ceiling=0.25)
    assert metrics["total_return"] == pytest.approx(-0.076)
    assert metrics["max_drawdown"] == pytest.approx(0.2)
    assert metrics["objective"] == pytest.approx(1.118034, rel=1e-5)
    assert metrics["objective"] == pytest.approx(objective(returns))
    assert metrics["label_score"] == pytest.approx(-0.084971, rel=1e-4)
    assert metrics["breached"] == 0.0
    assert path_metrics(returns, ceiling=0.19)["breached"] == 1.0


def side(score: float, breached: bool) -> dict[str, float]:
    return {"label_score": score, "breached": float(breached)}


@pytest.mark.parametrize(
    ("model", "constant", "loses"),
    [
        (side(1.0, False), side(1.0, False), False),  # a tie ships
        (side(0.99, False), side(1.0, False), True),
        (side(-0.02, False), side(-0.05, False), False),  # losing less in a losing stretch
        (side(2.0, True), side(1.0, False), True),  # the ceiling comes first
        (side(0.5, False), side(1.0, True), False),
        (side(0.5, True), side(1.0, True), True),  # both breach: the score decides
    ],
)
def test_the_shipping_rule_puts_the_ceiling_first_then_the_score(
    model: dict[str, float], constant: dict[str, float], loses: bool
) -> None:
    report = {f"model_{k}": v for k, v in model.items()}
    report |= {f"constant_{k}": v for k, v in constant.items()}
    assert loses_to_constant(report) is loses


def test_a_model_that_loses_to_the_constant_held_out_is_refused() -> None:
    """A regime flip at the split: fitted on a losing stretch, the model sizes down through
    the winning one that follows, and the constant 1.0 beats it."""
    losing, losing_atr = streaky_trades(140, 1, stay_win=0.3, stay_loss=0.85)
    winning, winning_atr = streaky_trades(60, 2, stay_win=0.85, stay_loss=0.3)
    returns = np.concatenate([losing, winning])
    atr = np.concatenate([losing_atr, winning_atr])
    split = heldout_split(len(returns), RiskConfig())
    assert split is not None and split.evaluation.start == 140
    outcome = vetted_risk_model(returns, atr, RiskConfig(), seed=3)
    assert outcome.model is None
    assert outcome.note.startswith("risk model not shipped: it loses to a constant 1.0")
    heldout = outcome.heldout
    assert heldout is not None
    assert heldout["constant_total_return"] > 0
    assert heldout["mean_multiplier"] < 0.5
    assert heldout["model_label_score"] < heldout["constant_label_score"]


def test_deep_states_are_states_a_bot_can_reach() -> None:
    # 20 alternating trades (WR 0.5, equal sizes), then 6 losses: the profile's state after a
    # 6-loss run shows the win rates, profit factor and run state_features computes.
    w, run = 0.004, 6
    history = np.array([-w, w] * 10 + [-w] * run)
    seen = state_features(np.append(history, 0.0), np.full(len(history) + 1, 0.005))[-1]
    built = TradeProfile.of(history[:20]).state(drawdown=0.1, losing_run=run, atr=0.005)
    np.testing.assert_allclose(built[2:], seen[2:], rtol=1e-6)
    np.testing.assert_allclose(built[:2], [0.9, 0.1])
    # Every deep state is at least 80% of the ceiling down after at least 5 losses in a row.
    config = RiskConfig()
    returns, atr = realistic_trades()
    deep = deep_drawdown_states(returns, atr, config)
    assert (deep[:, 1] >= 0.8 * config.ceiling - 1e-6).all()
    assert (deep[:, 5] >= 5).all()
    grid = len(DEEP_DRAWDOWN_SHARES) * len(DEEP_LOSING_RUNS) * 3
    assert len(deep) > grid  # the replays' own deep states are in too


def test_the_drawdown_check_catches_a_model_that_sizes_up() -> None:
    returns, atr = realistic_trades()
    config = RiskConfig()
    careful = drawdown_check(RuleModel(1.0, -4.0), config, returns, atr)  # type: ignore[arg-type]
    assert careful.passed and careful.neutral == 1.0
    reckless = drawdown_check(RuleModel(0.6, 4.0), config, returns, atr)  # type: ignore[arg-type]
    assert not reckless.passed
    assert reckless.deep > reckless.neutral + DRAWDOWN_TOLERANCE
    flat = drawdown_check(RuleModel(0.7, 0.0), config, returns, atr)  # type: ignore[arg-type]
    assert flat.passed and flat.excess == 0.0


def test_a_model_that_sizes_up_in_drawdown_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    returns, atr = streaky_trades(300, 0, stay_win=0.85, stay_loss=0.7)
    assert vetted_risk_model(returns, atr, RiskConfig(), seed=3).model is not None
    calls: list[int] = []

    def refit_sizes_up(
        r: np.ndarray, a: np.ndarray, config: RiskConfig, *, seed: int = 0
    ) -> ModelFamily:
        calls.append(len(r))
        model = train_risk_model(r, a, config, seed=seed)
        return model if len(calls) == 1 else SizesUpInDrawdown(model, config.ceiling)  # type: ignore[return-value]

    monkeypatch.setattr(risk_module, "train_risk_model", refit_sizes_up)
    outcome = vetted_risk_model(returns, atr, RiskConfig(), seed=3)
    assert outcome.model is None
    assert outcome.note.startswith("risk model not shipped: it sizes up in deep drawdown")
    assert f"{CLAMP[1]:.2f} there" in outcome.note
    assert outcome.heldout is not None  # it passed the held-out replay first


def test_a_shipped_model_never_sizes_up_in_deep_drawdown() -> None:
    """On seeded streaky sequences: a model passing the held-out replay ships iff its multiplier
    in every deep drawdown state stays within the tolerance of the neutral state's."""
    config = RiskConfig()
    seen = set()
    for seed in range(8):
        returns, atr = streaky_trades(300, seed, stay_win=0.85, stay_loss=0.7)
        outcome = vetted_risk_model(returns, atr, config, seed=3)
        if outcome.model is None and "loses to a constant" in outcome.note:
            seen.add("lost held out")
            continue
        refit = train_risk_model(returns, atr, config, seed=3)
        deep = deep_drawdown_states(returns, atr, config)
        profile = TradeProfile.of(returns)
        neutral = [profile.state(drawdown=0, losing_run=0, atr=float(a)) for a in deep[:, 6]]
        excess = predict_multiplier(refit, deep) - predict_multiplier(refit, np.array(neutral))
        sizes_up = bool(excess.max() > DRAWDOWN_TOLERANCE)
        assert (outcome.model is None) == sizes_up, seed
        seen.add("sized up" if sizes_up else "shipped")
    assert seen == {"lost held out", "sized up", "shipped"}  # every path is exercised


def test_a_good_model_ships_with_its_heldout_report() -> None:
    returns, atr = streaky_trades(300, 0, stay_win=0.85, stay_loss=0.7)
    outcome = vetted_risk_model(returns, atr, RiskConfig(), seed=3)
    assert outcome.model is not None
    heldout = outcome.heldout
    assert heldout is not None
    metrics = ("total_return", "max_drawdown", "objective", "label_score", "breached")
    expected = {"fit_trades", "trades", "mean_multiplier"}
    expected |= {f"{side}_{m}" for side in ("model", "constant") for m in metrics}
    assert set(heldout) == expected
    assert all(isinstance(v, float) and math.isfinite(v) for v in heldout.values())
    assert heldout["model_label_score"] >= heldout["constant_label_score"]
    assert heldout["model_breached"] == 0.0
    assert outcome.note.startswith("risk model trained on 300 out-of-sample trades")
    assert "held out (last 90 trades after fitting on 210" in outcome.note
    # The shipped model is the refit on all trades, same seed, same trees.
    np.testing.assert_array_equal(
        outcome.model.predict(state_features(returns, atr)),
        train_risk_model(returns, atr, RiskConfig(), seed=3).predict(state_features(returns, atr)),
    )
