"""Lookback windows for sequence models, in numpy so serving needs no torch.

Every family takes the same 2-D feature matrix (rows in time order). A sequence model reads,
for row ``i``, the window of rows ``i-L+1 .. i``: only the row itself and its past, so the
window is causal. Rows before the first have no history; the window is padded by repeating the
first row (a flat, uninformative past rather than zeros, which after normalisation would read
as "every feature at its training mean"). Training, the parity gate and the ``Predictor`` all
build windows with this one function, so they cannot disagree.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from quantrain.errors import ModelError


def lookback_windows(X: np.ndarray, length: int) -> np.ndarray:
    """``(n, F)`` rows in time order → ``(n, length, F)``: row ``i``'s window ends at row ``i``.

    Returns a read-only view into a padded copy (``length - 1`` leading copies of row 0);
    ``np.ascontiguousarray`` the rows you feed to a runtime.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ModelError(f"sequence_length must be an integer >= 1, got {length!r}")
    matrix = np.asarray(X)
    if matrix.ndim != 2:
        raise ModelError(f"lookback windows need a 2-D matrix, got shape {matrix.shape}")
    if len(matrix) == 0:
        return np.empty((0, length, matrix.shape[1]), dtype=matrix.dtype)
    padded = np.concatenate([np.repeat(matrix[:1], length - 1, axis=0), matrix])
    # sliding_window_view puts the window axis last: (n, F, length) → (n, length, F).
    return sliding_window_view(padded, length, axis=0).transpose(0, 2, 1)
