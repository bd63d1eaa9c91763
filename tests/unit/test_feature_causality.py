"""Every registered indicator is causal: bars after t never change its value at t.

Covers price, calendar, higher-timeframe and exogenous indicators (on a frame with funding and
events merged). The same property check is shown to catch deliberately leaky features, so a
pass here means something.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.errors import DataError
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
from quantrain.features.causality import perturb_after
from quantrain.features.compute import INDICATORS, Bars, Indicator, Params

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "quantrain" / "sample_data"
# One cut inside the warm-up, the rest past it; 1030 sits just after a kernel resync point.
# Bar 2508 (21:55) completes a 1h bar and bar 5027 (15:55, after a gap) a 4h bar:
# cuts just before and on those bars.
CUTS = (40, 137, 1030, 2500, 2507, 2508, 5026, 5027)
MOVED_BY_PRICES = {"ohlcv", "htf"}


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
    # Not vacuous: the perturbation does move price-driven features after the cut (calendar
    # and exogenous features read only timestamps and merged columns, which stay put).
    t = CUTS[2]
    base = compute_features(frame, spec).iloc[:, 0].to_numpy()
    moved = compute_features(perturb_after(frame, t, np.random.default_rng(1)), spec)
    changed = not np.array_equal(base[t + 1 :], moved.iloc[t + 1 :, 0].to_numpy(), equal_nan=True)
    assert changed is (INDICATORS[feature.kind].inputs in MOVED_BY_PRICES)
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


def test_cut_points_must_leave_a_later_bar(ohlcv: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="cut points"):
        find_lookahead(ohlcv, _next_return, (len(ohlcv) - 1,))
    with pytest.raises(DataError, match="cut points"):
        find_lookahead(ohlcv, _next_return, ())
