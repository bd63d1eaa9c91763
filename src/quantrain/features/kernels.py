"""Generic, causal indicator kernels (numba): a handful reused by every feature.

Few distinct jitted functions keep the first-call compile short; every kernel walks forward
once, so the value at bar t only ever reads bars 0..t. Leading NaNs in the input (e.g. a return
series) are skipped: a kernel starts at the first non-NaN value. Inputs are float64, C-contiguous.
Kernels release the GIL (``nogil``), so independent features can run in threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Running sums are recomputed exactly from their window this often, so float drift stays
# bounded on million-bar series. The schedule counts from the series start: still causal.
_RESYNC = 1024
# Price moves closer than this (relative to price) are equal: far below any real tick size,
# far above float rounding.
_TIE_REL = 1e-10


@njit(cache=True, nogil=True)
def first_valid(x: np.ndarray) -> int:
    """Index of the first non-NaN value (len(x) when none)."""
    for i in range(x.shape[0]):
        if not np.isnan(x[i]):
            return i
    return x.shape[0]


@njit(cache=True, nogil=True)
def safe_div(num: np.ndarray, den: np.ndarray, when_zero: float) -> np.ndarray:
    """num/den with ``when_zero`` where den == 0 (a flat window), NaN where either is NaN."""
    out = np.empty(num.shape[0])
    for i in range(num.shape[0]):
        a = num[i]
        b = den[i]
        if np.isnan(a) or np.isnan(b):
            out[i] = np.nan
        elif b == 0.0:
            out[i] = when_zero
        else:
            out[i] = a / b
    return out


@njit(cache=True, nogil=True)
def ewm(x: np.ndarray, n: int, alpha: float, seed_at: int) -> np.ndarray:
    """Exponential average seeded TA-Lib style: first value = mean of the n values ending there.

    alpha = 2/(n+1) gives the standard EMA, alpha = 1/n Wilder's smoothing. The seed sits at
    max(first_valid + n - 1, seed_at); seed_at lets MACD seed its fast EMA where TA-Lib does.
    """
    size = x.shape[0]
    out = np.full(size, np.nan)
    start = max(first_valid(x) + n - 1, seed_at)
    if start >= size:
        return out
    acc = 0.0
    for i in range(start - n + 1, start + 1):
        acc += x[i]
    prev = acc / n
    out[start] = prev
    for i in range(start + 1, size):
        prev = prev + alpha * (x[i] - prev)
        out[i] = prev
    return out


@njit(cache=True, nogil=True)
def rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Trailing mean over n values (the current one included), O(len) with a running sum."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    s = first_valid(x)
    if s + n - 1 >= size:
        return out
    acc = 0.0
    for i in range(s, s + n):
        acc += x[i]
    out[s + n - 1] = acc / n
    for i in range(s + n, size):
        if (i - s) % _RESYNC == 0:
            acc = 0.0
            for j in range(i - n + 1, i + 1):
                acc += x[j]
        else:
            acc += x[i] - x[i - n]
        out[i] = acc / n
    return out


@njit(cache=True, nogil=True)
def rolling_std(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """Trailing standard deviation over n values, Welford add/remove updates.

    The window is re-summed exactly every n bars (about 2x the work of a bare update), which
    keeps the relative error near 1e-13 where a longer drift reached 1e-10.

    A window of identical values gives exactly 0 (tracked by run length), so callers can test
    ``std == 0`` instead of guessing a tolerance for float residue.
    """
    size = x.shape[0]
    out = np.full(size, np.nan)
    s = first_valid(x)
    if s + n - 1 >= size or n - ddof <= 0:
        return out
    mean = 0.0
    m2 = 0.0
    run = 0
    for i in range(s, size):
        run = run + 1 if i > s and x[i] == x[i - 1] else 1
        if i < s + n or (i - s) % n == 0:
            lo = max(s, i - n + 1)
            cnt = i - lo + 1
            mean = 0.0
            for j in range(lo, i + 1):
                mean += x[j]
            mean /= cnt
            m2 = 0.0
            for j in range(lo, i + 1):
                d = x[j] - mean
                m2 += d * d
        else:
            old = x[i - n]
            new = x[i]
            new_mean = mean + (new - old) / n
            m2 += (new - old) * (new - new_mean + old - mean)
            mean = new_mean
        if i >= s + n - 1:
            if run >= n:
                m2 = 0.0
                mean = x[i]
                out[i] = 0.0
            else:
                out[i] = np.sqrt(max(m2, 0.0) / (n - ddof))
    return out


@njit(cache=True, nogil=True)
def rolling_extreme(x: np.ndarray, n: int, is_max: bool) -> np.ndarray:
    """Trailing max (or min) over n values with a monotonic deque, O(len)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    s = first_valid(x)
    if s + n - 1 >= size:
        return out
    dq = np.empty(size - s, dtype=np.int64)
    head = 0
    tail = 0
    for i in range(s, size):
        v = x[i]
        while tail > head:
            last = x[dq[tail - 1]]
            if (is_max and last <= v) or (not is_max and last >= v):
                tail -= 1
            else:
                break
        dq[tail] = i
        tail += 1
        if dq[head] <= i - n:
            head += 1
        if i >= s + n - 1:
            out[i] = x[dq[head]]
    return out


@njit(cache=True, nogil=True)
def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Rows +DI, -DI, ADX (0..100) following TA-Lib's loop (Wilder sums, same seeding).

    +DI/-DI start at bar n, ADX at bar 2n-1. A zero true-range sum gives DI 0 and a zero DI sum
    gives DX 0 (exact zero tests, not TA-Lib's absolute 1e-8, which breaks on small prices).
    """
    size = high.shape[0]
    out = np.full((3, size), np.nan)
    if size <= n:
        return out
    s_pdm = 0.0
    s_mdm = 0.0
    s_tr = 0.0
    sum_dx = 0.0
    prev_adx = 0.0
    for i in range(1, size):
        up = high[i] - high[i - 1]
        dn = low[i - 1] - low[i]
        # Equal moves in ticks can differ by an ulp once prices are rescaled: count them as a
        # tie (no DM, as TA-Lib does for exact ties) so ADX stays scale-free.
        tie = abs(up - dn) <= _TIE_REL * abs(high[i])
        pdm = up if (up > 0.0 and up > dn and not tie) else 0.0
        mdm = dn if (dn > 0.0 and dn > up and not tie) else 0.0
        tr = max(high[i], close[i - 1]) - min(low[i], close[i - 1])
        if i < n:
            s_pdm += pdm
            s_mdm += mdm
            s_tr += tr
            continue
        s_pdm = s_pdm - s_pdm / n + pdm
        s_mdm = s_mdm - s_mdm / n + mdm
        s_tr = s_tr - s_tr / n + tr
        pdi = 100.0 * s_pdm / s_tr if s_tr != 0.0 else 0.0
        mdi = 100.0 * s_mdm / s_tr if s_tr != 0.0 else 0.0
        out[0, i] = pdi
        out[1, i] = mdi
        tot = pdi + mdi
        dx = 100.0 * abs(pdi - mdi) / tot if tot != 0.0 else 0.0
        if i < 2 * n - 1:
            sum_dx += dx
        elif i == 2 * n - 1:
            prev_adx = (sum_dx + dx) / n
            out[2, i] = prev_adx
        else:
            prev_adx = (prev_adx * (n - 1) + dx) / n
            out[2, i] = prev_adx
    return out


@njit(cache=True, nogil=True)
def cci(tp: np.ndarray, n: int) -> np.ndarray:
    """Commodity Channel Index as TA-Lib computes it: (tp - SMA) / (0.015 * mean |tp - SMA|).

    The window is summed afresh each bar (as TA-Lib does); a window whose mean deviation is
    below 1e-10 of its mean is flat and gives 0, where TA-Lib tests for an exact zero. On
    subnormal prices ``0.015 * dev`` can underflow to 0 while ``dev`` is not: then the two
    divisions are done one after the other, which gives the same index without a zero divisor.
    """
    size = tp.shape[0]
    out = np.full(size, np.nan)
    s = first_valid(tp)
    for i in range(s + n - 1, size):
        acc = 0.0
        for j in range(i - n + 1, i + 1):
            acc += tp[j]
        mean = acc / n
        dev = 0.0
        for j in range(i - n + 1, i + 1):
            dev += abs(tp[j] - mean)
        dev /= n
        scaled = 0.015 * dev
        if dev <= _TIE_REL * abs(mean):
            out[i] = 0.0
        elif scaled == 0.0:
            out[i] = (tp[i] - mean) / dev / 0.015
        else:
            out[i] = (tp[i] - mean) / scaled
    return out


@njit(cache=True, nogil=True)
def linreg_slope(x: np.ndarray, n: int) -> np.ndarray:
    """Least-squares slope per bar over the trailing n values (TA-Lib LINEARREG_SLOPE).

    Running sums of y and k*y (k = bars back) updated in O(1) per bar and re-summed exactly
    every ``_RESYNC`` bars, like ``rolling_mean``.
    """
    size = x.shape[0]
    out = np.full(size, np.nan)
    s = first_valid(x)
    sum_x = n * (n - 1) * 0.5
    sum_x2 = n * (n - 1) * (2 * n - 1) / 6.0
    divisor = sum_x * sum_x - n * sum_x2
    sum_y = 0.0
    sum_xy = 0.0
    for i in range(s + n - 1, size):
        if i == s + n - 1 or (i - s) % _RESYNC == 0:
            sum_xy = 0.0
            sum_y = 0.0
            for k in range(n):
                v = x[i - k]
                sum_xy += k * v
                sum_y += v
        else:
            old = x[i - n]
            sum_xy = sum_xy + sum_y - n * old
            sum_y = sum_y + x[i] - old
        out[i] = (n * sum_xy - sum_x * sum_y) / divisor
    return out


@njit(cache=True, nogil=True)
def _block_args(x: np.ndarray, m: int, is_max: bool) -> tuple[np.ndarray, np.ndarray]:
    """Van Herk / Gil-Werman blocks of m: index of the extreme from each block's start to i
    (prefix) and from i to the block's end (suffix); ties go to the later index."""
    size = x.shape[0]
    pre = np.empty(size, dtype=np.int64)
    suf = np.empty(size, dtype=np.int64)
    for i in range(size):
        if i % m == 0:
            pre[i] = i
        else:
            j = pre[i - 1]
            better = x[i] >= x[j] if is_max else x[i] <= x[j]
            pre[i] = i if better else j
    for i in range(size - 1, -1, -1):
        if i == size - 1 or (i + 1) % m == 0:
            suf[i] = i
        else:
            j = suf[i + 1]
            better = x[i] > x[j] if is_max else x[i] < x[j]
            suf[i] = i if better else j
    return pre, suf


@njit(cache=True, nogil=True)
def rolling_arg_extreme(x: np.ndarray, m: int, is_max: bool) -> np.ndarray:
    """Index of the max (or min) of x over the trailing m values, the latest on ties; -1
    before the first full window. Branch-light O(len) whatever m."""
    size = x.shape[0]
    out = np.full(size, -1, dtype=np.int64)
    pre, suf = _block_args(x, m, is_max)
    for i in range(m - 1, size):
        left = suf[i - m + 1]
        right = pre[i]
        if is_max:
            out[i] = left if x[left] > x[right] else right
        else:
            out[i] = left if x[left] < x[right] else right
    return out


@njit(cache=True, nogil=True)
def aroon_osc(high: np.ndarray, low: np.ndarray, n: int) -> np.ndarray:
    """Aroon up minus Aroon down over n+1 bars, -100..100; ties go to the most recent bar, as
    in TA-Lib's AROONOSC."""
    size = high.shape[0]
    out = np.full(size, np.nan)
    hi = rolling_arg_extreme(high, n + 1, True)
    lo = rolling_arg_extreme(low, n + 1, False)
    for i in range(n, size):
        out[i] = 100.0 * (hi[i] - lo[i]) / n
    return out


@njit(cache=True, nogil=True)
def rolling_high_low(high: np.ndarray, low: np.ndarray, n: int) -> np.ndarray:
    """Rows: trailing max of high and min of low over n bars (NaN before the first window)."""
    size = high.shape[0]
    out = np.full((2, size), np.nan)
    hi = rolling_arg_extreme(high, n, True)
    lo = rolling_arg_extreme(low, n, False)
    for i in range(n - 1, size):
        out[0, i] = high[hi[i]]
        out[1, i] = low[lo[i]]
    return out


@njit(cache=True, nogil=True)
def range_position(x: np.ndarray, hh: np.ndarray, ll: np.ndarray, flat: float) -> np.ndarray:
    """(x - ll) / (hh - ll), ``flat`` where hh == ll, NaN where hh is NaN."""
    size = x.shape[0]
    out = np.empty(size)
    for i in range(size):
        rng = hh[i] - ll[i]
        if np.isnan(rng):
            out[i] = np.nan
        elif rng == 0.0:
            out[i] = flat
        else:
            out[i] = (x[i] - ll[i]) / rng
    return out


@njit(cache=True, nogil=True)
def money_flows(tp: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Rows: positive and negative money flow (tp * volume by the sign of the tp change), NaN at
    bar 0. Changes within 1e-10 of the price are ties (no flow), so rescaled prices agree."""
    size = tp.shape[0]
    out = np.zeros((2, size))
    if size:
        out[0, 0] = np.nan
        out[1, 0] = np.nan
    for i in range(1, size):
        d = tp[i] - tp[i - 1]
        if abs(d) <= _TIE_REL * abs(tp[i]):
            continue
        if d > 0.0:
            out[0, i] = tp[i] * volume[i]
        else:
            out[1, i] = tp[i] * volume[i]
    return out


@njit(cache=True, nogil=True)
def close_location(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> np.ndarray:
    """Money-flow volume ((c - l) - (h - c)) / (h - l) * volume, 0 on a bar with no range."""
    size = close.shape[0]
    out = np.empty(size)
    for i in range(size):
        rng = high[i] - low[i]
        if rng > 0.0:
            out[i] = ((close[i] - low[i]) - (high[i] - close[i])) / rng * volume[i]
        else:
            out[i] = 0.0
    return out


@njit(cache=True, nogil=True)
def ratio_minus_one(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den - 1 in one pass (distances to averages: the most common transform here); NaN
    where den is 0 (an average of subnormal prices can underflow to it)."""
    size = num.shape[0]
    out = np.empty(size)
    for i in range(size):
        out[i] = num[i] / den[i] - 1.0 if den[i] != 0.0 else np.nan
    return out


@njit(cache=True, nogil=True)
def lag_ratio_minus_one(x: np.ndarray, k: int) -> np.ndarray:
    """x[t] / x[t-k] - 1, NaN for the first k bars and where x[t-k] is 0."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    for i in range(k, size):
        if x[i - k] != 0.0:
            out[i] = x[i] / x[i - k] - 1.0
    return out


@njit(cache=True, nogil=True)
def ema_gap(step: np.ndarray, alpha: float) -> np.ndarray:
    """cum[t] - EMA(cum)[t] for cum = cumsum(step) and an EMA seeded with cum[0], computed from
    the steps alone: g[t] = (1 - alpha) * (g[t-1] + step[t]). Differences of EMAs of a
    cumulative line (Chaikin's A/D oscillator) then avoid cancelling two huge, drifting sums."""
    size = step.shape[0]
    out = np.empty(size)
    gap = 0.0
    for i in range(size):
        if i > 0:
            gap = (1.0 - alpha) * (gap + step[i])
        out[i] = gap
    return out


@njit(cache=True, nogil=True)
def cusum(close: np.ndarray, span: int, k: float, h: float) -> np.ndarray:
    """Rows S+/h, S-/h and log1p(bars since the last event, capped at 10 * span) of a
    symmetric CUSUM filter on standardised log returns (AFML 2.5.2.1, made causal).

    r[t] = log(close[t] / close[t-1]) is scored against the scale of the returns before it:
    x = r / s with s the EW std (alpha 2/(span+1)) of r[1..t-1], seeded at bar span with the
    mean and population variance of r[1..span] (so values start at bar span + 1; x = 0 where
    s is 0). S+ = max(0, S+ + x - k), S- = min(0, S- + x + k); when S+ > h or S- < -h an event
    fires and both reset to 0 (the rows hold the values after the reset). Bars since the last
    event count from bar span when none has fired yet.
    """
    size = close.shape[0]
    out = np.full((3, size), np.nan)
    if size <= span + 1:
        return out
    alpha = 2.0 / (span + 1)
    cap = 10 * span
    mean = 0.0
    for i in range(1, span + 1):
        mean += np.log(close[i] / close[i - 1])
    mean /= span
    var = 0.0
    for i in range(1, span + 1):
        d = np.log(close[i] / close[i - 1]) - mean
        var += d * d
    var /= span
    pos = 0.0
    neg = 0.0
    last = span
    for i in range(span + 1, size):
        r = np.log(close[i] / close[i - 1])
        s = np.sqrt(var)
        x = r / s if s > 0.0 else 0.0
        pos = max(0.0, pos + x - k)
        neg = min(0.0, neg + x + k)
        if pos > h or neg < -h:
            pos = 0.0
            neg = 0.0
            last = i
        out[0, i] = pos / h
        out[1, i] = neg / h
        out[2, i] = np.log1p(min(i - last, cap))
        d = r - mean
        inc = alpha * d
        mean += inc
        var = (1.0 - alpha) * (var + d * inc)
    return out
