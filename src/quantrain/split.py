"""Chronological train/test splits with purging and embargo: honest out-of-sample folds.

Samples are positions ``0 … n−1`` in time order. Sample ``i`` has a label window
``[i, label_end[i]]`` (the bars its label reads). A training sample is *purged* when its label
window overlaps the test fold's label span ``[test_start, max(label_end[test])]``, so no training
label shares bars with a test label. After purging, ``embargo`` more training samples next to the
test block are *embargoed*, a gap against serially correlated features: in walk-forward and
holdout splits the ``embargo`` samples just before the block (training only precedes it there);
in purged k-fold the ``embargo`` samples just after the purged zone that follows the block
(López de Prado, AFML §7.4.2: features of bars the test labels saw would otherwise leak back).
Nothing is ever shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from quantrain.errors import ConfigError

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Fold:
    """One split: increasing training positions and a contiguous block of test positions."""

    index: int
    train: IntArray
    test: IntArray
    purged: int  # training samples removed because their label window overlapped the test labels
    embargoed: int  # training samples removed by the embargo (after purging) next to the block


def _require_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"`{name}` must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _check_label_end(label_end: npt.ArrayLike, n: int) -> IntArray:
    array = np.asarray(label_end)
    if array.ndim != 1 or array.shape[0] != n:
        raise ConfigError(
            f"`label_end` must be a 1-D array of length n={n}, got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ConfigError(f"`label_end` must hold integer positions, got dtype {array.dtype}")
    ends = array.astype(np.int64)
    before_start = np.flatnonzero(ends < np.arange(n))
    if before_start.size:
        i = int(before_start[0])
        raise ConfigError(
            f"`label_end[i]` must be ≥ i (a label cannot end before its sample), "
            f"got label_end[{i}]={int(ends[i])} ({before_start.size} such rows)"
        )
    return ends


def _make_fold(
    index: int,
    candidates: IntArray,
    test_start: int,
    test_end: int,
    label_end: IntArray,
    embargo: int,
    side: Literal["before", "after"],
) -> Fold:
    """Purge `candidates` (increasing training positions outside the test block), then embargo
    the `embargo` survivors nearest the block on `side`."""
    test_reach = int(label_end[test_start : test_end + 1].max())
    overlaps = (candidates <= test_reach) & (label_end[candidates] >= test_start)
    survivors = candidates[~overlaps]
    before, after = survivors[survivors < test_start], survivors[survivors > test_end]
    if side == "before":
        before = before[: max(before.size - embargo, 0)]
    else:
        after = after[embargo:]
    train = np.concatenate([before, after])
    return Fold(
        index=index,
        train=train,
        test=np.arange(test_start, test_end + 1, dtype=np.int64),
        purged=int(overlaps.sum()),
        embargoed=survivors.size - train.size,
    )


_WALK_FORWARD_FIX = "use fewer folds, a smaller test block"
_KFOLD_FIX = "use more splits (smaller test blocks)"


def _refuse_empty_train(fold: Fold, minimum: int, context: str, fix: str) -> None:
    if fold.train.size < minimum:
        raise ConfigError(
            f"fold {fold.index} keeps {fold.train.size} training samples after purging "
            f"{fold.purged} and embargoing {fold.embargoed}, expected ≥ {minimum} ({context}); "
            f"{fix}, a shorter label horizon or a smaller embargo"
        )


def holdout(n: int, *, test_fraction: float, label_end: npt.ArrayLike, embargo: int = 0) -> Fold:
    """The last ``round(n × test_fraction)`` samples as test, earlier ones as training (purged,
    then the ``embargo`` samples just before the test block dropped)."""
    n = _require_int("n", n, 2)
    ends = _check_label_end(label_end, n)
    embargo = _require_int("embargo", embargo, 0)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float):
        raise ConfigError(f"`test_fraction` must be a number in (0, 1), got {test_fraction!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"`test_fraction` must be in (0, 1), got {test_fraction!r}")
    test_size = round(n * test_fraction)
    if not 1 <= test_size <= n - 1:
        raise ConfigError(
            f"`test_fraction`={test_fraction!r} of n={n} gives {test_size} test samples, "
            f"expected between 1 and {n - 1}"
        )
    test_start = n - test_size
    candidates = np.arange(test_start, dtype=np.int64)
    fold = _make_fold(0, candidates, test_start, n - 1, ends, embargo, "before")
    context = f"n={n}, test_size={test_size}, embargo={embargo}"
    _refuse_empty_train(fold, 1, context, "use a smaller test_fraction")
    return fold


def walk_forward(
    n: int,
    *,
    n_folds: int,
    label_end: npt.ArrayLike,
    mode: Literal["expanding", "sliding"] = "expanding",
    min_train: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    embargo: int = 0,
) -> list[Fold]:
    """Consecutive test blocks ending at ``n − 1``, each trained only on the samples before it.

    ``test_size`` defaults to ``n // (n_folds + 1)``. ``expanding`` trains on everything before
    the block; ``sliding`` on the ``train_size`` samples before it, ``train_size`` defaulting to
    all samples before the first block, so every fold trains on as much data as the first one
    can. After purging, the ``embargo`` training samples just before each block are dropped, so
    training ends at least ``embargo`` samples before the test block. Folds whose remaining
    training set is smaller than ``min_train`` (default 1) are refused.
    """
    n = _require_int("n", n, 2)
    n_folds = _require_int("n_folds", n_folds, 1)
    ends = _check_label_end(label_end, n)
    embargo = _require_int("embargo", embargo, 0)
    if mode not in ("expanding", "sliding"):
        raise ConfigError(f"`mode` must be 'expanding' or 'sliding', got {mode!r}")
    size = n // (n_folds + 1) if test_size is None else _require_int("test_size", test_size, 1)
    if size < 1 or n_folds * size >= n:
        raise ConfigError(
            f"n={n} samples cannot hold n_folds={n_folds} test blocks of test_size={size} "
            f"and still leave training data before the first block; "
            f"expected n_folds × test_size ≤ {n - 1}"
        )
    first_test_start = n - n_folds * size
    if mode == "expanding":
        if train_size is not None:
            raise ConfigError(
                f"`train_size` applies to mode='sliding' only, got train_size={train_size!r} "
                "with mode='expanding'"
            )
        window = None
    else:
        window = (
            first_test_start if train_size is None else (_require_int("train_size", train_size, 1))
        )
        if window > first_test_start:
            raise ConfigError(
                f"`train_size` must be ≤ {first_test_start} (the samples before the first test "
                f"block: n={n} − n_folds={n_folds} × test_size={size}), got {window}"
            )
    minimum = 1 if min_train is None else _require_int("min_train", min_train, 1)

    folds = []
    for k in range(n_folds):
        test_start = first_test_start + k * size
        train_start = 0 if window is None else test_start - window
        candidates = np.arange(train_start, test_start, dtype=np.int64)
        fold = _make_fold(k, candidates, test_start, test_start + size - 1, ends, embargo, "before")
        _refuse_empty_train(
            fold,
            minimum,
            f"n={n}, n_folds={n_folds}, test_size={size}, mode={mode}, "
            f"training window={candidates.size}, embargo={embargo}",
            _WALK_FORWARD_FIX,
        )
        folds.append(fold)
    return folds


def purged_kfold(
    n: int,
    *,
    n_splits: int,
    label_end: npt.ArrayLike,
    embargo: int = 0,
    min_train: int | None = None,
) -> list[Fold]:
    """K contiguous test blocks in time order; training = all other samples, purged + embargoed.

    Training may follow the test block here, which is why the purge spans the test labels'
    reach and the embargo drops the ``embargo`` samples just after that reach (none before the
    block). Block sizes differ by at most one (earlier blocks larger). Folds whose remaining
    training set is smaller than ``min_train`` (default 1) are refused.
    """
    n = _require_int("n", n, 2)
    n_splits = _require_int("n_splits", n_splits, 2)
    if n_splits > n:
        raise ConfigError(f"`n_splits` must be ≤ n={n}, got {n_splits}")
    ends = _check_label_end(label_end, n)
    embargo = _require_int("embargo", embargo, 0)
    minimum = 1 if min_train is None else _require_int("min_train", min_train, 1)
    positions = np.arange(n, dtype=np.int64)
    folds = []
    for k, block in enumerate(np.array_split(positions, n_splits)):
        test_start, test_end = int(block[0]), int(block[-1])
        candidates = np.concatenate([positions[:test_start], positions[test_end + 1 :]])
        fold = _make_fold(k, candidates, test_start, test_end, ends, embargo, "after")
        context = f"n={n}, n_splits={n_splits}, embargo={embargo}"
        _refuse_empty_train(fold, minimum, context, _KFOLD_FIX)
        folds.append(fold)
    return folds
