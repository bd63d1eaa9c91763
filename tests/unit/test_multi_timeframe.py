"""Higher-timeframe features use completed higher-timeframe bars only.

The reference is independent of the feature code's binning: ``data.resample.resample_ohlcv`` on
the 5m frame truncated at bar t (it drops the still-forming last bin), then the plain indicator
on those bars; its last value must be the feature's value at t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantrain.data import resample_ohlcv
from quantrain.errors import ConfigError, DataError
from quantrain.features import FeatureDef, FeatureSpec, compute_features

Def = tuple[str, dict[str, int | float | str]]
PARAMS: dict[str, dict[str, int | float | str]] = {
    "rsi": {"period": 14},
    "ret": {"period": 1},
    "atr_frac": {"period": 14},
}


def spec_of(*defs: Def) -> FeatureSpec:
    return FeatureSpec(name="t", features=tuple(FeatureDef(kind=k, params=p) for k, p in defs))


def htf_spec(tf: str) -> FeatureSpec:
    return spec_of(
        *((f"htf_{kind}", {"tf": tf, **params}) for kind, params in PARAMS.items()),
        ("htf_range_pos", {"tf": tf, "period": 3}),
    )


def inner_spec() -> FeatureSpec:
    return spec_of(*PARAMS.items(), ("range_pos", {"period": 3}))


@pytest.mark.parametrize("tf", ["1h", "4h"])
def test_value_at_t_comes_from_bars_complete_at_t(eth_frame: pd.DataFrame, tf: str) -> None:
    got = compute_features(eth_frame, htf_spec(tf)).to_numpy()
    ratio = 12 if tf == "1h" else 48
    start = htf_spec(tf).warmup_bars("5m")
    stamps = eth_frame["timestamp"]
    completing = np.flatnonzero(
        ((stamps + pd.Timedelta("5min")).astype("int64") % (ratio * 300 * 10**9)) == 0
    )
    cuts = [int(t) for t in completing if t >= start][:3]  # bars that complete a higher bar
    cuts += [c - 1 for c in cuts] + [start, start + 5, len(eth_frame) - 1]
    for t in cuts:
        higher, _ = resample_ohlcv(eth_frame.iloc[: t + 1], tf)
        expected = compute_features(higher, inner_spec()).to_numpy()[-1]
        np.testing.assert_allclose(got[t], expected, rtol=1e-12, atol=0, err_msg=f"t={t}")


def test_a_1h_bar_counts_from_the_5m_bar_that_closes_it(eth_frame: pd.DataFrame) -> None:
    """The 10:00 hour is complete at the bar opening 10:55 (close 11:00), not before."""
    out = compute_features(eth_frame, spec_of(("htf_ret", {"tf": "1h", "period": 1})))
    close = eth_frame.set_index("timestamp")["close"]
    ret = out.set_axis(eth_frame["timestamp"])["htf_ret_1h_1"]
    day = "2018-01-20 "
    at_1055 = np.log(close[day + "10:55"] / close[day + "09:55"])
    before = np.log(close[day + "09:55"] / close[day + "08:55"])
    assert ret[day + "10:55"] == pytest.approx(at_1055, rel=1e-12)
    assert ret[day + "10:50"] == pytest.approx(before, rel=1e-12)
    assert ret[day + "10:00"] == pytest.approx(before, rel=1e-12)
    assert ret[day + "11:50"] == pytest.approx(at_1055, rel=1e-12)


def test_a_missing_closing_bar_completes_the_hour_at_the_next_bar(eth_frame: pd.DataFrame) -> None:
    gappy = eth_frame[eth_frame["timestamp"] != pd.Timestamp("2018-01-20 10:55", tz="UTC")]
    gappy = gappy.reset_index(drop=True)
    out = compute_features(gappy, spec_of(("htf_ret", {"tf": "1h", "period": 1})))
    ret = out.set_axis(gappy["timestamp"])["htf_ret_1h_1"]
    close = gappy.set_index("timestamp")["close"]
    day = "2018-01-20 "
    assert ret[day + "10:50"] == pytest.approx(np.log(close[day + "09:55"] / close[day + "08:55"]))
    # 11:00 is the first bar after the hour: the 10:00 bar (closing at 10:50) is now complete
    assert ret[day + "11:00"] == pytest.approx(np.log(close[day + "10:50"] / close[day + "09:55"]))


@pytest.mark.parametrize("skip", [0, 1, 5, 11, 12, 47])
def test_warmup_is_the_same_whatever_the_first_bar(eth_frame: pd.DataFrame, skip: int) -> None:
    spec = htf_spec("4h")
    out = compute_features(eth_frame.iloc[skip:], spec)
    for feature in spec.features:
        col = out[feature.name].to_numpy()
        assert np.isnan(col[: feature.warmup_for("5m")]).all(), feature.name
        assert not np.isnan(col[feature.warmup_for("5m") :]).any(), feature.name


def test_bins_are_anchored_at_the_epoch(eth_frame: pd.DataFrame) -> None:
    """4h bins open at 00:00, 04:00, ... UTC: the data starts at 04:55, so the first complete
    4h bar is 08:00-12:00, known at the bar opening 11:55."""
    out = compute_features(eth_frame, spec_of(("htf_hl_range", {"tf": "4h"})))
    first = int(np.flatnonzero(out.iloc[:, 0].notna())[0])
    # warm-up 2 * 48 - 2 = 94 masks it; the first value is the then-newest complete bar
    assert first == 94
    stamps = eth_frame["timestamp"]
    window = eth_frame[
        (stamps >= stamps[first].floor("4h") - pd.Timedelta("4h"))
        & (stamps < stamps[first].floor("4h"))
    ]
    expected = (window["high"].max() - window["low"].min()) / window["close"].iloc[-1]
    assert out.iloc[first, 0] == pytest.approx(expected, rel=1e-12)


def test_base_not_finer_than_the_timeframe_is_refused(eth_frame: pd.DataFrame) -> None:
    hourly, _ = resample_ohlcv(eth_frame, "1h")
    for tf in ("1h", "30m"):
        with pytest.raises(DataError, match=rf"asks for {tf} bars but the data already has 1h"):
            compute_features(hourly, spec_of(("htf_rsi", {"tf": tf})))
    with pytest.raises(DataError, match=r"7m.*not a whole multiple of the data's 5m"):
        compute_features(eth_frame, spec_of(("htf_rsi", {"tf": "7m"})))
    with pytest.raises(ConfigError, match="asks for 1h bars but the data already has 1h"):
        spec_of(("htf_rsi", {"tf": "1h"})).warmup_bars("1h")
    with pytest.raises(ConfigError, match=r"parameter 'tf'.*not understood"):
        FeatureDef(kind="htf_rsi", params={"tf": "hourly"})


def test_short_frames_give_nan_not_errors(eth_frame: pd.DataFrame) -> None:
    spec = htf_spec("1h")
    for rows in (0, 1, 2, 30):
        out = compute_features(eth_frame.iloc[:rows], spec)
        assert out.shape == (rows, len(spec.columns()))
        assert out.isna().all().all()


def test_shared_higher_bars_give_the_same_values_alone_or_together(
    eth_frame: pd.DataFrame,
) -> None:
    together = compute_features(eth_frame, htf_spec("1h"))
    for feature in htf_spec("1h").features:
        alone = compute_features(eth_frame, FeatureSpec(name="a", features=(feature,)))
        np.testing.assert_array_equal(alone.iloc[:, 0], together[feature.name])
