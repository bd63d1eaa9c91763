"""Streaming features: one bar in, one feature row out, in O(1) time per bar.

``FeatureStream(spec, timeframe)`` compiles a spec into a small program of nodes (inputs,
elementwise arithmetic, lags, exponential averages, rolling windows kept in fixed-size ring
buffers, ADX/CCI/linear-regression/Aroon states) and runs it with one numba call per bar. Each
node repeats, step by step, what the batch kernel in ``features.kernels`` does at that bar: the
same seeding (``first_valid``, ``seed_at``), the same running sums re-summed on the same
schedule, the same order of floating-point operations. So after ``warm_up(history)`` (which
replays the history through the same program) every ``update(bar)`` returns
``compute_feature_matrix(all bars so far, spec)[-1]``, NaN where it is NaN.

Higher-timeframe features (``htf_<kind>``) bin the base bars exactly as
``features.timeframes`` does and run the inner indicator's program once per completed higher
bar. Exogenous features (merged funding / calendar columns) cannot stream: ``FeatureStream``
refuses them with a ``ConfigError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from quantrain.data.resample import bin_origin
from quantrain.errors import ConfigError, DataError
from quantrain.features.base import Bars, Params, get_float, get_int
from quantrain.features.registry import INDICATORS
from quantrain.features.spec import FeatureSpec
from quantrain.features.timeframes import check_ratio, htf_warmup, timeframe_ns

__all__ = ["FeatureStream", "streamable_kinds"]

# Same constants as features.kernels (kept equal by tests/unit/test_feature_stream.py).
_RESYNC = 1024
_TIE_REL = 1e-10

_NS_PER_HOUR = 3_600 * 1_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR
_NS_PER_WEEK = 7 * _NS_PER_DAY
_EPOCH_WEEKDAY_SHIFT_NS = 3 * _NS_PER_DAY

# --- op codes (module constants: numba freezes them into the step function) -----------------
OP_ADD = 1
OP_SUB = 2
OP_MUL = 3
OP_DIV = 4
OP_SCALE = 5  # f1 * a
OP_ADDC = 6  # a + f1
OP_DIVC = 7  # a / f1
OP_SAFEDIV = 8  # kernels.safe_div(a, b, f1)
OP_RM1 = 9  # kernels.ratio_minus_one(a, b)
OP_LAGRM1 = 10  # kernels.lag_ratio_minus_one: a / b - 1 (b = a lagged), NaN where b == 0
OP_LOG = 11
OP_SQ = 12
OP_SQRT = 13
OP_MAX0 = 14  # np.maximum(a, 0.0)
OP_NEGMAX0 = 15  # np.maximum(-a, 0.0)
OP_MINNAN = 16  # np.minimum(a, b)
OP_MAXNAN = 17  # np.maximum(a, b)
OP_SIGN = 18  # np.sign(a)
OP_RANGEPOS = 19  # kernels.range_position(a, b, c, f1)
OP_NANFIRST = 20  # a, NaN at the series' first bar
OP_VWAP = 21  # vwap_dist's guarded division (a weighted, b volume mean, c typical mean)
OP_CLIPSQRT = 22  # np.sqrt(np.maximum(a, 0.0) / f1)
OP_LAG = 30  # a[t - k1]
OP_EWM = 31  # kernels.ewm(a, k1, f1, k2)
OP_RMEAN = 32  # kernels.rolling_mean(a, k1)
OP_RSTD = 33  # kernels.rolling_std(a, k1, k2)
OP_RMAX = 34  # trailing max over k1 bars (rolling_high_low's high row)
OP_RMIN = 35
OP_ADX = 36  # kernels.adx(a, b, c, k1): 3 outputs +DI, -DI, ADX
OP_CCI = 37  # kernels.cci(a, k1)
OP_LINREG = 38  # kernels.linreg_slope(a, k1)
OP_AROON = 39  # kernels.aroon_osc(a, b, k1)
OP_EMAGAP = 40  # kernels.ema_gap(a, f1)
OP_MFLOWS = 41  # kernels.money_flows(a, b): 2 outputs
OP_CLOSELOC = 42  # kernels.close_location(a, b, c, d=volume slot in k1)
OP_CUSUM = 43  # kernels.cusum(a, k1, f1, h in state): 3 outputs S+/h, S-/h, log1p age
OP_ANGLE_SIN = 50  # sin(2 pi ((ts + k2) % k1) / k1)
OP_ANGLE_COS = 51
OP_SESSION = 52  # 1.0 when the UTC hour is in [k1, k2)

_NAN = float("nan")
_FIRST = np.zeros(1, dtype=np.intp)
# Input slots every program starts with.
_O, _H, _L, _C, _V = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True, error_model="numpy")
def _ring_sum(st: np.ndarray, base: int, n: int, lo: int, hi: int) -> float:
    """Sum of the ring's values for bars lo..hi (inclusive) in time order, from 0.0."""
    acc = 0.0
    for j in range(lo, hi + 1):
        acc += st[base + j % n]
    return acc


# error_model="numpy": a zero divisor gives inf/NaN as the batch code's numpy arithmetic does,
# instead of raising ZeroDivisionError mid-program (which would leave the state half-updated).
@njit(cache=True, nogil=True, error_model="numpy")
def _run(
    prog: np.ndarray,
    fpar: np.ndarray,
    vals: np.ndarray,
    st: np.ndarray,
    t: int,
    ts: int,
    o: float,
    h: float,
    lo_: float,
    c: float,
    v: float,
) -> None:
    """One bar through every node, in order: ``vals`` gets this bar's values, ``st`` the state."""
    vals[0] = o
    vals[1] = h
    vals[2] = lo_
    vals[3] = c
    vals[4] = v
    for r in range(prog.shape[0]):
        op = prog[r, 0]
        out = prog[r, 1]
        ia = prog[r, 2]
        ib = prog[r, 3]
        ic = prog[r, 4]
        k1 = prog[r, 5]
        k2 = prog[r, 6]
        so = prog[r, 7]
        f1 = fpar[r]
        if op < 30:
            a = vals[ia]
            if op == OP_ADD:
                vals[out] = a + vals[ib]
            elif op == OP_SUB:
                vals[out] = a - vals[ib]
            elif op == OP_MUL:
                vals[out] = a * vals[ib]
            elif op == OP_DIV:
                vals[out] = a / vals[ib]
            elif op == OP_SCALE:
                vals[out] = f1 * a
            elif op == OP_ADDC:
                vals[out] = a + f1
            elif op == OP_DIVC:
                vals[out] = a / f1
            elif op == OP_SAFEDIV:
                b = vals[ib]
                if np.isnan(a) or np.isnan(b):
                    vals[out] = np.nan
                elif b == 0.0:
                    vals[out] = f1
                else:
                    vals[out] = a / b
            elif op in (OP_RM1, OP_LAGRM1):
                b = vals[ib]
                vals[out] = a / b - 1.0 if b != 0.0 else np.nan
            elif op == OP_LOG:
                vals[out] = np.log(a)
            elif op == OP_SQ:
                vals[out] = a * a
            elif op == OP_SQRT:
                vals[out] = np.sqrt(a)
            elif op == OP_MAX0:
                vals[out] = a if (np.isnan(a) or a > 0.0) else 0.0
            elif op == OP_NEGMAX0:
                na = -a
                vals[out] = na if (np.isnan(na) or na > 0.0) else 0.0
            elif op == OP_MINNAN:
                b = vals[ib]
                if np.isnan(a) or np.isnan(b):
                    vals[out] = np.nan
                else:
                    vals[out] = a if a < b else b
            elif op == OP_MAXNAN:
                b = vals[ib]
                if np.isnan(a) or np.isnan(b):
                    vals[out] = np.nan
                else:
                    vals[out] = a if a > b else b
            elif op == OP_SIGN:
                if np.isnan(a):
                    vals[out] = np.nan
                elif a > 0.0:
                    vals[out] = 1.0
                elif a < 0.0:
                    vals[out] = -1.0
                else:
                    vals[out] = 0.0
            elif op == OP_RANGEPOS:
                hh = vals[ib]
                ll = vals[ic]
                rng = hh - ll
                if np.isnan(rng):
                    vals[out] = np.nan
                elif rng == 0.0:
                    vals[out] = f1
                else:
                    vals[out] = (a - ll) / rng
            elif op == OP_NANFIRST:
                vals[out] = np.nan if t == 0 else a
            elif op == OP_VWAP:
                b = vals[ib]
                vwap = np.nan if np.isnan(a) or np.isnan(b) or b == 0.0 else a / b
                if not (vwap > 0.0) and not np.isnan(a):
                    vwap = vals[ic]
                vals[out] = vwap
            elif op == OP_CLIPSQRT:
                m = a if (np.isnan(a) or a > 0.0) else 0.0
                vals[out] = np.sqrt(m / f1)
            continue
        if op == OP_LAG:
            slot = so + t % k1
            vals[out] = st[slot]
            st[slot] = vals[ia]
        elif op == OP_EWM:
            x = vals[ia]
            ring = so + 2
            st[ring + t % k1] = x
            s = int(st[so])
            if s < 0 and not np.isnan(x):
                s = t
                st[so] = t
            if s < 0:
                vals[out] = np.nan
                continue
            start = max(s + k1 - 1, k2)
            if t < start:
                vals[out] = np.nan
            elif t == start:
                prev = _ring_sum(st, ring, k1, t - k1 + 1, t) / k1
                st[so + 1] = prev
                vals[out] = prev
            else:
                prev = st[so + 1]
                prev = prev + f1 * (x - prev)
                st[so + 1] = prev
                vals[out] = prev
        elif op == OP_RMEAN:
            x = vals[ia]
            ring = so + 2
            old = st[ring + t % k1]
            st[ring + t % k1] = x
            s = int(st[so])
            if s < 0 and not np.isnan(x):
                s = t
                st[so] = t
            if s < 0 or t < s + k1 - 1:
                vals[out] = np.nan
                continue
            if t == s + k1 - 1 or (t - s) % _RESYNC == 0:
                acc = _ring_sum(st, ring, k1, t - k1 + 1, t)
            else:
                acc = st[so + 1]
                acc += x - old
            st[so + 1] = acc
            vals[out] = acc / k1
        elif op == OP_RSTD:
            # state: s, run, mean, m2, previous x, ring
            x = vals[ia]
            ring = so + 5
            old = st[ring + t % k1]
            st[ring + t % k1] = x
            prevx = st[so + 4]
            st[so + 4] = x
            s = int(st[so])
            if s < 0 and not np.isnan(x):
                s = t
                st[so] = t
            if s < 0 or k1 - k2 <= 0:
                vals[out] = np.nan
                continue
            run = int(st[so + 1])
            run = run + 1 if t > s and x == prevx else 1
            if t < s + k1 or (t - s) % k1 == 0:
                lo = max(s, t - k1 + 1)
                cnt = t - lo + 1
                mean = _ring_sum(st, ring, k1, lo, t)
                mean /= cnt
                m2 = 0.0
                for j in range(lo, t + 1):
                    d = st[ring + j % k1] - mean
                    m2 += d * d
            else:
                mean = st[so + 2]
                m2 = st[so + 3]
                new_mean = mean + (x - old) / k1
                m2 += (x - old) * (x - new_mean + old - mean)
                mean = new_mean
            value = np.nan
            if t >= s + k1 - 1:
                if run >= k1:
                    m2 = 0.0
                    mean = x
                    value = 0.0
                else:
                    value = np.sqrt(max(m2, 0.0) / (k1 - k2))
            st[so + 1] = run
            st[so + 2] = mean
            st[so + 3] = m2
            vals[out] = value
        elif op in (OP_RMAX, OP_RMIN):
            st[so + t % k1] = vals[ia]
            if t < k1 - 1:
                vals[out] = np.nan
                continue
            best = st[so + (t - k1 + 1) % k1]
            for j in range(t - k1 + 2, t + 1):
                y = st[so + j % k1]
                if (op == OP_RMAX and y > best) or (op == OP_RMIN and y < best):
                    best = y
            vals[out] = best
        elif op == OP_ADX:
            # state: prev high, prev low, prev close, s_pdm, s_mdm, s_tr, sum_dx, prev_adx
            hi = vals[ia]
            low = vals[ib]
            cl = vals[ic]
            vals[out] = np.nan
            vals[out + 1] = np.nan
            vals[out + 2] = np.nan
            if t > 0:
                ph = st[so]
                pl = st[so + 1]
                pc = st[so + 2]
                n = k1
                up = hi - ph
                dn = pl - low
                tie = abs(up - dn) <= _TIE_REL * abs(hi)
                pdm = up if (up > 0.0 and up > dn and not tie) else 0.0
                mdm = dn if (dn > 0.0 and dn > up and not tie) else 0.0
                tr = max(hi, pc) - min(low, pc)
                if t < n:
                    st[so + 3] += pdm
                    st[so + 4] += mdm
                    st[so + 5] += tr
                else:
                    s_pdm = st[so + 3]
                    s_mdm = st[so + 4]
                    s_tr = st[so + 5]
                    s_pdm = s_pdm - s_pdm / n + pdm
                    s_mdm = s_mdm - s_mdm / n + mdm
                    s_tr = s_tr - s_tr / n + tr
                    st[so + 3] = s_pdm
                    st[so + 4] = s_mdm
                    st[so + 5] = s_tr
                    pdi = 100.0 * s_pdm / s_tr if s_tr != 0.0 else 0.0
                    mdi = 100.0 * s_mdm / s_tr if s_tr != 0.0 else 0.0
                    vals[out] = pdi
                    vals[out + 1] = mdi
                    tot = pdi + mdi
                    dx = 100.0 * abs(pdi - mdi) / tot if tot != 0.0 else 0.0
                    if t < 2 * n - 1:
                        st[so + 6] += dx
                    elif t == 2 * n - 1:
                        prev_adx = (st[so + 6] + dx) / n
                        st[so + 7] = prev_adx
                        vals[out + 2] = prev_adx
                    else:
                        prev_adx = (st[so + 7] * (n - 1) + dx) / n
                        st[so + 7] = prev_adx
                        vals[out + 2] = prev_adx
            st[so] = hi
            st[so + 1] = low
            st[so + 2] = cl
        elif op == OP_CCI:
            x = vals[ia]
            ring = so + 1
            st[ring + t % k1] = x
            s = int(st[so])
            if s < 0 and not np.isnan(x):
                s = t
                st[so] = t
            if s < 0 or t < s + k1 - 1:
                vals[out] = np.nan
                continue
            mean = _ring_sum(st, ring, k1, t - k1 + 1, t) / k1
            dev = 0.0
            for j in range(t - k1 + 1, t + 1):
                dev += abs(st[ring + j % k1] - mean)
            dev /= k1
            scaled = 0.015 * dev
            if dev <= _TIE_REL * abs(mean):
                vals[out] = 0.0
            elif scaled == 0.0:
                vals[out] = (x - mean) / dev / 0.015
            else:
                vals[out] = (x - mean) / scaled
        elif op == OP_LINREG:
            # state: s, sum_y, sum_xy, ring
            x = vals[ia]
            ring = so + 3
            n = k1
            old = st[ring + t % n]
            st[ring + t % n] = x
            s = int(st[so])
            if s < 0 and not np.isnan(x):
                s = t
                st[so] = t
            if s < 0 or t < s + n - 1:
                vals[out] = np.nan
                continue
            sum_x = n * (n - 1) * 0.5
            sum_x2 = n * (n - 1) * (2 * n - 1) / 6.0
            divisor = sum_x * sum_x - n * sum_x2
            if t == s + n - 1 or (t - s) % _RESYNC == 0:
                sum_xy = 0.0
                sum_y = 0.0
                for k in range(n):
                    y = st[ring + (t - k) % n]
                    sum_xy += k * y
                    sum_y += y
            else:
                sum_y = st[so + 1]
                sum_xy = st[so + 2]
                sum_xy = sum_xy + sum_y - n * old
                sum_y = sum_y + x - old
            st[so + 1] = sum_y
            st[so + 2] = sum_xy
            vals[out] = (n * sum_xy - sum_x * sum_y) / divisor
        elif op == OP_AROON:
            m = k1 + 1
            st[so + t % m] = vals[ia]
            st[so + m + t % m] = vals[ib]
            if t < k1:
                vals[out] = np.nan
                continue
            hi_i = t - m + 1
            lo_i = hi_i
            hi_v = st[so + hi_i % m]
            lo_v = st[so + m + lo_i % m]
            for j in range(t - m + 2, t + 1):
                y = st[so + j % m]
                if y >= hi_v:
                    hi_v = y
                    hi_i = j
                z = st[so + m + j % m]
                if z <= lo_v:
                    lo_v = z
                    lo_i = j
            vals[out] = 100.0 * (hi_i - lo_i) / k1
        elif op == OP_EMAGAP:
            if t > 0:
                st[so] = (1.0 - f1) * (st[so] + vals[ia])
            vals[out] = st[so]
        elif op == OP_MFLOWS:
            tp = vals[ia]
            if t == 0:
                vals[out] = np.nan
                vals[out + 1] = np.nan
            else:
                d = tp - st[so]
                vals[out] = 0.0
                vals[out + 1] = 0.0
                if not abs(d) <= _TIE_REL * abs(tp):
                    if d > 0.0:
                        vals[out] = tp * vals[ib]
                    else:
                        vals[out + 1] = tp * vals[ib]
            st[so] = tp
        elif op == OP_CLOSELOC:
            hi = vals[ia]
            low = vals[ib]
            cl = vals[ic]
            rng = hi - low
            if rng > 0.0:
                vals[out] = ((cl - low) - (hi - cl)) / rng * vals[k1]
            else:
                vals[out] = 0.0
        elif op == OP_CUSUM:
            # state: prev close, mean, var, S+, S-, last event bar, h, ring of k1 returns
            cl = vals[ia]
            vals[out] = np.nan
            vals[out + 1] = np.nan
            vals[out + 2] = np.nan
            if t > 0:
                n = k1
                ring = so + 7
                r = np.log(cl / st[so])
                if t <= n:
                    st[ring + t % n] = r
                    if t == n:
                        mean = 0.0
                        for j in range(1, n + 1):
                            mean += st[ring + j % n]
                        mean /= n
                        var = 0.0
                        for j in range(1, n + 1):
                            d = st[ring + j % n] - mean
                            var += d * d
                        var /= n
                        st[so + 1] = mean
                        st[so + 2] = var
                else:
                    mean = st[so + 1]
                    var = st[so + 2]
                    hh = st[so + 6]
                    s = np.sqrt(var)
                    x = r / s if s > 0.0 else 0.0
                    pos = max(0.0, st[so + 3] + x - f1)
                    neg = min(0.0, st[so + 4] + x + f1)
                    last = int(st[so + 5])
                    if pos > hh or neg < -hh:
                        pos = 0.0
                        neg = 0.0
                        last = t
                    vals[out] = pos / hh
                    vals[out + 1] = neg / hh
                    vals[out + 2] = np.log1p(min(t - last, 10 * n))
                    d = r - mean
                    inc = (2.0 / (n + 1)) * d
                    mean += inc
                    var = (1.0 - 2.0 / (n + 1)) * (var + d * inc)
                    st[so + 1] = mean
                    st[so + 2] = var
                    st[so + 3] = pos
                    st[so + 4] = neg
                    st[so + 5] = last
            st[so] = cl
        elif op in (OP_ANGLE_SIN, OP_ANGLE_COS):
            frac = float((ts + k2) % k1) / k1
            angle = 2.0 * np.pi * frac
            vals[out] = np.sin(angle) if op == OP_ANGLE_SIN else np.cos(angle)
        elif op == OP_SESSION:
            hour = (ts % _NS_PER_DAY) // _NS_PER_HOUR
            inside = hour >= k1 and hour < k2 if k1 < k2 else hour >= k1 or hour < k2
            vals[out] = 1.0 if inside else 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _step(
    prog: np.ndarray,
    fpar: np.ndarray,
    vals: np.ndarray,
    st: np.ndarray,
    t: int,
    ts: int,
    o: float,
    h: float,
    lo_: float,
    c: float,
    v: float,
    cols: np.ndarray,
    slots: np.ndarray,
    out: np.ndarray,
) -> None:
    """``_run`` then copy the feature slots into their columns of ``out``."""
    _run(prog, fpar, vals, st, t, ts, o, h, lo_, c, v)
    for j in range(cols.shape[0]):
        out[cols[j]] = vals[slots[j]]


# --- compiling a spec into a program -----------------------------------------------------------


class _Program:
    """Nodes in evaluation order, with memoised sharing of intermediates (as ``Bars.memo``)."""

    def __init__(self) -> None:
        self.rows: list[list[int]] = []
        self.fpar: list[float] = []
        self.state: list[float] = []
        self.slots = 5  # open, high, low, close, volume
        self._memo: dict[tuple[Any, ...], int] = {}

    def node(
        self,
        op: int,
        inputs: tuple[int, ...] = (),
        k1: int = 0,
        k2: int = 0,
        f1: float = 0.0,
        state: list[float] | None = None,
        outputs: int = 1,
        extra: tuple[float, ...] = (),
    ) -> int:
        """Add a node (or reuse an equal one); ``extra`` keys constants kept in ``state``."""
        key = (op, inputs, k1, k2, f1, *extra)
        found = self._memo.get(key)
        if found is not None:
            return found
        out = self.slots
        self.slots += outputs
        a, b, c = (*inputs, -1, -1, -1)[:3]
        self.rows.append([op, out, a, b, c, k1, k2, len(self.state)])
        self.fpar.append(f1)
        self.state.extend(state or [])
        self._memo[key] = out
        return out

    # small helpers mirroring the batch code's intermediates
    def lag(self, x: int, k: int) -> int:
        return self.node(OP_LAG, (x,), k1=k, state=[_NAN] * k)

    def ewm(self, x: int, n: int, alpha: float, seed_at: int = -1) -> int:
        return self.node(OP_EWM, (x,), k1=n, k2=seed_at, f1=alpha, state=[-1.0, 0.0] + [_NAN] * n)

    def rmean(self, x: int, n: int) -> int:
        return self.node(OP_RMEAN, (x,), k1=n, state=[-1.0, 0.0] + [_NAN] * n)

    def rstd(self, x: int, n: int, ddof: int) -> int:
        return self.node(
            OP_RSTD, (x,), k1=n, k2=ddof, state=[-1.0, 0.0, 0.0, 0.0, _NAN] + [_NAN] * n
        )

    def bin(self, op: int, a: int, b: int, f1: float = 0.0) -> int:
        return self.node(op, (a, b), f1=f1)

    def un(self, op: int, a: int, f1: float = 0.0) -> int:
        return self.node(op, (a,), f1=f1)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        prog = np.array(self.rows, dtype=np.int64).reshape(-1, 8)
        fpar = np.array(self.fpar, dtype=np.float64)
        state = np.array(self.state, dtype=np.float64)
        if not state.size:
            state = np.zeros(1)
        vals = np.full(self.slots, np.nan)
        return prog, fpar, state, vals


# Shared intermediates, named after the batch code's memo keys.


def _prev_close(g: _Program) -> int:
    return g.lag(_C, 1)


def _diff(g: _Program) -> int:
    return g.bin(OP_SUB, _C, _prev_close(g))


def _log_ret1(g: _Program) -> int:
    return g.un(OP_LOG, g.bin(OP_DIV, _C, _prev_close(g)))


def _tr(g: _Program) -> int:
    prev = _prev_close(g)
    return g.bin(OP_SUB, g.bin(OP_MAXNAN, _H, prev), g.bin(OP_MINNAN, _L, prev))


def _atr(g: _Program, n: int) -> int:
    return g.ewm(_tr(g), n, 1.0 / n)


def _ema(g: _Program, n: int, seed_at: int = -1) -> int:
    return g.ewm(_C, n, 2.0 / (n + 1), seed_at)


def _typical(g: _Program) -> int:
    return g.un(OP_DIVC, g.bin(OP_ADD, g.bin(OP_ADD, _H, _L), _C), 3.0)


def _highest(g: _Program, n: int) -> int:
    return g.node(OP_RMAX, (_H,), k1=n, state=[_NAN] * n)


def _lowest(g: _Program, n: int) -> int:
    return g.node(OP_RMIN, (_L,), k1=n, state=[_NAN] * n)


def _vmean(g: _Program, n: int) -> int:
    return g.rmean(_V, n)


def _mfv(g: _Program) -> int:
    return g.node(OP_CLOSELOC, (_H, _L, _C), k1=_V)


def _gain_loss(g: _Program, n: int) -> tuple[int, int]:
    diff = _diff(g)
    gain = g.ewm(g.un(OP_MAX0, diff), n, 1.0 / n)
    loss = g.ewm(g.un(OP_NEGMAX0, diff), n, 1.0 / n)
    return gain, loss


def _stoch_k(g: _Program, n: int) -> int:
    pos = g.node(OP_RANGEPOS, (_C, _highest(g, n), _lowest(g, n)), f1=0.5)
    return g.un(OP_SCALE, pos, 100.0)


def _macd_parts(g: _Program, p: Params) -> tuple[int, int]:
    fast, slow, sig = get_int(p, "fast"), get_int(p, "slow"), get_int(p, "signal")
    line = g.bin(OP_SUB, _ema(g, fast, slow - 1), _ema(g, slow))
    return line, g.ewm(line, sig, 2.0 / (sig + 1))


def _adx(g: _Program, n: int) -> int:
    return g.node(OP_ADX, (_H, _L, _C), k1=n, state=[0.0] * 8, outputs=3)


def _bb(g: _Program, p: Params) -> tuple[int, int]:
    n = get_int(p, "period")
    return g.rmean(_C, n), g.rstd(_C, n, 0)


def _log_hl_sq(g: _Program) -> int:
    return g.un(OP_SQ, g.un(OP_LOG, g.bin(OP_DIV, _H, _L)))


def _bar_range(g: _Program) -> int:
    return g.bin(OP_SUB, _H, _L)


def _ret(g: _Program, p: Params) -> int:
    k = get_int(p, "period")
    return g.un(OP_LOG, g.bin(OP_DIV, _C, g.lag(_C, k)))


def _vwap_dist(g: _Program, p: Params) -> int:
    n = get_int(p, "period")
    tp = _typical(g)
    weighted = g.rmean(g.bin(OP_MUL, tp, _V), n)
    vwap = g.node(OP_VWAP, (weighted, _vmean(g, n), g.rmean(tp, n)))
    return g.bin(OP_RM1, _C, vwap)


def _ultosc(g: _Program, p: Params) -> int:
    prev = _prev_close(g)
    pressure = g.bin(OP_SUB, _C, g.bin(OP_MINNAN, _L, prev))
    tr = _tr(g)
    total = -1
    for weight, key in ((4.0, "fast"), (2.0, "mid"), (1.0, "slow")):
        n = get_int(p, key)
        term = g.un(OP_SCALE, g.bin(OP_SAFEDIV, g.rmean(pressure, n), g.rmean(tr, n), 0.0), weight)
        total = term if total < 0 else g.bin(OP_ADD, total, term)
    return g.un(OP_DIVC, g.un(OP_SCALE, total, 100.0), 7.0)


def _trix(g: _Program, p: Params) -> int:
    n = get_int(p, "period")
    alpha = 2.0 / (n + 1)
    triple = g.ewm(g.ewm(_ema(g, n), n, alpha), n, alpha)
    return g.bin(OP_LAGRM1, triple, g.lag(triple, 1))


def _mfi(g: _Program, p: Params) -> int:
    n = get_int(p, "period")
    flows = g.node(OP_MFLOWS, (_typical(g), _V), state=[_NAN], outputs=2)
    pos, neg = g.rmean(flows, n), g.rmean(flows + 1, n)
    return g.un(OP_SCALE, g.bin(OP_SAFEDIV, pos, g.bin(OP_ADD, pos, neg), 0.5), 100.0)


def _obv_slope(g: _Program, p: Params) -> int:
    n = get_int(p, "period")
    signed = g.bin(OP_MUL, g.un(OP_SIGN, _diff(g)), _V)
    vol = g.un(OP_NANFIRST, _V)
    return g.bin(OP_SAFEDIV, g.rmean(signed, n), g.rmean(vol, n), 0.0)


def _adosc(g: _Program, p: Params) -> int:
    fast, slow = get_int(p, "fast"), get_int(p, "slow")
    mfv = _mfv(g)
    gap_slow = g.node(OP_EMAGAP, (mfv,), f1=2.0 / (slow + 1), state=[0.0])
    gap_fast = g.node(OP_EMAGAP, (mfv,), f1=2.0 / (fast + 1), state=[0.0])
    line = g.bin(OP_SUB, gap_slow, gap_fast)
    return g.bin(OP_SAFEDIV, line, _vmean(g, slow), 0.0)


def _garman_klass(g: _Program, p: Params) -> int:
    oc = g.un(OP_SQ, g.un(OP_LOG, g.bin(OP_DIV, _C, _O)))
    per_bar = g.bin(
        OP_SUB,
        g.un(OP_SCALE, _log_hl_sq(g), 0.5),
        g.un(OP_SCALE, oc, 2.0 * np.log(2.0) - 1.0),
    )
    return g.un(OP_CLIPSQRT, g.rmean(per_bar, get_int(p, "period")), 1.0)


def _range_pos(g: _Program, p: Params) -> int:
    n = get_int(p, "period")
    hh, ll = g.lag(_highest(g, n), 1), g.lag(_lowest(g, n), 1)
    return g.node(OP_RANGEPOS, (_C, hh, ll), f1=0.5)


def _cusum(g: _Program, p: Params) -> int:
    span, k, h = _i(p, "span"), _f(p, "k"), _f(p, "h")
    state = [_NAN, 0.0, 0.0, 0.0, 0.0, float(span), h] + [_NAN] * span
    return g.node(OP_CUSUM, (_C,), k1=span, f1=k, state=state, outputs=3, extra=(h,))


def _angle(op: int, period_ns: int, shift_ns: int) -> Callable[[_Program, Params], int]:
    return lambda g, p: g.node(op, (), k1=period_ns, k2=shift_ns)


def _safediv(num: int, den: int, when_zero: float, g: _Program) -> int:
    return g.bin(OP_SAFEDIV, num, den, when_zero)


_i = get_int
_f = get_float

#: Per kind: how to add its column to a program (returns the slot holding the value).
_BUILDERS: dict[str, Callable[[_Program, Params], int]] = {
    "ret": _ret,
    "ema_dist": lambda g, p: g.bin(OP_RM1, _C, _ema(g, _i(p, "period"))),
    "sma_dist": lambda g, p: g.bin(OP_RM1, _C, g.rmean(_C, _i(p, "period"))),
    "ema_slope": lambda g, p: g.bin(
        OP_LAGRM1, _ema(g, _i(p, "period")), g.lag(_ema(g, _i(p, "period")), _i(p, "lag"))
    ),
    "macd": lambda g, p: g.bin(OP_DIV, _macd_parts(g, p)[0], _C),
    "macd_signal": lambda g, p: g.bin(OP_DIV, _macd_parts(g, p)[1], _C),
    "macd_hist": lambda g, p: g.bin(OP_DIV, g.bin(OP_SUB, *_macd_parts(g, p)), _C),
    "aroon_osc": lambda g, p: g.node(
        OP_AROON, (_H, _L), k1=_i(p, "period"), state=[_NAN] * (2 * (_i(p, "period") + 1))
    ),
    "cci": lambda g, p: g.node(
        OP_CCI, (_typical(g),), k1=_i(p, "period"), state=[-1.0] + [_NAN] * _i(p, "period")
    ),
    "vwap_dist": _vwap_dist,
    "linreg_slope": lambda g, p: g.bin(
        OP_DIV,
        g.node(
            OP_LINREG,
            (_C,),
            k1=_i(p, "period"),
            state=[-1.0, 0.0, 0.0] + [_NAN] * _i(p, "period"),
        ),
        _C,
    ),
    "adx": lambda g, p: _adx(g, _i(p, "period")) + 2,
    "plus_di": lambda g, p: _adx(g, _i(p, "period")),
    "minus_di": lambda g, p: _adx(g, _i(p, "period")) + 1,
    "rsi": lambda g, p: g.un(
        OP_SCALE,
        _safediv(
            _gain_loss(g, _i(p, "period"))[0],
            g.bin(OP_ADD, *_gain_loss(g, _i(p, "period"))),
            0.5,
            g,
        ),
        100.0,
    ),
    "cmo": lambda g, p: g.un(
        OP_SCALE,
        _safediv(
            g.bin(OP_SUB, *_gain_loss(g, _i(p, "period"))),
            g.bin(OP_ADD, *_gain_loss(g, _i(p, "period"))),
            0.0,
            g,
        ),
        100.0,
    ),
    "stoch_k": lambda g, p: _stoch_k(g, _i(p, "period")),
    "stoch_d": lambda g, p: g.rmean(_stoch_k(g, _i(p, "period")), _i(p, "smooth")),
    "willr": lambda g, p: g.un(OP_ADDC, _stoch_k(g, _i(p, "period")), -100.0),
    "mfi": _mfi,
    "trix": _trix,
    "ultosc": _ultosc,
    "atr_frac": lambda g, p: g.bin(OP_DIV, _atr(g, _i(p, "period")), _C),
    "bb_pctb": lambda g, p: g.un(
        OP_ADDC,
        _safediv(
            g.bin(OP_SUB, _C, _bb(g, p)[0]),
            g.un(OP_SCALE, _bb(g, p)[1], 2.0 * _f(p, "nstd")),
            0.0,
            g,
        ),
        0.5,
    ),
    "bb_width": lambda g, p: g.bin(
        OP_DIV, g.un(OP_SCALE, _bb(g, p)[1], 2.0 * _f(p, "nstd")), _bb(g, p)[0]
    ),
    "volatility": lambda g, p: g.rstd(_log_ret1(g), _i(p, "period"), 1),
    "parkinson": lambda g, p: g.un(
        OP_CLIPSQRT, g.rmean(_log_hl_sq(g), _i(p, "period")), 4.0 * np.log(2.0)
    ),
    "garman_klass": _garman_klass,
    "hl_range": lambda g, p: g.bin(OP_DIV, _bar_range(g), _C),
    "vol_z": lambda g, p: _safediv(
        g.bin(OP_SUB, _V, _vmean(g, _i(p, "period"))), g.rstd(_V, _i(p, "period"), 0), 0.0, g
    ),
    "obv_slope": _obv_slope,
    "vol_ratio": lambda g, p: _safediv(_vmean(g, _i(p, "fast")), _vmean(g, _i(p, "slow")), 1.0, g),
    "cmf": lambda g, p: _safediv(
        g.rmean(_mfv(g), _i(p, "period")), _vmean(g, _i(p, "period")), 0.0, g
    ),
    "adosc": _adosc,
    "swing_high_dist": lambda g, p: _safediv(
        g.bin(OP_SUB, _highest(g, _i(p, "period")), _C), _atr(g, _i(p, "atr")), 0.0, g
    ),
    "swing_low_dist": lambda g, p: _safediv(
        g.bin(OP_SUB, _C, _lowest(g, _i(p, "period"))), _atr(g, _i(p, "atr")), 0.0, g
    ),
    "range_pos": _range_pos,
    "body": lambda g, p: _safediv(g.bin(OP_SUB, _C, _O), _bar_range(g), 0.0, g),
    "upper_wick": lambda g, p: _safediv(
        g.bin(OP_SUB, _H, g.bin(OP_MAXNAN, _O, _C)), _bar_range(g), 0.0, g
    ),
    "lower_wick": lambda g, p: _safediv(
        g.bin(OP_SUB, g.bin(OP_MINNAN, _O, _C), _L), _bar_range(g), 0.0, g
    ),
    "gap_atr": lambda g, p: _safediv(
        g.bin(OP_SUB, _O, _prev_close(g)), _atr(g, _i(p, "atr")), 0.0, g
    ),
    "cusum_pos": _cusum,
    "cusum_neg": lambda g, p: _cusum(g, p) + 1,
    "cusum_age": lambda g, p: _cusum(g, p) + 2,
    # calendar (timestamps only)
    "hour_sin": _angle(OP_ANGLE_SIN, _NS_PER_DAY, 0),
    "hour_cos": _angle(OP_ANGLE_COS, _NS_PER_DAY, 0),
    "dow_sin": _angle(OP_ANGLE_SIN, _NS_PER_WEEK, _EPOCH_WEEKDAY_SHIFT_NS),
    "dow_cos": _angle(OP_ANGLE_COS, _NS_PER_WEEK, _EPOCH_WEEKDAY_SHIFT_NS),
    "minute_sin": _angle(OP_ANGLE_SIN, _NS_PER_HOUR, 0),
    "minute_cos": _angle(OP_ANGLE_COS, _NS_PER_HOUR, 0),
    "session": lambda g, p: g.node(OP_SESSION, (), k1=_i(p, "start"), k2=_i(p, "end")),
}


def _streamable(kind: str) -> bool:
    if kind in _BUILDERS:
        return True
    indicator = INDICATORS.get(kind)
    return (
        indicator is not None
        and indicator.inputs == "htf"
        and kind.startswith("htf_")
        and kind[4:] in _BUILDERS
        and INDICATORS[kind[4:]].inputs == "ohlcv"
    )


def streamable_kinds() -> list[str]:
    """Registry kinds ``FeatureStream`` computes (every kind but the exogenous ones)."""
    return sorted(k for k in INDICATORS if _streamable(k))


class _Engine:
    """A compiled program with its state: one bar in per ``step``."""

    __slots__ = ("fpar", "prog", "st", "t", "vals")

    def __init__(self, program: _Program) -> None:
        self.prog, self.fpar, self.st, self.vals = program.arrays()
        self.t = 0

    def step(self, ts: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        _run(self.prog, self.fpar, self.vals, self.st, self.t, ts, o, h, lo, c, v)
        self.t += 1


class _HigherView:
    """One higher timeframe: the bin in progress and the inner program run per completed bar.

    Binning follows ``timeframes._build``: epoch-anchored bins, a bin completes at its last
    possible base bar or, after a gap, at the first base bar of a later bin; a first bin that
    opened before the data started is never complete.
    """

    def __init__(self, target_ns: int, step_ns: int, ratio: int) -> None:
        self.target = target_ns
        self.step = step_ns
        self.ratio = ratio
        self.origin = bin_origin(target_ns)
        self.program = _Program()
        self.engine: _Engine | None = None
        self.cols: list[int] = []
        self.slots: list[int] = []
        self.masks: list[int] = []
        self.bin: int | None = None
        self.opens = 0
        self.dropped = False
        self.done = False
        self.o = self.h = self.lo = self.c = 0.0
        self.volumes: list[float] = []
        self.completed = 0

    def finish(self) -> None:
        self.engine = _Engine(self.program)
        self.cols_arr = np.array(self.cols, dtype=np.int64)
        self.slots_arr = np.array(self.slots, dtype=np.int64)
        self.masks_arr = np.array(self.masks, dtype=np.int64)
        self.max_mask = max(self.masks) if self.masks else 0

    def _complete(self) -> None:
        self.done = True
        if self.dropped:
            return
        assert self.engine is not None
        # the batch side's own op: reduceat adds the first value to a pairwise sum of the rest
        volume = float(np.add.reduceat(np.array(self.volumes), _FIRST)[0])
        self.engine.step(self.opens, self.o, self.h, self.lo, self.c, volume)
        self.completed += 1

    def push(self, ts: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        b = (ts - self.origin) // self.target
        if b != self.bin:
            if self.bin is not None and not self.done:
                self._complete()
            first = self.bin is None
            self.bin = b
            self.opens = b * self.target + self.origin
            self.dropped = first and ts > self.opens
            self.done = False
            self.o, self.h, self.lo, self.c = o, h, lo, c
            self.volumes = [v]
        else:
            self.h = h if h > self.h else self.h
            self.lo = lo if lo < self.lo else self.lo
            self.c = c
            self.volumes.append(v)
        if ts + self.step >= self.opens + self.target:
            self._complete()

    def fill(self, out: np.ndarray, t: int) -> None:
        if not self.completed:
            out[self.cols_arr] = np.nan
            return
        assert self.engine is not None
        values = self.engine.vals[self.slots_arr]
        if t < self.max_mask:
            values[t < self.masks_arr] = np.nan
        out[self.cols_arr] = values


def _bar_fields(bar: Any) -> tuple[Any, float, float, float, float, float]:
    if isinstance(bar, Mapping):
        return (
            bar["timestamp"],
            float(bar["open"]),
            float(bar["high"]),
            float(bar["low"]),
            float(bar["close"]),
            float(bar["volume"]),
        )
    return (
        bar.timestamp,
        float(bar.open),
        float(bar.high),
        float(bar.low),
        float(bar.close),
        float(bar.volume),
    )


def _timestamp_ns(value: Any) -> int:
    """UTC epoch ns of a bar's open time (int ns, pandas/np/datetime stamps; naive = UTC)."""
    if isinstance(value, pd.Timestamp):
        return int(value.value)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise DataError(f"bar timestamp {value!r} is not a time")
    return int(stamp.value)


class FeatureStream:
    """Features of ``spec`` one bar at a time, equal to the batch matrix's last row.

    ``warm_up(history)`` once (a frame with timestamp, open, high, low, close, volume), then
    ``update(bar)`` per new bar (a mapping or an object with those six fields; timestamps
    strictly increasing, gaps allowed). ``update`` returns a new float64 array in spec order.
    ``timeframe`` (e.g. ``5m``) is the bar size, used by higher-timeframe features: the batch
    code infers it from the smallest step in its window, so ``warm_up`` refuses a history whose
    smallest step differs (with no history, the first two bars should be adjacent).

    Each ``update`` costs the same whatever the history length: state is fixed-size (ring
    buffers of each window, recursive filters, the higher bar in progress). A refused bar
    (NaN, timestamp not increasing, off the bar grid) raises ``DataError`` and changes nothing.

    ``ConfigError`` at construction for kinds that cannot stream (exogenous inputs): compute
    those with ``compute_feature_matrix`` / ``Predictor.predict_latest`` instead.
    """

    def __init__(self, spec: FeatureSpec, timeframe: str) -> None:
        refused = sorted({f.kind for f in spec.features if not _streamable(f.kind)})
        if refused:
            raise ConfigError(
                f"feature spec {spec.name!r} has kind(s) that cannot stream: {', '.join(refused)} "
                "(exogenous inputs are not available bar by bar)\n  fix: compute these features "
                "over a window with Predictor.predict_latest (or compute_feature_matrix), or drop "
                f"them from the feature set; streamable kinds: quantrain.features.stream."
                "streamable_kinds()"
            )
        try:
            self.step_ns = timeframe_ns(timeframe)
        except DataError as error:
            raise ConfigError(str(error)) from None
        self.spec = spec
        self.timeframe = timeframe
        self.columns = spec.column_tuple()
        base = _Program()
        cols: list[int] = []
        slots: list[int] = []
        views: dict[int, _HigherView] = {}
        for j, feature in enumerate(spec.features):
            params = dict(feature.params)
            builder = _BUILDERS.get(feature.kind)
            if builder is not None:
                slots.append(builder(base, params))
                cols.append(j)
                continue
            tf = str(params.pop("tf"))
            target = timeframe_ns(tf)
            try:
                ratio = check_ratio(self.step_ns, target, tf)
            except DataError as error:
                raise ConfigError(f"feature {feature.name!r}: {error}") from None
            view = views.get(target)
            if view is None:
                view = views[target] = _HigherView(target, self.step_ns, ratio)
            inner = feature.kind[4:]
            view.slots.append(_BUILDERS[inner](view.program, params))
            view.cols.append(j)
            view.masks.append(htf_warmup(INDICATORS[inner].warmup(params), ratio))
        for view in views.values():
            view.finish()
        self._views = tuple(views.values())
        self._engine = _Engine(base)
        self._cols = np.array(cols, dtype=np.int64)
        self._slots = np.array(slots, dtype=np.int64)
        self._out = np.full(len(self.columns), np.nan)
        self._last_ts: int | None = None

    @property
    def bars_seen(self) -> int:
        """Bars consumed so far (history included)."""
        return self._engine.t

    def warm_up(self, history: pd.DataFrame) -> None:
        """Consume ``history`` (oldest first) so the next ``update`` continues it exactly."""
        bars = Bars.from_frame(history)  # same column and NaN checks as the batch code
        ns = bars.timestamp_ns() if len(bars) else np.empty(0, dtype=np.int64)
        smallest = int(np.diff(ns).min()) if len(ns) > 1 else self.step_ns
        if self._views and 0 < smallest != self.step_ns:
            # the batch code infers the bar size from the data: it must be this timeframe
            raise DataError(
                f"history's bar size is {pd.Timedelta(smallest, unit='ns')}, "
                f"not the stream's timeframe {self.timeframe}\n  fix: pass the data's "
                "timeframe to FeatureStream (higher-timeframe bins depend on it)"
            )
        opens, highs, lows = bars.open.tolist(), bars.high.tolist(), bars.low.tolist()
        closes, volumes = bars.close.tolist(), bars.volume.tolist()
        for i, ts in enumerate(ns.tolist()):
            self._advance(ts, opens[i], highs[i], lows[i], closes[i], volumes[i], fill=False)

    def update(self, bar: Any) -> np.ndarray:
        """Feature row for ``bar`` (a new array, spec order, NaN in warm-up)."""
        stamp, o, h, lo, c, v = _bar_fields(bar)
        self._advance(_timestamp_ns(stamp), o, h, lo, c, v, fill=True)
        return self._out.copy()

    def _advance(
        self, ts: int, o: float, h: float, lo: float, c: float, v: float, *, fill: bool
    ) -> None:
        if math.isnan(o) or math.isnan(h) or math.isnan(lo) or math.isnan(c) or math.isnan(v):
            raise DataError(f"bar at {pd.Timestamp(ts, tz='UTC')} has a NaN price or volume")
        last = self._last_ts
        if last is not None and ts <= last:
            raise DataError(
                f"bar timestamps must increase: {pd.Timestamp(ts, tz='UTC')} after "
                f"{pd.Timestamp(last, tz='UTC')}"
            )
        if any((ts - view.origin) % self.step_ns for view in self._views):
            raise DataError(
                f"bar at {pd.Timestamp(ts, tz='UTC')} is not on the {self.timeframe} grid "
                "anchored at 00:00 UTC, so higher-timeframe bins are undefined"
            )
        self._last_ts = ts
        t = self._engine.t
        for view in self._views:
            view.push(ts, o, h, lo, c, v)
        engine = self._engine
        _step(
            engine.prog,
            engine.fpar,
            engine.vals,
            engine.st,
            t,
            ts,
            o,
            h,
            lo,
            c,
            v,
            self._cols,
            self._slots,
            self._out,
        )
        engine.t = t + 1
        if fill:
            for view in self._views:
                view.fill(self._out, t)
