"""Price and volume indicators: trend, momentum, volatility, volume and bar structure.

Each is a small function ``(bars, params) -> array`` whose value is scale-free (unchanged when
all prices, or all volumes, are multiplied by a constant): distances are relative to price or to
ATR, oscillators are bounded. Shared intermediates (true range, ATR, EMAs, rolling extremes, the
A/D line) go through ``Bars.memo`` so a set computes each once. Where TA-Lib implements the same
indicator, the raw value follows TA-Lib's definition (seeding included; tests/unit/
test_talib_agreement.py checks it).
"""

from __future__ import annotations

import numpy as np

from quantrain.features import kernels
from quantrain.features.base import (
    Bars,
    Indicator,
    Param,
    Params,
    get_float,
    get_int,
    period,
    zero,
)

_i = get_int
_f = get_float


def _lag_ratio(x: np.ndarray, k: int) -> np.ndarray:
    """x[t] / x[t-k], NaN for the first k bars."""
    out = np.full(x.shape, np.nan)
    if k < x.shape[0]:
        out[k:] = x[k:] / x[:-k]
    return out


# --- shared intermediates (memoised per call) -------------------------------------------------


def ema(b: Bars, n: int, seed_at: int = -1) -> np.ndarray:
    return b.memo(("ema", n, seed_at), lambda: kernels.ewm(b.close, n, 2.0 / (n + 1), seed_at))


def sma(b: Bars, n: int) -> np.ndarray:
    return b.memo(("sma", n), lambda: kernels.rolling_mean(b.close, n))


def log_ret1(b: Bars) -> np.ndarray:
    return b.memo("logret1", lambda: np.log(_lag_ratio(b.close, 1)))


def close_diff(b: Bars) -> np.ndarray:
    def make() -> np.ndarray:
        diff = np.full(b.close.shape, np.nan)
        diff[1:] = b.close[1:] - b.close[:-1]
        return diff

    return b.memo("diff", make)


def true_range(b: Bars) -> np.ndarray:
    def make() -> np.ndarray:
        tr = np.full(b.close.shape, np.nan)
        prev = b.close[:-1]
        tr[1:] = np.maximum(b.high[1:], prev) - np.minimum(b.low[1:], prev)
        return tr

    return b.memo("tr", make)


def wilder_atr(b: Bars, n: int) -> np.ndarray:
    """Wilder ATR in price units, seeded with the mean of the first n true ranges (TA-Lib)."""
    return b.memo(("atr", n), lambda: kernels.ewm(true_range(b), n, 1.0 / n, -1))


def typical(b: Bars) -> np.ndarray:
    return b.memo("tp", lambda: (b.high + b.low + b.close) / 3.0)


def _high_low(b: Bars, n: int) -> np.ndarray:
    return b.memo(("hhll", n), lambda: kernels.rolling_high_low(b.high, b.low, n))


def highest(b: Bars, n: int) -> np.ndarray:
    """Trailing n-bar high (shared by stochastics, Williams %R, swing and range features)."""
    return _high_low(b, n)[0]


def lowest(b: Bars, n: int) -> np.ndarray:
    return _high_low(b, n)[1]


def volume_mean(b: Bars, n: int) -> np.ndarray:
    return b.memo(("vsma", n), lambda: kernels.rolling_mean(b.volume, n))


def ad_line(b: Bars) -> np.ndarray:
    """Chaikin accumulation/distribution line (TA-Lib AD): cumulative money-flow volume."""

    def make() -> np.ndarray:
        return np.cumsum(money_flow_volume(b))

    return b.memo("ad", make)


def money_flow_volume(b: Bars) -> np.ndarray:
    return b.memo("mfv", lambda: kernels.close_location(b.high, b.low, b.close, b.volume))


def _macd_parts(b: Bars, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """MACD line and signal in price units; the fast EMA is seeded at the slow one's first bar
    (as TA-Lib does), so both start together."""
    fast, slow, sig = _i(p, "fast"), _i(p, "slow"), _i(p, "signal")

    def make() -> np.ndarray:
        line = ema(b, fast, slow - 1) - ema(b, slow)
        return np.stack((line, kernels.ewm(line, sig, 2.0 / (sig + 1), -1)))

    both = b.memo(("macd", fast, slow, sig), make)
    return both[0], both[1]


def _bbands(b: Bars, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Middle band and population std (TA-Lib's BBANDS uses ddof 0)."""
    n = _i(p, "period")
    std = b.memo(("std0", n), lambda: kernels.rolling_std(b.close, n, 0))
    return sma(b, n), std


def _stoch_k(b: Bars, n: int) -> np.ndarray:
    def make() -> np.ndarray:
        hl = _high_low(b, n)
        return 100.0 * kernels.range_position(b.close, hl[0], hl[1], 0.5)

    return b.memo(("stoch_k", n), make)


def _adx(b: Bars, n: int) -> np.ndarray:
    return b.memo(("adx", n), lambda: kernels.adx(b.high, b.low, b.close, n))


def _wilder_gain_loss(b: Bars, n: int) -> tuple[np.ndarray, np.ndarray]:
    def make() -> np.ndarray:
        diff = close_diff(b)
        gain = kernels.ewm(np.maximum(diff, 0.0), n, 1.0 / n, -1)  # NaN at bar 0 propagates
        loss = kernels.ewm(np.maximum(-diff, 0.0), n, 1.0 / n, -1)
        return np.stack((gain, loss))

    both = b.memo(("gainloss", n), make)
    return both[0], both[1]


# --- trend ------------------------------------------------------------------------------------


def _ret(b: Bars, p: Params) -> np.ndarray:
    k = _i(p, "period")
    return np.log(_lag_ratio(b.close, k)) if k > 1 else log_ret1(b)


def _ema_dist(b: Bars, p: Params) -> np.ndarray:
    return kernels.ratio_minus_one(b.close, ema(b, _i(p, "period")))


def _sma_dist(b: Bars, p: Params) -> np.ndarray:
    return kernels.ratio_minus_one(b.close, sma(b, _i(p, "period")))


def _ema_slope(b: Bars, p: Params) -> np.ndarray:
    return kernels.lag_ratio_minus_one(ema(b, _i(p, "period")), _i(p, "lag"))


def _macd(b: Bars, p: Params) -> np.ndarray:
    return _macd_parts(b, p)[0] / b.close


def _macd_signal(b: Bars, p: Params) -> np.ndarray:
    return _macd_parts(b, p)[1] / b.close


def _macd_hist(b: Bars, p: Params) -> np.ndarray:
    line, signal = _macd_parts(b, p)
    return (line - signal) / b.close


def _aroon_osc(b: Bars, p: Params) -> np.ndarray:
    return kernels.aroon_osc(b.high, b.low, _i(p, "period"))


def _cci(b: Bars, p: Params) -> np.ndarray:
    return kernels.cci(typical(b), _i(p, "period"))


def _vwap_dist(b: Bars, p: Params) -> np.ndarray:
    """close / rolling volume-weighted typical price - 1 (plain mean when the window had no
    volume, or when price × volume underflowed to 0 on subnormal prices)."""
    n = _i(p, "period")
    tp = typical(b)
    weighted = kernels.rolling_mean(tp * b.volume, n)
    vwap = kernels.safe_div(weighted, volume_mean(b, n), np.nan)
    flat = ~(vwap > 0.0) & ~np.isnan(weighted)
    if flat.any():
        vwap[flat] = kernels.rolling_mean(tp, n)[flat]
    return kernels.ratio_minus_one(b.close, vwap)


def _linreg_slope(b: Bars, p: Params) -> np.ndarray:
    return kernels.linreg_slope(b.close, _i(p, "period")) / b.close


def _adx_fn(b: Bars, p: Params) -> np.ndarray:
    return _adx(b, _i(p, "period"))[2]


def _plus_di(b: Bars, p: Params) -> np.ndarray:
    return _adx(b, _i(p, "period"))[0]


def _minus_di(b: Bars, p: Params) -> np.ndarray:
    return _adx(b, _i(p, "period"))[1]


# --- momentum ---------------------------------------------------------------------------------


def _rsi(b: Bars, p: Params) -> np.ndarray:
    gain, loss = _wilder_gain_loss(b, _i(p, "period"))
    return 100.0 * kernels.safe_div(gain, gain + loss, 0.5)


def _cmo(b: Bars, p: Params) -> np.ndarray:
    """TA-Lib's CMO: Wilder-smoothed like its RSI, so it equals 2 * RSI - 100."""
    gain, loss = _wilder_gain_loss(b, _i(p, "period"))
    return 100.0 * kernels.safe_div(gain - loss, gain + loss, 0.0)


def _stoch_k_fn(b: Bars, p: Params) -> np.ndarray:
    return _stoch_k(b, _i(p, "period"))


def _stoch_d(b: Bars, p: Params) -> np.ndarray:
    return kernels.rolling_mean(_stoch_k(b, _i(p, "period")), _i(p, "smooth"))


def _willr(b: Bars, p: Params) -> np.ndarray:
    return _stoch_k(b, _i(p, "period")) - 100.0


def _mfi(b: Bars, p: Params) -> np.ndarray:
    n = _i(p, "period")
    flows = b.memo("money_flows", lambda: kernels.money_flows(typical(b), b.volume))
    pos, neg = kernels.rolling_mean(flows[0], n), kernels.rolling_mean(flows[1], n)
    return 100.0 * kernels.safe_div(pos, pos + neg, 0.5)


def _trix(b: Bars, p: Params) -> np.ndarray:
    """1-bar rate of change of a triple EMA (TA-Lib TRIX / 100)."""
    n = _i(p, "period")
    alpha = 2.0 / (n + 1)
    triple = kernels.ewm(kernels.ewm(ema(b, n), n, alpha, -1), n, alpha, -1)
    return kernels.lag_ratio_minus_one(triple, 1)


def _ultosc(b: Bars, p: Params) -> np.ndarray:
    """Ultimate oscillator: buying pressure over true range on three windows, weights 4:2:1."""
    prev = np.full(b.close.shape, np.nan)
    prev[1:] = b.close[:-1]
    pressure = b.close - np.minimum(b.low, prev)
    tr = true_range(b)
    total = np.zeros(b.close.shape)
    for weight, key in ((4.0, "fast"), (2.0, "mid"), (1.0, "slow")):
        n = _i(p, key)
        total += weight * kernels.safe_div(
            kernels.rolling_mean(pressure, n), kernels.rolling_mean(tr, n), 0.0
        )
    return 100.0 * total / 7.0


# --- volatility -------------------------------------------------------------------------------


def _atr_frac(b: Bars, p: Params) -> np.ndarray:
    return wilder_atr(b, _i(p, "period")) / b.close


def _bb_pctb(b: Bars, p: Params) -> np.ndarray:
    mid, std = _bbands(b, p)
    return 0.5 + kernels.safe_div(b.close - mid, 2.0 * _f(p, "nstd") * std, 0.0)


def _bb_width(b: Bars, p: Params) -> np.ndarray:
    mid, std = _bbands(b, p)
    return 2.0 * _f(p, "nstd") * std / mid


def _volatility(b: Bars, p: Params) -> np.ndarray:
    return kernels.rolling_std(log_ret1(b), _i(p, "period"), 1)


def _hl_range(b: Bars, p: Params) -> np.ndarray:
    return (b.high - b.low) / b.close


def _log_hl_sq(b: Bars) -> np.ndarray:
    return b.memo("log_hl_sq", lambda: np.log(b.high / b.low) ** 2)


def _parkinson(b: Bars, p: Params) -> np.ndarray:
    """Parkinson high-low volatility per bar: sqrt(mean(ln(h/l)^2) / (4 ln 2)); a window whose
    running sum drifted a hair below 0 (flat bars after wide ones) is 0, not NaN."""
    mean = kernels.rolling_mean(_log_hl_sq(b), _i(p, "period"))
    return np.sqrt(np.maximum(mean, 0.0) / (4.0 * np.log(2.0)))


def _garman_klass(b: Bars, p: Params) -> np.ndarray:
    """Garman-Klass volatility per bar; a window's negative estimate (rare) is clipped to 0."""
    per_bar = 0.5 * _log_hl_sq(b) - (2.0 * np.log(2.0) - 1.0) * np.log(b.close / b.open) ** 2
    mean = kernels.rolling_mean(per_bar, _i(p, "period"))
    return np.sqrt(np.maximum(mean, 0.0))


# --- volume -----------------------------------------------------------------------------------


def _vol_z(b: Bars, p: Params) -> np.ndarray:
    n = _i(p, "period")
    mean = volume_mean(b, n)
    return kernels.safe_div(b.volume - mean, kernels.rolling_std(b.volume, n, 0), 0.0)


def _obv_slope(b: Bars, p: Params) -> np.ndarray:
    """(OBV[t] - OBV[t-n]) / volume of those n bars: the signed-volume share, in [-1, 1]."""
    n = _i(p, "period")

    signed = b.memo("signed_volume", lambda: np.sign(close_diff(b)) * b.volume)
    vol = b.volume.copy()
    vol[:1] = np.nan  # same n bars as the signed sum
    return kernels.safe_div(kernels.rolling_mean(signed, n), kernels.rolling_mean(vol, n), 0.0)


def _vol_ratio(b: Bars, p: Params) -> np.ndarray:
    fast, slow = volume_mean(b, _i(p, "fast")), volume_mean(b, _i(p, "slow"))
    return kernels.safe_div(fast, slow, 1.0)


def _cmf(b: Bars, p: Params) -> np.ndarray:
    """Chaikin money flow: money-flow volume over volume on the window, -1..1."""
    n = _i(p, "period")
    return kernels.safe_div(kernels.rolling_mean(money_flow_volume(b), n), volume_mean(b, n), 0.0)


def _adosc(b: Bars, p: Params) -> np.ndarray:
    """Chaikin A/D oscillator (TA-Lib ADOSC: EMAs of the A/D line seeded with its first value)
    divided by the slow window's mean volume, so it no longer scales with volume.

    EMA_fast(AD) - EMA_slow(AD) is computed as gap_slow - gap_fast from the A/D steps
    (``kernels.ema_gap``): the same number without the cumulative line's rounding drift.
    """
    fast, slow = _i(p, "fast"), _i(p, "slow")
    mfv = money_flow_volume(b)
    line = kernels.ema_gap(mfv, 2.0 / (slow + 1)) - kernels.ema_gap(mfv, 2.0 / (fast + 1))
    return kernels.safe_div(line, volume_mean(b, slow), 0.0)


# --- bar structure ----------------------------------------------------------------------------


def _swing_high_dist(b: Bars, p: Params) -> np.ndarray:
    """(N-bar high - close) / ATR: how far below the recent swing high, in ATRs."""
    hh = highest(b, _i(p, "period"))
    return kernels.safe_div(hh - b.close, wilder_atr(b, _i(p, "atr")), 0.0)


def _swing_low_dist(b: Bars, p: Params) -> np.ndarray:
    """(close - N-bar low) / ATR: how far above the recent swing low, in ATRs."""
    ll = lowest(b, _i(p, "period"))
    return kernels.safe_div(b.close - ll, wilder_atr(b, _i(p, "atr")), 0.0)


def _range_pos(b: Bars, p: Params) -> np.ndarray:
    """Close within the range of the n bars before this one: > 1 or < 0 is a breakout."""
    hl = np.full((2, b.close.shape[0]), np.nan)
    hl[:, 1:] = _high_low(b, _i(p, "period"))[:, :-1]
    return kernels.range_position(b.close, hl[0], hl[1], 0.5)


def _bar_range(b: Bars) -> np.ndarray:
    return b.memo("bar_range", lambda: b.high - b.low)


def _body(b: Bars, p: Params) -> np.ndarray:
    """(close - open) / (high - low): TA-Lib's balance of power; 0 on a bar with no range."""
    return kernels.safe_div(b.close - b.open, _bar_range(b), 0.0)


def _upper_wick(b: Bars, p: Params) -> np.ndarray:
    return kernels.safe_div(b.high - np.maximum(b.open, b.close), _bar_range(b), 0.0)


def _lower_wick(b: Bars, p: Params) -> np.ndarray:
    return kernels.safe_div(np.minimum(b.open, b.close) - b.low, _bar_range(b), 0.0)


def _gap_atr(b: Bars, p: Params) -> np.ndarray:
    """(open - previous close) / ATR: the gap into this bar, in ATRs."""
    gap = np.full(b.close.shape, np.nan)
    gap[1:] = b.open[1:] - b.close[:-1]
    return kernels.safe_div(gap, wilder_atr(b, _i(p, "atr")), 0.0)


# --- change points ----------------------------------------------------------------------------


def _cusum(b: Bars, p: Params) -> np.ndarray:
    """The three rows of ``kernels.cusum`` (S+/h, S-/h, log1p age), shared by the three kinds."""
    span, k, h = _i(p, "span"), _f(p, "k"), _f(p, "h")
    return b.memo(("cusum", span, k, h), lambda: kernels.cusum(b.close, span, k, h))


def _cusum_pos(b: Bars, p: Params) -> np.ndarray:
    return _cusum(b, p)[0]


def _cusum_neg(b: Bars, p: Params) -> np.ndarray:
    return _cusum(b, p)[1]


def _cusum_age(b: Bars, p: Params) -> np.ndarray:
    return _cusum(b, p)[2]


# --- registry entries -------------------------------------------------------------------------


def _check_macd(p: Params) -> str | None:
    if _i(p, "fast") >= _i(p, "slow"):
        return f"'fast' must be smaller than 'slow', got fast={p['fast']}, slow={p['slow']}"
    return None


def _check_fast_slow(p: Params) -> str | None:
    if _i(p, "fast") >= _i(p, "slow"):
        return f"'fast' must be smaller than 'slow', got fast={p['fast']}, slow={p['slow']}"
    return None


def _check_ultosc(p: Params) -> str | None:
    if not _i(p, "fast") < _i(p, "mid") < _i(p, "slow"):
        return f"need fast < mid < slow, got {p['fast']}, {p['mid']}, {p['slow']}"
    return None


_PERIOD = Param("period", 14, 1)
_MACD_PARAMS = (Param("fast", 12, 1), Param("slow", 26, 2), Param("signal", 9, 1))
_BB_PARAMS = (Param("period", 20, 2), Param("nstd", 2.0, 0.0))
_SWING_PARAMS = (Param("period", 48, 1), Param("atr", 14, 1))


def _check_cusum(p: Params) -> str | None:
    if not _f(p, "h") > 0.0:
        return f"threshold 'h' must be > 0, got {p['h']}"
    return None


_CUSUM_PARAMS = (Param("span", 100, 2), Param("k", 0.5, 0.0), Param("h", 5.0, 0.0))


def _cusum_warmup(p: Params) -> int:
    return _i(p, "span") + 1


def _macd_warmup(p: Params) -> int:
    return _i(p, "slow") + _i(p, "signal") - 2


def _swing_warmup(p: Params) -> int:
    return max(_i(p, "period") - 1, _i(p, "atr"))


PRICE_ENTRIES: tuple[Indicator, ...] = (
    # trend
    Indicator("ret", _ret, (Param("period", 1, 1),), period(0), "log(close[t] / close[t-n])"),
    Indicator("ema_dist", _ema_dist, (Param("period", 20, 1),), period(-1), "close / EMA(n) - 1"),
    Indicator("sma_dist", _sma_dist, (Param("period", 20, 1),), period(-1), "close / SMA(n) - 1"),
    Indicator(
        "ema_slope",
        _ema_slope,
        (Param("period", 20, 1), Param("lag", 1, 1)),
        lambda p: _i(p, "period") - 1 + _i(p, "lag"),
        "EMA(n)[t] / EMA(n)[t-lag] - 1",
    ),
    Indicator(
        "macd", _macd, _MACD_PARAMS, lambda p: _i(p, "slow") - 1, "MACD line / close", _check_macd
    ),
    Indicator(
        "macd_signal", _macd_signal, _MACD_PARAMS, _macd_warmup, "MACD signal / close", _check_macd
    ),
    Indicator(
        "macd_hist", _macd_hist, _MACD_PARAMS, _macd_warmup, "MACD histogram / close", _check_macd
    ),
    Indicator("aroon_osc", _aroon_osc, (_PERIOD,), period(0), "Aroon oscillator, -100..100"),
    Indicator("cci", _cci, (Param("period", 20, 2),), period(-1), "commodity channel index"),
    Indicator(
        "vwap_dist",
        _vwap_dist,
        (Param("period", 48, 1),),
        period(-1),
        "close / rolling volume-weighted typical price - 1",
    ),
    Indicator(
        "linreg_slope",
        _linreg_slope,
        (Param("period", 20, 2),),
        period(-1),
        "least-squares slope per bar / close",
    ),
    Indicator("adx", _adx_fn, (_PERIOD,), lambda p: 2 * _i(p, "period") - 1, "Wilder ADX"),
    Indicator("plus_di", _plus_di, (_PERIOD,), period(0), "+DI, 0..100"),
    Indicator("minus_di", _minus_di, (_PERIOD,), period(0), "-DI, 0..100"),
    # momentum
    Indicator("rsi", _rsi, (_PERIOD,), period(0), "Wilder RSI, 0..100"),
    Indicator("cmo", _cmo, (_PERIOD,), period(0), "Chande momentum (TA-Lib's), -100..100"),
    Indicator("stoch_k", _stoch_k_fn, (_PERIOD,), period(-1), "fast stochastic %K, 0..100"),
    Indicator(
        "stoch_d",
        _stoch_d,
        (_PERIOD, Param("smooth", 3, 1)),
        lambda p: _i(p, "period") + _i(p, "smooth") - 2,
        "SMA(smooth) of %K",
    ),
    Indicator("willr", _willr, (_PERIOD,), period(-1), "Williams %R, -100..0"),
    Indicator("mfi", _mfi, (_PERIOD,), period(0), "money flow index, 0..100"),
    Indicator(
        "trix",
        _trix,
        (Param("period", 15, 1),),
        lambda p: 3 * (_i(p, "period") - 1) + 1,
        "1-bar change of a triple EMA",
    ),
    Indicator(
        "ultosc",
        _ultosc,
        (Param("fast", 7, 1), Param("mid", 14, 1), Param("slow", 28, 1)),
        lambda p: _i(p, "slow"),
        "ultimate oscillator, 0..100",
        _check_ultosc,
    ),
    # volatility
    Indicator("atr_frac", _atr_frac, (_PERIOD,), period(0), "Wilder ATR / close"),
    Indicator("bb_pctb", _bb_pctb, _BB_PARAMS, period(-1), "Bollinger %B (0.5 on a flat window)"),
    Indicator("bb_width", _bb_width, _BB_PARAMS, period(-1), "(upper - lower) / middle band"),
    Indicator(
        "volatility", _volatility, (Param("period", 20, 2),), period(0), "std of log returns"
    ),
    Indicator(
        "parkinson", _parkinson, (Param("period", 20, 1),), period(-1), "Parkinson volatility"
    ),
    Indicator(
        "garman_klass",
        _garman_klass,
        (Param("period", 20, 1),),
        period(-1),
        "Garman-Klass volatility",
    ),
    Indicator("hl_range", _hl_range, (), zero, "(high - low) / close"),
    # volume
    Indicator("vol_z", _vol_z, (Param("period", 20, 2),), period(-1), "volume z-score"),
    Indicator("obv_slope", _obv_slope, (Param("period", 20, 1),), period(0), "ΔOBV(n) / Σvol(n)"),
    Indicator(
        "vol_ratio",
        _vol_ratio,
        (Param("fast", 5, 1), Param("slow", 50, 2)),
        lambda p: _i(p, "slow") - 1,
        "mean volume fast / slow window",
        _check_fast_slow,
    ),
    Indicator("cmf", _cmf, (Param("period", 20, 1),), period(-1), "Chaikin money flow, -1..1"),
    Indicator(
        "adosc",
        _adosc,
        (Param("fast", 3, 1), Param("slow", 10, 2)),
        lambda p: _i(p, "slow") - 1,
        "Chaikin A/D oscillator / mean volume",
        _check_fast_slow,
    ),
    # bar structure
    Indicator(
        "swing_high_dist", _swing_high_dist, _SWING_PARAMS, _swing_warmup, "(N-bar high - c) / ATR"
    ),
    Indicator(
        "swing_low_dist", _swing_low_dist, _SWING_PARAMS, _swing_warmup, "(c - N-bar low) / ATR"
    ),
    Indicator(
        "range_pos", _range_pos, (Param("period", 48, 1),), period(0), "close in prior N-bar range"
    ),
    Indicator("body", _body, (), zero, "(close - open) / (high - low)"),
    Indicator("upper_wick", _upper_wick, (), zero, "upper wick / (high - low)"),
    Indicator("lower_wick", _lower_wick, (), zero, "lower wick / (high - low)"),
    Indicator("gap_atr", _gap_atr, (Param("atr", 14, 1),), lambda p: _i(p, "atr"), "gap in ATRs"),
    # change points (opt-in: not in the standard set)
    Indicator(
        "cusum_pos",
        _cusum_pos,
        _CUSUM_PARAMS,
        _cusum_warmup,
        "upper CUSUM of standardised log returns / h, 0..1",
        _check_cusum,
    ),
    Indicator(
        "cusum_neg",
        _cusum_neg,
        _CUSUM_PARAMS,
        _cusum_warmup,
        "lower CUSUM of standardised log returns / h, -1..0",
        _check_cusum,
    ),
    Indicator(
        "cusum_age",
        _cusum_age,
        _CUSUM_PARAMS,
        _cusum_warmup,
        "log1p(bars since the last CUSUM event, capped at 10 * span)",
        _check_cusum,
    ),
)
