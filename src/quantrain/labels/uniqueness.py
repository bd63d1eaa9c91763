"""Average uniqueness of overlapping labels (López de Prado, AFML ch. 4): a sample weight.

Sample ``i``'s label reads rows ``[i, label_end[i]]``. Where ``c_t`` labels span row ``t``, each
of them owns ``1 / c_t`` of it; a label's uniqueness is the mean of that share over its span, so
labels that mostly restate their neighbours weigh less.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from quantrain.errors import DataError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def average_uniqueness(label_end: IntArray) -> FloatArray:
    """Each sample's mean ``1 / concurrency`` over its label span, in (0, 1]; O(n + span)."""
    ends = np.asarray(label_end)
    if ends.ndim != 1 or not np.issubdtype(ends.dtype, np.integer):
        raise DataError(
            f"`label_end` must be a 1-D array of integer positions, got shape {ends.shape} "
            f"and dtype {ends.dtype}"
        )
    n = ends.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    ends = ends.astype(np.int64)
    starts = np.arange(n, dtype=np.int64)
    before_start = np.flatnonzero(ends < starts)
    if before_start.size:
        i = int(before_start[0])
        raise DataError(
            f"`label_end[i]` must be ≥ i (a label cannot end before its sample), "
            f"got label_end[{i}]={int(ends[i])} ({before_start.size} such rows)"
        )
    rows = int(ends.max()) + 1  # labels may read rows past the last sample
    # Concurrency by a difference array: +1 where a span opens, −1 just after it closes.
    change = np.bincount(starts, minlength=rows + 1) - np.bincount(ends + 1, minlength=rows + 1)
    # ≥ 1 on every row: rows < n open their own span, later ones lie in the longest-reaching one.
    concurrency = np.cumsum(change[:rows])
    total = np.concatenate([[0.0], np.cumsum(1.0 / concurrency)])  # total[t]: Σ over rows < t
    return (total[ends + 1] - total[starts]) / (ends - starts + 1)
