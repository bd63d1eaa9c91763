"""``rows_of``: walk-forward rows reach the model as views of the training matrix, any other
row set as the copy ``X[rows]`` makes; the values are the same either way."""

from __future__ import annotations

import numpy as np

from quantrain.split import walk_forward
from quantrain.suite.fit import rows_of


def test_consecutive_rows_are_a_view_with_the_same_values() -> None:
    X = np.arange(200 * 3, dtype=np.float32).reshape(200, 3)
    rows = np.arange(40, 120)
    view = rows_of(X, rows)
    assert np.shares_memory(view, X) and view.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(view, X[rows])


def test_other_row_sets_are_copied() -> None:
    X = np.arange(200 * 3, dtype=np.float32).reshape(200, 3)
    for rows in (np.array([3, 5, 6]), np.array([7, 6, 8]), np.array([1, 2, 2, 3])):
        got = rows_of(X, rows)
        assert not np.shares_memory(got, X)
        np.testing.assert_array_equal(got, X[rows])
    assert rows_of(X, np.array([], dtype=np.int64)).shape == (0, 3)


def test_walk_forward_folds_train_and_test_on_views() -> None:
    X = np.zeros((3_000, 2), dtype=np.float32)
    label_end = np.minimum(np.arange(3_000) + 12, 2_999)
    folds = walk_forward(3_000, n_folds=3, label_end=label_end, mode="expanding", min_train=300)
    for fold in folds:
        assert np.shares_memory(rows_of(X, fold.train), X)
        assert np.shares_memory(rows_of(X, fold.test), X)
