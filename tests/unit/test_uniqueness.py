"""Average uniqueness of overlapping labels: exact small cases and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantrain.errors import DataError
from quantrain.labels import average_uniqueness


def brute_force(label_end: np.ndarray) -> np.ndarray:
    """AFML ch. 4 as written: count the labels on every row, then average 1 / count per label."""
    concurrency = np.zeros(int(label_end.max()) + 1)
    for i, end in enumerate(label_end):
        concurrency[i : end + 1] += 1
    return np.array([np.mean(1.0 / concurrency[i : end + 1]) for i, end in enumerate(label_end)])


def test_labels_that_do_not_overlap_weigh_one() -> None:
    weights = average_uniqueness(np.arange(50, dtype=np.int64))
    assert weights.dtype == np.float64
    np.testing.assert_array_equal(weights, np.ones(50))


def test_every_row_shared_by_two_labels_gives_one_half() -> None:
    # Label i reads rows i and i + 1: inside, each row is read by exactly two labels.
    weights = average_uniqueness(np.arange(10, dtype=np.int64) + 1)
    np.testing.assert_allclose(weights[1:-1], 0.5, rtol=0, atol=1e-15)
    # The first label has row 0 to itself, the last one row 10: (1 + 1/2) / 2 each.
    np.testing.assert_allclose(weights[[0, -1]], 0.75, rtol=0, atol=1e-15)


def test_a_label_nested_in_a_longer_one() -> None:
    # Label 0 reads rows 0-2, label 1 rows 1-1, label 2 rows 2-2: concurrency 1, 2, 2.
    weights = average_uniqueness(np.array([2, 1, 2], dtype=np.int64))
    np.testing.assert_allclose(weights, [(1 + 0.5 + 0.5) / 3, 0.5, 0.5])


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 300),
    horizon=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_the_brute_force_reference(n: int, horizon: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    label_end = np.arange(n, dtype=np.int64) + rng.integers(0, horizon + 1, n)
    weights = average_uniqueness(label_end)
    np.testing.assert_allclose(weights, brute_force(label_end), rtol=1e-12, atol=0)
    assert ((weights > 0) & (weights <= 1 + 1e-12)).all()


def test_empty_input_gives_no_weights() -> None:
    assert average_uniqueness(np.zeros(0, dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize(
    ("label_end", "message"),
    [
        (np.array([0, 0, 3]), r"label_end\[1\]=0"),
        (np.array([0.0, 1.0]), "integer positions"),
        (np.zeros((2, 2), dtype=np.int64), "1-D"),
    ],
)
def test_bad_label_end_is_refused(label_end: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        average_uniqueness(label_end)
