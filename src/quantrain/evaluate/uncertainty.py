"""How far to trust an out-of-sample number: block-bootstrap intervals, the deflated Sharpe
ratio and the probability of backtest overfitting.

One out-of-sample score hides how much it would move on another stretch of the same market
and how many trials it was picked from; these pure functions put a size on both. Rows are
time-ordered and serially dependent (overlapping labels, volatility clusters), so the bootstrap
resamples blocks of consecutive rows, never single rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.stats import kurtosis as sample_kurtosis
from scipy.stats import norm
from scipy.stats import skew as sample_skew

from quantrain.errors import ConfigError, DataError

#: Most resample-index cells (resamples x rows) drawn at once; larger jobs run in chunks.
MAX_INDEX_CELLS = 20_000_000
#: Most (trial, combination) cells CSCV evaluates at once; more blocks than that is refused.
MAX_CSCV_CELLS = 50_000_000
#: Kurtosis (Pearson, not excess) of the normal distribution.
NORMAL_KURTOSIS = 3.0

#: A vectorised statistic: arrays of shape (r, n, ...) in, ``r`` values out.
Statistic = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval; ``estimate`` is the statistic on the rows as given.

    ``share_at_or_below_zero`` is the share of resampled values ≤ 0: by the duality with the
    percentile interval, the one-sided bootstrap p-value of "the statistic is above zero".
    """

    low: float
    high: float
    estimate: float
    level: float
    block: int
    n_resamples: int
    share_at_or_below_zero: float


@dataclass(frozen=True)
class DeflatedSharpe:
    """The chance the true Sharpe beats the best that ``n_trials`` skill-less trials would show.

    ``sharpe`` and ``benchmark`` are per period (per bar), not annualised; ``skew`` and
    ``kurtosis`` (Pearson, 3 for a normal) are the returns' sample moments that widen the
    Sharpe estimate's error.
    """

    dsr: float
    sharpe: float
    benchmark: float
    n_trials: int
    n_obs: int
    skew: float
    kurtosis: float


@dataclass(frozen=True)
class OverfittingProbability:
    """CSCV result: ``pbo`` is the share of splits whose in-sample winner ranks in the bottom
    half out of sample; ``logits`` holds one rank logit per split, ``dropped`` the NaN rows."""

    pbo: float
    n_trials: int
    n_blocks: int
    n_combinations: int
    logits: tuple[float, ...]
    dropped: int


def default_block(n_rows: int, horizon: int | None = None) -> int:
    """Block length ``max(horizon, round(n_rows ** (1/3)))``, at least 1 and at most ``n_rows``.

    n^(1/3) is the growth rate that balances a block bootstrap's bias and variance (Hall,
    Horowitz & Jing 1995); a block never shorter than the label horizon keeps rows whose labels
    overlap together, so that dependence survives the resampling.
    """
    if n_rows < 1:
        raise DataError(f"a block bootstrap needs at least 1 row, got {n_rows}")
    if horizon is not None and horizon < 1:
        raise ConfigError(f"`horizon` must be an integer ≥ 1, got {horizon}")
    rule = max(1, round(n_rows ** (1.0 / 3.0)))
    return min(n_rows, max(rule, horizon or 1))


def block_bootstrap(
    statistic: Statistic,
    *arrays: np.ndarray,
    block: int | None = None,
    n_resamples: int = 1000,
    seed: int | np.random.Generator,
    level: float = 0.9,
) -> Interval:
    """Circular block bootstrap percentile interval of ``statistic`` over time-ordered rows.

    ``statistic`` is vectorised: it receives every array resampled along axis 0 with a leading
    resample axis, shape ``(r, n, ...)``, and returns ``r`` values (the estimate calls it with
    ``r = 1``). All arrays share the same row indices, so pairs stay paired. Blocks wrap past
    the last row (circular), which gives every row the same chance to be drawn; ``block=None``
    uses :func:`default_block`.
    """
    if not arrays:
        raise ConfigError("block_bootstrap needs at least one array to resample, got none")
    data = tuple(np.asarray(array) for array in arrays)
    if any(array.ndim == 0 for array in data):
        raise DataError("block_bootstrap resamples along axis 0: every array needs one")
    n_rows = _same_rows(*data)
    block = _checked(n_rows, block, n_resamples, level)
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples, dtype=np.float64)
    for start, starts in _block_starts(rng, n_rows, block, n_resamples):
        index = _circular_indices(starts, n_rows, block)
        values[start : start + len(starts)] = _evaluate(
            statistic, [a[index] for a in data], len(starts)
        )
    estimate = _evaluate(statistic, [a[np.newaxis] for a in data], 1)[0]
    return _interval(values, float(estimate), level, block)


def block_bootstrap_sums(
    finish: Callable[[np.ndarray, int], np.ndarray],
    terms: np.ndarray,
    estimate: float,
    *,
    block: int | None = None,
    n_resamples: int = 1000,
    seed: int | np.random.Generator,
    level: float = 0.9,
) -> Interval:
    """:func:`block_bootstrap` for a statistic of column sums, without resampling the rows.

    ``terms`` is ``(n, k)``: per-row terms whose sums over a resample make the statistic
    (``finish(sums (r, k), n) -> r values``). Each block's sum is two lookups in a running sum,
    so a resample costs its blocks, not its rows: at 500k rows and 1,000 resamples the memory
    is the running sum, not a (resamples x rows) gather. The resamples are the very ones
    :func:`block_bootstrap` draws for the same seed (the same starts, drawn in the same chunks),
    so the two agree to rounding (tests/unit/test_uncertainty.py).
    """
    columns = np.asarray(terms, dtype=np.float64)
    if columns.ndim != 2:
        raise DataError(f"block sums need (rows, terms) values, got shape {columns.shape}")
    n_rows = len(columns)
    block = _checked(n_rows, block, n_resamples, level)
    prefix = np.zeros((n_rows + 1, columns.shape[1]))
    np.cumsum(columns, axis=0, out=prefix[1:])
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples, dtype=np.float64)
    for start, starts in _block_starts(rng, n_rows, block, n_resamples):
        sums = _resample_sums(prefix, starts, n_rows, block)
        values[start : start + len(starts)] = finish(sums, n_rows)
    return _interval(values, estimate, level, block)


def _same_rows(*arrays: np.ndarray) -> int:
    """The rows every array to resample shares, or a clear error when they differ."""
    n_rows = len(arrays[0])
    if any(len(array) != n_rows for array in arrays):
        lengths = ", ".join(str(len(array)) for array in arrays)
        raise DataError(f"arrays to resample must have the same number of rows, got {lengths}")
    return n_rows


def _checked(n_rows: int, block: int | None, n_resamples: int, level: float) -> int:
    """The block length a bootstrap over ``n_rows`` uses, or a clear error for bad settings."""
    if n_rows < 2:
        raise DataError(f"a bootstrap needs at least 2 rows, got {n_rows}")
    block = default_block(n_rows) if block is None else block
    if not 1 <= block <= n_rows:
        raise ConfigError(f"`block` must be an integer in [1, {n_rows}] (the rows), got {block}")
    if n_resamples < 2:
        raise ConfigError(f"`n_resamples` must be an integer ≥ 2, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"`level` must be in (0, 1), got {level}")
    return block


def _interval(values: np.ndarray, estimate: float, level: float, block: int) -> Interval:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Interval(
        low=float(low),
        high=float(high),
        estimate=estimate,
        level=level,
        block=block,
        n_resamples=len(values),
        share_at_or_below_zero=float(np.mean(values <= 0.0)),
    )


def balanced_accuracy_interval(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    *,
    horizon: int | None = None,
    block: int | None = None,
    n_resamples: int = 1000,
    seed: int | np.random.Generator,
    level: float = 0.9,
) -> Interval:
    """Bootstrap interval of balanced accuracy over time-ordered rows.

    Labels of neighbouring rows overlap over the label ``horizon``, so without an explicit
    ``block`` rows are resampled in blocks of ``default_block(rows, horizon)``. Classes absent
    from a resample's true labels are left out of its mean recall, as scikit-learn's
    ``balanced_accuracy_score`` does.
    """
    if n_classes < 2:
        raise ConfigError(f"`n_classes` must be an integer ≥ 2, got {n_classes}")
    truth = _class_labels("y_true", y_true, n_classes)
    predicted = _class_labels("y_pred", y_pred, n_classes)
    if block is None and len(truth) > 0:
        block = default_block(len(truth), horizon)

    _same_rows(truth, predicted)
    cells = n_classes * n_classes
    counts = np.zeros((len(truth), cells))  # one-hot (true, predicted) cell per row
    counts[np.arange(len(truth)), truth * n_classes + predicted] = 1.0
    estimate = _balanced_accuracy_rows(truth[np.newaxis], predicted[np.newaxis], n_classes)[0]

    def finish(sums: np.ndarray, n_rows: int) -> np.ndarray:
        confusion = np.rint(sums).astype(np.int64).reshape(-1, n_classes, n_classes)
        return _balanced_from_confusion(confusion)

    return block_bootstrap_sums(
        finish,
        counts,
        float(estimate),
        block=block,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )


def return_interval(
    bar_returns: np.ndarray,
    *,
    block: int | None = None,
    n_resamples: int = 1000,
    seed: int | np.random.Generator,
    level: float = 0.9,
) -> Interval:
    """Bootstrap interval of the total compounded return ``prod(1 + r) - 1`` of per-bar equity
    returns: how much of the headline gain a different ordering of the same market could undo."""
    return _compounded_interval(
        _total_return_rows,
        lambda sums, n_rows: np.expm1(sums[:, 0]),
        _bar_returns(bar_returns),
        block=block,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )


def excess_return_interval(
    bar_returns: np.ndarray,
    other_returns: np.ndarray,
    *,
    block: int | None = None,
    n_resamples: int = 1000,
    seed: int | np.random.Generator,
    level: float = 0.9,
) -> Interval:
    """Bootstrap interval of ``prod(1 + r) - prod(1 + other)`` over paired resamples of the
    same bars: how far ahead of another strategy (buy-and-hold) the total return stays."""
    returns, other = _bar_returns(bar_returns), _bar_returns(other_returns)
    _same_rows(returns, other)
    return _compounded_interval(
        _excess_total_rows,
        lambda sums, n_rows: np.expm1(sums[:, 0]) - np.expm1(sums[:, 1]),
        returns,
        other,
        block=block,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )


def _compounded_interval(
    rows_statistic: Statistic,
    finish: Callable[[np.ndarray, int], np.ndarray],
    *series: np.ndarray,
    block: int | None,
    n_resamples: int,
    seed: int | np.random.Generator,
    level: float,
) -> Interval:
    """An interval of compounded returns: ``finish`` turns each series' summed ``log1p`` into
    the statistic; a total loss (a return of -1, which ``log1p`` cannot carry) resamples the
    rows through ``rows_statistic`` instead."""
    if not all(np.all(s > -1.0) for s in series):
        return block_bootstrap(
            rows_statistic, *series, block=block, n_resamples=n_resamples, seed=seed, level=level
        )
    return block_bootstrap_sums(
        finish,
        np.column_stack([np.log1p(s) for s in series]),
        float(rows_statistic(*(s[np.newaxis] for s in series))[0]),
        block=block,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )


def sharpe_interval(
    bar_returns: np.ndarray,
    bars_per_year: float,
    *,
    block: int | None = None,
    n_resamples: int = 1000,
    seed: int | np.random.Generator,
    level: float = 0.9,
) -> Interval:
    """Bootstrap interval of the annualised Sharpe ratio (mean / population std, times
    ``sqrt(bars_per_year)``, 0 for a flat series) of per-bar equity returns."""
    if not bars_per_year > 0:
        raise ConfigError(f"`bars_per_year` must be > 0, got {bars_per_year}")
    returns = _bar_returns(bar_returns)
    scale = math.sqrt(bars_per_year)

    def finish(sums: np.ndarray, n_rows: int) -> np.ndarray:
        mean = sums[:, 0] / n_rows
        square = sums[:, 1] / n_rows
        variance = np.maximum(square - mean * mean, 0.0)
        # Flat: no spread left beyond rounding (all-zero resamples, constant returns), where the
        # rows' own rule (std <= 1e-14 |mean|) would also say 0.
        flat = variance <= 1e-12 * square
        std = np.sqrt(variance)
        ratio = np.divide(mean, std, out=np.zeros_like(mean), where=~flat)
        return ratio * scale

    return block_bootstrap_sums(
        finish,
        np.column_stack((returns, returns * returns)),
        float(_sharpe_rows(returns[np.newaxis])[0] * scale),
        block=block,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Probability that the true per-period Sharpe exceeds ``sr_benchmark`` given the observed
    ``sr`` over ``n_obs`` periods (Bailey & López de Prado 2012); ``kurtosis`` is Pearson's
    (3 for a normal). Fat tails and negative skew widen the estimate's error and lower it."""
    if n_obs < 2:
        raise DataError(f"a probabilistic Sharpe ratio needs at least 2 observations, got {n_obs}")
    spread = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if not spread > 0:
        raise DataError(
            f"the Sharpe ratio's error variance is not positive (skew {skew}, kurtosis "
            f"{kurtosis}, Sharpe {sr}): the moments cannot come from one return series"
        )
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(spread)
    return float(norm.cdf(z))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """Expected largest per-period Sharpe among ``n_trials`` independent skill-less trials whose
    Sharpe estimates have ``variance`` (Bailey & López de Prado 2014); 0 for one trial."""
    if n_trials < 1:
        raise ConfigError(f"`n_trials` must be an integer ≥ 1, got {n_trials}")
    if not (math.isfinite(variance) and variance >= 0):
        raise ConfigError(f"the Sharpe estimates' variance must be finite and ≥ 0, got {variance}")
    if n_trials == 1:
        return 0.0
    gamma = float(np.euler_gamma)
    quantiles = (1.0 - gamma) * norm.ppf(1.0 - 1.0 / n_trials) + gamma * norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(variance) * quantiles)


def deflated_sharpe_ratio(
    bar_returns: np.ndarray, n_trials: int, sr_variance: float | None = None
) -> DeflatedSharpe:
    """Probabilistic Sharpe ratio against the best Sharpe ``n_trials`` null trials would show
    by luck (Bailey & López de Prado 2014): a tuned strategy must beat its own search.

    ``sr_variance`` is the variance of the trials' per-period Sharpe estimates; without it the
    estimator's null variance ``1 / (n_obs - 1)`` is used. A flat series has Sharpe 0 and the
    normal's moments (it carries no evidence either way).
    """
    returns = _bar_returns(bar_returns)
    n_obs = len(returns)
    variance = 1.0 / (n_obs - 1) if sr_variance is None else sr_variance
    benchmark = expected_max_sharpe(n_trials, variance)
    sharpe = float(_sharpe_rows(returns[np.newaxis])[0])
    if sharpe == 0.0 and float(np.std(returns)) <= 1e-14 * abs(float(np.mean(returns))):
        skew, kurtosis = 0.0, NORMAL_KURTOSIS
    else:
        skew = float(sample_skew(returns, bias=True))
        kurtosis = float(sample_kurtosis(returns, fisher=False, bias=True))
    return DeflatedSharpe(
        dsr=probabilistic_sharpe_ratio(sharpe, benchmark, n_obs, skew, kurtosis),
        sharpe=sharpe,
        benchmark=benchmark,
        n_trials=n_trials,
        n_obs=n_obs,
        skew=skew,
        kurtosis=kurtosis,
    )


def probability_of_overfitting(scores: np.ndarray) -> OverfittingProbability:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation
    (Bailey, Borwein, López de Prado & Zhu 2017): how often picking the best trial in-sample
    picks one that is below the median out of sample.

    ``scores`` is (trials x blocks), higher is better: e.g. each tuning trial's score on each
    walk-forward fold. Every choice of ``blocks // 2`` blocks is in-sample, the rest out of
    sample; with an odd block count the halves are unequal (one fewer in-sample), which
    generalises CSCV to, say, 3 folds. Trials with a NaN score (stopped early) are dropped and
    counted; ties share their average rank.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2:
        raise DataError(f"`scores` must be a (trials x blocks) matrix, got shape {matrix.shape}")
    complete = ~np.isnan(matrix).any(axis=1)
    dropped = int(np.count_nonzero(~complete))
    matrix = matrix[complete]
    n_trials, n_blocks = matrix.shape
    if n_trials < 2:
        raise DataError(
            f"overfitting needs at least 2 trials scored on every block, got {n_trials} "
            f"({dropped} dropped for NaN scores)"
        )
    if n_blocks < 2:
        raise DataError(f"overfitting needs at least 2 blocks (folds), got {n_blocks}")
    if not np.isfinite(matrix).all():
        raise DataError("`scores` must be finite or NaN (a stopped trial), found ±inf")
    n_in = n_blocks // 2
    n_combinations = math.comb(n_blocks, n_in)
    if n_combinations * n_trials > MAX_CSCV_CELLS:
        raise ConfigError(
            f"{n_blocks} blocks give {n_combinations} splits of {n_trials} trials, more than "
            f"{MAX_CSCV_CELLS} cells: merge blocks (16 give 12870 splits)"
        )

    in_sample = np.zeros((n_combinations, n_blocks), dtype=np.float64)
    for row, chosen in enumerate(itertools.combinations(range(n_blocks), n_in)):
        in_sample[row, list(chosen)] = 1.0
    is_mean = matrix @ in_sample.T / n_in
    oos_mean = matrix @ (1.0 - in_sample).T / (n_blocks - n_in)
    winner = oos_mean[is_mean.argmax(axis=0), np.arange(n_combinations)]
    below = np.count_nonzero(oos_mean < winner, axis=0)
    tied = np.count_nonzero(oos_mean == winner, axis=0)
    relative_rank = (below + (tied + 1) / 2.0) / (n_trials + 1)
    logits = np.log(relative_rank / (1.0 - relative_rank))
    return OverfittingProbability(
        pbo=float(np.mean(logits <= 0.0)),
        n_trials=n_trials,
        n_blocks=n_blocks,
        n_combinations=n_combinations,
        logits=tuple(float(value) for value in logits),
        dropped=dropped,
    )


def _block_starts(
    rng: np.random.Generator, n_rows: int, block: int, n_resamples: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Random block starts, ``(first resample, starts (count, blocks))`` per chunk of at most
    ``MAX_INDEX_CELLS`` rows: the one place resamples are drawn, so both bootstraps share them."""
    n_blocks = -(-n_rows // block)
    chunk = max(1, MAX_INDEX_CELLS // n_rows)
    for start in range(0, n_resamples, chunk):
        count = min(chunk, n_resamples - start)
        yield start, rng.integers(0, n_rows, size=(count, n_blocks, 1))[:, :, 0]


def _circular_indices(starts: np.ndarray, n_rows: int, block: int) -> np.ndarray:
    """Row indices (resamples x n_rows): each start's consecutive rows, wrapping past the end."""
    index = (starts[:, :, np.newaxis] + np.arange(block)) % n_rows
    return index.reshape(len(starts), -1)[:, :n_rows]


@njit(cache=True, nogil=True)
def _resample_sums(prefix: np.ndarray, starts: np.ndarray, n_rows: int, block: int) -> np.ndarray:
    """Column sums of each resample (blocks from ``starts``, the last one cut so a resample has
    ``n_rows`` rows, wrapping past the end) from the running sums ``prefix`` (n + 1, k)."""
    count, n_blocks = starts.shape
    k = prefix.shape[1]
    out = np.zeros((count, k))
    last = n_rows - (n_blocks - 1) * block
    for i in range(count):
        for j in range(n_blocks):
            first = starts[i, j]
            end = first + (block if j < n_blocks - 1 else last)
            for c in range(k):
                if end <= n_rows:
                    out[i, c] += prefix[end, c] - prefix[first, c]
                else:
                    out[i, c] += prefix[n_rows, c] - prefix[first, c] + prefix[end - n_rows, c]
    return out


def _evaluate(statistic: Statistic, resampled: list[np.ndarray], count: int) -> np.ndarray:
    """Call ``statistic`` and check it returned one value per resample."""
    values = np.asarray(statistic(*resampled), dtype=np.float64)
    if values.shape != (count,):
        raise ConfigError(
            f"a bootstrap statistic must return one value per resample, shape ({count},), "
            f"got shape {values.shape}"
        )
    return values


def _balanced_accuracy_rows(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced accuracy of each row of (r, n) label matrices, from one batched confusion count."""
    n_rows = truth.shape[0]
    cells = (np.arange(n_rows)[:, np.newaxis] * n_classes + truth) * n_classes + predicted
    confusion = np.bincount(cells.ravel(), minlength=n_rows * n_classes * n_classes)
    return _balanced_from_confusion(confusion.reshape(n_rows, n_classes, n_classes))


def _balanced_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Mean recall over the classes present, per (r, true, predicted) confusion count."""
    support = confusion.sum(axis=2)
    hits = np.diagonal(confusion, axis1=1, axis2=2)
    present = support > 0
    recall = np.divide(hits, support, out=np.zeros(hits.shape), where=present)
    result: np.ndarray = recall.sum(axis=1) / present.sum(axis=1)
    return result


def _total_return_rows(returns: np.ndarray) -> np.ndarray:
    """Compounded total return of each row of per-bar returns."""
    result: np.ndarray = np.prod(1.0 + returns, axis=1) - 1.0
    return result


def _excess_total_rows(returns: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Compounded total return of each row minus that of the paired row of ``other``."""
    result: np.ndarray = np.prod(1.0 + returns, axis=-1) - np.prod(1.0 + other, axis=-1)
    return result


def _sharpe_rows(returns: np.ndarray) -> np.ndarray:
    """Per-period Sharpe of each row (population std); 0 where the row is flat, where rounding
    would otherwise turn a constant series into an enormous ratio."""
    mean = returns.mean(axis=1)
    std = returns.std(axis=1)
    flat = std <= 1e-14 * np.abs(mean)
    return np.divide(mean, std, out=np.zeros_like(mean), where=~flat)


def _class_labels(name: str, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels as a 1-D int64 array of codes in [0, n_classes), or a ``DataError``."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise DataError(f"`{name}` must be one label per row (1-D), got shape {array.shape}")
    integral = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating)
        and bool(np.all(np.isfinite(array) & (array == np.round(array))))
    )
    if not integral:
        raise DataError(f"`{name}` must hold integer class codes, got dtype {array.dtype}")
    codes = array.astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= n_classes):
        raise DataError(
            f"`{name}` must hold class codes in [0, {n_classes - 1}], "
            f"got values from {codes.min()} to {codes.max()}"
        )
    return codes


def _bar_returns(bar_returns: np.ndarray) -> np.ndarray:
    """Per-bar returns as 1-D float64, finite, ≥ -1 (a total loss), at least 2 bars."""
    returns = np.asarray(bar_returns, dtype=np.float64)
    if returns.ndim != 1:
        raise DataError(f"bar returns must be 1-D (one per bar), got shape {returns.shape}")
    if len(returns) < 2:
        raise DataError(f"bar returns need at least 2 bars, got {len(returns)}")
    if not np.isfinite(returns).all():
        bad = np.count_nonzero(~np.isfinite(returns))
        raise DataError(f"bar returns must be finite, found {bad} that are not")
    if returns.min() < -1.0:
        raise DataError(f"a bar return below -1 loses more than the account, got {returns.min()}")
    return returns
