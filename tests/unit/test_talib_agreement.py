"""Our indicators agree with TA-Lib on real bars after the warm-up.

For scale-free transforms the comparison applies the same transform to TA-Lib's raw output
(``ema_dist`` = close / EMA - 1, ``atr_frac`` = NATR / 100, ``trix`` = TRIX / 100, ...).
Seeding follows TA-Lib everywhere (SMA-seeded EMAs, Wilder sums seeded with a mean, MACD's fast
EMA seeded at the slow one's first bar, ADOSC's EMAs seeded with the first A/D value).

Deliberate differences, each excluded from the exact comparison and tested separately:
- ADX/+DI/-DI: up- and down-moves within 1e-10 of the price count as a tie (TA-Lib: exact ties
  only), so equal tick moves that differ by an ulp do not decide DM and the result stays
  scale-free. Exact on tick-quantised prices; within 1e-3 on the raw floats.
- Stochastic %K / Williams %R on a window with high == low: 50 / -50 (TA-Lib: 0).
- MFI: 50 when a window has no money flow (TA-Lib: 0 when the flows sum below 1.0, an absolute
  threshold that depends on the price and volume scale); ticks within 1e-10 are no change.
- CCI: a window whose mean deviation is below 1e-10 of its mean is flat (0); TA-Lib tests 0.
- BOP (``body``): 0 for a bar with no range (TA-Lib: range below 1e-8, absolute).
- CMO is TA-Lib's (Wilder-smoothed, = 2 RSI - 100), not Chande's plain-sum original.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from quantrain.data import resample_ohlcv
from quantrain.features import FeatureDef, FeatureSpec, compute_features

talib = pytest.importorskip("talib")

Arrays = dict[str, np.ndarray]


def ours(frame: pd.DataFrame, kind: str, **params: int | float | str) -> np.ndarray:
    spec = FeatureSpec(name="t", features=(FeatureDef(kind=kind, params=params),))
    return compute_features(frame, spec).iloc[:, 0].to_numpy()


def shifted(x: np.ndarray, k: int) -> np.ndarray:
    return np.r_[np.full(k, np.nan), x[:-k]]


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(x).rolling(n).sum().to_numpy()


def _obv_slope(a: Arrays) -> np.ndarray:
    obv = talib.OBV(a["close"], a["volume"])
    return (obv - shifted(obv, 20)) / rolling_sum(np.r_[np.nan, a["volume"][1:]], 20)


def _cmf(a: Arrays) -> np.ndarray:
    ad = talib.AD(a["high"], a["low"], a["close"], a["volume"])
    return (ad - shifted(ad, 20)) / rolling_sum(a["volume"], 20)


def _volatility(a: Arrays) -> np.ndarray:
    logret = np.log(a["close"][1:] / a["close"][:-1])
    return np.r_[np.nan, talib.STDDEV(logret, 20, 1) * np.sqrt(20 / 19)]


def _bb(a: Arrays, which: str) -> np.ndarray:
    upper, middle, lower = talib.BBANDS(a["close"], 20, 2.0, 2.0)
    return (a["close"] - lower) / (upper - lower) if which == "pctb" else (upper - lower) / middle


# kind, params, TA-Lib reference (same transform), first bar compared, atol (in output units)
CASES: list[
    tuple[str, dict[str, int | float | str], Callable[[Arrays], np.ndarray], int, float]
] = [
    ("ret", {"period": 12}, lambda a: np.log(talib.ROCR(a["close"], 12)), 12, 1e-15),
    ("ema_dist", {"period": 20}, lambda a: a["close"] / talib.EMA(a["close"], 20) - 1, 19, 1e-15),
    ("sma_dist", {"period": 50}, lambda a: a["close"] / talib.SMA(a["close"], 50) - 1, 49, 1e-14),
    (
        "ema_slope",
        {"period": 20, "lag": 12},
        lambda a: talib.EMA(a["close"], 20) / shifted(talib.EMA(a["close"], 20), 12) - 1,
        31,
        1e-15,
    ),
    ("macd", {}, lambda a: talib.MACD(a["close"], 12, 26, 9)[0] / a["close"], 33, 1e-15),
    ("macd_signal", {}, lambda a: talib.MACD(a["close"], 12, 26, 9)[1] / a["close"], 33, 1e-15),
    ("macd_hist", {}, lambda a: talib.MACD(a["close"], 12, 26, 9)[2] / a["close"], 33, 1e-15),
    ("rsi", {"period": 14}, lambda a: talib.RSI(a["close"], 14), 14, 1e-10),
    ("rsi", {"period": 7}, lambda a: talib.RSI(a["close"], 7), 7, 1e-10),
    ("cmo", {"period": 14}, lambda a: talib.CMO(a["close"], 14), 14, 1e-10),
    ("trix", {"period": 15}, lambda a: talib.TRIX(a["close"], 15) / 100, 43, 1e-15),
    (
        "atr_frac",
        {"period": 14},
        lambda a: talib.NATR(a["high"], a["low"], a["close"], 14) / 100,
        14,
        1e-15,
    ),
    ("bb_pctb", {}, lambda a: _bb(a, "pctb"), 19, 1e-10),
    ("bb_width", {}, lambda a: _bb(a, "width"), 19, 1e-12),
    ("volatility", {"period": 20}, _volatility, 20, 1e-15),
    (
        "stoch_k",
        {"period": 14},
        lambda a: talib.STOCHF(a["high"], a["low"], a["close"], 14, 3, 0)[0],
        15,
        1e-10,
    ),
    (
        "stoch_d",
        {"period": 14, "smooth": 3},
        lambda a: talib.STOCH(a["high"], a["low"], a["close"], 14, 3, 0, 3, 0)[0],
        17,  # TA-Lib delays slow %K to slow %D's first bar
        1e-10,
    ),
    (
        "willr",
        {"period": 14},
        lambda a: talib.WILLR(a["high"], a["low"], a["close"], 14),
        13,
        1e-10,
    ),
    ("cci", {"period": 20}, lambda a: talib.CCI(a["high"], a["low"], a["close"], 20), 19, 1e-8),
    ("aroon_osc", {"period": 14}, lambda a: talib.AROONOSC(a["high"], a["low"], 14), 14, 1e-10),
    (
        "linreg_slope",
        {"period": 20},
        lambda a: talib.LINEARREG_SLOPE(a["close"], 20) / a["close"],
        19,
        1e-13,
    ),
    (
        "mfi",
        {"period": 14},
        lambda a: talib.MFI(a["high"], a["low"], a["close"], a["volume"], 14),
        14,
        1e-10,
    ),
    (
        "ultosc",
        {},
        lambda a: talib.ULTOSC(a["high"], a["low"], a["close"], 7, 14, 28),
        28,
        1e-10,
    ),
    ("obv_slope", {"period": 20}, _obv_slope, 20, 1e-12),
    ("cmf", {"period": 20}, _cmf, 20, 1e-12),
    (
        "adosc",
        {"fast": 3, "slow": 10},
        lambda a: (
            talib.ADOSC(a["high"], a["low"], a["close"], a["volume"], 3, 10)
            / talib.SMA(a["volume"], 10)
        ),
        9,
        1e-10,
    ),
    ("body", {}, lambda a: talib.BOP(a["open"], a["high"], a["low"], a["close"]), 0, 1e-15),
]


@pytest.fixture(scope="module")
def arrays(eth_frame: pd.DataFrame) -> Arrays:
    return {k: eth_frame[k].to_numpy(dtype=np.float64) for k in eth_frame.columns[1:]}


@pytest.mark.parametrize(
    ("kind", "params", "reference", "start", "atol"),
    CASES,
    ids=[f"{c[0]}-{'-'.join(str(v) for v in c[1].values())}" for c in CASES],
)
def test_agrees_with_talib(
    eth_frame: pd.DataFrame,
    arrays: Arrays,
    kind: str,
    params: dict[str, int | float | str],
    reference: Callable[[Arrays], np.ndarray],
    start: int,
    atol: float,
) -> None:
    got = ours(eth_frame, kind, **params)[start:]
    want = reference(arrays)[start:]
    assert not np.isnan(want).any()
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=atol)


def test_adx_and_di_agree_exactly_on_tick_prices(eth_frame: pd.DataFrame) -> None:
    """On prices that are whole ticks, a tie is exact, so the 1e-10 tie rule changes nothing."""
    ticks = eth_frame.copy()
    for col in ("open", "high", "low", "close"):
        ticks[col] = np.round(eth_frame[col] * 1e6)
    h, low, c = (ticks[k].to_numpy() for k in ("high", "low", "close"))
    for kind, fn, start in (
        ("adx", talib.ADX, 27),
        ("plus_di", talib.PLUS_DI, 14),
        ("minus_di", talib.MINUS_DI, 14),
    ):
        np.testing.assert_allclose(
            ours(ticks, kind, period=14)[start:], fn(h, low, c, 14)[start:], rtol=1e-12, atol=0
        )
        raw = ours(eth_frame, kind, period=14)[start:]
        ref = fn(*(eth_frame[k].to_numpy() for k in ("high", "low", "close")), 14)[start:]
        np.testing.assert_allclose(raw, ref, atol=1e-3)


def test_flat_windows_differ_only_where_documented(eth_frame: pd.DataFrame) -> None:
    h, low, c = (eth_frame[k].to_numpy() for k in ("high", "low", "close"))
    hh = pd.Series(h).rolling(14).max().to_numpy()
    ll = pd.Series(low).rolling(14).min().to_numpy()
    flat = (hh == ll)[13:]
    got, want = ours(eth_frame, "stoch_k", period=14)[13:], talib.STOCHF(h, low, c, 14, 3, 0)[0]
    want = np.r_[np.full(2, np.nan), want[15:]]  # TA-Lib delays %K to %D's first bar
    assert (got[flat] == 50.0).all()
    np.testing.assert_allclose(got[2:][~flat[2:]], want[2:][~flat[2:]], rtol=1e-7, atol=1e-10)


def test_higher_timeframe_rsi_is_talib_rsi_of_completed_hours(eth_frame: pd.DataFrame) -> None:
    hourly, _ = resample_ohlcv(eth_frame, "1h")
    rsi = pd.Series(talib.RSI(hourly["close"].to_numpy(), 14), index=hourly["timestamp"])
    got = pd.Series(ours(eth_frame, "htf_rsi", tf="1h", period=14), index=eth_frame["timestamp"])
    # the hour opening at T is complete at the 5m bar opening at T + 55 min
    at = pd.DatetimeIndex(rsi.index) + pd.Timedelta("55min")
    usable = at.isin(got.index) & rsi.notna().to_numpy()
    usable[usable] &= got[at[usable]].notna().to_numpy()  # past the warm-up (190 bars)
    assert usable.sum() > 400
    np.testing.assert_allclose(got[at[usable]].to_numpy(), rsi[usable].to_numpy(), rtol=1e-10)
