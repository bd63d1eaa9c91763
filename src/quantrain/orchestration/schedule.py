"""Longest first: the order in which symbols are handed to the cluster.

A fan-out ends when its slowest worker does. Handed out in file order, a long symbol that
comes last runs alone while the other CPUs idle (on 8 symbols over 2 CPUs that tail was 3.4 s
of an 18 s run). Starting the longest symbols first (LPT scheduling) leaves only short ones
for the end. How long a symbol takes is known from its previous package (``train_seconds`` in
the manifest, the usual case for scheduled retrains); for a symbol trained for the first time
it is estimated from its row count.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quantrain.data import DataSource
from quantrain.data.readers import local_path, split_extension
from quantrain.errors import QuantrainError
from quantrain.runtime.cloud import is_s3
from quantrain.store import ModelStore

log = logging.getLogger(__name__)

SAMPLE_BYTES = 64 * 1024  # a text file's rows are estimated from the lines in its first 64 KiB


def longest_first(
    sources: Sequence[DataSource],
    seconds: Mapping[str, float],
    rows: Mapping[str, int],
) -> list[DataSource]:
    """``sources`` ordered by expected training time, longest first.

    ``seconds`` are previous training times, ``rows`` row counts (either may miss a symbol).
    A symbol without a previous time is estimated from its rows at the median seconds per row
    of the symbols that have both; one with neither goes first, as an unknown may be the
    longest. Ties keep the given order.
    """
    rates = [seconds[s] / rows[s] for s in seconds if rows.get(s, 0) > 0]
    rate = statistics.median(rates) if rates else None

    def estimate(source: DataSource) -> float:
        if source.symbol in seconds:
            return seconds[source.symbol]
        n = rows.get(source.symbol)
        return n * rate if n is not None and rate is not None else math.inf

    order = sorted(
        range(len(sources)),
        key=lambda i: (-estimate(sources[i]), -rows.get(sources[i].symbol, 0), i),
    )
    return [sources[i] for i in order]


def previous_seconds(store: ModelStore, suite: str, symbols: Sequence[str]) -> dict[str, float]:
    """Each symbol's training time in its newest package of ``suite`` that records one."""
    try:
        manifests = store.newest_manifests(suite, symbols)
    except QuantrainError as error:  # a store we cannot read now fails the run later, clearly
        log.warning("training order without history: %s", error)
        return {}
    found = {symbol: manifest.get("train_seconds") for symbol, manifest in manifests.items()}
    return {
        symbol: float(value)
        for symbol, value in found.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf
    }


def row_counts(sources: Sequence[DataSource]) -> dict[str, int]:
    """Rows per local file: exact for parquet (its footer), estimated for the other formats."""
    counts: dict[str, int] = {}
    for source in sources:
        if is_s3(str(source.path)):
            continue
        try:
            found = _rows(local_path(source.path))
        except (OSError, ValueError, pa.ArrowException, QuantrainError):
            continue  # an unreadable file is the task's to report, with its fix
        if found is not None:
            counts[source.symbol] = found
    return counts


def _rows(path: Path) -> int | None:
    extension = (split_extension(path.name) or ("", path.suffix))[1].lower()
    if extension == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    if extension == ".feather":
        with pa.memory_map(str(path)) as mapped:  # zero-copy: only batch headers are read
            reader = pa.ipc.open_file(mapped)
            return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    if extension.endswith(".gz"):
        return None  # compressed bytes say nothing about lines without inflating the file
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    lines = max(1, head.count(b"\n"))
    return round(size * lines / max(1, len(head)))
