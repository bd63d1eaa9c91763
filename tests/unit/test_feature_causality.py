"""Every registered indicator is causal: bars after t never change its value at t.

Covers price, calendar, higher-timeframe and exogenous indicators (on a frame with funding and
events merged). The same property check is shown to catch deliberately leaky features, so a
pass here means something. The training gate, ``refuse_lookahead``, is shown to refuse the
leaks that got past its first version (a merged input holding the future, a feature defined
only after a long warm-up, a peek late in the series) and to pass honest features and inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.data import read_ohlcv
from quantrain.errors import ConfigError, DataError
from quantrain.features import (
    FeatureDef,
    FeatureSpec,
    available_indicators,
    compute_features,
    find_lookahead,
    get_feature_set,
    merge_exogenous,
    standard_spec,
)
from quantrain.features.causality import (
    MAX_ABS_RHO,
    future_correlations,
    perturb_after,
    refuse_lookahead,
    spread_cuts,
)
from quantrain.features.compute import INDICATORS, Bars, Indicator, Params

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "quantrain" / "sample_data"
# One cut inside the warm-up, the rest past it; 1030 sits just after a kernel resync point.
# Bar 2508 (21:55) completes a 1h bar and bar 5027 (15:55, after a gap) a 4h bar:
# cuts just before and on those bars.
CUTS = (40, 137, 1030, 2500, 2507, 2508, 5026, 5027)
MOVED_BY_PERTURBATION = {"ohlcv", "htf", "exogenous"}


@pytest.fixture(scope="module")
def ohlcv() -> pd.DataFrame:
    """XMR-BTC 5m bars with funding (every 8h) and scheduled events merged in."""
    frame = pd.read_parquet(SAMPLE / "XMR-BTC_5m.parquet")
    rng = np.random.default_rng(5)
    start, end = frame["timestamp"].iloc[0], frame["timestamp"].iloc[-1]
    fund_times = pd.date_range(start.floor("8h"), end, freq="8h")
    funding = pd.DataFrame(
        {"timestamp": fund_times, "funding_rate": rng.normal(1e-4, 2e-4, len(fund_times))}
    )
    event_times = start + pd.to_timedelta(np.sort(rng.uniform(0, 25 * 86400, 40)), unit="s")
    events = pd.DataFrame(
        {"timestamp": event_times, "impact": rng.choice(["low", "medium", "high"], 40)}
    )
    return merge_exogenous(frame, funding=funding, events=events, min_impact="medium")


def assert_causal(frame: pd.DataFrame, feature: FeatureDef) -> None:
    """The property every feature must have, and that its check is not vacuous."""
    spec = FeatureSpec(name=f"only_{feature.name}", features=(feature,))
    assert find_lookahead(frame, spec, CUTS) == []
    # Not vacuous: the perturbation does move price-driven and exogenous features after the
    # cut (calendar features read only timestamps, which stay put).
    t = CUTS[2]
    base = compute_features(frame, spec).iloc[:, 0].to_numpy()
    moved = compute_features(perturb_after(frame, t, np.random.default_rng(1)), spec)
    changed = not np.array_equal(base[t + 1 :], moved.iloc[t + 1 :, 0].to_numpy(), equal_nan=True)
    assert changed is (INDICATORS[feature.kind].inputs in MOVED_BY_PERTURBATION)
    assert not np.isnan(base[feature.warmup_for("5m") + 300 :]).any()


@pytest.mark.parametrize("kind", available_indicators())
def test_every_registered_indicator_is_causal(ohlcv: pd.DataFrame, kind: str) -> None:
    assert_causal(ohlcv, FeatureDef(kind=kind))


@pytest.mark.parametrize("feature", standard_spec().features, ids=lambda f: f.name)
def test_standard_feature_is_causal(ohlcv: pd.DataFrame, feature: FeatureDef) -> None:
    assert_causal(ohlcv, feature)


def test_whole_standard_exo_set_is_causal_with_shared_intermediates(ohlcv: pd.DataFrame) -> None:
    spec = get_feature_set("standard_exo")
    assert find_lookahead(ohlcv.iloc[:3000], spec, (99, 190, 191, 1500, 2998)) == []


def test_property_check_catches_a_leaky_registered_indicator(
    ohlcv: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same ``assert_causal`` the registry passes fails on an indicator reading close[t+1]."""

    def next_close(bars: Bars, params: Params) -> np.ndarray:
        return np.append(bars.close[1:] / bars.close[:-1], np.nan)

    monkeypatch.setitem(INDICATORS, "peek", Indicator("peek", next_close, (), lambda p: 0, "leak"))
    with pytest.raises(AssertionError, match="peek"):
        assert_causal(ohlcv, FeatureDef(kind="peek"))


def _next_return(frame: pd.DataFrame) -> pd.DataFrame:
    close = frame["close"]
    return pd.DataFrame({"next_ret": close.shift(-1) / close - 1.0, "ret": close.pct_change()})


def _global_zscore(frame: pd.DataFrame) -> pd.DataFrame:
    close = frame["close"]
    return pd.DataFrame({"z_close": (close - close.mean()) / close.std()})


def _centred_mean(frame: pd.DataFrame) -> pd.DataFrame:
    close = frame["close"]
    return pd.DataFrame({"centred": close.rolling(5, center=True).mean() / close})


def test_leaky_callables_are_detected(ohlcv: pd.DataFrame) -> None:
    assert find_lookahead(ohlcv, _next_return, CUTS) == ["next_ret"]
    assert find_lookahead(ohlcv, _global_zscore, CUTS) == ["z_close"]
    assert find_lookahead(ohlcv, _centred_mean, CUTS) == ["centred"]


def test_truncation_alone_catches_full_series_normalisation(ohlcv: pd.DataFrame) -> None:
    """A min/max scaler over the whole series leaks even where later bars are unaltered."""

    def minmax(frame: pd.DataFrame) -> pd.DataFrame:
        v = frame["volume"]
        return pd.DataFrame({"v_scaled": (v - v.min()) / (v.max() - v.min())})

    assert find_lookahead(ohlcv, minmax, (2500,)) == ["v_scaled"]


def test_leaky_registered_indicator_is_detected(
    ohlcv: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def next_close_ratio(bars: Bars, params: Params) -> np.ndarray:
        out = np.full(bars.close.shape, np.nan)
        out[:-1] = bars.close[1:] / bars.close[:-1]  # close shifted by -1: peeks one bar ahead
        return out

    leaky = Indicator("peek_next", next_close_ratio, (), lambda p: 0, "test only: leaks")
    monkeypatch.setitem(INDICATORS, "peek_next", leaky)
    spec = FeatureSpec(
        name="leaky",
        features=(FeatureDef(kind="rsi"), FeatureDef(kind="peek_next"), FeatureDef(kind="ret")),
    )
    assert find_lookahead(ohlcv, spec, CUTS) == ["peek_next"]


def test_perturbation_keeps_bars_valid_and_leaves_prefix(ohlcv: pd.DataFrame) -> None:
    t = 1000
    out = perturb_after(ohlcv, t, np.random.default_rng(0))
    pd.testing.assert_frame_equal(out.iloc[: t + 1], ohlcv.iloc[: t + 1])
    after = out.iloc[t + 1 :]
    assert (after["high"] >= after[["open", "close"]].max(axis=1)).all()
    assert (after["low"] <= after[["open", "close"]].min(axis=1)).all()
    assert (after["volume"] >= 0).all()
    assert not np.allclose(after["close"], ohlcv["close"].iloc[t + 1 :])
    assert out["timestamp"].equals(ohlcv["timestamp"])


def test_perturbation_alters_every_input_column_and_keeps_dtypes(ohlcv: pd.DataFrame) -> None:
    """Merged inputs after the cut change too (funding, event times), as do any other columns."""
    rng = np.random.default_rng(2)
    frame = ohlcv.assign(
        trades=rng.integers(0, 500, len(ohlcv)).astype(np.uint32),
        halted=rng.random(len(ohlcv)) < 0.1,
        venue=pd.Categorical(rng.choice(["a", "b", "c"], len(ohlcv))),
    )
    t = 2500
    out = perturb_after(frame, t, np.random.default_rng(0))
    pd.testing.assert_frame_equal(out.iloc[: t + 1], frame.iloc[: t + 1])
    assert list(out.columns) == list(frame.columns)
    assert out.dtypes.equals(frame.dtypes)
    for col in frame.columns.drop("timestamp"):
        assert not out[col].iloc[t + 1 :].equals(frame[col].iloc[t + 1 :]), col
    assert out["event_next_at"].iloc[t + 1 :].notna().any()


# --- the training gate, on a seeded random walk ---------------------------------------------

N_BARS = 6000


@pytest.fixture(scope="module")
def walk() -> pd.DataFrame:
    """6,000 5m bars of a seeded log random walk (OHLC consistent): nothing is predictable."""
    rng = np.random.default_rng(11)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, N_BARS)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.001, (2, N_BARS)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2021-03-01", periods=N_BARS, freq="5min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + spread[0]),
            "low": np.minimum(open_, close) * (1.0 - spread[1]),
            "close": close,
            "volume": rng.lognormal(5.0, 1.0, N_BARS),
        }
    )


def log_return(close: pd.Series, bars: int) -> pd.Series:
    """log(close[t + bars] / close[t]): forward for bars > 0, backward (known) for bars < 0."""
    logs = np.log(close)
    return logs.shift(-bars) - logs if bars > 0 else logs - logs.shift(-bars)


def with_funding(frame: pd.DataFrame, rates: pd.Series) -> pd.DataFrame:
    """``frame`` with a funding table stamped at each bar's close, and events, merged in."""
    known = rates.notna()
    funding = pd.DataFrame(
        {"timestamp": frame["timestamp"][known] + pd.Timedelta("5min"), "rate": rates[known]}
    )
    rng = np.random.default_rng(4)
    start = frame["timestamp"].iloc[0]
    event_times = start + pd.to_timedelta(np.sort(rng.uniform(0, 20 * 86400, 30)), unit="s")
    events = pd.DataFrame({"timestamp": event_times, "impact": ["high"] * 30})
    return merge_exogenous(frame, funding=funding, events=events)


def fwd_over_long_vol(frame: pd.DataFrame) -> pd.DataFrame:
    """Leak (b): the next 12 bars' return over a 2,000-bar volatility, NaN for 2,000 bars."""
    close = frame["close"]
    vol = log_return(close, -1).rolling(2000).std()
    return pd.DataFrame({"ret_1": log_return(close, -1), "fwd_vol": log_return(close, 12) / vol})


def late_peek(frame: pd.DataFrame) -> pd.DataFrame:
    """Leak (c): the past bar's return, except in the last sixth of the series: the next bar's."""
    close = frame["close"]
    late = frame["timestamp"] >= pd.Timestamp("2021-03-18 12:00", tz="UTC")  # from bar 5,040
    return pd.DataFrame({"peek": log_return(close, -1).where(~late, log_return(close, 1))})


def test_refuses_merged_funding_holding_the_next_12_bar_return(walk: pd.DataFrame) -> None:
    """Leak (a): perturbing later bars cannot reveal a column that was filled from the future,
    so the correlation screen must."""
    frame = with_funding(walk, log_return(walk["close"], 12))
    spec = get_feature_set("standard_exo")
    funding_only = FeatureSpec(name="funding", features=tuple(spec.features[-4:-2]))
    assert [f.kind for f in funding_only.features] == ["funding_rate", "funding_z"]
    assert (
        find_lookahead(frame, funding_only, spread_cuts(N_BARS, start=300, n_cuts=8, seed=0)) == []
    )
    with pytest.raises(ConfigError) as caught:
        refuse_lookahead(frame, spec)
    message = str(caught.value)
    assert message.startswith("feature set 'standard_exo': ")
    assert "input 'funding_rate' (rho +1.00 with the 12-bar forward return, where past " in message
    assert "feature 'funding_rate' (rho +1.00 with the 12-bar forward return, " in message
    assert "training is refused" in message
    assert "fix: inputs must be known at the bar's close" in message


def test_refuses_a_forward_return_over_a_2000_bar_volatility(walk: pd.DataFrame) -> None:
    """Leak (b), as a feature: NaN before bar 2,000, so a check of the first 1,500 bars (the
    gate's first version) saw nothing; cuts over the whole series do."""
    assert find_lookahead(walk.iloc[:1500], fwd_over_long_vol, (900, 1275)) == []
    with pytest.raises(ConfigError, match="look-ahead") as caught:
        refuse_lookahead(walk, fwd_over_long_vol)
    message = str(caught.value)
    assert message.startswith("feature function 'fwd_over_long_vol': fwd_vol (cut after bar ")
    assert "changed when only later bars changed" in message
    assert "ret_1" not in message
    # The correlation screen would have refused it as well.
    screened = future_correlations(walk, fwd_over_long_vol(walk))
    fwd_vol = screened[screened["column"] == "fwd_vol"].set_index("horizon")
    assert fwd_vol["refused"].tolist() == [False, True, False]  # horizons 1, 12, 48
    assert fwd_vol.loc[12, "rho"] > 0.9 > fwd_vol.loc[48, "rho"] > fwd_vol.loc[1, "rho"]
    assert (fwd_vol["rows"] < N_BARS - 2000).all()


def test_refuses_the_same_leak_as_a_merged_input_column(walk: pd.DataFrame) -> None:
    frame = walk.assign(fwd_vol=fwd_over_long_vol(walk)["fwd_vol"])
    with pytest.raises(
        ConfigError, match=r"input 'fwd_vol' \(rho \+(1\.00|0\.9\d) with the 12-bar"
    ):
        refuse_lookahead(frame, standard_spec())


def test_refuses_a_peek_one_bar_ahead_late_in_the_series_only(walk: pd.DataFrame) -> None:
    """Leak (c): one bar ahead in the last sixth only: too diluted for the correlation screen,
    invisible at the start of the series, caught by the cuts near the end."""
    assert find_lookahead(walk.iloc[:1500], late_peek, (900, 1275)) == []
    screened = future_correlations(walk, late_peek(walk))
    peek = screened[screened["column"] == "peek"]
    assert 0.1 < peek["rho"].abs().max() < MAX_ABS_RHO
    assert not screened["refused"].any()
    with pytest.raises(
        ConfigError, match=r"peek \(cut after bar (50[4-9]\d|5[1-9]\d\d) at 2021-03-"
    ):
        refuse_lookahead(walk, late_peek)


@pytest.mark.parametrize(
    "rates",
    [
        pytest.param(lambda w: log_return(w["close"], -12), id="past-12-bar-return"),
        pytest.param(
            lambda w: pd.Series(np.random.default_rng(8).normal(1e-4, 2e-4, len(w))).where(
                w["timestamp"].dt.hour % 8 == 0
            ),
            id="random-rate-every-8h",
        ),
    ],
)
def test_passes_honest_exogenous_inputs(
    walk: pd.DataFrame, rates: Callable[[pd.DataFrame], pd.Series]
) -> None:
    frame = with_funding(walk, rates(walk))
    assert frame["funding_rate"].notna().sum() > N_BARS // 2
    refuse_lookahead(frame, get_feature_set("standard_exo"))


@pytest.mark.parametrize("path", sorted(SAMPLE.glob("*_5m.parquet")), ids=lambda p: p.stem)
def test_passes_the_standard_set_on_real_sample_data(path: Path) -> None:
    """Illiquid 5m pairs mean-revert (|rho| up to ~0.35 at one bar): honest, and not refused."""
    frame = read_ohlcv(path).frame
    spec = standard_spec()
    screened = future_correlations(frame, compute_features(frame, spec))
    assert (screened["source"] == "feature").sum() == 3 * len(spec.columns())
    assert 0.05 < screened["rho"].abs().max() < MAX_ABS_RHO
    refuse_lookahead(frame, spec)


def drifting(n: int, seed: int) -> pd.DataFrame:
    """Persistent trend regimes (±0.15 % a bar, switching every ~300 bars) under 0.4 % noise:
    an honest but very predictable series, where momentum features see the future coming."""
    rng = np.random.default_rng(seed)
    sign = np.where(np.cumsum(rng.random(n) < 1 / 300) % 2 == 0, 1.0, -1.0)
    close = 100.0 * np.exp(np.cumsum(sign * 0.0015 + rng.normal(0.0, 0.004, n)))
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0.0, 0.002, (2, n)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2021-03-01", periods=n, freq="5min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + wick[0]),
            "low": np.minimum(open_, close) * (1.0 - wick[1]),
            "close": close,
            "volume": rng.lognormal(5.0, 1.0, n),
        }
    )


def test_honest_features_on_a_very_predictable_series_pass_and_a_leak_does_not() -> None:
    """Past returns set the yardstick: features that rank-correlate 0.6 with the future because
    the series trends are not refused, but a column holding the future still is."""
    frame = drifting(N_BARS, seed=3)
    spec = standard_spec()
    screened = future_correlations(frame, compute_features(frame, spec))
    features = screened[screened["source"] == "feature"]
    assert features["rho"].abs().max() > 0.55 > MAX_ABS_RHO
    assert screened["past"].max() > 0.5
    assert not screened["refused"].any()
    refuse_lookahead(frame, spec)
    leaky = with_funding(frame, log_return(frame["close"], 12))
    with pytest.raises(ConfigError, match=r"input 'funding_rate' \(rho \+1\.00 with the 12-bar"):
        refuse_lookahead(leaky, get_feature_set("standard_exo"))


def hinting(walk: pd.DataFrame, noise: float) -> pd.DataFrame:
    """``walk`` with an input ``hint``: the next bar's return plus seeded noise."""
    rng = np.random.default_rng(6)
    return walk.assign(hint=log_return(walk["close"], 1) + rng.normal(0.0, noise, len(walk)))


def test_correlation_bounds_are_keywords(walk: pd.DataFrame) -> None:
    """A strong hint of the next bar (rho ~0.7) is refused unless ``max_abs_rho`` allows it; a
    faint one (rho ~0.3) passes unless both bounds are tightened."""
    strong, faint = hinting(walk, 0.002), hinting(walk, 0.006)
    for frame, low, high in ((strong, 0.6, 0.8), (faint, 0.2, 0.4)):
        screened = future_correlations(frame).set_index(["column", "horizon"])
        assert low < screened.loc[("hint", 1), "rho"] < high
        assert screened.loc[("hint", 1), "past"] < 0.1
    with pytest.raises(ConfigError, match=r"input 'hint' \(rho \+0\.[67]\d with the 1-bar"):
        refuse_lookahead(strong, standard_spec())
    refuse_lookahead(strong, standard_spec(), max_abs_rho=0.9)
    refuse_lookahead(faint, standard_spec())
    refuse_lookahead(faint, standard_spec(), max_abs_rho=0.2)  # the past returns' bound holds
    with pytest.raises(ConfigError, match=r"input 'hint' \(rho \+0\.[23]\d with the 1-bar"):
        refuse_lookahead(faint, standard_spec(), max_abs_rho=0.2, past_margin=0.1)
    with pytest.raises(ConfigError, match="max_abs_rho must be in"):
        refuse_lookahead(walk, standard_spec(), max_abs_rho=0.0)


def test_cuts_cover_the_whole_series_after_the_warm_up() -> None:
    cuts = spread_cuts(N_BARS, start=200, n_cuts=8, seed=0)
    stretch = (N_BARS - 1 - 200) / 8
    assert len(cuts) == 8
    assert [int((t - 200) // stretch) for t in cuts] == list(range(8))
    assert cuts == spread_cuts(N_BARS, start=200, n_cuts=8, seed=0)
    assert cuts != spread_cuts(N_BARS, start=200, n_cuts=8, seed=1)
    assert spread_cuts(1, start=0, n_cuts=8, seed=0) == []


def test_windowed_check_keeps_recursive_features_comparable(ohlcv: pd.DataFrame) -> None:
    """On bounded windows the whole standard_exo set is still causal (EMAs, Wilder averages and
    higher-timeframe bars all start at the window's first bar in each computation), and a
    leak is still found."""
    spec = get_feature_set("standard_exo")
    cuts = (1030, 2508, 4000, 5027)
    assert find_lookahead(ohlcv, spec, cuts, history=600, after=50) == []
    assert find_lookahead(ohlcv, _centred_mean, cuts, history=600, after=50) == ["centred"]
    assert find_lookahead(ohlcv, _global_zscore, cuts, history=600, after=50) == ["z_close"]


def test_cut_points_must_leave_a_later_bar(ohlcv: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="cut points"):
        find_lookahead(ohlcv, _next_return, (len(ohlcv) - 1,))
    with pytest.raises(DataError, match="cut points"):
        find_lookahead(ohlcv, _next_return, ())
