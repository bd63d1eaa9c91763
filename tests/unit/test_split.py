"""Chronological splits: no leakage between train and test, order kept, purge/embargo counted."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantrain.errors import ConfigError
from quantrain.split import Fold, holdout, purged_kfold, walk_forward

# ----------------------------------------------------------------------------------- helpers


@st.composite
def samples(draw: st.DrawFn, min_n: int = 20, max_n: int = 400) -> tuple[int, np.ndarray]:
    """n and label windows ending up to `horizon` bars later (variable, as with real labels)."""
    n = draw(st.integers(min_n, max_n))
    horizon = draw(st.integers(0, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    label_end = np.arange(n, dtype=np.int64) + rng.integers(0, horizon + 1, n)
    return n, label_end


def expected_train(
    candidates: range | list[int],
    test: np.ndarray,
    label_end: np.ndarray,
    embargo: int,
    side: Literal["before", "after"],
) -> tuple[list[int], int, int]:
    """Plain statement of purge, then embargo of the `embargo` survivors nearest the block on
    `side`: (kept, purged, embargoed)."""
    start, end = int(test[0]), int(test[-1])
    test_reach = max(int(label_end[j]) for j in test)
    survivors, purged = [], 0
    for i in candidates:
        if i <= test_reach and label_end[i] >= start:  # label windows share a bar
            purged += 1
        else:
            survivors.append(i)
    before = [i for i in survivors if i < start]
    after = [i for i in survivors if i > end]
    if side == "before":
        before = before[: max(len(before) - embargo, 0)]
    else:
        after = after[embargo:]
    kept = before + after
    return kept, purged, len(survivors) - len(kept)


def assert_fold_is_clean(
    fold: Fold, label_end: np.ndarray, embargo: int, side: Literal["before", "after"]
) -> None:
    """No training label window reaches into the test labels' span ``[start, reach]``, and no
    training sample on the embargoed `side` lies within ``embargo`` of that span."""
    train, test = fold.train, fold.test
    assert train.dtype == np.int64
    assert test.dtype == np.int64
    assert test.size >= 1
    assert train.size >= 1
    np.testing.assert_array_equal(test, np.arange(test[0], test[-1] + 1))  # contiguous
    assert (np.diff(train) > 0).all()  # increasing, no duplicates
    assert np.intersect1d(train, test).size == 0
    start, end = int(test[0]), int(test[-1])
    reach = int(label_end[test].max())
    before, after = train[train < start], train[train > end]
    assert (label_end[before] < start).all()  # ends before the first test label starts
    assert (after > reach).all()  # starts after the last test label ends
    if side == "before":
        assert (before < start - embargo).all()
    else:
        assert (after > reach + embargo).all()


# ------------------------------------------------------------------------------ walk-forward


@settings(max_examples=80, deadline=None)
@given(
    data=samples(),
    n_folds=st.integers(1, 6),
    mode=st.sampled_from(["expanding", "sliding"]),
    embargo=st.integers(0, 5),
)
def test_walk_forward_properties(
    data: tuple[int, np.ndarray], n_folds: int, mode: Literal["expanding", "sliding"], embargo: int
) -> None:
    n, label_end = data
    test_size = n // (n_folds + 1)
    first_start = n - n_folds * test_size
    blocks = [np.arange(s, s + test_size) for s in range(first_start, n, test_size)]
    windows = [
        range(b[0]) if mode == "expanding" else range(b[0] - first_start, b[0]) for b in blocks
    ]
    expected = [
        expected_train(w, b, label_end, embargo, "before")
        for w, b in zip(windows, blocks, strict=True)
    ]
    if any(not kept for kept, _, _ in expected):  # purge + embargo leave a fold without training
        with pytest.raises(ConfigError, match="keeps 0 training samples"):
            walk_forward(n, n_folds=n_folds, label_end=label_end, mode=mode, embargo=embargo)
        return

    folds = walk_forward(n, n_folds=n_folds, label_end=label_end, mode=mode, embargo=embargo)
    assert len(folds) == n_folds
    assert [f.index for f in folds] == list(range(n_folds))
    # Test blocks are consecutive, equally sized and end at the last sample.
    np.testing.assert_array_equal(
        np.concatenate([f.test for f in folds]), np.arange(first_start, n)
    )
    for fold, block, window, (kept, purged, embargoed) in zip(
        folds, blocks, windows, expected, strict=True
    ):
        np.testing.assert_array_equal(fold.test, block)
        assert_fold_is_clean(fold, label_end, embargo, "before")
        assert fold.train[-1] < fold.test[0]  # training strictly precedes its test block
        np.testing.assert_array_equal(fold.train, kept)
        assert (fold.purged, fold.embargoed) == (purged, embargoed)
        assert fold.embargoed == embargo  # there is always enough left to embargo in full
        assert fold.train.size + fold.purged + fold.embargoed == len(window)  # window respected


@pytest.mark.parametrize("horizon", [0, 1, 7])
def test_walk_forward_purges_exactly_the_horizon(horizon: int) -> None:
    n = 200
    label_end = np.arange(n) + horizon
    folds = walk_forward(n, n_folds=4, label_end=label_end)
    for fold in folds:
        assert fold.purged == horizon
        start = int(fold.test[0])
        np.testing.assert_array_equal(fold.train, np.arange(start - horizon))


def test_sliding_window_uses_train_size() -> None:
    n = 300
    folds = walk_forward(
        n, n_folds=3, label_end=np.arange(n) + 2, mode="sliding", train_size=50, test_size=40
    )
    assert [(int(f.test[0]), int(f.test[-1])) for f in folds] == [
        (180, 219),
        (220, 259),
        (260, 299),
    ]
    for fold in folds:
        start = int(fold.test[0])
        np.testing.assert_array_equal(fold.train, np.arange(start - 50, start - 2))
        assert fold.purged == 2


def test_sliding_default_window_is_the_first_folds_history() -> None:
    n = 100
    folds = walk_forward(n, n_folds=4, label_end=np.arange(n), mode="sliding")
    assert [f.train.size for f in folds] == [20, 20, 20, 20]  # test_size 20, first block at 20
    assert [int(f.train[0]) for f in folds] == [0, 20, 40, 60]


def test_expanding_training_grows() -> None:
    n = 100
    folds = walk_forward(n, n_folds=4, label_end=np.arange(n))
    assert [f.train.size for f in folds] == [20, 40, 60, 80]
    assert all(int(f.train[0]) == 0 for f in folds)


@pytest.mark.parametrize("mode", ["expanding", "sliding"])
def test_walk_forward_embargo_drops_the_rows_just_before_each_block(
    mode: Literal["expanding", "sliding"],
) -> None:
    n, horizon, embargo = 200, 3, 5
    label_end = np.arange(n) + horizon
    plain = walk_forward(n, n_folds=4, label_end=label_end, mode=mode)
    folds = walk_forward(n, n_folds=4, label_end=label_end, mode=mode, embargo=embargo)
    for unembargoed, fold in zip(plain, folds, strict=True):
        start = int(fold.test[0])
        np.testing.assert_array_equal(fold.test, unembargoed.test)
        # Purge takes the `horizon` rows before the block, the embargo the `embargo` before those.
        dropped = np.arange(start - horizon - embargo, start - horizon)
        np.testing.assert_array_equal(np.setdiff1d(unembargoed.train, fold.train), dropped)
        np.testing.assert_array_equal(fold.train, unembargoed.train[unembargoed.train < dropped[0]])
        assert (fold.purged, fold.embargoed) == (horizon, embargo)
    if mode == "sliding":  # the window is the same, the embargo eats into its newest rows
        assert [int(f.train[0]) for f in folds] == [int(f.train[0]) for f in plain]


def test_min_train_refuses_short_folds_and_explains() -> None:
    n = 100
    with pytest.raises(ConfigError, match=r"fold 0 keeps 15 training samples.*n=100, n_folds=4"):
        walk_forward(n, n_folds=4, label_end=np.arange(n) + 5, min_train=16)
    assert len(walk_forward(n, n_folds=4, label_end=np.arange(n) + 5, min_train=15)) == 4


@pytest.mark.parametrize("mode", ["expanding", "sliding"])
def test_an_embargo_that_eats_the_training_set_is_refused(
    mode: Literal["expanding", "sliding"],
) -> None:
    n = 100  # 4 blocks of 20: the first has 20 rows before it, 17 after purging 3
    label_end = np.arange(n) + 3
    with pytest.raises(
        ConfigError,
        match=r"fold 0 keeps 0 training samples after purging 3 and embargoing 17, "
        r"expected ≥ 1 \(.*embargo=30\); .*a smaller embargo",
    ):
        walk_forward(n, n_folds=4, label_end=label_end, mode=mode, embargo=30)
    with pytest.raises(ConfigError, match=r"fold 0 keeps 7 training samples .* expected ≥ 8"):
        walk_forward(n, n_folds=4, label_end=label_end, mode=mode, embargo=10, min_train=8)
    assert walk_forward(n, n_folds=4, label_end=label_end, mode=mode, embargo=16)[0].train.size == 1


# ---------------------------------------------------------------------------- purged k-fold


@settings(max_examples=80, deadline=None)
@given(data=samples(), n_splits=st.integers(2, 8), embargo=st.integers(0, 15))
def test_purged_kfold_properties(data: tuple[int, np.ndarray], n_splits: int, embargo: int) -> None:
    n, label_end = data
    small, extra = divmod(n, n_splits)
    sizes = [small + 1] * extra + [small] * (n_splits - extra)
    starts = np.cumsum([0, *sizes[:-1]])
    blocks = [np.arange(s, s + size) for s, size in zip(starts, sizes, strict=True)]
    others = [[i for i in range(n) if not b[0] <= i <= b[-1]] for b in blocks]
    expected = [
        expected_train(o, b, label_end, embargo, "after")
        for o, b in zip(others, blocks, strict=True)
    ]
    if any(not kept for kept, _, _ in expected):
        with pytest.raises(ConfigError, match="keeps 0 training samples"):
            purged_kfold(n, n_splits=n_splits, label_end=label_end, embargo=embargo)
        return

    folds = purged_kfold(n, n_splits=n_splits, label_end=label_end, embargo=embargo)
    assert len(folds) == n_splits
    # Test blocks tile 0 … n−1 in order.
    np.testing.assert_array_equal(np.concatenate([f.test for f in folds]), np.arange(n))
    for fold, block, (kept, purged, embargoed) in zip(folds, blocks, expected, strict=True):
        np.testing.assert_array_equal(fold.test, block)
        assert_fold_is_clean(fold, label_end, embargo, "after")
        np.testing.assert_array_equal(fold.train, kept)
        assert (fold.purged, fold.embargoed) == (purged, embargoed)
        assert fold.train.size + fold.purged + fold.embargoed + fold.test.size == n


def test_purged_kfold_embargo_drops_the_rows_just_after_the_purge() -> None:
    n, horizon, embargo = 100, 3, 5
    folds = purged_kfold(n, n_splits=4, label_end=np.arange(n) + horizon, embargo=embargo)
    # Middle folds: 3 purged before the block, 3 after it (they share bars with the last test
    # labels), then the embargo removes the next 5; nothing is embargoed before a block.
    assert [(f.purged, f.embargoed) for f in folds] == [(3, 5), (6, 5), (6, 5), (3, 0)]
    np.testing.assert_array_equal(folds[0].train, np.r_[33:100])
    np.testing.assert_array_equal(folds[1].train, np.r_[0:22, 58:100])
    np.testing.assert_array_equal(folds[3].train, np.r_[0:72])


def test_purged_kfold_refuses_folds_below_min_train() -> None:
    n = 100
    label_end = np.arange(n) + 3
    with pytest.raises(ConfigError, match=r"fold 0 keeps 42 training samples .* expected ≥ 43"):
        purged_kfold(n, n_splits=2, label_end=label_end, embargo=5, min_train=43)
    assert len(purged_kfold(n, n_splits=2, label_end=label_end, embargo=5, min_train=42)) == 2


def test_nothing_is_purged_when_labels_end_at_their_sample() -> None:
    n = 90
    identity = np.arange(n)
    for fold in purged_kfold(n, n_splits=3, label_end=identity):
        assert (fold.purged, fold.embargoed) == (0, 0)
        assert fold.train.size + fold.test.size == n
    for fold in walk_forward(n, n_folds=3, label_end=identity, mode="sliding"):
        assert fold.purged == 0
    assert holdout(n, test_fraction=0.2, label_end=identity).purged == 0


# ---------------------------------------------------------------------------------- holdout


@settings(max_examples=60, deadline=None)
@given(data=samples(), test_fraction=st.floats(0.05, 0.5), embargo=st.integers(0, 5))
def test_holdout_properties(
    data: tuple[int, np.ndarray], test_fraction: float, embargo: int
) -> None:
    n, label_end = data
    test = np.arange(n - round(n * test_fraction), n)
    kept, purged, embargoed = expected_train(
        range(int(test[0])), test, label_end, embargo, "before"
    )
    if not kept:
        with pytest.raises(ConfigError, match="keeps 0 training samples"):
            holdout(n, test_fraction=test_fraction, label_end=label_end, embargo=embargo)
        return
    fold = holdout(n, test_fraction=test_fraction, label_end=label_end, embargo=embargo)
    assert_fold_is_clean(fold, label_end, embargo, "before")
    np.testing.assert_array_equal(fold.test, test)
    np.testing.assert_array_equal(fold.train, kept)
    assert (fold.purged, fold.embargoed) == (purged, embargoed)


def test_holdout_example() -> None:
    fold = holdout(100, test_fraction=0.25, label_end=np.arange(100) + 4)
    np.testing.assert_array_equal(fold.test, np.arange(75, 100))
    np.testing.assert_array_equal(fold.train, np.arange(71))
    assert (fold.index, fold.purged, fold.embargoed) == (0, 4, 0)
    embargoed = holdout(100, test_fraction=0.25, label_end=np.arange(100) + 4, embargo=6)
    np.testing.assert_array_equal(embargoed.train, np.arange(65))
    assert (embargoed.purged, embargoed.embargoed) == (4, 6)


def test_label_end_past_the_data_is_accepted() -> None:
    """Triple-barrier label_end runs past n − 1 on the unlabelled tail; that must not break."""
    n, horizon = 200, 48
    fold = holdout(n, test_fraction=0.25, label_end=np.arange(n) + horizon)
    np.testing.assert_array_equal(fold.test, np.arange(150, 200))
    np.testing.assert_array_equal(fold.train, np.arange(150 - horizon))
    assert fold.purged == horizon


# ------------------------------------------------------------------------------- bad input

IDENTITY_100 = np.arange(100)

BAD_CALLS: list[tuple[Any, dict[str, Any], str]] = [
    (
        walk_forward,
        {"n": 100, "n_folds": 0, "label_end": IDENTITY_100},
        r"`n_folds` must be an integer ≥ 1, got 0",
    ),
    (
        walk_forward,
        {"n": 100, "n_folds": 2, "label_end": IDENTITY_100, "test_size": 50},
        "cannot hold",
    ),
    (walk_forward, {"n": 100, "n_folds": 200, "label_end": IDENTITY_100}, "cannot hold"),
    (walk_forward, {"n": 100, "n_folds": 2, "label_end": IDENTITY_100, "mode": "random"}, "`mode`"),
    (
        walk_forward,
        {"n": 100, "n_folds": 2, "label_end": IDENTITY_100, "train_size": 10},
        "mode='sliding' only",
    ),
    (
        walk_forward,
        {"n": 100, "n_folds": 2, "label_end": IDENTITY_100, "mode": "sliding", "train_size": 35},
        r"`train_size` must be ≤ 34",
    ),
    (
        walk_forward,
        {"n": 100, "n_folds": 2, "label_end": IDENTITY_100, "min_train": 0},
        "`min_train`",
    ),
    (walk_forward, {"n": 100, "n_folds": 2, "label_end": IDENTITY_100, "embargo": -1}, "`embargo`"),
    (walk_forward, {"n": 100, "n_folds": 2.0, "label_end": IDENTITY_100}, "`n_folds`"),
    (walk_forward, {"n": 100, "n_folds": 2, "label_end": IDENTITY_100 + 70}, "fold 0 keeps 0"),
    (
        walk_forward,
        {"n": 100, "n_folds": 2, "label_end": IDENTITY_100, "embargo": 34},
        "fold 0 keeps 0 training samples after purging 0 and embargoing 34",
    ),
    (walk_forward, {"n": 100, "n_folds": 2, "label_end": IDENTITY_100[:99]}, "length n=100"),
    (walk_forward, {"n": 100, "n_folds": 2, "label_end": IDENTITY_100 * 1.0}, "integer positions"),
    (walk_forward, {"n": 100, "n_folds": 2, "label_end": IDENTITY_100 - 1}, r"label_end\[0\]=-1"),
    (holdout, {"n": 100, "test_fraction": 0.0, "label_end": IDENTITY_100}, "`test_fraction`"),
    (holdout, {"n": 100, "test_fraction": 1.0, "label_end": IDENTITY_100}, "`test_fraction`"),
    (
        holdout,
        {"n": 100, "test_fraction": 0.001, "label_end": IDENTITY_100},
        "gives 0 test samples",
    ),
    (
        holdout,
        {"n": 1, "test_fraction": 0.5, "label_end": np.arange(1)},
        "`n` must be an integer ≥ 2",
    ),
    (purged_kfold, {"n": 100, "n_splits": 1, "label_end": IDENTITY_100}, "`n_splits`"),
    (
        purged_kfold,
        {"n": 10, "n_splits": 11, "label_end": np.arange(10)},
        r"`n_splits` must be ≤ n=10",
    ),
    (
        purged_kfold,
        {"n": 100, "n_splits": 2, "label_end": IDENTITY_100, "embargo": 60},
        "fold 0 keeps 0 training samples after purging 0 and embargoing 50",
    ),
    (
        purged_kfold,
        {"n": 100, "n_splits": 2, "label_end": IDENTITY_100, "min_train": 0},
        "`min_train`",
    ),
]


@pytest.mark.parametrize(("func", "kwargs", "message"), BAD_CALLS)
def test_bad_arguments_raise_config_error(func: Any, kwargs: dict[str, Any], message: str) -> None:
    kwargs = dict(kwargs)
    n = kwargs.pop("n")
    with pytest.raises(ConfigError, match=message):
        func(n, **kwargs)
