"""Passes over big matrices a column or a block at a time (issue 21, memory) give the numbers
the whole-matrix formulas they replaced gave: the training matrix, the drift reference, the
convergence check and the random strategies' percentile curves."""

from __future__ import annotations

import numpy as np
import pytest

from quantrain.data import read_ohlcv
from quantrain.data.samples import sample_data_dir
from quantrain.evaluate.evaluation import PERCENTILE_BLOCK, percentile_curves
from quantrain.features import compute_feature_matrix, history_to_converge, resolve_feature_set
from quantrain.features.compute import _column_differs, feature_columns
from quantrain.package.drift import BAND, TRAINING_FLAG_SHARE, _number, fit_reference
from quantrain.pipeline import training_matrix


def whole_matrix_reference(X: np.ndarray) -> dict[str, object]:
    """The former ``fit_reference`` body: a float64 copy of the matrix, then axis-0 formulas."""
    matrix = np.asarray(X, dtype=np.float64)
    finite = np.isfinite(matrix)
    usable = finite.any(axis=0)
    low = np.full(matrix.shape[1], -np.inf)
    high = np.full(matrix.shape[1], np.inf)
    bands = np.nanquantile(matrix[:, usable], BAND, axis=0)
    low[usable], high[usable] = bands[0], bands[1]
    with np.errstate(invalid="ignore"):
        scores = ((matrix < low) | (matrix > high)).mean(axis=1)
    return {
        "low": low,
        "high": high,
        "missing": 1 - finite.mean(axis=0),
        "threshold": float(np.quantile(scores, 1 - TRAINING_FLAG_SHARE)),
    }


def whole_matrix_differs(full: np.ndarray, late: np.ndarray, tolerance: float) -> np.ndarray:
    """The former ``history_to_converge`` comparison, on the whole matrix at once."""
    with np.errstate(invalid="ignore"):
        scale = np.nanstd(full, axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    diff = np.abs(late - full) / scale
    diff = np.where(np.isnan(full) & np.isnan(late), 0.0, diff)
    return (np.nan_to_num(diff, nan=np.inf) > tolerance).any(axis=1)


def awkward_matrix(rows: int, seed: int, dtype: type) -> np.ndarray:
    """Random columns with NaN runs, infinities, a constant column and an all-NaN column."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 7)) * rng.uniform(0.1, 100.0, 7)
    X[:50, 1] = np.nan
    X[rng.random(rows) < 0.05, 2] = np.nan
    X[rng.random(rows) < 0.01, 3] = np.inf
    X[rng.random(rows) < 0.01, 3] = -np.inf
    X[:, 4] = 3.25
    X[:, 5] = np.nan
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_reference_matches_the_whole_matrix_formulas(dtype: type) -> None:
    X = awkward_matrix(5_000, seed=1, dtype=dtype)
    with pytest.warns(RuntimeWarning):  # the all-NaN column, in the reference formula
        want = whole_matrix_reference(X)
    got = fit_reference(X, [f"c{j}" for j in range(X.shape[1])])
    for key in ("low", "high"):  # as stored (NaN and -inf both go to the file as "-inf")
        assert got[key] == [_number(v) for v in want[key]]
    np.testing.assert_allclose(got["missing_share"], np.round(want["missing"], 6))
    assert got["threshold"] == want["threshold"]
    assert got["rows"] == len(X)


def test_column_differs_matches_the_whole_matrix_comparison() -> None:
    full = awkward_matrix(3_000, seed=2, dtype=np.float64)
    late = full.copy()
    late[:400] += 1e-3  # an early stretch still remembers its seed
    late[1_000, 0] = np.nan  # NaN on one side only
    late[1_500, 3] = np.inf if full[1_500, 3] != np.inf else 0.0
    late[2_000, 6] *= 1 + 1e-9  # within tolerance
    want = whole_matrix_differs(full, late, 1e-6)
    got = np.zeros(len(full), dtype=bool)
    for j in range(full.shape[1]):
        got |= _column_differs(full[:, j], late[:, j], 1e-6)
    np.testing.assert_array_equal(got, want)
    assert got[:400].all() and got[1_000] and got[1_500] and not got[2_000]


def test_feature_columns_are_the_matrix_columns_and_convergence_is_unchanged() -> None:
    frame = read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame
    spec = resolve_feature_set("standard", "5m")
    matrix = compute_feature_matrix(frame, spec)
    columns = list(feature_columns(frame, spec))
    assert len(columns) == matrix.shape[1]
    for j, column in enumerate(columns):
        np.testing.assert_array_equal(column, matrix[:, j])
    # the former whole-matrix history_to_converge, on the same frame
    start = max(spec.warmup_bars("5m"), len(frame) // 3)
    late = compute_feature_matrix(frame.iloc[start:].reset_index(drop=True), spec)
    differs = np.flatnonzero(whole_matrix_differs(matrix[start:], late, 1e-6))
    want = max(int(differs[-1]) + 1, spec.warmup_bars("5m")) if len(differs) else None
    assert 0 < len(differs) < len(late) - 1  # the sample has seeds to forget, and forgets them
    assert history_to_converge(frame, spec, timeframe="5m") == want


def test_percentile_curves_match_one_whole_matrix_percentile() -> None:
    rng = np.random.default_rng(3)
    stacked = np.cumprod(1 + 0.01 * rng.standard_normal((37, 2 * PERCENTILE_BLOCK + 123)), axis=1)
    got = percentile_curves(list(stacked), (5, 50, 95))
    assert list(got) == ["random_p05", "random_p50", "random_p95"]
    for q in (5, 50, 95):
        np.testing.assert_array_equal(got[f"random_p{q:02d}"], np.percentile(stacked, q, axis=0))


def test_training_matrix_is_the_float32_copy_of_the_usable_rows() -> None:
    matrix = np.asfortranarray(
        awkward_matrix(4_000, seed=4, dtype=np.float64)[:, [0, 1, 2, 3, 4, 6]]
    )
    valid = np.random.default_rng(5).random(len(matrix)) < 0.9
    X, bars = training_matrix(matrix, valid)
    want_bars = np.flatnonzero(valid & np.isfinite(matrix).all(axis=1))
    np.testing.assert_array_equal(bars, want_bars)
    assert X.dtype == np.float32 and X.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(X, matrix[want_bars].astype(np.float32))
    assert 0 < len(bars) < len(matrix) - 50  # NaN runs, infinities and invalid labels dropped
