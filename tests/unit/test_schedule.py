"""Longest-first ordering of the fan-out: estimates from history and rows, never a lost symbol."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from quantrain.data import DataSource, discover
from quantrain.jobs import sample_data_dir
from quantrain.orchestration.schedule import longest_first, row_counts


def sources(*symbols: str) -> list[DataSource]:
    return [DataSource(symbol=s, timeframe="5m", path=Path(f"{s}_5m.parquet")) for s in symbols]


def symbols_of(ordered: list[DataSource]) -> list[str]:
    return [s.symbol for s in ordered]


def test_previous_times_order_longest_first() -> None:
    ordered = longest_first(sources("A", "B", "C"), {"A": 2.0, "B": 9.0, "C": 5.0}, {})
    assert symbols_of(ordered) == ["B", "C", "A"]


def test_first_time_symbols_are_estimated_from_rows_at_the_known_rate() -> None:
    # Known: 1 s per 1,000 rows. NEW has 6,000 rows (about 6 s): between B (9 s) and C (5 s).
    seconds = {"A": 2.0, "B": 9.0, "C": 5.0}
    rows = {"A": 2000, "B": 9000, "C": 5000, "NEW": 6000}
    ordered = longest_first(sources("A", "B", "C", "NEW"), seconds, rows)
    assert symbols_of(ordered) == ["B", "NEW", "C", "A"]


def test_a_symbol_nothing_is_known_of_goes_first() -> None:
    ordered = longest_first(sources("A", "B", "UNKNOWN"), {"A": 2.0, "B": 9.0}, {})
    assert symbols_of(ordered) == ["UNKNOWN", "B", "A"]


def test_without_history_rows_decide_and_ties_keep_file_order() -> None:
    rows = {"A": 100, "B": 300, "C": 100, "D": 300}
    assert symbols_of(longest_first(sources("A", "B", "C", "D"), {}, rows)) == ["B", "D", "A", "C"]
    assert symbols_of(longest_first(sources("A", "B", "C"), {}, {})) == ["A", "B", "C"]


@given(
    st.lists(st.sampled_from("ABCDEFGH"), unique=True, min_size=1),
    st.dictionaries(st.sampled_from("ABCDEFGH"), st.floats(0.01, 1e4)),
    st.dictionaries(st.sampled_from("ABCDEFGH"), st.integers(0, 10**7)),
)
def test_the_order_is_a_permutation_with_known_times_descending(
    names: list[str], seconds: dict[str, float], rows: dict[str, int]
) -> None:
    given_sources = sources(*names)
    ordered = longest_first(given_sources, seconds, rows)
    assert sorted(symbols_of(ordered)) == sorted(names)  # nothing lost, nothing twice
    timed = [seconds[s] for s in symbols_of(ordered) if s in seconds]
    assert timed == sorted(timed, reverse=True)


def test_row_counts_are_exact_for_parquet_and_close_for_csv(tmp_path: Path) -> None:
    shutil.copy(sample_data_dir() / "ETH-BTC_5m.parquet", tmp_path / "ETH-BTC_5m.parquet")
    frame = pd.read_parquet(tmp_path / "ETH-BTC_5m.parquet")
    frame.head(3000).to_csv(tmp_path / "XMR-BTC_5m.csv", index=False)
    frame.head(100).to_csv(tmp_path / "XLM-BTC_5m.csv.gz", index=False)
    (tmp_path / "ADA-BTC_5m.parquet").write_bytes(b"not parquet")
    counts = row_counts(discover(tmp_path))
    assert counts["ETH-BTC"] == len(frame)
    assert abs(counts["XMR-BTC"] - 3001) <= 30  # header line included; estimated from 64 KiB
    assert "XLM-BTC" not in counts  # compressed: unknown, not guessed
    assert "ADA-BTC" not in counts  # unreadable: left to the task to report
