"""Feature throughput: quantrain's ``standard`` set vs TA-Lib vs plain pandas.

Synthetic 5m bars (seeded log random walk, OHLCV consistent). Three timings on the subset of
standard columns that TA-Lib also computes (the same columns for all three: TA-Lib's raw
output passed through our scale-free transform, pandas rolling/ewm written out here), plus the
whole standard set through ``compute_feature_matrix``. Prints a Markdown table of bars/s and
ratios; best of ``--repeat`` runs, interleaved. Not part of the test suite.

    python benchmarks/bench_features.py --bars 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from quantrain.features import FeatureSpec, compute_feature_matrix, get_feature_set
from quantrain.features.spec import FeatureDef

Arrays = dict[str, np.ndarray]
Column = Callable[[Arrays, dict[str, int | float | str]], np.ndarray]


def synthetic_bars(n: int, seed: int = 0) -> pd.DataFrame:
    """A seeded random walk with consistent OHLC (high >= open, close >= low) and volumes."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.0015, (2, n)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=n, freq="5min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + spread[0]),
            "low": np.minimum(open_, close) * (1.0 - spread[1]),
            "close": close,
            "volume": rng.lognormal(5.0, 1.0, n),
        }
    )


# --- TA-Lib: raw indicator + the same transform ----------------------------------------------


def _talib_columns() -> dict[str, Column]:
    import talib

    def shifted(x: np.ndarray, k: int) -> np.ndarray:
        return np.r_[np.full(k, np.nan), x[:-k]]

    def rsum(x: np.ndarray, n: int) -> np.ndarray:
        return talib.SUM(x, n)

    def n_(p: dict[str, int | float | str], key: str = "period") -> int:
        return int(p[key])

    def bbands(a: Arrays, p: dict[str, int | float | str], which: str) -> np.ndarray:
        upper, middle, lower = talib.BBANDS(a["close"], n_(p), 2.0, 2.0)
        if which == "pctb":
            return np.asarray((a["close"] - lower) / (upper - lower))
        return np.asarray((upper - lower) / middle)

    return {
        "ret": lambda a, p: np.log(talib.ROCR(a["close"], n_(p))),
        "ema_dist": lambda a, p: a["close"] / talib.EMA(a["close"], n_(p)) - 1,
        "sma_dist": lambda a, p: a["close"] / talib.SMA(a["close"], n_(p)) - 1,
        "ema_slope": lambda a, p: (lambda e: e / shifted(e, n_(p, "lag")) - 1)(
            talib.EMA(a["close"], n_(p))
        ),
        "rsi": lambda a, p: talib.RSI(a["close"], n_(p)),
        "macd": lambda a, p: talib.MACD(a["close"], 12, 26, 9)[0] / a["close"],
        "macd_signal": lambda a, p: talib.MACD(a["close"], 12, 26, 9)[1] / a["close"],
        "macd_hist": lambda a, p: talib.MACD(a["close"], 12, 26, 9)[2] / a["close"],
        "atr_frac": lambda a, p: talib.NATR(a["high"], a["low"], a["close"], n_(p)) / 100,
        "bb_pctb": lambda a, p: bbands(a, p, "pctb"),
        "bb_width": lambda a, p: bbands(a, p, "width"),
        "stoch_k": lambda a, p: talib.STOCHF(a["high"], a["low"], a["close"], n_(p), 3)[0],
        "stoch_d": lambda a, p: talib.STOCHF(a["high"], a["low"], a["close"], n_(p), 3)[1],
        "willr": lambda a, p: talib.WILLR(a["high"], a["low"], a["close"], n_(p)),
        "adx": lambda a, p: talib.ADX(a["high"], a["low"], a["close"], n_(p)),
        "plus_di": lambda a, p: talib.PLUS_DI(a["high"], a["low"], a["close"], n_(p)),
        "minus_di": lambda a, p: talib.MINUS_DI(a["high"], a["low"], a["close"], n_(p)),
        "aroon_osc": lambda a, p: talib.AROONOSC(a["high"], a["low"], n_(p)),
        "cci": lambda a, p: talib.CCI(a["high"], a["low"], a["close"], n_(p)),
        "linreg_slope": lambda a, p: talib.LINEARREG_SLOPE(a["close"], n_(p)) / a["close"],
        "mfi": lambda a, p: talib.MFI(a["high"], a["low"], a["close"], a["volume"], n_(p)),
        "trix": lambda a, p: talib.TRIX(a["close"], n_(p)) / 100,
        "ultosc": lambda a, p: talib.ULTOSC(a["high"], a["low"], a["close"], 7, 14, 28),
        "volatility": lambda a, p: talib.STDDEV(talib.ROCR(a["close"], 1), n_(p), 1),
        "obv_slope": lambda a, p: (
            lambda obv: (obv - shifted(obv, n_(p))) / rsum(a["volume"], n_(p))
        )(talib.OBV(a["close"], a["volume"])),
        "cmf": lambda a, p: (lambda ad: (ad - shifted(ad, n_(p))) / rsum(a["volume"], n_(p)))(
            talib.AD(a["high"], a["low"], a["close"], a["volume"])
        ),
        "adosc": lambda a, p: (
            talib.ADOSC(a["high"], a["low"], a["close"], a["volume"], 3, 10)
            / talib.SMA(a["volume"], 10)
        ),
        "body": lambda a, p: talib.BOP(a["open"], a["high"], a["low"], a["close"]),
    }


# --- plain pandas: rolling / ewm ----------------------------------------------------------------


def _wilder(x: pd.Series, n: int) -> pd.Series:
    return x.ewm(alpha=1.0 / n, adjust=False).mean()


def _pandas_columns() -> dict[str, Column]:
    def frame(a: Arrays) -> dict[str, pd.Series]:
        return {k: pd.Series(v) for k, v in a.items()}

    def n_(p: dict[str, int | float | str], key: str = "period") -> int:
        return int(p[key])

    def ret(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        c = frame(a)["close"]
        return np.asarray(np.log(c / c.shift(n_(p))))

    def ema_dist(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        c = frame(a)["close"]
        return (c / c.ewm(span=n_(p), adjust=False).mean() - 1).to_numpy()

    def sma_dist(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        c = frame(a)["close"]
        return (c / c.rolling(n_(p)).mean() - 1).to_numpy()

    def ema_slope(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        e = frame(a)["close"].ewm(span=n_(p), adjust=False).mean()
        return (e / e.shift(n_(p, "lag")) - 1).to_numpy()

    def rsi(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        d = frame(a)["close"].diff()
        gain, loss = _wilder(d.clip(lower=0), n_(p)), _wilder(-d.clip(upper=0), n_(p))
        return (100 * gain / (gain + loss)).to_numpy()

    def macd_parts(a: Arrays) -> tuple[pd.Series, pd.Series, pd.Series]:
        c = frame(a)["close"]
        line = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
        return line, line.ewm(span=9, adjust=False).mean(), c

    def tr(a: Arrays) -> pd.Series:
        f = frame(a)
        pc = f["close"].shift()
        return pd.concat([f["high"], pc], axis=1).max(axis=1) - pd.concat(
            [f["low"], pc], axis=1
        ).min(axis=1)

    def atr_frac(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        return (_wilder(tr(a), n_(p)) / a["close"]).to_numpy()

    def bb(a: Arrays, p: dict[str, int | float | str], which: str) -> np.ndarray:
        c = frame(a)["close"]
        mid, sd = c.rolling(n_(p)).mean(), c.rolling(n_(p)).std(ddof=0)
        return ((c - mid) / (4 * sd) + 0.5 if which == "pctb" else 4 * sd / mid).to_numpy()

    def stoch(a: Arrays, p: dict[str, int | float | str]) -> pd.Series:
        f = frame(a)
        hh, ll = f["high"].rolling(n_(p)).max(), f["low"].rolling(n_(p)).min()
        return 100 * (f["close"] - ll) / (hh - ll)

    def dmi(a: Arrays, p: dict[str, int | float | str]) -> tuple[pd.Series, pd.Series, pd.Series]:
        f, n = frame(a), n_(p)
        up, dn = f["high"].diff(), -f["low"].diff()
        pdm = up.where((up > dn) & (up > 0), 0.0)
        mdm = dn.where((dn > up) & (dn > 0), 0.0)
        atr_ = _wilder(tr(a), n)
        pdi, mdi = 100 * _wilder(pdm, n) / atr_, 100 * _wilder(mdm, n) / atr_
        return pdi, mdi, _wilder(100 * (pdi - mdi).abs() / (pdi + mdi), n)

    def aroon(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        f, n = frame(a), n_(p)
        up = f["high"].rolling(n + 1).apply(np.argmax, raw=True)
        dn = f["low"].rolling(n + 1).apply(np.argmin, raw=True)
        return (100 * (up - dn) / n).to_numpy()

    def cci(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        n = n_(p)
        tp = (a["high"] + a["low"] + a["close"]) / 3
        windows = np.lib.stride_tricks.sliding_window_view(tp, n)
        mean = windows.mean(axis=1)
        dev = np.abs(windows - mean[:, None]).mean(axis=1)
        return np.r_[np.full(n - 1, np.nan), (tp[n - 1 :] - mean) / (0.015 * dev)]

    def linreg(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        n, c = n_(p), frame(a)["close"]
        t = pd.Series(np.arange(len(c), dtype=np.float64))
        sx, sy = t.rolling(n).sum(), c.rolling(n).sum()
        sxy, sxx = (t * c).rolling(n).sum(), (t * t).rolling(n).sum()
        return ((n * sxy - sx * sy) / (n * sxx - sx * sx) / c).to_numpy()

    def mfi(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        f, n = frame(a), n_(p)
        tp = (f["high"] + f["low"] + f["close"]) / 3
        flow, d = tp * f["volume"], tp.diff()
        pos, neg = flow.where(d > 0, 0.0).rolling(n).sum(), flow.where(d < 0, 0.0).rolling(n).sum()
        return (100 * pos / (pos + neg)).to_numpy()

    def trix(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        e = frame(a)["close"]
        for _ in range(3):
            e = e.ewm(span=n_(p), adjust=False).mean()
        return (e / e.shift() - 1).to_numpy()

    def ultosc(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        f = frame(a)
        bp = f["close"] - pd.concat([f["low"], f["close"].shift()], axis=1).min(axis=1)
        t = tr(a)
        avg = [bp.rolling(n).sum() / t.rolling(n).sum() for n in (7, 14, 28)]
        return (100 * (4 * avg[0] + 2 * avg[1] + avg[2]) / 7).to_numpy()

    def volatility(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        c = frame(a)["close"]
        return pd.Series(np.log(c / c.shift())).rolling(n_(p)).std().to_numpy()

    def obv(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        f, n = frame(a), n_(p)
        signed = np.sign(f["close"].diff()) * f["volume"]
        return (signed.rolling(n).sum() / f["volume"].rolling(n).sum()).to_numpy()

    def mfv(a: Arrays) -> pd.Series:
        f = frame(a)
        rng = f["high"] - f["low"]
        return ((2 * f["close"] - f["low"] - f["high"]) / rng * f["volume"]).fillna(0.0)

    def cmf(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        n = n_(p)
        return (mfv(a).rolling(n).sum() / pd.Series(a["volume"]).rolling(n).sum()).to_numpy()

    def adosc(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        ad = mfv(a).cumsum()
        line = ad.ewm(span=3, adjust=False).mean() - ad.ewm(span=10, adjust=False).mean()
        return (line / pd.Series(a["volume"]).rolling(10).mean()).to_numpy()

    def body(a: Arrays, p: dict[str, int | float | str]) -> np.ndarray:
        return ((a["close"] - a["open"]) / (a["high"] - a["low"])).astype(np.float64)

    return {
        "ret": ret,
        "ema_dist": ema_dist,
        "sma_dist": sma_dist,
        "ema_slope": ema_slope,
        "rsi": rsi,
        "macd": lambda a, p: (macd_parts(a)[0] / macd_parts(a)[2]).to_numpy(),
        "macd_signal": lambda a, p: (macd_parts(a)[1] / macd_parts(a)[2]).to_numpy(),
        "macd_hist": lambda a, p: (lambda m: ((m[0] - m[1]) / m[2]).to_numpy())(macd_parts(a)),
        "atr_frac": atr_frac,
        "bb_pctb": lambda a, p: bb(a, p, "pctb"),
        "bb_width": lambda a, p: bb(a, p, "width"),
        "stoch_k": lambda a, p: stoch(a, p).to_numpy(),
        "stoch_d": lambda a, p: stoch(a, p).rolling(3).mean().to_numpy(),
        "willr": lambda a, p: (stoch(a, p) - 100).to_numpy(),
        "adx": lambda a, p: dmi(a, p)[2].to_numpy(),
        "plus_di": lambda a, p: dmi(a, p)[0].to_numpy(),
        "minus_di": lambda a, p: dmi(a, p)[1].to_numpy(),
        "aroon_osc": aroon,
        "cci": cci,
        "linreg_slope": linreg,
        "mfi": mfi,
        "trix": trix,
        "ultosc": ultosc,
        "volatility": volatility,
        "obv_slope": obv,
        "cmf": cmf,
        "adosc": adosc,
        "body": body,
    }


# --- timing -------------------------------------------------------------------------------------


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def run_columns(columns: dict[str, Column], spec: FeatureSpec, arrays: Arrays) -> np.ndarray:
    out = np.empty((len(arrays["close"]), len(spec.features)), order="F")
    for j, f in enumerate(spec.features):
        out[:, j] = columns[f.kind](arrays, f.params)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true", help="pandas is the slow one")
    args = parser.parse_args()

    frame = synthetic_bars(args.bars)
    arrays = {k: frame[k].to_numpy(dtype=np.float64) for k in frame.columns[1:]}
    standard = get_feature_set("standard")
    talib_cols = _talib_columns()
    subset = FeatureSpec(
        name="talib_subset",
        features=tuple(
            FeatureDef(kind=f.kind, params=f.params)
            for f in standard.features
            if f.kind in talib_cols
        ),
    )
    compute_feature_matrix(frame.iloc[:1000], standard)  # numba compile / cache load

    rows: list[tuple[str, int, float, float]] = []

    def timed(label: str, columns: int, fn: Callable[[], object]) -> float:
        best, median = best_of(fn, args.repeat)
        rows.append((label, columns, best, median))
        return best

    k = len(subset.features)
    ours_subset = timed(
        "quantrain, TA-Lib subset (threads auto)",
        k,
        lambda: compute_feature_matrix(frame, subset),
    )
    ours_subset_1 = timed(
        "quantrain, TA-Lib subset (1 thread)",
        k,
        lambda: compute_feature_matrix(frame, subset, threads=1),
    )
    talib_time = timed(
        "TA-Lib (+ same transforms), 1 core", k, lambda: run_columns(talib_cols, subset, arrays)
    )
    pandas_time = float("nan")
    if not args.skip_pandas:
        pandas_cols = _pandas_columns()
        pandas_time = timed(
            "pandas rolling/ewm", k, lambda: run_columns(pandas_cols, subset, arrays)
        )
    timed(
        f"quantrain, whole standard set ({len(standard.features)} columns)",
        len(standard.features),
        lambda: compute_feature_matrix(frame, standard),
    )
    timed(
        "quantrain, whole standard set (1 thread)",
        len(standard.features),
        lambda: compute_feature_matrix(frame, standard, threads=1),
    )

    n = args.bars
    print(
        f"\n{n:,} synthetic 5m bars, best of {args.repeat}; {platform.processor() or ''}"
        f" {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print("| what | columns | best s | median s | bars/s |")
    print("| --- | --- | --- | --- | --- |")
    for label, cols, best, median in rows:
        print(f"| {label} | {cols} | {best:.3f} | {median:.3f} | {n / best / 1e6:.2f} M |")
    print()
    print(
        f"- quantrain / TA-Lib throughput (subset, threads auto): {talib_time / ours_subset:.2f}x"
    )
    print(f"- quantrain / TA-Lib throughput (subset, 1 thread): {talib_time / ours_subset_1:.2f}x")
    if not args.skip_pandas:
        print(f"- quantrain / pandas throughput (subset): {pandas_time / ours_subset:.2f}x")


if __name__ == "__main__":
    main()
