"""The risk-multiplier model: causal equity states, hand-checked labels, a bounded multiplier."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantrain.errors import ConfigError, ModelError
from quantrain.evaluate.risk import (
    CLAMP,
    MAX_DD_FLOOR,
    MULTIPLIERS,
    PF_CAP,
    RISK_PROFILES,
    STATE_FEATURES,
    RiskConfig,
    clamp_multiplier,
    clip_onnx_output,
    label_score,
    objective,
    predict_multiplier,
    risk_labels,
    state_features,
    train_risk_model,
)
from quantrain.export import onnx_session
from quantrain.models.base import ModelFamily
from quantrain.models.onnx_outputs import INPUT_NAME
from quantrain.models.registry import get_family

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
