"""FeatureStream: bar-by-bar features equal to the batch matrix's last row (to 1e-9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantrain.data import read_ohlcv
from quantrain.errors import ConfigError, DataError
from quantrain.features import FeatureStream, compute_feature_matrix, kernels, stream
from quantrain.features.registry import INDICATORS
from quantrain.features.spec import FeatureDef, FeatureSpec, get_feature_set
from tests.conftest import SAMPLE_DIR

WARM = 1500
TOL = 1e-9


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return read_ohlcv(SAMPLE_DIR / "ETH-BTC_5m.parquet").frame


def _with_gaps(frame: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """Drop 5 random runs of 1-40 bars, plus the last bar of one 1h bin and a whole 4h bin, so
    higher bars complete at the first bar of a later bin."""
    rng = np.random.default_rng(seed)
    keep = np.ones(len(frame), dtype=bool)
    for start in rng.choice(np.arange(WARM + 50, len(frame) - 200), 5, replace=False):
        keep[start : start + int(rng.integers(1, 41))] = False
    stamps = frame["timestamp"]
    last_of_hour = np.flatnonzero((stamps.dt.minute == 55).to_numpy())
    keep[last_of_hour[last_of_hour > WARM][3]] = False
    four_hour = np.flatnonzero(stamps.dt.hour.between(8, 11).to_numpy())
    keep[four_hour[four_hour > WARM + 500][:48]] = False  # 08:00-11:55 of one day: a 4h bin
    keep[WARM - 3 : WARM + 3] = False  # a gap across the warm-up boundary
    return frame[keep].reset_index(drop=True)


def _assert_rows_equal(got: np.ndarray, expected: np.ndarray, columns: list[str]) -> None:
    nan_got, nan_exp = np.isnan(got), np.isnan(expected)
    bad_nan = (nan_got != nan_exp).any(axis=0)
    assert not bad_nan.any(), f"NaN positions differ in {np.array(columns)[bad_nan].tolist()}"
    diff = np.abs(np.where(nan_exp, 0.0, got - expected))
    scale = np.maximum(1.0, np.abs(np.where(nan_exp, 0.0, expected)))
    worst = (diff / scale).max(axis=0)
    bad = worst > TOL
    assert not bad.any(), dict(zip(np.array(columns)[bad].tolist(), worst[bad], strict=True))


def _stream_rows(spec: FeatureSpec, frame: pd.DataFrame, warm: int) -> np.ndarray:
    fs = FeatureStream(spec, "5m")
    fs.warm_up(frame.iloc[:warm])
    return np.array([fs.update(bar) for bar in frame.iloc[warm:].to_dict("records")])


def _full_spec() -> FeatureSpec:
    """Every streamable OHLCV kind with non-default parameters, its 1h variant, and a few 4h
    ones (volume-based included: the higher bar's volume is a sum)."""
    defs: list[FeatureDef] = []
    small = {
        "period": 9,
        "lag": 3,
        "fast": 4,
        "slow": 11,
        "signal": 5,
        "smooth": 4,
        "atr": 6,
        "mid": 7,
    }
    for kind, indicator in sorted(INDICATORS.items()):
        if indicator.inputs != "ohlcv":
            continue
        params = {p.name: small[p.name] for p in indicator.params if p.name in small}
        if kind == "ultosc":
            params = {"fast": 3, "mid": 5, "slow": 9}
        defs.append(FeatureDef(kind=kind, params=params))
        defs.append(FeatureDef(kind=f"htf_{kind}", params={"tf": "1h", **params}))
    for kind in ("vol_z", "cmf", "mfi", "obv_slope", "adosc", "vwap_dist"):
        defs.append(
            FeatureDef(
                kind=f"htf_{kind}",
                params={"tf": "4h", "period": 3}
                if "period" in {p.name for p in INDICATORS[kind].params}
                else {"tf": "4h"},
            )
        )
    for kind in ("hour_sin", "dow_cos", "minute_sin"):
        defs.append(FeatureDef(kind=kind))
    defs.append(FeatureDef(kind="session", params={"start": 22, "end": 3}))
    return FeatureSpec(name="every-kind", features=tuple(defs))


def test_constants_follow_the_kernels() -> None:
    assert stream._RESYNC == kernels._RESYNC
    assert stream._TIE_REL == kernels._TIE_REL


def test_standard_set_streams_exactly(bars: pd.DataFrame) -> None:
    spec = get_feature_set("standard")
    got = _stream_rows(spec, bars, WARM)
    expected = compute_feature_matrix(bars, spec)[WARM:]
    assert got.shape == expected.shape == (len(bars) - WARM, 82)
    _assert_rows_equal(got, expected, spec.columns())
    assert not np.isnan(got[-1]).any()


def test_standard_set_across_gaps_per_step(bars: pd.DataFrame) -> None:
    spec = get_feature_set("standard")
    frame = _with_gaps(bars)
    got = _stream_rows(spec, frame, WARM)
    _assert_rows_equal(got, compute_feature_matrix(frame, spec)[WARM:], spec.columns())
    # the per-step definition itself: the last row of a recomputation over the bars so far
    rng = np.random.default_rng(3)
    steps = rng.choice(np.arange(WARM, len(frame)), 30, replace=False)
    for t in sorted(steps):
        expected = compute_feature_matrix(frame.iloc[: t + 1], spec)[-1]
        _assert_rows_equal(got[t - WARM][None], expected[None], spec.columns())


def test_from_the_first_bar_and_a_partial_first_bin(bars: pd.DataFrame) -> None:
    """Warm-up NaNs, seeding and a first higher bin opened before the data are all the batch's."""
    spec = get_feature_set("standard")
    frame = bars.iloc[7:2500].reset_index(drop=True)  # starts at minute 35: partial 1h/4h bins
    got = _stream_rows(spec, frame, 0)
    _assert_rows_equal(got, compute_feature_matrix(frame, spec), spec.columns())


def test_every_streamable_kind(bars: pd.DataFrame) -> None:
    spec = _full_spec()
    frame = _with_gaps(bars, seed=11)
    got = _stream_rows(spec, frame, 900)
    expected = compute_feature_matrix(frame, spec)[900:]
    _assert_rows_equal(got, expected, spec.columns())
    assert not np.isnan(got[-1]).any()
    streamed = {f.kind for f in spec.features}
    assert set(stream.streamable_kinds()) <= streamed | {f"htf_{k}" for k in streamed} | {
        "dow_sin",
        "hour_cos",
        "minute_cos",
    }


def test_bar_objects_and_timestamps(bars: pd.DataFrame) -> None:
    spec = get_feature_set("standard")
    fs = FeatureStream(spec, "5m")
    fs.warm_up(bars.iloc[:WARM])
    expected = compute_feature_matrix(bars.iloc[: WARM + 2], spec)
    row = bars.iloc[WARM]
    first = fs.update(row)  # a Series: attribute access
    second = fs.update(
        {**bars.iloc[WARM + 1].to_dict(), "timestamp": int(bars["timestamp"].iloc[WARM + 1].value)}
    )
    _assert_rows_equal(np.array([first, second]), expected[WARM:], spec.columns())
    assert fs.bars_seen == WARM + 2


def test_refuses_exogenous_kinds() -> None:
    with pytest.raises(ConfigError) as error:
        FeatureStream(get_feature_set("standard_exo"), "5m")
    text = str(error.value)
    for kind in ("funding_rate", "funding_z", "event_minutes_to", "event_minutes_since"):
        assert kind in text
    assert "predict_latest" in text


def test_refuses_a_higher_timeframe_that_is_not_coarser() -> None:
    with pytest.raises(ConfigError, match="not coarser"):
        FeatureStream(get_feature_set("standard"), "1h")


def test_refuses_bad_bars(bars: pd.DataFrame) -> None:
    fs = FeatureStream(get_feature_set("standard"), "5m")
    fs.warm_up(bars.iloc[:100])
    with pytest.raises(DataError, match="increase"):
        fs.update(bars.iloc[99].to_dict())
    with pytest.raises(DataError, match="NaN"):
        fs.update({**bars.iloc[100].to_dict(), "close": float("nan")})
    shifted = {**bars.iloc[100].to_dict()}
    shifted["timestamp"] = shifted["timestamp"] + pd.Timedelta(minutes=1)
    with pytest.raises(DataError, match="grid"):
        fs.update(shifted)
    # a refused bar changes nothing: the stream goes on as if it never came
    got = np.array([fs.update(bar) for bar in bars.iloc[100:103].to_dict("records")])
    spec = get_feature_set("standard")
    _assert_rows_equal(got, compute_feature_matrix(bars.iloc[:103], spec)[100:], spec.columns())


def test_state_does_not_grow_with_history(bars: pd.DataFrame) -> None:
    """O(1) per bar: the same fixed-size state whatever the history length."""
    spec = get_feature_set("standard")
    short, long = FeatureStream(spec, "5m"), FeatureStream(spec, "5m")
    short.warm_up(bars.iloc[:300])
    long.warm_up(bars.iloc[:4000])
    assert short._engine.st.shape == long._engine.st.shape
    for a, b in zip(short._views, long._views, strict=True):
        assert a.engine is not None and b.engine is not None
        assert a.engine.st.shape == b.engine.st.shape
        assert len(a.volumes) <= a.ratio and len(b.volumes) <= b.ratio


def test_refuses_history_of_another_timeframe(bars: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="timeframe"):
        FeatureStream(get_feature_set("standard"), "15m").warm_up(bars.iloc[:100])
    # without higher-timeframe features the bar size does not matter
    spec = FeatureSpec(name="plain", features=(FeatureDef(kind="rsi"),))
    FeatureStream(spec, "15m").warm_up(bars.iloc[:100])


def _cusum_spec() -> FeatureSpec:
    defs = [
        FeatureDef(kind=f"{prefix}cusum_{part}", params={**tf, **params})
        for prefix, tf in (("", {}), ("htf_", {"tf": "1h"}))
        for params in ({}, {"span": 20, "k": 0.25, "h": 2.0})
        for part in ("pos", "neg", "age")
    ]
    defs += [
        FeatureDef(kind="htf_cusum_neg", params={"tf": "4h", "span": 5, "h": 1.5}),
        # same span and k, another h: a node of its own, not the one above reused
        FeatureDef(kind="cusum_age", params={"span": 20, "k": 0.25, "h": 3.0}),
    ]
    return FeatureSpec(name="cusum", features=tuple(defs))


@pytest.mark.parametrize("warm", [0, WARM])
def test_cusum_streams_bit_for_bit_across_gaps(bars: pd.DataFrame, warm: int) -> None:
    """Over all 5,700-odd sample bars (gaps included) from the first bar or after a warm-up,
    S+/h, S-/h and the age equal the batch kernel's exactly, htf views included."""
    spec = _cusum_spec()
    frame = _with_gaps(bars, seed=5)
    assert len(frame) - warm >= 3000
    got = _stream_rows(spec, frame, warm)
    expected = compute_feature_matrix(frame, spec)[warm:]
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(got, expected, equal_nan=True)  # same operations in the same order
    assert not np.isnan(got[-1]).any()
    assert (expected[:, 5] == 0.0).sum() > 5  # cusum_age_20_0p25_2: events did fire
    assert not np.array_equal(expected[:, 5], expected[:, -1], equal_nan=True)
    for t in (warm + 700, len(frame) - 1):  # the per-step definition, across the gaps
        row = compute_feature_matrix(frame.iloc[: t + 1], spec)[-1]
        assert np.array_equal(got[t - warm], row, equal_nan=True)
