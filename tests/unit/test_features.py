"""Feature specs (validation, names, hash, JSON) and indicator values against plain references."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from quantrain.errors import ConfigError, DataError
from quantrain.features import (
    FEATURE_CODE_VERSION,
    FeatureDef,
    FeatureSelection,
    FeatureSpec,
    atr,
    available_indicators,
    compute_features,
    get_feature_set,
    kernels,
    resolve_feature_set,
    standard_spec,
)
from quantrain.features.compute import INDICATORS

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "src" / "quantrain" / "sample_data"
PAIRS = sorted(p.name.removesuffix("_5m.parquet") for p in SAMPLE_DIR.glob("*_5m.parquet"))
PRICES = ["open", "high", "low", "close"]
V1_RECIPE = Path(__file__).resolve().parents[1] / "fixtures" / "package_v1" / "features.json"


@pytest.fixture(scope="module")
def ohlcv() -> pd.DataFrame:
    return pd.read_parquet(SAMPLE_DIR / "ETH-BTC_5m.parquet")


def spec_of(*defs: tuple[str, dict[str, int | float | str]], name: str = "t") -> FeatureSpec:
    return FeatureSpec(name=name, features=tuple(FeatureDef(kind=k, params=p) for k, p in defs))


def one(ohlcv: pd.DataFrame, kind: str, **params: int | float | str) -> np.ndarray:
    frame = compute_features(ohlcv, spec_of((kind, params)))
    return frame.iloc[:, 0].to_numpy()


def frame_from(close: np.ndarray, spread: float = 0.0, volume: float = 1.0) -> pd.DataFrame:
    n = len(close)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"),
            "open": close,
            "high": close * (1 + spread),
            "low": close * (1 - spread),
            "close": close,
            "volume": np.full(n, volume),
        }
    )


# ------------------------------------------------------------------ plain-Python references


def ref_ema(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    out[n - 1] = sum(x[:n]) / n
    for i in range(n, len(x)):
        out[i] = (x[i] - out[i - 1]) * (2 / (n + 1)) + out[i - 1]
    return out


def ref_rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder RSI as TA-Lib computes it: averages seeded with the mean of the first n moves."""
    out = np.full(len(close), np.nan)
    diffs = [close[i] - close[i - 1] for i in range(1, len(close))]
    gain = sum(max(d, 0.0) for d in diffs[:n]) / n
    loss = sum(max(-d, 0.0) for d in diffs[:n]) / n
    out[n] = 100 * gain / (gain + loss)
    for i in range(n + 1, len(close)):
        d = diffs[i - 1]
        gain = (gain * (n - 1) + max(d, 0.0)) / n
        loss = (loss * (n - 1) + max(-d, 0.0)) / n
        out[i] = 100 * gain / (gain + loss)
    return out


def ref_atr(h: np.ndarray, low: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    tr = [
        max(h[i] - low[i], abs(h[i] - c[i - 1]), abs(low[i] - c[i - 1])) for i in range(1, len(c))
    ]
    out = np.full(len(c), np.nan)
    out[n] = sum(tr[:n]) / n
    for i in range(n + 1, len(c)):
        out[i] = (out[i - 1] * (n - 1) + tr[i - 1]) / n
    return out


def ref_adx(h: np.ndarray, low: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Rows +DI, -DI, ADX following TA-Lib's ta_ADX.c loop; moves equal to 1e-10 of the price
    count as ties (TA-Lib: exact ties only, so an ulp decides equal tick moves)."""
    out = np.full((3, len(c)), np.nan)
    s_p = s_m = s_tr = 0.0
    dxs: list[float] = []
    adx = 0.0
    for i in range(1, len(c)):
        up, dn = h[i] - h[i - 1], low[i - 1] - low[i]
        tie = abs(up - dn) <= 1e-10 * h[i]
        p = up if up > 0 and up > dn and not tie else 0.0
        m = dn if dn > 0 and dn > up and not tie else 0.0
        tr = max(h[i] - low[i], abs(h[i] - c[i - 1]), abs(low[i] - c[i - 1]))
        if i < n:
            s_p, s_m, s_tr = s_p + p, s_m + m, s_tr + tr
            continue
        s_p, s_m, s_tr = s_p - s_p / n + p, s_m - s_m / n + m, s_tr - s_tr / n + tr
        pdi, mdi = 100 * s_p / s_tr, 100 * s_m / s_tr
        out[0, i], out[1, i] = pdi, mdi
        dxs.append(100 * abs(pdi - mdi) / (pdi + mdi))
        if len(dxs) == n:
            adx = sum(dxs) / n
            out[2, i] = adx
        elif len(dxs) > n:
            adx = (adx * (n - 1) + dxs[-1]) / n
            out[2, i] = adx
    return out


# ------------------------------------------------------------------------- spec: definitions


def test_standard_set_is_large_and_named_deterministically() -> None:
    spec = standard_spec()
    cols = spec.columns()
    assert spec.name == "standard"
    assert len(cols) >= 60
    assert len(set(cols)) == len(cols)
    for expected in ("rsi_14", "ema_dist_20", "ret_12", "bb_pctb_20_2", "macd_hist_12_26_9"):
        assert expected in cols
    assert get_feature_set("standard") == spec
    assert set(available_indicators()) >= {f.kind for f in spec.features}
    inputs = {INDICATORS[f.kind].inputs for f in spec.features}
    assert inputs == {"ohlcv", "time", "htf"}  # exogenous ones live in standard_exo


def test_standard_set_keeps_version_1_columns_first() -> None:
    """Version 1's 38 columns are still there, in order, with the same recipe."""
    v1 = json.loads(V1_RECIPE.read_text())
    assert v1["feature_code_version"] == "1"
    now = [{"kind": f.kind, "params": f.params} for f in standard_spec().features]
    assert now[: len(v1["features"])] == v1["features"]
    assert len(v1["features"]) == 38


def test_standard_exo_is_standard_plus_exogenous() -> None:
    exo = get_feature_set("standard_exo")
    assert exo.columns()[:82] == standard_spec().columns()
    assert {INDICATORS[f.kind].inputs for f in exo.features[82:]} == {"exogenous"}


def test_defaults_are_filled_so_equivalent_specs_hash_alike() -> None:
    short = spec_of(("rsi", {}), ("bb_pctb", {"nstd": 2}))
    full = spec_of(("rsi", {"period": 14}), ("bb_pctb", {"period": 20, "nstd": 2.0}))
    assert short.columns() == full.columns() == ["rsi_14", "bb_pctb_20_2"]
    assert short.spec_hash() == full.spec_hash()
    assert isinstance(short.features[1].params["nstd"], float)
    assert spec_of(("bb_pctb", {"nstd": 2.5})).columns() == ["bb_pctb_20_2p5"]


def test_hash_is_sha256_of_the_documented_canonical_json() -> None:
    spec = spec_of(("rsi", {"period": 7}), ("hl_range", {}), name="golden")
    canonical = {
        "name": "golden",
        "features": [{"kind": "rsi", "params": {"period": 7}}, {"kind": "hl_range", "params": {}}],
        "feature_code_version": FEATURE_CODE_VERSION,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    assert spec.spec_hash() == hashlib.sha256(text.encode()).hexdigest()


def test_hash_is_stable_across_processes() -> None:
    code = "from quantrain.features import standard_spec; print(standard_spec().spec_hash())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == standard_spec().spec_hash()


def test_hash_changes_with_any_param_feature_order_or_name() -> None:
    base = spec_of(("rsi", {"period": 14}), ("ret", {"period": 3}))
    variants = [
        spec_of(("rsi", {"period": 15}), ("ret", {"period": 3})),
        spec_of(("rsi", {"period": 14}), ("ret", {"period": 4})),
        spec_of(("rsi", {"period": 14})),
        spec_of(("rsi", {"period": 14}), ("ret", {"period": 3}), ("hl_range", {})),
        spec_of(("ret", {"period": 3}), ("rsi", {"period": 14})),
        spec_of(("rsi", {"period": 14}), ("ret", {"period": 3}), name="other"),
    ]
    hashes = {v.spec_hash() for v in variants}
    assert len(hashes) == len(variants)
    assert base.spec_hash() not in hashes


def test_json_round_trip_keeps_hash_and_columns() -> None:
    spec = standard_spec()
    data = json.loads(json.dumps(spec.to_json_dict()))
    assert data["spec_hash"] == spec.spec_hash()
    assert data["feature_code_version"] == FEATURE_CODE_VERSION
    again = FeatureSpec.model_validate(data)
    assert again == spec
    assert again.spec_hash() == spec.spec_hash()
    assert again.columns() == spec.columns()


def test_json_from_other_feature_code_or_edited_is_refused() -> None:
    data = standard_spec().to_json_dict()
    with pytest.raises(ConfigError, match="feature code version"):
        FeatureSpec.model_validate({**data, "feature_code_version": "0-old"})
    edited = json.loads(json.dumps(data))
    edited["features"][0]["params"]["period"] = 2
    with pytest.raises(ConfigError, match="spec_hash"):
        FeatureSpec.model_validate(edited)
    del edited["spec_hash"]  # a hand-written recipe without a stamp is accepted
    assert FeatureSpec.model_validate(edited).columns()[0] == "ret_2"


def test_unknown_indicator_names_near_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown feature indicator 'rsii'.*'rsi'"):
        FeatureDef(kind="rsii")
    with pytest.raises(ConfigError, match="'ema_dist'"):
        FeatureSpec.model_validate({"name": "x", "features": [{"kind": "ema_dst"}]})


def test_unknown_feature_set_names_near_matches() -> None:
    with pytest.raises(ConfigError, match=r"'standrd'.*did you mean 'standard'"):
        get_feature_set("standrd")


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("rsi", {"perod": 14}, r"unknown parameter 'perod'.*\['period'\].*did you mean 'period'"),
        ("rsi", {"period": 14.5}, r"'period' of indicator 'rsi' must be an integer, got 14.5"),
        ("rsi", {"period": "14"}, r"must be an integer, got '14'"),
        ("rsi", {"period": True}, r"must be an integer, got True"),
        ("rsi", {"period": 0}, r"must be >= 1, got 0"),
        ("bb_width", {"nstd": -1.0}, r"'nstd'.*must be >= 0.0, got -1.0"),
        ("bb_width", {"nstd": float("nan")}, r"'nstd'.*must be finite"),
        ("macd", {"fast": 30, "slow": 26}, r"'fast' must be smaller than 'slow', got fast=30"),
        ("hl_range", {"period": 3}, r"unknown parameter 'period'.*expected one of none"),
    ],
)
def test_bad_params_say_expected_and_got(
    kind: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureDef.model_validate({"kind": kind, "params": params})


def test_spec_refuses_duplicates_empty_and_extra_fields() -> None:
    with pytest.raises(ConfigError, match=r"repeats column\(s\) \['rsi_14'\]"):
        spec_of(("rsi", {}), ("rsi", {"period": 14}))
    with pytest.raises(ConfigError, match="no features"):
        FeatureSpec(name="empty", features=())
    with pytest.raises(ValidationError):
        FeatureSpec.model_validate({"name": "x", "features": [{"kind": "rsi"}], "extra": 1})
    with pytest.raises(ValidationError):
        FeatureDef.model_validate({"kind": "rsi", "period": 14})
    spec = standard_spec()
    with pytest.raises(ValidationError):
        spec.name = "changed"  # type: ignore[misc]


def test_warmup_is_the_max_over_features() -> None:
    assert spec_of(("ret", {"period": 48}), ("adx", {"period": 14})).warmup_bars() == 48
    assert spec_of(("adx", {"period": 30}), ("hl_range", {})).warmup_bars() == 59
    assert standard_spec().warmup_bars("5m") == 190  # htf_rsi_1h_14: (14 + 2) * 12 - 2
    assert standard_spec().warmup_bars("15m") == 144  # on 15m bars volatility_144 is slowest
    assert standard_spec().warmup_bars() == (14 + 2) * 60 - 2  # unknown base: 1m, an upper bound
    htf = spec_of(("htf_ret", {"tf": "4h", "period": 1}))
    assert htf.warmup_bars("1h") == 3 * 4 - 2
    assert htf.features[0].warmup == htf.warmup_bars("1m")


# ----------------------------------------------------------------------- compute: the frame


def test_output_shape_columns_order_and_index(ohlcv: pd.DataFrame) -> None:
    window = ohlcv.iloc[100:700]
    spec = standard_spec()
    out = compute_features(window, spec)
    assert list(out.columns) == spec.columns()
    assert out.index.equals(window.index)
    assert (out.dtypes == np.float64).all()
    reordered = FeatureSpec(name="r", features=spec.features[::-1])
    flipped = compute_features(window, reordered)
    pd.testing.assert_frame_equal(flipped[spec.columns()], out)


def test_input_is_not_mutated(ohlcv: pd.DataFrame) -> None:
    before = ohlcv.copy(deep=True)
    out = compute_features(ohlcv, standard_spec())
    pd.testing.assert_frame_equal(ohlcv, before)
    out.iloc[:, :] = 0.0  # writing the result must not reach back into the input either
    pd.testing.assert_frame_equal(ohlcv, before)


@pytest.mark.parametrize("pair", PAIRS)
def test_nan_exactly_during_each_features_warmup(pair: str) -> None:
    frame = pd.read_parquet(SAMPLE_DIR / f"{pair}_5m.parquet")
    spec = standard_spec()
    out = compute_features(frame, spec)
    assert not out.iloc[spec.warmup_bars("5m") :].isna().any().any()
    for feature in spec.features:
        col = out[feature.name].to_numpy()
        warmup = feature.warmup_for("5m")
        assert np.isnan(col[:warmup]).all(), feature.name
        assert not np.isnan(col[warmup:]).any(), feature.name
        assert np.isfinite(col[warmup:]).all(), feature.name


def test_short_and_empty_frames_keep_shape(ohlcv: pd.DataFrame) -> None:
    spec = standard_spec()
    short = compute_features(ohlcv.iloc[:30], spec)
    assert short.shape == (30, len(spec.columns()))
    assert short["sma_dist_100"].isna().all()
    assert not short["hl_range"].isna().any()
    empty = compute_features(ohlcv.iloc[:0], spec)
    assert empty.shape == (0, len(spec.columns()))


def test_bad_frames_raise_data_error(ohlcv: pd.DataFrame) -> None:
    spec = standard_spec()
    with pytest.raises(DataError, match=r"lacks column\(s\) \['volume'\]"):
        compute_features(ohlcv.drop(columns="volume"), spec)
    holed = ohlcv.copy()
    holed.loc[7, "close"] = np.nan
    with pytest.raises(DataError, match=r"'close' has NaN at row\(s\) \[7\]"):
        compute_features(holed, spec)


@pytest.mark.parametrize(
    ("price", "volume"), [(1000.0, 1.0), (1.0, 1000.0), (1000.0, 1000.0), (3e-4, 7.0)]
)
def test_price_and_volume_scale_invariance(
    ohlcv: pd.DataFrame, price: float, volume: float
) -> None:
    """Every standard column is unchanged when prices, volumes or both are rescaled."""
    spec = standard_spec()
    base = compute_features(ohlcv, spec)
    scaled = ohlcv.copy()
    scaled[PRICES] = scaled[PRICES] * price
    scaled["volume"] = scaled["volume"] * volume
    out = compute_features(scaled, spec)
    # atol only absorbs rounding where a value is mathematically ~0 (e.g. MACD at a crossing).
    # Ratios to one bar's range are ill-conditioned on sub-tick bars (h - l ~ 6e-7 of the price
    # at ETH-BTC bar 1138: rescaling moves (c - l) / (h - l) by ~1e-9): rtol 1e-8 for those.
    for col in spec.columns():
        rtol = 1e-8 if col.split("_")[0] in {"adosc", "cmf", "body", "upper", "lower"} else 1e-9
        np.testing.assert_allclose(out[col], base[col], rtol=rtol, atol=1e-12, err_msg=col)
    assert not np.array_equal(scaled[["close", "volume"]], ohlcv[["close", "volume"]])


def test_flat_market_gives_neutral_values_not_inf() -> None:
    frame = frame_from(np.full(200, 0.05), spread=0.0, volume=3.0)
    out = compute_features(frame, standard_spec())
    tail = out.iloc[standard_spec().warmup_bars() :]
    assert np.isfinite(tail.to_numpy()).all()
    assert (tail["rsi_14"] == 50.0).all()
    assert (tail["stoch_k_14"] == 50.0).all()
    assert (tail["bb_pctb_20_2"] == 0.5).all()
    assert (tail["vol_z_20"] == 0.0).all()
    assert (tail["volatility_12"] == 0.0).all()
    assert (tail["adx_14"] == 0.0).all()
    for col in ("cci_20", "aroon_osc_14", "body", "cmf_20", "adosc_3_10", "gap_atr_14", "trix_15"):
        assert (tail[col] == 0.0).all(), col
    for col in ("mfi_14", "htf_rsi_1h_14"):
        assert (tail[col] == 50.0).all(), col
    assert (tail[["range_pos_48", "htf_range_pos_4h_2"]] == 0.5).all().all()
    assert (tail["vol_ratio_5_50"] == 1.0).all()


# ------------------------------------------------------------------ indicators vs references


def test_ema_dist_by_hand() -> None:
    out = one(frame_from(np.arange(1.0, 7.0)), "ema_dist", period=3)
    # EMA(3) seeded with mean(1, 2, 3) = 2, then halves the gap: 3, 4, 5
    np.testing.assert_allclose(out, [np.nan, np.nan, 0.5, 1 / 3, 0.25, 0.2], equal_nan=True)


def test_ema_kernel_matches_loop(ohlcv: pd.DataFrame) -> None:
    close = ohlcv["close"].to_numpy(copy=True)
    for n in (10, 26):
        got = kernels.ewm(close, n, 2.0 / (n + 1), -1)
        np.testing.assert_allclose(got, ref_ema(close, n), rtol=1e-12, equal_nan=True)


def test_rsi_matches_wilder_loop(ohlcv: pd.DataFrame) -> None:
    close = ohlcv["close"].to_numpy()
    for n in (7, 14):
        np.testing.assert_allclose(
            one(ohlcv, "rsi", period=n), ref_rsi(close, n), rtol=1e-10, equal_nan=True
        )


def test_atr_matches_wilder_loop(ohlcv: pd.DataFrame) -> None:
    h, low, c = (ohlcv[k].to_numpy() for k in ("high", "low", "close"))
    expected = ref_atr(h, low, c, 14)
    np.testing.assert_allclose(atr(h, low, c, 14), expected, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(
        one(ohlcv, "atr_frac", period=14), expected / c, rtol=1e-10, equal_nan=True
    )
    with pytest.raises(ConfigError, match="got 0"):
        atr(h, low, c, 0)


def test_adx_and_di_match_talib_loop(ohlcv: pd.DataFrame) -> None:
    h, low, c = (ohlcv[k].to_numpy() for k in ("high", "low", "close"))
    expected = ref_adx(h, low, c, 14)
    for row, kind in enumerate(("plus_di", "minus_di", "adx")):
        got = one(ohlcv, kind, period=14)
        np.testing.assert_allclose(got, expected[row], rtol=1e-10, equal_nan=True)


def test_macd_matches_talib_seeding(ohlcv: pd.DataFrame) -> None:
    c = ohlcv["close"].to_numpy()
    slow = ref_ema(c, 26)
    fast = np.full(len(c), np.nan)  # TA-Lib seeds the fast EMA at the slow one's first bar
    fast[25] = c[14:26].mean()
    for i in range(26, len(c)):
        fast[i] = (c[i] - fast[i - 1]) * (2 / 13) + fast[i - 1]
    line = fast - slow
    signal = np.full(len(c), np.nan)
    signal[25:] = ref_ema(line[25:], 9)
    np.testing.assert_allclose(one(ohlcv, "macd"), line / c, rtol=1e-8, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(
        one(ohlcv, "macd_signal"), signal / c, rtol=1e-8, atol=1e-15, equal_nan=True
    )
    np.testing.assert_allclose(
        one(ohlcv, "macd_hist"), (line - signal) / c, rtol=1e-8, atol=1e-15, equal_nan=True
    )


def windows(x: pd.Series, n: int) -> np.ndarray:
    """Each row one trailing window (rows start at bar n-1): exact per-window statistics."""
    return np.lib.stride_tricks.sliding_window_view(x.to_numpy(), n)


def padded(values: np.ndarray, n: int) -> pd.Series:
    return pd.Series(np.concatenate([np.full(n - 1, np.nan), values]))


def test_rolling_features_match_window_references(ohlcv: pd.DataFrame) -> None:
    """Window features against per-window numpy/pandas (5,760 bars cross the kernels' resync)."""
    c, h, low, v = (ohlcv[k] for k in ("close", "high", "low", "volume"))
    log_ret = pd.Series(np.log(c / c.shift(1)))
    mid, sd = padded(windows(c, 20).mean(axis=1), 20), padded(windows(c, 20).std(axis=1), 20)
    hh, ll = padded(windows(h, 14).max(axis=1), 14), padded(windows(low, 14).min(axis=1), 14)
    k = 100 * (c - ll) / (hh - ll)
    vol_sd = padded(windows(v, 50).std(axis=1), 50)
    ret_sd = padded(windows(log_ret, 48).std(axis=1, ddof=1), 48)  # NaN at bar 0 spills over
    obv_delta = (np.sign(c.diff()) * v).rolling(20).sum()
    expected = {
        ("ret", 12): np.log(c / c.shift(12)),
        ("sma_dist", 50): c / c.rolling(50).mean() - 1,
        ("bb_pctb", 20): (c - (mid - 2 * sd)) / (4 * sd),
        ("bb_width", 20): 4 * sd / mid,
        ("stoch_k", 14): k,
        ("vol_z", 50): (v - v.rolling(50).mean()) / vol_sd,
        ("volatility", 48): ret_sd,
        ("obv_slope", 20): obv_delta / v.where(c.diff().notna()).rolling(20).sum(),
    }
    for (kind, n), ref in expected.items():
        got = one(ohlcv, kind, period=n)
        np.testing.assert_allclose(
            got, ref.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=kind
        )
    d_ref = k.rolling(3).mean().to_numpy()
    got_d = one(ohlcv, "stoch_d", period=14, smooth=3)
    np.testing.assert_allclose(got_d, d_ref, rtol=1e-9, equal_nan=True)


def test_calendar_features_match_pandas(ohlcv: pd.DataFrame) -> None:
    ts = ohlcv["timestamp"].dt
    day = (ts.hour * 60 + ts.minute).to_numpy() / 1440.0
    dow = (ts.day_of_week + day).to_numpy() / 7.0
    np.testing.assert_allclose(one(ohlcv, "hour_sin"), np.sin(2 * np.pi * day), atol=1e-12)
    np.testing.assert_allclose(one(ohlcv, "hour_cos"), np.cos(2 * np.pi * day), atol=1e-12)
    np.testing.assert_allclose(one(ohlcv, "dow_sin"), np.sin(2 * np.pi * dow), atol=1e-12)
    np.testing.assert_allclose(one(ohlcv, "dow_cos"), np.cos(2 * np.pi * dow), atol=1e-12)


def test_calendar_features_are_utc_whatever_the_timezone_or_unit(ohlcv: pd.DataFrame) -> None:
    spec = spec_of(("hour_sin", {}), ("hour_cos", {}), ("dow_sin", {}), ("dow_cos", {}))
    base = compute_features(ohlcv, spec)
    for convert in (lambda ts: ts.dt.tz_convert("Asia/Tokyo"), lambda ts: ts.dt.as_unit("us")):
        other = ohlcv.assign(timestamp=convert(ohlcv["timestamp"]))
        pd.testing.assert_frame_equal(compute_features(other, spec), base)


def test_rolling_std_is_exactly_zero_on_flat_windows() -> None:
    x = np.concatenate([np.linspace(1.0, 2.0, 3000), np.full(40, 1.7), [1.8, 1.9]])
    got = kernels.rolling_std(x, 20, 0)
    assert (got[3019:3040] == 0.0).all()
    assert got[3040] > 0.0
    ref = padded(windows(pd.Series(x), 20).std(axis=1), 20).to_numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-15, equal_nan=True)


# --------------------------------------------------------------- feature sets from job files


def test_resolve_feature_set_accepts_names_mappings_and_models() -> None:
    assert resolve_feature_set("standard") == standard_spec()
    same = resolve_feature_set({"base": "standard"})
    assert same.spec_hash() == standard_spec().spec_hash()
    selection = {
        "base": "standard",
        "drop": ["rsi_7", "htf_*", "session"],
        "add": [{"kind": "rsi", "params": {"period": 28}}, {"kind": "cmo"}],
    }
    spec = resolve_feature_set(selection)
    cols = spec.columns()
    assert spec.name == "standard-custom"
    assert "rsi_7" not in cols and "rsi_14" in cols
    assert not any(c.startswith(("htf_", "session_")) for c in cols)
    assert cols[-1] == "cmo_14"
    assert resolve_feature_set(FeatureSelection.model_validate(selection)) == spec
    named = resolve_feature_set({**selection, "name": "mine"})
    assert named.name == "mine" and named.columns() == cols


def test_every_selection_change_changes_the_hash() -> None:
    variants: list[str | dict[str, object]] = [
        "standard",
        {"drop": ["rsi_7"]},
        {"drop": ["rsi"]},
        {"drop": ["rsi_7"], "name": "other"},
        {"add": [{"kind": "cmo"}]},
        {"add": [{"kind": "cmo", "params": {"period": 15}}]},
        {"add": [{"kind": "htf_rsi", "params": {"tf": "2h"}}]},
        {"base": "standard_exo"},
    ]
    hashes = {resolve_feature_set(v).spec_hash() for v in variants}
    assert len(hashes) == len(variants)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"drop": ["rsi_15"]}, r"'rsi_15' is neither a column nor a kind.*did you mean.*'rsi_14'"),
        ({"drop": ["nothing_*"]}, r"'nothing_\*' is neither"),
        ({"base": "standrd"}, r"unknown feature set 'standrd'.*'standard'"),
        ({"add": [{"kind": "rsii"}]}, r"unknown feature indicator 'rsii'"),
        ({"add": [{"kind": "rsi"}]}, r"repeats column\(s\) \['rsi_14'\]"),
        ({"dorp": ["rsi_7"]}, r"features.dorp: Extra inputs are not permitted.*keys base, drop"),
        ({"drop": [c for c in standard_spec().columns()]}, "has no features"),
        (["rsi"], "set name or a mapping"),
    ],
)
def test_bad_selections_are_config_errors(selection: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_feature_set(selection)  # type: ignore[arg-type]


def test_feature_selection_is_frozen_and_strict() -> None:
    selection = FeatureSelection(drop=("rsi_7",))
    with pytest.raises(ValidationError):
        selection.base = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        FeatureSelection.model_validate({"bsae": "standard"})


# ------------------------------------------------------- new indicators vs window references


def test_structure_and_volatility_features_match_references(ohlcv: pd.DataFrame) -> None:
    o, h, low, c, v = (ohlcv[k] for k in ("open", "high", "low", "close", "volume"))
    tr = pd.concat([h - low, (h - c.shift()).abs(), (low - c.shift()).abs()], axis=1).max(axis=1)
    tr[0] = np.nan
    atr14 = pd.Series(ref_atr(h.to_numpy(), low.to_numpy(), c.to_numpy(), 14))
    rng = h - low
    tp = (h + low + c) / 3
    hl2 = pd.Series(np.log(h / low) ** 2)
    gk = (0.5 * hl2 - (2 * np.log(2) - 1) * pd.Series(np.log(c / o)) ** 2).rolling(20).mean()
    prev_hh, prev_ll = h.rolling(48).max().shift(), low.rolling(48).min().shift()
    expected = {
        ("parkinson", (("period", 20),)): np.sqrt(hl2.rolling(20).mean() / (4 * np.log(2))),
        ("garman_klass", (("period", 20),)): np.sqrt(gk.clip(lower=0)),
        ("vwap_dist", (("period", 48),)): c / ((tp * v).rolling(48).sum() / v.rolling(48).sum())
        - 1,
        ("swing_high_dist", (("period", 48), ("atr", 14))): (h.rolling(48).max() - c) / atr14,
        ("swing_low_dist", (("period", 48), ("atr", 14))): (c - low.rolling(48).min()) / atr14,
        ("range_pos", (("period", 48),)): (c - prev_ll) / (prev_hh - prev_ll),
        ("body", ()): ((c - o) / rng).where(rng > 0, 0.0),
        ("upper_wick", ()): ((h - np.maximum(o, c)) / rng).where(rng > 0, 0.0),
        ("lower_wick", ()): ((np.minimum(o, c) - low) / rng).where(rng > 0, 0.0),
        ("gap_atr", (("atr", 14),)): (o - c.shift()) / atr14,
        ("vol_ratio", (("fast", 5), ("slow", 50))): v.rolling(5).mean() / v.rolling(50).mean(),
        ("ema_slope", (("period", 20), ("lag", 12))): pd.Series(
            ref_ema(c.to_numpy(), 20)
        ).pct_change(12, fill_method=None),
    }
    for (kind, params), ref in expected.items():
        got = one(ohlcv, kind, **dict(params))
        np.testing.assert_allclose(
            got, ref.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=kind
        )
    assert (one(ohlcv, "upper_wick") + one(ohlcv, "lower_wick") + np.abs(one(ohlcv, "body")))[
        rng.to_numpy() > 0
    ] == pytest.approx(1.0)


def test_session_and_minute_features_match_pandas(ohlcv: pd.DataFrame) -> None:
    ts = ohlcv["timestamp"].dt
    hour = ts.hour.to_numpy()
    np.testing.assert_array_equal(one(ohlcv, "session", start=7, end=16), (hour >= 7) & (hour < 16))
    np.testing.assert_array_equal(one(ohlcv, "session", start=22, end=2), (hour >= 22) | (hour < 2))
    minute = ts.minute.to_numpy() / 60.0
    np.testing.assert_allclose(one(ohlcv, "minute_sin"), np.sin(2 * np.pi * minute), atol=1e-12)
    np.testing.assert_allclose(one(ohlcv, "minute_cos"), np.cos(2 * np.pi * minute), atol=1e-12)
    with pytest.raises(ConfigError, match="start != end"):
        FeatureDef(kind="session", params={"start": 5, "end": 5})
    with pytest.raises(ConfigError, match="fast < mid < slow"):
        FeatureDef(kind="ultosc", params={"fast": 14, "mid": 7})


def test_threads_give_the_same_matrix(ohlcv: pd.DataFrame) -> None:
    spec = get_feature_set("standard")
    one_thread = compute_features(ohlcv, spec, threads=1)
    pd.testing.assert_frame_equal(compute_features(ohlcv, spec, threads=3), one_thread)


# ------------------------------------------------------------------ CUSUM change points


def ref_cusum(close: np.ndarray, span: int, k: float, h: float) -> np.ndarray:
    """The definition, in plain Python: rows S+/h, S-/h, log1p(min(age, 10 * span))."""
    r = [np.nan] + [float(np.log(close[i] / close[i - 1])) for i in range(1, len(close))]
    out = np.full((3, len(close)), np.nan)
    seed = r[1 : span + 1]
    mean = sum(seed) / span
    var = sum((x - mean) ** 2 for x in seed) / span
    alpha = 2 / (span + 1)
    pos = neg = 0.0
    last = span
    for t in range(span + 1, len(close)):
        sd = var**0.5
        x = r[t] / sd if sd > 0 else 0.0
        pos, neg = max(0.0, pos + x - k), min(0.0, neg + x + k)
        if pos > h or neg < -h:
            pos, neg, last = 0.0, 0.0, t
        out[:, t] = pos / h, neg / h, np.log1p(min(t - last, 10 * span))
        d = r[t] - mean  # the scale learns bar t only after scoring it
        mean += alpha * d
        var = (1 - alpha) * (var + d * alpha * d)
    return out


def _cusum_frame() -> pd.DataFrame:
    """±0.1% alternating moves (scale 0.001, no drift), a 1% jump at bar 20, a steady climb
    from bar 40 and a steady fall from bar 80."""
    r = np.array([0.001 if i % 2 else -0.001 for i in range(120)])
    r[20] = 0.01
    r[40:60] = 0.0025
    r[80:100] = -0.0025
    return frame_from(np.exp(np.cumsum(r)) * 0.05)


def test_cusum_by_hand() -> None:
    frame = _cusum_frame()
    # the three kinds share one kernel call; names carry span, k and h
    spec = spec_of(
        *((f"cusum_{k}", {"span": 10, "k": 0.5, "h": 3.0}) for k in ("pos", "neg", "age"))
    )
    assert spec.columns() == ["cusum_pos_10_0p5_3", "cusum_neg_10_0p5_3", "cusum_age_10_0p5_3"]
    assert spec.warmup_bars() == 11
    out = compute_features(frame, spec).to_numpy().T
    ref = ref_cusum(frame["close"].to_numpy(), 10, 0.5, 3.0)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    assert np.isnan(out[:, :11]).all() and not np.isnan(out[:, 11:]).any()
    events = np.flatnonzero(out[2] == 0.0).tolist()
    assert events == np.flatnonzero(ref[2] == 0.0).tolist()
    # the 1% jump (about 10 scales) fires on its own bar; the climb (bars 40-59) fires upward
    # events from its second bar, ever faster as the scale learns the calm drift; the fall
    # likewise downward; the alternating noise never fires
    ret = np.diff(np.log(frame["close"].to_numpy()), prepend=np.nan)
    up = [t for t in events if ret[t] > 0.0]
    down = [t for t in events if ret[t] < 0.0]
    assert up == [20, 41, 44, 47, 49, 51, 53, 54, 55, 56, 57, 58, 59]
    assert down == [81, 84, 87, 89, 91, 93, 94, 95, 96, 97, 98, 99]
    # both sums reset at an event; between events they stay within (0, 1] and [-1, 0)
    assert (out[0, events] == 0.0).all() and (out[1, events] == 0.0).all()
    assert (out[0, 11:] >= 0.0).all() and (out[0, 11:] <= 1.0).all()
    assert (out[1, 11:] <= 0.0).all() and (out[1, 11:] >= -1.0).all()
    # age: bars since the last event (from the seed bar 10 before the first)
    assert out[2, 11] == np.log1p(1) and out[2, 19] == np.log1p(9)
    assert out[2, 25] == np.log1p(5)


def test_cusum_matches_reference_on_sample_data(ohlcv: pd.DataFrame) -> None:
    close = ohlcv["close"].to_numpy()
    for span, k, h in ((100, 0.5, 5.0), (20, 0.25, 2.0)):
        ref = ref_cusum(close, span, k, h)
        out = kernels.cusum(np.ascontiguousarray(close, dtype=np.float64), span, k, h)
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)
        assert (out[2] == 0.0).sum() > 5  # events fire on real data
        assert np.nanmax(out[2]) <= np.log1p(10 * span)


def test_cusum_is_opt_in_and_added_from_a_job_selection() -> None:
    assert not any(f.kind.startswith("cusum") for f in standard_spec().features)
    spec = resolve_feature_set(
        {"base": "standard", "add": [{"kind": "cusum_pos"}, {"kind": "cusum_age"}]}
    )
    assert spec.columns()[-2:] == ["cusum_pos_100_0p5_5", "cusum_age_100_0p5_5"]
    assert spec.spec_hash() != standard_spec().spec_hash()
    with pytest.raises(ConfigError, match="'h' must be > 0"):
        spec_of(("cusum_neg", {"h": 0.0}))
    with pytest.raises(ConfigError, match="'span'"):
        spec_of(("cusum_neg", {"span": 1}))


def test_cusum_is_nan_through_warmup_on_short_frames() -> None:
    frame = _cusum_frame().iloc[:12]
    out = compute_features(frame, spec_of(("cusum_pos", {"span": 10})))
    assert out.iloc[:11, 0].isna().all() and not np.isnan(out.iloc[11, 0])
    assert (
        compute_features(frame.iloc[:11], spec_of(("cusum_pos", {"span": 10}))).isna().all().all()
    )
