"""Look-ahead detection: a feature is causal when bars after t cannot change its value at t.

Used by the property tests and, before training, to refuse leaky features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from quantrain.errors import ConfigError, DataError
from quantrain.features.compute import compute_features
from quantrain.features.spec import FeatureSpec

FeatureFn = Callable[[pd.DataFrame], pd.DataFrame]


def perturb_after(ohlcv: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    """A copy whose bars after row t have new prices and volumes (OHLC kept consistent).

    Each later bar's OHLC is scaled by its own random factor (so high >= open, close >= low
    still hold) and volumes are shuffled and rescaled; timestamps are kept (still increasing).
    """
    out = ohlcv.copy()
    tail = len(out) - t - 1
    if tail <= 0:
        return out
    factors = np.exp(rng.normal(0.0, 0.05, size=tail))
    for col in ("open", "high", "low", "close"):
        values = out[col].to_numpy(dtype=np.float64, copy=True)
        values[t + 1 :] *= factors
        out[col] = values
    volume = out["volume"].to_numpy(dtype=np.float64, copy=True)
    volume[t + 1 :] = rng.permutation(volume[t + 1 :]) * rng.uniform(0.2, 5.0, size=tail)
    out["volume"] = volume
    return out


def _as_fn(spec_or_callable: FeatureSpec | FeatureFn) -> FeatureFn:
    if isinstance(spec_or_callable, FeatureSpec):
        spec = spec_or_callable
        return lambda frame: compute_features(frame, spec)
    return spec_or_callable


def find_lookahead(
    ohlcv: pd.DataFrame,
    spec_or_callable: FeatureSpec | FeatureFn,
    cut_points: Iterable[int],
    *,
    seed: int = 0,
) -> list[str]:
    """Names of features whose rows <= t change when bars after t are dropped or altered.

    For each cut t: (a) recompute on ``ohlcv[: t + 1]``, (b) recompute with every bar after t
    perturbed; rows 0..t must match the full computation exactly, NaN positions included.
    ``spec_or_callable`` is a FeatureSpec or any ``frame -> feature frame`` function.
    """
    fn = _as_fn(spec_or_callable)
    cuts = sorted(set(cut_points))
    if not cuts or cuts[0] < 0 or cuts[-1] >= len(ohlcv) - 1:
        raise DataError(
            f"cut points must be non-empty and within 0..{len(ohlcv) - 2} "
            f"(a cut needs a bar after it), got {cuts}"
        )
    rng = np.random.default_rng(seed)
    full = fn(ohlcv)
    leaky: set[str] = set()
    for t in cuts:
        variants = (fn(ohlcv.iloc[: t + 1]), fn(perturb_after(ohlcv, t, rng)))
        for other in variants:
            for col in full.columns:
                ref = full[col].to_numpy(dtype=np.float64)[: t + 1]
                got = other[col].to_numpy(dtype=np.float64)[: t + 1]
                if not np.array_equal(ref, got, equal_nan=True):
                    leaky.add(str(col))
    return [str(c) for c in full.columns if c in leaky]


def refuse_lookahead(ohlcv: pd.DataFrame, spec: FeatureSpec, *, sample_bars: int = 1500) -> None:
    """Before training: refuse a feature set in which any column looks ahead.

    Runs ``find_lookahead`` on the first ``sample_bars`` bars, cut after the warm-up at two
    places, so the check costs milliseconds and a leaky custom feature never reaches a model.
    """
    sample = ohlcv.iloc[:sample_bars].reset_index(drop=True)
    n = len(sample)
    cuts = sorted({t for t in (int(n * 0.6), int(n * 0.85)) if 0 <= t < n - 1})
    if not cuts:
        return
    leaky = find_lookahead(sample, spec, cuts)
    if leaky:
        raise ConfigError(
            f"feature set {spec.name!r}: {', '.join(leaky)} changed when only later bars "
            "changed, so they use the future (look-ahead); training is refused.\n"
            "  fix: compute each value at bar t from bars <= t only (e.g. shift forward-looking "
            "series by one bar), then run again"
        )
