"""Look-ahead detection: a feature is causal when bars after t cannot change its value at t.

Used by the property tests and, before training, to refuse leaky features. ``refuse_lookahead``
runs two checks: the perturbation check (``find_lookahead``) at cuts spread over the whole
series, on bounded windows so its cost does not grow with history; and a screen for inputs that
already hold the future (a precomputed column, which no perturbation can reveal): no input
column or feature may rank-correlate with the forward return as only the future can.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api import types

from quantrain.data.validate import format_timeframe
from quantrain.errors import ConfigError, DataError, QuantrainError
from quantrain.features.base import EXTRA_COLUMNS, OHLCV_COLUMNS
from quantrain.features.compute import compute_feature_matrix
from quantrain.features.spec import FeatureSpec

FeatureFn = Callable[[pd.DataFrame], pd.DataFrame]
Matrix = tuple[list[str], np.ndarray]

#: Cuts ``refuse_lookahead`` spreads over the series, one per equal stretch after the warm-up.
N_CUTS = 6
#: Bars of history before each cut (at least; twice the spec's warm-up when that is more), so
#: features with long windows, declared or not, are defined at the cut.
MIN_HISTORY_BARS = 2500
#: Bars after each cut that the unaltered window keeps, for a leak to read from.
AFTER_CUT_BARS = 256
#: Forward close-to-close returns (in bars) that inputs and features are screened against.
SCREEN_HORIZONS = (1, 12, 48)
#: Refuse a column whose rank correlation with a forward return exceeds this in absolute value
#: (and both bounds below). The null spread is ~0.014 on 5,000 bars; real features reach
#: ~0.05, and ~0.34 on the bundled illiquid 5m pairs (short-horizon mean reversion).
MAX_ABS_RHO = 0.5
#: Past returns over these many bars are the yardstick of what bars <= t can predict ...
PAST_LOOKBACKS = (1, 3, 12, 48, 144)
#: ... and an honest column does not beat the best of them by more than this: on a strongly
#: predictable series (a planted trend, a bid-ask bounce) every honest feature rises with them.
PAST_MARGIN = 0.3
#: Rows the screen ranks at most (evenly spaced over the series): bounds its cost.
SCREEN_MAX_ROWS = 512
#: Fewer rows than this (both values finite) are too few to judge a correlation.
SCREEN_MIN_ROWS = 200
#: Whatever ``max_abs_rho`` says, a correlation within this many chance spreads is not refused:
#: overlapping long-horizon returns on a short series leave few independent samples (48-bar
#: returns over 5,760 bars: ~120, a spread of ~0.09), and smooth honest features range that far.
CHANCE_SPREADS = 5.0
_SHOWN = 8


# --- perturbation --------------------------------------------------------------------------


def perturb_after(ohlcv: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    """A copy whose rows after row t have new prices, volumes and input values; dtypes kept.

    Each later bar's OHLC is scaled by its own random factor (so high >= open, close >= low
    still hold) and volumes are shuffled and rescaled. Every other column changes too: numbers
    are shuffled, rescaled and shifted, times (event times) moved by up to a day, booleans
    flipped at random, anything else shuffled. ``timestamp`` is kept (still increasing).
    """
    tail = len(ohlcv) - t - 1
    if tail <= 0:
        return ohlcv.copy()
    factors = np.exp(rng.normal(0.0, 0.05, size=tail))
    moved: dict[str, np.ndarray] = {}
    for col in ("open", "high", "low", "close"):
        moved[col] = ohlcv[col].to_numpy(dtype=np.float64, copy=True)
        moved[col][t + 1 :] *= factors
    volume = ohlcv["volume"].to_numpy(dtype=np.float64, copy=True)
    volume[t + 1 :] = rng.permutation(volume[t + 1 :]) * rng.uniform(0.2, 5.0, size=tail)
    moved["volume"] = volume
    columns: dict[Hashable, object] = {}
    for col in ohlcv.columns:
        series = ohlcv[col]
        if col in moved:
            columns[col] = _like(series, moved[col])
        elif col == "timestamp":
            columns[col] = series.array.copy()
        else:
            columns[col] = _perturbed(series, t, rng)
    out = pd.DataFrame(columns, index=ohlcv.index)
    out.attrs = dict(ohlcv.attrs)
    return out


def _like(series: pd.Series, values: np.ndarray) -> np.ndarray | pd.Series:
    if values.dtype == series.dtype:
        return values  # plain float64 columns: no index to align, one block
    return pd.Series(values, index=series.index, name=series.name).astype(series.dtype)


def _perturbed(series: pd.Series, t: int, rng: np.random.Generator) -> object:
    """The column with new values after row t, of the same dtype (an array or a Series)."""
    n = len(series) - t - 1
    dtype = series.dtype
    if types.is_bool_dtype(dtype):
        flip = np.r_[np.zeros(t + 1, dtype=bool), rng.random(n) < 0.5]
        return series.where(~flip, ~series)
    if types.is_datetime64_any_dtype(dtype) or types.is_timedelta64_dtype(dtype):
        seconds = np.zeros(len(series), dtype=np.int64)
        seconds[t + 1 :] = rng.integers(1, 86_400, size=n) * rng.choice((-1, 1), size=n)
        shifted = series.array + seconds.astype("timedelta64[s]")
        return shifted if shifted.dtype == dtype else shifted.astype(dtype)
    if types.is_numeric_dtype(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        tail = values[t + 1 :]
        finite = tail[np.isfinite(tail)]
        scale = float(finite.std()) if finite.size > 1 else 0.0
        scale = scale or float(np.abs(finite).max(initial=0.0)) or 1.0
        tail[:] = rng.permutation(tail) * rng.uniform(0.5, 2.0, n) + rng.normal(0.0, scale, n)
        if types.is_integer_dtype(dtype):
            tail[:] = np.round(tail)
            if types.is_unsigned_integer_dtype(dtype):
                tail[:] = np.abs(tail)
        return _like(series, values)
    order = np.r_[np.arange(t + 1), t + 1 + rng.permutation(n)]
    return series.iloc[order].set_axis(series.index)


# --- the perturbation check ----------------------------------------------------------------


@dataclass
class _Scan:
    """What the perturbation check found, and the unaltered feature rows it computed."""

    columns: list[str] = field(default_factory=list)
    leaks: dict[str, tuple[int, str]] = field(default_factory=dict)  # column -> (cut, how)
    bars: list[np.ndarray] = field(default_factory=list)  # row positions in the frame
    values: list[np.ndarray] = field(default_factory=list)  # their feature values


def _as_matrix_fn(spec_or_callable: FeatureSpec | FeatureFn) -> Callable[[pd.DataFrame], Matrix]:
    if isinstance(spec_or_callable, FeatureSpec):
        spec = spec_or_callable
        columns = spec.columns()
        return lambda frame: (columns, compute_feature_matrix(frame, spec))
    fn = spec_or_callable

    def run(frame: pd.DataFrame) -> Matrix:
        out = fn(frame)
        return [str(c) for c in out.columns], out.to_numpy(dtype=np.float64)

    return run


def _changed(ref: Matrix, got: Matrix, rows: int) -> list[str]:
    """Columns of ``ref`` whose first ``rows`` values differ in ``got`` (NaN equals NaN)."""
    ref_cols, ref_values = ref
    got_cols, got_values = got
    head, other = ref_values[:rows], got_values[:rows]
    if got_cols == ref_cols and np.array_equal(head.view(np.int64), other.view(np.int64)):
        return []  # bit for bit: the common case, without NaN masks
    where = {c: j for j, c in enumerate(got_cols)}
    return [
        col
        for j, col in enumerate(ref_cols)
        if col not in where or not np.array_equal(head[:, j], other[:, where[col]], equal_nan=True)
    ]


def _scan(
    ohlcv: pd.DataFrame,
    fn: Callable[[pd.DataFrame], Matrix],
    cuts: list[int],
    *,
    seed: int,
    history: int | None,
    after: int | None,
) -> _Scan:
    """Run the cuts (sorted); each unaltered window is computed once and its rows kept."""
    rng = np.random.default_rng(seed)
    n = len(ohlcv)
    scan = _Scan()
    ref: Matrix = ([], np.empty((0, 0)))
    span = (-1, -1)
    kept_until = 0
    for t in cuts:
        start = 0 if history is None else max(0, t - history)
        stop = n if after is None else min(n, t + after + 1)
        window = ohlcv.iloc[start:stop]
        if (start, stop) != span:
            span, ref = (start, stop), fn(window)
            scan.columns = ref[0]
            first = max(start, kept_until)
            scan.bars.append(np.arange(first, stop))
            scan.values.append(ref[1][first - start :])
            kept_until = stop
        rows = t - start + 1
        variants = (
            ("later bars dropped", fn(ohlcv.iloc[start : t + 1])),
            ("later bars and inputs altered", fn(perturb_after(window, rows - 1, rng))),
        )
        for how, got in variants:
            for col in _changed(ref, got, rows):
                scan.leaks.setdefault(col, (t, how))
    return scan


def find_lookahead(
    ohlcv: pd.DataFrame,
    spec_or_callable: FeatureSpec | FeatureFn,
    cut_points: Iterable[int],
    *,
    seed: int = 0,
    history: int | None = None,
    after: int | None = None,
) -> list[str]:
    """Names of features whose rows <= t change when bars after t are dropped or altered.

    For each cut t: (a) recompute on the bars up to t, (b) recompute with every bar after t
    perturbed (``perturb_after``: prices, volumes and every other column); rows <= t must match
    the unaltered computation exactly, NaN positions included. All three computations run on
    bars ``t - history .. t + after`` (default: the whole series), so recursive features start
    at the same bar in each, and a bounded window bounds the cost.
    ``spec_or_callable`` is a FeatureSpec or any ``frame -> feature frame`` function.
    """
    cuts = sorted(set(cut_points))
    if not cuts or cuts[0] < 0 or cuts[-1] >= len(ohlcv) - 1:
        raise DataError(
            f"cut points must be non-empty and within 0..{len(ohlcv) - 2} "
            f"(a cut needs a bar after it), got {cuts}"
        )
    if history is not None and history < 0:
        raise ConfigError(f"history must be >= 0 bars, got {history}")
    if after is not None and after < 1:
        raise ConfigError(f"after must be >= 1 bar (a cut needs a bar after it), got {after}")
    scan = _scan(
        ohlcv, _as_matrix_fn(spec_or_callable), cuts, seed=seed, history=history, after=after
    )
    return [c for c in scan.columns if c in scan.leaks]


def spread_cuts(n_bars: int, *, start: int, n_cuts: int, seed: int) -> list[int]:
    """Up to ``n_cuts`` cuts over bars ``start .. n_bars - 2``: one at a seeded random bar of
    each of as many equal stretches, so together they cover the whole series."""
    last = n_bars - 2
    if last < 0 or n_cuts < 1:
        return []
    first = min(max(start, 0), last)
    span = last - first + 1
    offsets = np.random.default_rng(seed).random(n_cuts)
    return sorted({first + int((i + offsets[i]) * span / n_cuts) for i in range(n_cuts)})


# --- the screen for inputs that hold the future ---------------------------------------------


def _input_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric columns besides timestamp and OHLCV (merged exogenous inputs and the like)."""
    return [
        str(col)
        for col in frame.columns
        if col != "timestamp"
        and col not in OHLCV_COLUMNS
        and types.is_numeric_dtype(frame[col].dtype)
    ]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks per column over its finite values (NaN elsewhere)."""
    finite = np.where(np.isfinite(values), values, np.nan)
    return pd.DataFrame(finite).rank(method="average").to_numpy(dtype=np.float64)


def _pearson(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``x``: correlation with ``y`` over rows where both are finite, and rows."""
    mask = np.isfinite(x) & np.isfinite(y)[:, None]
    count = mask.sum(axis=0)
    xs = np.where(mask, x, 0.0)
    ys = np.where(mask, y[:, None], 0.0)
    n = np.maximum(count, 1)
    sx, sy = xs.sum(axis=0), ys.sum(axis=0)
    cov = np.einsum("ij,ij->j", xs, ys) - sx * sy / n
    var = (np.einsum("ij,ij->j", xs, xs) - sx * sx / n) * (
        np.einsum("ij,ij->j", ys, ys) - sy * sy / n
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, cov / np.sqrt(var), np.nan), count


_SCREEN_COLUMNS = ("source", "column", "horizon", "rho", "rows", "chance", "past", "bound")


def _correlations(
    close: np.ndarray,
    names: list[tuple[str, str]],
    bars: np.ndarray,
    values: np.ndarray,
    horizons: Iterable[int],
    max_abs_rho: float,
    past_margin: float,
) -> pd.DataFrame:
    """``future_correlations`` for columns ``values`` observed at row positions ``bars``."""
    if not names or len(bars) < 2:
        return pd.DataFrame({c: [] for c in (*_SCREEN_COLUMNS, "refused")})
    pick = np.unique(np.linspace(0, len(bars) - 1, min(len(bars), SCREEN_MAX_ROWS)).astype(int))
    bars = bars[pick]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(close)
    past = np.full((len(bars), len(PAST_LOOKBACKS)), np.nan)
    for j, lookback in enumerate(PAST_LOOKBACKS):
        back = bars - lookback
        known = back >= 0
        past[known, j] = log_close[bars[known]] - log_close[back[known]]
    names = [("past return", f"past_{n}_bar_return") for n in PAST_LOOKBACKS] + names
    ranked = _ranks(np.column_stack([past, values[pick]]))
    spacing = max(1.0, float(np.median(np.diff(bars))))
    columns: dict[str, list[np.ndarray]] = {k: [] for k in _SCREEN_COLUMNS[2:]}
    for h in horizons:
        ahead = bars + h
        forward = np.full(len(bars), np.nan)
        inside = ahead < len(close)
        forward[inside] = log_close[ahead[inside]] - log_close[bars[inside]]
        rho, count = _pearson(ranked, _ranks(forward[:, None])[:, 0])
        rho[count < SCREEN_MIN_ROWS] = np.nan
        # one independent return per max(1, h / spacing) rows: rho's spread by chance alone
        chance = np.sqrt(max(1.0, h / spacing) / np.maximum(count, 1))
        yardstick = np.abs(rho[: len(PAST_LOOKBACKS)])
        best_past = float(np.nanmax(yardstick)) if np.isfinite(yardstick).any() else 0.0
        bound = np.maximum(max(max_abs_rho, best_past + past_margin), CHANCE_SPREADS * chance)
        for key, value in zip(
            _SCREEN_COLUMNS[2:],
            (np.full(len(names), h), rho, count, chance, np.full(len(names), best_past), bound),
            strict=True,
        ):
            columns[key].append(value)
    table = pd.DataFrame(
        {
            "source": [s for s, _ in names] * len(columns["horizon"]),
            "column": [c for _, c in names] * len(columns["horizon"]),
            **{key: np.concatenate(values) for key, values in columns.items()},
        }
    )
    table = table[table["rho"].notna()].reset_index(drop=True)
    table["refused"] = (table["source"] != "past return") & (table["rho"].abs() > table["bound"])
    return table


def future_correlations(
    frame: pd.DataFrame,
    features: pd.DataFrame | None = None,
    *,
    horizons: Iterable[int] = SCREEN_HORIZONS,
    max_abs_rho: float = MAX_ABS_RHO,
    past_margin: float = PAST_MARGIN,
) -> pd.DataFrame:
    """How well each input column and feature rank-correlates with the forward return, and
    whether ``refuse_lookahead`` refuses it for that.

    Spearman's rho between the value at bar t and ``log(close[t + h] / close[t])`` over the
    rows where both are finite (at most ``SCREEN_MAX_ROWS`` rows, evenly spaced; ranks over
    each series' own finite rows). Inputs are the frame's numeric columns besides timestamp
    and OHLCV; ``features`` has one row per bar of ``frame``; past returns over
    ``PAST_LOOKBACKS`` bars are the yardstick. One row per column and horizon: ``source``
    (input, feature or past return), ``column``, ``horizon``, ``rho``, ``rows``, ``chance``
    (rho's spread by chance alone), ``past`` (the best past return's |rho|), ``bound`` (the
    largest of ``max_abs_rho``, ``past + past_margin`` and ``CHANCE_SPREADS * chance``) and
    ``refused`` (|rho| above it); pairs with fewer than ``SCREEN_MIN_ROWS`` rows are left out.
    """
    close = frame["close"].to_numpy(dtype=np.float64)
    inputs = _input_columns(frame)
    names = [("input", c) for c in inputs]
    blocks = [frame[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in inputs]
    if features is not None:
        if len(features) != len(frame):
            raise DataError(f"features have {len(features)} rows, the frame has {len(frame)}")
        names += [("feature", str(c)) for c in features.columns]
        blocks += [features[c].to_numpy(dtype=np.float64) for c in features.columns]
    values = np.column_stack(blocks) if blocks else np.empty((len(frame), 0))
    return _correlations(
        close, names, np.arange(len(frame)), values, horizons, max_abs_rho, past_margin
    )


# --- the gate ------------------------------------------------------------------------------


def _infer_timeframe(frame: pd.DataFrame) -> str | None:
    """The bar size (median step of the first bars), or None when it cannot be read."""
    if "timestamp" not in frame.columns or len(frame) < 2:
        return None
    try:
        stamps = pd.DatetimeIndex(frame["timestamp"].iloc[:2001])
        steps = np.diff(stamps.as_unit("ns").asi8)
        steps = steps[steps > 0]
        return format_timeframe(pd.Timedelta(int(np.median(steps)), unit="ns"))
    except (QuantrainError, TypeError, ValueError):
        return None


def _warmup(spec: FeatureSpec, timeframe: str | None) -> int:
    try:
        return spec.warmup_bars(timeframe)
    except QuantrainError:  # e.g. an htf feature not coarser than the data: compute says so
        return spec.warmup_bars(None)


def _what(spec: FeatureSpec | FeatureFn) -> str:
    if isinstance(spec, FeatureSpec):
        return f"feature set {spec.name!r}"
    return f"feature function {getattr(spec, '__name__', type(spec).__name__)!r}"


def _listing(items: list[str]) -> str:
    more = len(items) - _SHOWN
    return ", ".join(items[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _refuse_leaks(what: str, ohlcv: pd.DataFrame, scan: _Scan) -> None:
    if not scan.leaks:
        return
    stamps = ohlcv["timestamp"] if "timestamp" in ohlcv.columns else None
    listed = []
    for col in scan.columns:
        if col in scan.leaks:
            t, how = scan.leaks[col]
            when = "" if stamps is None else f" at {stamps.iloc[t]}"
            listed.append(f"{col} (cut after bar {t}{when}; {how})")
    raise ConfigError(
        f"{what}: {_listing(listed)} changed when only later bars changed, so they use the "
        "future (look-ahead); training is refused.\n"
        "  fix: compute each value at bar t from bars <= t only (e.g. shift forward-looking "
        "series by one bar), then run again"
    )


def _refuse_correlated(
    what: str, screened: pd.DataFrame, max_abs_rho: float, past_margin: float
) -> None:
    flagged = screened[screened["refused"]]
    if not len(flagged):
        return
    order = np.argsort(-flagged["rho"].abs().to_numpy(), kind="stable")
    worst = flagged.iloc[order].drop_duplicates(["source", "column"])
    listed = [
        f"{row.source} {row.column!r} (rho {row.rho:+.2f} with the {row.horizon}-bar forward "
        f"return, where past returns reach {row.past:.2f})"
        for row in worst.itertuples()
    ]
    raise ConfigError(
        f"{what}: {_listing(listed)} predict the future return better than any market signal: "
        f"refused above |rho| {max_abs_rho:g} and {past_margin:g} above the past returns' "
        "(see quantrain.features.causality.future_correlations), so they hold information "
        "from after the bar (look-ahead); training is refused.\n"
        "  fix: inputs must be known at the bar's close: merge exogenous data as of each bar's "
        "close (quantrain.features.merge_exogenous) and compute each value at bar t from data "
        "<= t only, then run again"
    )


def refuse_lookahead(
    ohlcv: pd.DataFrame,
    spec: FeatureSpec | FeatureFn,
    *,
    timeframe: str | None = None,
    n_cuts: int = N_CUTS,
    max_abs_rho: float = MAX_ABS_RHO,
    past_margin: float = PAST_MARGIN,
    seed: int = 0,
) -> None:
    """Before training: refuse features or inputs that look ahead, with a ``ConfigError``.

    ``find_lookahead`` at ``n_cuts`` cuts spread over the whole series after the warm-up, each
    on a window of ``MIN_HISTORY_BARS`` (or twice the warm-up) bars before the cut and
    ``AFTER_CUT_BARS`` after; then every input column (over the whole series) and every feature
    (over those windows' rows) is screened with ``future_correlations`` and refused where its
    rank correlation with a forward return exceeds ``max_abs_rho`` and what past returns reach
    by ``past_margin``. ``timeframe`` (default: read from the timestamps) sizes the warm-up.
    """
    if not 0.0 < max_abs_rho <= 1.0:
        raise ConfigError(f"max_abs_rho must be in (0, 1], got {max_abs_rho!r}")
    if not 0.0 <= past_margin <= 1.0:
        raise ConfigError(f"past_margin must be in [0, 1], got {past_margin!r}")
    what = _what(spec)
    warmup = 0
    bars = ohlcv
    if isinstance(spec, FeatureSpec):
        spec.check_columns(ohlcv.columns)
        warmup = _warmup(spec, timeframe or _infer_timeframe(ohlcv))
        read = {"timestamp", *OHLCV_COLUMNS, *EXTRA_COLUMNS}  # all that Bars.from_frame reads
        bars = ohlcv[[c for c in ohlcv.columns if c in read]]
    cuts = spread_cuts(len(ohlcv), start=warmup, n_cuts=n_cuts, seed=seed)
    if not cuts:
        return
    history = max(2 * warmup, MIN_HISTORY_BARS)
    scan = _scan(bars, _as_matrix_fn(spec), cuts, seed=seed, history=history, after=AFTER_CUT_BARS)
    _refuse_leaks(what, ohlcv, scan)
    screened = [
        future_correlations(ohlcv, max_abs_rho=max_abs_rho, past_margin=past_margin),
        _correlations(
            ohlcv["close"].to_numpy(dtype=np.float64),
            [("feature", c) for c in scan.columns],
            np.concatenate(scan.bars),
            np.concatenate(scan.values),
            SCREEN_HORIZONS,
            max_abs_rho,
            past_margin,
        ),
    ]
    tables = [table for table in screened if len(table)]
    if tables:
        screened_all = pd.concat(tables, ignore_index=True)
        _refuse_correlated(what, screened_all, max_abs_rho, past_margin)
