"""Generic, causal indicator kernels (numba): a handful reused by every feature.

Few distinct jitted functions keep the first-call compile short; every kernel walks forward
once, so the value at bar t only ever reads bars 0..t. Leading NaNs in the input (e.g. a return
series) are skipped: a kernel starts at the first non-NaN value. Inputs are float64, C-contiguous.
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


@njit(cache=True)
def first_valid(x: np.ndarray) -> int:
    """Index of the first non-NaN value (len(x) when none)."""
    for i in range(x.shape[0]):
        if not np.isnan(x[i]):
            return i
    return x.shape[0]


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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
