"""Uncertainty statistics: bootstrap coverage, deflated Sharpe by hand, CSCV on built matrices."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import balanced_accuracy_score

from quantrain.errors import ConfigError, DataError
from quantrain.evaluate.uncertainty import (
    _balanced_accuracy_rows,
    _excess_total_rows,
    _sharpe_rows,
    _total_return_rows,
    balanced_accuracy_interval,
    block_bootstrap,
    default_block,
    deflated_sharpe_ratio,
    excess_return_interval,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_overfitting,
    return_interval,
    sharpe_interval,
)


def row_mean(rows: np.ndarray) -> np.ndarray:
    return rows.mean(axis=1)


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal(n)
    series = np.empty(n)
    series[0] = shocks[0]
    for t in range(1, n):
        series[t] = phi * series[t - 1] + shocks[t]
    return series


# --- block bootstrap --------------------------------------------------------------------------


def test_mean_interval_covers_zero_at_nominal_rate() -> None:
    # Samples come from one generator, resamples from others: seeding both with the same
    # integer couples their streams (and the first 40 default_rng(s) samples are unlucky:
    # even the exact normal interval covers only 32 of them).
    data = np.random.default_rng(1)
    covered = 0
    for seed in range(40):
        sample = data.standard_normal(300)
        interval = block_bootstrap(row_mean, sample, n_resamples=500, seed=100 + seed, level=0.9)
        covered += interval.low <= 0.0 <= interval.high
    assert covered >= 34  # ≥ 85 % of 40


def test_interval_shrinks_with_more_rows() -> None:
    rng = np.random.default_rng(7)
    small = block_bootstrap(row_mean, rng.standard_normal(100), seed=1)
    large = block_bootstrap(row_mean, rng.standard_normal(2500), seed=1)
    assert large.high - large.low < (small.high - small.low) / 2


def test_blocks_widen_the_interval_of_a_persistent_series() -> None:
    series = ar1(2000, 0.9, seed=3)
    single = block_bootstrap(row_mean, series, block=1, seed=5)
    blocked = block_bootstrap(row_mean, series, block=50, seed=5)
    assert blocked.high - blocked.low > 2 * (single.high - single.low)


def test_iid_mean_interval_has_the_normal_width() -> None:
    sample = np.random.default_rng(12).standard_normal(2000)
    interval = block_bootstrap(row_mean, sample, block=1, n_resamples=4000, seed=0, level=0.9)
    expected = 2 * norm.ppf(0.95) * sample.std() / math.sqrt(len(sample))
    assert interval.high - interval.low == pytest.approx(expected, rel=0.08)


def test_interval_reports_its_settings_and_estimate() -> None:
    sample = np.arange(10.0)
    interval = block_bootstrap(row_mean, sample, block=3, n_resamples=200, seed=0, level=0.8)
    assert interval.estimate == pytest.approx(4.5)
    assert (interval.block, interval.n_resamples, interval.level) == (3, 200, 0.8)
    assert interval.low <= interval.estimate <= interval.high


def test_same_seed_same_interval_and_chunking_does_not_change_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample = np.random.default_rng(2).standard_normal(500)
    first = block_bootstrap(row_mean, sample, seed=11)
    assert block_bootstrap(row_mean, sample, seed=11) == first
    monkeypatch.setattr("quantrain.evaluate.uncertainty.MAX_INDEX_CELLS", 1000)
    chunked = block_bootstrap(row_mean, sample, seed=11)
    assert chunked.estimate == first.estimate
    assert chunked.high - chunked.low == pytest.approx(first.high - first.low, rel=0.25)


def test_default_block_rule() -> None:
    assert default_block(1000) == 10
    assert default_block(1000, horizon=24) == 24
    assert default_block(5, horizon=24) == 5
    assert default_block(1) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"block": 0}, ConfigError),
        ({"block": 11}, ConfigError),
        ({"level": 1.0}, ConfigError),
        ({"n_resamples": 1}, ConfigError),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], error: type[Exception]) -> None:
    with pytest.raises(error):
        block_bootstrap(row_mean, np.arange(10.0), seed=0, **kwargs)  # type: ignore[arg-type]


def test_bad_data_and_statistics_are_refused() -> None:
    with pytest.raises(DataError, match="same number of rows"):
        block_bootstrap(row_mean, np.arange(10.0), np.arange(9.0), seed=0)
    with pytest.raises(DataError, match="at least 2 rows"):
        block_bootstrap(row_mean, np.arange(1.0), seed=0)
    with pytest.raises(ConfigError, match="one value per resample"):
        block_bootstrap(lambda rows: rows, np.arange(10.0), seed=0)


# --- convenience intervals --------------------------------------------------------------------


def test_random_predictions_cover_one_third_balanced_accuracy() -> None:
    covered = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        truth, predicted = rng.integers(0, 3, 600), rng.integers(0, 3, 600)
        interval = balanced_accuracy_interval(
            truth, predicted, 3, horizon=4, n_resamples=500, seed=seed, level=0.95
        )
        covered += interval.low <= 1 / 3 <= interval.high
    assert covered >= 27  # ≥ 90 % of 30


def test_balanced_accuracy_estimate_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 200)
    predicted = np.where(rng.random(200) < 0.6, truth, rng.integers(0, 3, 200))
    interval = balanced_accuracy_interval(truth, predicted, 3, block=5, seed=0)
    assert interval.estimate == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert interval.block == 5


def test_classes_missing_from_the_truth_are_left_out() -> None:
    # Recall 1/2 on class 0 and 1 on class 1; class 2 is never true, so it is not averaged in.
    truth, predicted = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    interval = balanced_accuracy_interval(truth, predicted, 3, block=1, seed=0)
    assert interval.estimate == pytest.approx(0.75)


def test_perfect_predictions_give_an_interval_at_one() -> None:
    truth = np.random.default_rng(0).integers(0, 3, 300)
    interval = balanced_accuracy_interval(truth, truth, 3, horizon=8, seed=0)
    assert (interval.low, interval.estimate, interval.high) == (1.0, 1.0, 1.0)
    assert interval.block == 8


def test_labels_outside_the_classes_are_refused() -> None:
    with pytest.raises(DataError, match=r"\[0, 2\]"):
        balanced_accuracy_interval(np.array([0, 1, 3]), np.array([0, 1, 2]), 3, seed=0)
    with pytest.raises(DataError, match="integer class codes"):
        balanced_accuracy_interval(np.array([0.5, 1, 2]), np.array([0, 1, 2]), 3, seed=0)


def test_sharpe_interval_of_strong_drift_lies_above_zero() -> None:
    returns = np.random.default_rng(9).normal(0.002, 0.01, 1000)
    interval = sharpe_interval(returns, 365, seed=0)
    assert interval.low > 0
    expected = returns.mean() / returns.std() * math.sqrt(365)
    assert interval.estimate == pytest.approx(expected)


def test_sharpe_of_a_flat_series_is_zero() -> None:
    flat = np.full(100, 0.001)  # np.std gives 2e-19 here, not 0: rounding, not risk
    interval = sharpe_interval(flat, 365, seed=0)
    assert (interval.low, interval.estimate, interval.high) == (0.0, 0.0, 0.0)
    result = deflated_sharpe_ratio(flat, 1)
    assert (result.sharpe, result.dsr) == (0.0, 0.5)


def test_return_interval_compounds_and_brackets_the_estimate() -> None:
    returns = np.random.default_rng(1).normal(0.001, 0.01, 500)
    interval = return_interval(returns, seed=0)
    assert interval.estimate == pytest.approx(np.prod(1 + returns) - 1)
    assert interval.low < interval.estimate < interval.high
    with pytest.raises(DataError, match="below -1"):
        return_interval(np.array([0.1, -1.5]), seed=0)


# --- deflated Sharpe ratio --------------------------------------------------------------------


def test_dsr_falls_as_trials_grow() -> None:
    returns = np.random.default_rng(5).normal(0.001, 0.01, 750)
    values = [deflated_sharpe_ratio(returns, n).dsr for n in (1, 2, 10, 100, 1000)]
    assert all(later < earlier for earlier, later in itertools.pairwise(values))
    assert all(0.0 <= value <= 1.0 for value in values)


def test_dsr_with_one_trial_is_psr_against_zero() -> None:
    returns = np.random.default_rng(6).standard_t(5, 400) * 0.01 + 0.0005
    result = deflated_sharpe_ratio(returns, 1)
    assert result.benchmark == 0.0
    psr = probabilistic_sharpe_ratio(result.sharpe, 0.0, 400, result.skew, result.kurtosis)
    assert result.dsr == psr


def test_dsr_matches_the_formula_by_hand() -> None:
    returns = np.random.default_rng(8).normal(0.0008, 0.01, 500) + np.tile([0.0, -0.004], 250)
    n, trials, variance = len(returns), 20, 0.002
    centred = returns - returns.mean()
    m2, m3, m4 = (np.mean(centred**k) for k in (2, 3, 4))
    sr = returns.mean() / math.sqrt(m2)
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    g = 0.5772156649015329
    bench = math.sqrt(variance) * (
        (1 - g) * norm.ppf(1 - 1 / trials) + g * norm.ppf(1 - 1 / (trials * math.e))
    )
    z = (sr - bench) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    result = deflated_sharpe_ratio(returns, trials, sr_variance=variance)
    assert result.benchmark == pytest.approx(bench, rel=1e-12)
    assert result.sharpe == pytest.approx(sr, rel=1e-12)
    assert result.dsr == pytest.approx(norm.cdf(z), rel=1e-9)
    assert (result.n_trials, result.n_obs) == (20, 500)


def test_default_variance_is_the_null_estimator_variance() -> None:
    returns = np.random.default_rng(10).normal(0.001, 0.01, 101)
    result = deflated_sharpe_ratio(returns, 50)
    assert result.benchmark == pytest.approx(expected_max_sharpe(50, 1 / 100))


def test_psr_known_value_and_bad_input() -> None:
    # sr 0.1 over 101 periods of normal returns: z = 0.1 * 10 / sqrt(1.005).
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101, 0.0, 3.0) == pytest.approx(
        norm.cdf(1 / math.sqrt(1.005))
    )
    assert probabilistic_sharpe_ratio(0.05, 0.05, 50, -1.0, 9.0) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="n_trials"):
        deflated_sharpe_ratio(np.array([0.01, 0.02, 0.0]), 0)
    with pytest.raises(DataError, match="finite"):
        deflated_sharpe_ratio(np.array([0.01, np.nan, 0.0]), 3)


# --- probability of backtest overfitting ------------------------------------------------------


def test_a_trial_best_everywhere_gives_zero_pbo() -> None:
    scores = np.random.default_rng(0).normal(0.0, 1.0, (10, 6))
    scores[3] += 10.0
    result = probability_of_overfitting(scores)
    assert result.pbo == 0.0
    assert (result.n_trials, result.n_blocks, result.n_combinations) == (10, 6, 20)
    assert all(logit > 0 for logit in result.logits)


def test_pbo_by_hand_on_tiny_matrices() -> None:
    # Each fold's winner is the other fold's loser: rank 1 of 3, omega 1/4, logit ln(1/3).
    crossed = probability_of_overfitting(np.array([[3.0, 1.0], [2.0, 2.0], [1.0, 3.0]]))
    assert crossed.pbo == 1.0
    assert crossed.logits == pytest.approx((math.log(1 / 3), math.log(1 / 3)))
    # Identical trials tie: average rank 1.5 of 2, omega 1/2, logit 0, counted as overfit.
    tied = probability_of_overfitting(np.ones((2, 2)))
    assert tied.logits == (0.0, 0.0)
    assert tied.pbo == 1.0


def test_pure_noise_gives_pbo_near_one_half() -> None:
    scores = np.random.default_rng(42).standard_normal((50, 8))
    result = probability_of_overfitting(scores)
    assert result.n_combinations == 70
    assert 0.3 <= result.pbo <= 0.7


def test_in_sample_winners_that_lose_out_of_sample_give_high_pbo() -> None:
    # Every trial's scores sum to the same total, so a high in-sample mean forces a low
    # out-of-sample one: the in-sample winner is always the out-of-sample loser.
    noise = np.random.default_rng(1).standard_normal((20, 6))
    scores = noise - noise.mean(axis=1, keepdims=True)
    assert probability_of_overfitting(scores).pbo > 0.8


def test_odd_block_count_uses_unequal_halves() -> None:
    scores = np.random.default_rng(3).standard_normal((8, 3))
    result = probability_of_overfitting(scores)
    assert result.n_combinations == 3  # one in-sample fold, two out of sample


def test_nan_rows_are_dropped_and_counted() -> None:
    scores = np.random.default_rng(2).standard_normal((12, 4))
    scores[[2, 7], 3] = np.nan
    result = probability_of_overfitting(scores)
    assert (result.dropped, result.n_trials) == (2, 10)


def test_fewer_than_two_trials_or_blocks_is_refused() -> None:
    with pytest.raises(DataError, match="at least 2 trials"):
        probability_of_overfitting(np.array([[0.1, 0.2, 0.3]]))
    with pytest.raises(DataError, match="1 dropped"):
        probability_of_overfitting(np.array([[0.1, 0.2], [np.nan, 0.3]]))
    with pytest.raises(DataError, match="at least 2 blocks"):
        probability_of_overfitting(np.array([[0.1], [0.2]]))


# -- block sums: the same resamples as resampling the rows, without the (resamples x rows) gather
def _returns_with_flat_stretches(seed: int, n: int) -> np.ndarray:
    """Per-bar equity returns as a backtest makes them: mostly flat (0), some exposure."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0002, 0.004, n)
    returns[rng.random(n) < 0.8] = 0.0
    return returns


@pytest.mark.parametrize(("n", "block"), [(40, 7), (997, 10), (5000, 48)])
def test_block_sums_give_the_row_resampling_intervals(n: int, block: int) -> None:
    returns = _returns_with_flat_stretches(n, n)
    other = np.random.default_rng(n + 1).normal(0.0, 0.01, n)
    checks = [
        (return_interval(returns, block=block, seed=5), _total_return_rows, (returns,)),
        (
            sharpe_interval(returns, 252.0, block=block, seed=5),
            lambda rows: _sharpe_rows(rows) * math.sqrt(252.0),
            (returns,),
        ),
        (
            excess_return_interval(returns, other, block=block, seed=5),
            _excess_total_rows,
            (returns, other),
        ),
    ]
    for fast, statistic, arrays in checks:
        rows = block_bootstrap(statistic, *arrays, block=block, seed=5)
        for field in ("low", "high", "estimate"):
            assert getattr(fast, field) == pytest.approx(getattr(rows, field), rel=1e-9, abs=1e-12)
        assert fast.share_at_or_below_zero == rows.share_at_or_below_zero
        assert (fast.block, fast.n_resamples) == (rows.block, rows.n_resamples)


def test_block_sums_give_the_row_resampling_balanced_accuracy() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 2000)
    predicted = np.where(rng.random(2000) < 0.4, truth, rng.integers(0, 3, 2000))
    fast = balanced_accuracy_interval(truth, predicted, 3, block=24, seed=9)
    rows = block_bootstrap(
        lambda t, p: _balanced_accuracy_rows(t, p, 3), truth, predicted, block=24, seed=9
    )
    assert (fast.low, fast.high, fast.estimate) == (rows.low, rows.high, rows.estimate)


def test_an_all_flat_resample_has_zero_sharpe_not_a_rounding_ratio() -> None:
    returns = np.zeros(60)
    returns[30] = 0.01  # one trade: most resamples of 6-bar blocks never draw it
    fast = sharpe_interval(returns, 252.0, block=6, seed=1)
    assert fast.low == 0.0 and fast.share_at_or_below_zero > 0.3


def test_a_total_loss_falls_back_to_resampling_rows() -> None:
    returns = np.array([0.01, -1.0, 0.02, 0.0] * 10)
    interval = return_interval(returns, block=4, seed=2)
    assert interval.estimate == -1.0 and interval.low == -1.0
