"""Trade journals: flattening, robust typing, layouts, errors, encodings, targets, the sample."""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quantrain.data import read_ohlcv
from quantrain.data.journal import (
    DIRECTION_CODES,
    JOURNAL_FEATURES,
    JOURNAL_TARGETS,
    REGIME_CODES,
    FieldReport,
    Journal,
    encode_features,
    flatten_record,
    journal_targets,
    read_journal,
)
from quantrain.data.journal_sample import (
    SAMPLE_SYMBOL,
    generate_journal,
    sample_journal_path,
    to_jsonl,
)
from quantrain.errors import DataError
from quantrain.jobs import sample_data_dir

EXAMPLE: dict[str, Any] = {
    "id": "ETH-BTC-000123",
    "asset": "ETH-BTC",
    "opened_at": "2018-01-12T03:05:00Z",
    "closed_at": "2018-01-12T06:40:00Z",
    "signal": {"direction": "long", "strength": 0.62, "sources": ["ema_cross", "rsi_reversal"]},
    "market": {
        "regime": "trending",
        "volatility": 0.0121,
        "funding": None,
        "atr_pct": 0.0093,
        "trend_strength": 0.41,
    },
    "session": {"utcHour": 3, "weekday": 4},
    "outcome": {
        "pnl": 0.0031,
        "r_multiple": 1.2,
        "max_adverse_excursion": 0.004,
        "max_favourable_excursion": 0.009,
        "tp_level": 2,
        "bars_held": 43,
    },
}

# Fields known at entry: a causal generator must produce them from bars ≤ the signal bar.
ENTRY_KEYS = ("id", "asset", "opened_at", "signal", "market", "session")
HORIZON = 48


def _trade(i: int, **changes: Any) -> dict[str, Any]:
    """The example record, opened i hours later, with top-level keys replaced (None deletes)."""
    record = copy.deepcopy(EXAMPLE)
    record["id"] = f"T{i}"
    record["opened_at"] = f"2018-01-12T{3 + i:02d}:05:00Z"
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def _jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _features_of(journal: Journal) -> dict[str, FieldReport]:
    return {report.name: report for report in journal.fields}


# -- flattening -------------------------------------------------------------------------------


def test_flatten_the_example_record() -> None:
    flat = flatten_record(EXAMPLE)
    funding = flat.pop("market.funding")
    assert math.isnan(funding)
    assert flat == {
        "id": "ETH-BTC-000123",
        "asset": "ETH-BTC",
        "opened_at": "2018-01-12T03:05:00Z",
        "closed_at": "2018-01-12T06:40:00Z",
        "signal.direction": "long",
        "signal.strength": 0.62,
        "signal.sources_count": 2,
        "market.regime": "trending",
        "market.volatility": 0.0121,
        "market.atr_pct": 0.0093,
        "market.trend_strength": 0.41,
        "session.utcHour": 3,
        "session.weekday": 4,
        "outcome.pnl": 0.0031,
        "outcome.r_multiple": 1.2,
        "outcome.max_adverse_excursion": 0.004,
        "outcome.max_favourable_excursion": 0.009,
        "outcome.tp_level": 2,
        "outcome.bars_held": 43,
    }
    assert set(JOURNAL_FEATURES) <= {*flat, "market.funding"}


def test_flatten_lists_booleans_and_deep_nesting() -> None:
    flat = flatten_record(
        {
            "a": {"b": {"c": 1}},
            "fills": [1.0, 2.0, 6.0],
            "tags": [],
            "news": [{"score": 1}],
            "flags": {"paper": True, "live": False},
        }
    )
    assert flat == {
        "a.b.c": 1,
        "fills_count": 3,
        "fills_mean": 3.0,
        "tags_count": 0,
        "news_count": 1,
        "flags.paper": 1,
        "flags.live": 0,
    }
    with pytest.raises(TypeError):
        flatten_record([1, 2])  # type: ignore[arg-type]


# -- missing and invalid values ---------------------------------------------------------------


def test_missing_keys_are_nan_and_counted_per_field(tmp_path: Path) -> None:
    records = [
        _trade(0),
        _trade(1, market=None),  # no "market" at all
        {**_trade(2), "market": None},  # explicit null
        _trade(3, signal={"direction": "short"}),
    ]
    journal = read_journal(_jsonl(tmp_path / "j.jsonl", records))
    assert journal.records == 4
    frame = journal.frame
    assert frame["market.regime"].isna().tolist() == [False, True, True, False]
    assert frame["market.volatility"].isna().tolist() == [False, True, True, False]
    assert frame["signal.strength"].isna().tolist() == [False, False, False, True]
    reports = _features_of(journal)
    assert reports["market.regime"] == FieldReport("market.regime", 2, 2, 0)
    assert reports["market.volatility"] == FieldReport("market.volatility", 2, 2, 0)
    assert reports["market.funding"] == FieldReport("market.funding", 0, 4, 0)
    assert reports["signal.sources_count"] == FieldReport("signal.sources_count", 3, 1, 0)
    assert reports["signal.direction"] == FieldReport("signal.direction", 4, 0, 0)
    assert "market" not in frame.columns  # a null object is its fields missing, not a field
    assert journal.report("market.regime").missing == 2
    worst = journal.incomplete_fields()[0]
    assert worst.name == "market.funding"
    assert all(r.present + r.missing + r.invalid == 4 for r in journal.fields)


def test_every_known_field_is_a_column_even_when_no_record_has_it(tmp_path: Path) -> None:
    bare = {"id": "x", "opened_at": "2018-01-12T03:05:00Z"}
    journal = read_journal(_jsonl(tmp_path / "j.jsonl", [bare]))
    targets = [t.field for t in JOURNAL_TARGETS.values()]
    for name in (*JOURNAL_FEATURES, *targets):
        assert journal.frame[name].isna().all()
        assert journal.report(name) == FieldReport(name, 0, 1, 0)
    assert journal.frame["asset"].tolist() == ["UNKNOWN"]
    assert journal.report("asset").missing == 1


def test_wrong_types_are_nan_and_counted_invalid(tmp_path: Path) -> None:
    records = [
        _trade(0),
        _trade(1, signal={"direction": "long", "strength": "abc", "sources": []}),
        _trade(2, signal={"direction": 1, "strength": "0.5"}),  # numeric string is a number
        _trade(3, market={**EXAMPLE["market"], "regime": "sideways-ish", "volatility": [1]}),
        _trade(4, session={"utcHour": 25, "weekday": 2.5}, outcome={"tp_level": 7}),
        _trade(5, market={**EXAMPLE["market"], "regime": 2}),
    ]
    journal = read_journal(_jsonl(tmp_path / "j.jsonl", records))
    frame = journal.frame
    reports = _features_of(journal)
    assert reports["signal.strength"] == FieldReport("signal.strength", 5, 0, 1)
    np.testing.assert_array_equal(frame["signal.strength"][:3], [0.62, np.nan, 0.5])
    assert reports["signal.direction"] == FieldReport("signal.direction", 5, 0, 1)
    assert reports["market.regime"] == FieldReport("market.regime", 4, 0, 2)
    assert frame["market.regime"].isna().tolist() == [False] * 3 + [True, False, True]
    # A list where a number belongs is a shape change: its count is a field, the value missing.
    assert reports["market.volatility"].missing == 1
    assert reports["session.utcHour"].invalid == 1
    assert reports["session.weekday"].invalid == 1
    assert reports["outcome.tp_level"] == FieldReport("outcome.tp_level", 5, 0, 1)
    assert frame["signal.strength"].dtype == np.float64
    assert frame["market.volatility"].dtype == np.float64


def test_a_scalar_where_others_have_an_object_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [_trade(0), _trade(1, market="n/a")]
    with caplog.at_level(logging.WARNING, logger="quantrain.data.journal"):
        journal = read_journal(_jsonl(tmp_path / "j.jsonl", records))
    assert "market" not in journal.frame.columns
    assert journal.report("market.regime") == FieldReport("market.regime", 1, 1, 0)
    assert any("market is a plain value" in r.getMessage() for r in caplog.records)


def test_assets_are_normalised_and_ids_fall_back_to_the_position(tmp_path: Path) -> None:
    records = [
        _trade(0, asset="eth/btc"),
        _trade(1, asset="ETH_BTC", id=None),
        _trade(2, asset="???"),
        _trade(3, asset=None, id=42),
    ]
    journal = read_journal(_jsonl(tmp_path / "j.jsonl", records))
    assert journal.frame["asset"].tolist() == ["ETH-BTC", "ETH-BTC", "UNKNOWN", "UNKNOWN"]
    assert journal.report("asset") == FieldReport("asset", 2, 1, 1)
    assert journal.frame["id"].tolist() == ["T0", "line 2", "T2", "42"]


# -- timestamps and ordering ------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    [
        "2018-01-12T03:05:00Z",
        "2018-01-12T03:05:00",  # no zone: UTC
        "2018-01-12 04:05:00+01:00",
        1515726300,  # epoch seconds
        1515726300000,  # epoch milliseconds
        "1515726300",
        1515726300.0,
    ],
)
def test_timestamps_are_utc(tmp_path: Path, stamp: object) -> None:
    journal = read_journal(_jsonl(tmp_path / "j.jsonl", [_trade(0, opened_at=stamp)]))
    assert journal.frame["opened_at"].tolist() == [pd.Timestamp("2018-01-12T03:05:00Z")]
    assert str(journal.frame["opened_at"].dtype) == "datetime64[ns, UTC]"
    assert journal.frame["closed_at"].tolist() == [pd.Timestamp("2018-01-12T06:40:00Z")]


def test_closed_before_opened_is_invalid_and_repeated_ids_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [_trade(0, closed_at="2018-01-12T01:00:00Z"), _trade(1, id="T0")]
    with caplog.at_level(logging.WARNING, logger="quantrain.data.journal"):
        journal = read_journal(_jsonl(tmp_path / "j.jsonl", records))
    assert journal.frame["closed_at"].isna().tolist() == [True, False]
    assert journal.report("closed_at") == FieldReport("closed_at", 1, 0, 1)
    assert any("1 record(s) repeat an earlier id" in r.getMessage() for r in caplog.records)


def test_rows_are_sorted_by_opened_at_stably(tmp_path: Path) -> None:
    late, early = _trade(5), _trade(1)
    tie = _trade(1, id="T1b")
    journal = read_journal(_jsonl(tmp_path / "j.jsonl", [late, early, tie]))
    assert journal.frame["id"].tolist() == ["T1", "T1b", "T5"]
    assert journal.frame.index.tolist() == [0, 1, 2]


def test_records_without_opened_at_are_dropped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [_trade(0), _trade(1, opened_at=None), _trade(2, opened_at="soon"), _trade(3)]
    with caplog.at_level(logging.WARNING, logger="quantrain.data.journal"):
        journal = read_journal(_jsonl(tmp_path / "j.jsonl", records))
    assert journal.records == 2
    assert journal.frame["id"].tolist() == ["T0", "T3"]
    assert (journal.dropped, journal.first_dropped) == (2, "line 2")
    assert journal.report("opened_at") == FieldReport("opened_at", 2, 1, 1)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "dropped 2 record(s) without a usable opened_at (first: line 2)" in warning


def test_a_journal_with_no_usable_record_is_refused(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "j.jsonl", [_trade(0, opened_at=None)])
    with pytest.raises(DataError, match=r"j.jsonl: none of 1 records has an opened_at\n  fix:"):
        read_journal(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match=r"empty.jsonl: no trade records"):
        read_journal(empty)


# -- layouts ----------------------------------------------------------------------------------


def _array(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


LAYOUTS: dict[str, tuple[str, Callable[[Path, list[Any]], Path]]] = {
    "array": (".json", _array),
    "trades": (".json", lambda p, r: _array(p, {"trades": r})),
    "records": (".json", lambda p, r: _array(p, {"records": r, "bot": "v1"})),
    "jsonl": (".jsonl", _jsonl),
    "ndjson": (".ndjson", _jsonl),
    "json-that-is-jsonl": (".json", _jsonl),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_reads_the_same(tmp_path: Path, layout: str) -> None:
    records = [_trade(0), _trade(2, market=None), _trade(1, signal={"direction": "sell"})]
    reference = read_journal(_jsonl(tmp_path / "reference.jsonl", records))
    extension, write = LAYOUTS[layout]
    journal = read_journal(write(tmp_path / f"journal{extension}", records))
    pd.testing.assert_frame_equal(journal.frame, reference.frame)
    assert journal.fields == reference.fields
    assert journal.records == 3


def test_a_single_record_object_is_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(EXAMPLE, indent=2))
    assert read_journal(path).frame["id"].tolist() == ["ETH-BTC-000123"]


# -- errors -----------------------------------------------------------------------------------


def test_a_bad_jsonl_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_trade(0)) + "\n\n" + '{"id": "T1", "opened_at": \n')
    with pytest.raises(DataError) as info:
        read_journal(path)
    first, fix = str(info.value).splitlines()
    assert first.startswith(f"{path}: line 3: not valid JSON: ")
    assert fix.startswith("  fix: ")


def test_bad_json_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"id": "T0"},\n  {"id": oops}\n]')
    with pytest.raises(DataError, match=r"bad.json: line 3: not valid JSON: Expecting value"):
        read_journal(path)


@pytest.mark.parametrize(
    ("content", "extension", "message"),
    [
        ([EXAMPLE, [1, 2]], ".json", r"record 1 \(0-based\) is a list, expected an object"),
        ({"trades": [EXAMPLE, "x"]}, ".json", r"trades\[1\] \(0-based\) is a string, expected"),
        ([EXAMPLE, 5], ".jsonl", "line 2 is a number, expected an object"),
        ([EXAMPLE, None], ".jsonl", "line 2 is null, expected an object"),
    ],
)
def test_a_record_that_is_not_an_object_is_refused_with_its_index(
    tmp_path: Path, content: Any, extension: str, message: str
) -> None:
    path = tmp_path / f"j{extension}"
    if extension == ".json":
        path.write_text(json.dumps(content))
    else:
        _jsonl(path, content)
    with pytest.raises(DataError, match=message) as info:
        read_journal(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n  fix: " in str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("j.csv", "a,b\n", "unsupported journal file type\n  fix: use one of .json, .jsonl"),
        ("j.json", '{"bot": "v1"}', "a JSON object without a 'trades' or 'records' list"),
        ("j.json", "42", "top level is a number"),
        ("j.json", "", "line 1: not valid JSON"),
    ],
)
def test_files_that_are_not_journals_are_refused(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_journal(path)


def test_missing_files_directories_and_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope.jsonl: file not found\n  fix: check the path"):
        read_journal(tmp_path / "nope.jsonl")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(DataError, match=r"dir.json: is a directory"):
        read_journal(tmp_path / "dir.json")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DataError, match=r"bin.jsonl: not UTF-8 text"):
        read_journal(binary)


def test_file_uris_are_local_paths(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "j.jsonl", [_trade(0)])
    assert read_journal(f"file://{path}").records == 1


# -- model inputs -----------------------------------------------------------------------------


def test_encode_features_uses_the_fixed_vocabularies(tmp_path: Path) -> None:
    records = [
        _trade(0),
        _trade(1, signal={"direction": "SELL", "strength": 0.1, "sources": ["a"]}),
        _trade(2, signal={"direction": "flat"}, market={"regime": "Trending-Down"}),
        _trade(3, signal={"direction": "short"}, market={"regime": "volatile", "funding": 1e-4}),
        _trade(4, signal={"direction": "buy"}, market={"regime": "ranging"}),
    ]
    journal = read_journal(_jsonl(tmp_path / "j.jsonl", records))
    matrix = encode_features(journal.frame)
    assert matrix.dtype == np.float32
    assert matrix.shape == (5, len(JOURNAL_FEATURES))
    column = {name: matrix[:, j] for j, name in enumerate(JOURNAL_FEATURES)}
    assert column["signal.direction"].tolist() == [1, -1, 0, -1, 1]
    assert column["market.regime"].tolist() == [1, 1, 1, 2, 0]
    assert column["signal.sources_count"][:2].tolist() == [2, 1]
    np.testing.assert_array_equal(np.isnan(column["market.funding"]), [1, 1, 1, 0, 1])
    np.testing.assert_allclose(column["market.volatility"][:2], [0.0121, 0.0121], rtol=1e-6)
    np.testing.assert_allclose(column["session.utcHour"], 3)
    # Deterministic, and independent of which other rows are in the frame.
    np.testing.assert_array_equal(matrix, encode_features(journal.frame.copy()))
    for i in range(5):
        np.testing.assert_array_equal(encode_features(journal.frame.iloc[[i]]), matrix[[i]])
    assert DIRECTION_CODES["long"] == 1 and REGIME_CODES["trending"] == 1


def test_encode_features_on_one_live_record_matches_training(tmp_path: Path) -> None:
    journal = read_journal(_jsonl(tmp_path / "j.jsonl", [_trade(0), _trade(1, market=None)]))
    for i, record in enumerate([_trade(0), _trade(1, market=None)]):
        live = pd.DataFrame([flatten_record(record)])  # lacks every market.* column in row 2
        np.testing.assert_array_equal(encode_features(live), encode_features(journal.frame)[[i]])


def test_encode_features_unknown_values_and_absent_columns_are_nan() -> None:
    frame = pd.DataFrame(
        {"signal.direction": ["long", "upwards", None], "market.regime": ["chaos", 1, "range"]}
    )
    matrix = encode_features(frame, ["signal.direction", "market.regime", "market.atr_pct"])
    expected = [[1, np.nan, np.nan], [np.nan, np.nan, np.nan], [np.nan, 0, np.nan]]
    np.testing.assert_array_equal(matrix, np.array(expected, dtype=np.float32))


# -- targets ----------------------------------------------------------------------------------


def test_journal_targets(tmp_path: Path) -> None:
    outcomes = [
        {"pnl": 0.01, "r_multiple": 5.0, "tp_level": 3},
        {"pnl": 0.0, "r_multiple": -0.1, "tp_level": 0},
        {"pnl": -0.02, "r_multiple": -4.0, "tp_level": 1},
        None,  # an open trade: no outcome yet
        {"pnl": "n/a", "r_multiple": 1.5, "tp_level": 2},
    ]
    records = [_trade(i, outcome=o) for i, o in enumerate(outcomes)]
    targets = journal_targets(read_journal(_jsonl(tmp_path / "j.jsonl", records)).frame)
    assert set(targets) == set(JOURNAL_TARGETS) == {"signal_quality", "position_size", "tp_level"}
    assert all(v.dtype == np.float64 for v in targets.values())
    nan = np.nan
    np.testing.assert_array_equal(targets["signal_quality"], [1, 0, 0, nan, nan])
    np.testing.assert_array_equal(targets["position_size"], [3, -0.1, -2, nan, 1.5])
    np.testing.assert_array_equal(targets["tp_level"], [3, 0, 1, nan, 2])
    from quantrain.labels import target_def, target_names

    assert set(JOURNAL_TARGETS) == set(target_names("journal"))  # recipes for the catalogue's
    assert target_def("signal_quality").classes == ("LOSS", "WIN")
    assert target_def("tp_level").classes == ("TP0", "TP1", "TP2", "TP3")
    assert target_def("position_size").task == "regression"


def test_journal_targets_without_outcome_columns_are_nan() -> None:
    targets = journal_targets(pd.DataFrame({"outcome.tp_level": [2.5, 1.0]}))
    np.testing.assert_array_equal(targets["tp_level"], [np.nan, 1.0])
    assert np.isnan(targets["signal_quality"]).all()
    assert np.isnan(targets["position_size"]).all()


# -- the bundled sample -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return read_ohlcv(sample_data_dir() / f"{SAMPLE_SYMBOL}_5m.parquet").frame


@pytest.fixture(scope="module")
def generated(bars: pd.DataFrame) -> list[dict[str, Any]]:
    return generate_journal(bars, SAMPLE_SYMBOL)


def test_the_sample_journal_reads_with_every_feature_mostly_present() -> None:
    journal = read_journal(sample_journal_path())
    assert journal.records >= 300
    assert journal.dropped == 0
    assert sample_journal_path().stat().st_size < 400_000
    for name in JOURNAL_FEATURES:
        report = journal.report(name)
        assert report.invalid == 0
        if name == "market.funding":  # spot bars have no funding rate: null in every record
            assert report.missing == journal.records
        else:
            assert report.present >= 0.95 * journal.records, report
    # About 2% of records miss one market field, on purpose.
    gaps = sum(r.missing for r in journal.fields if r.name != "market.funding")
    assert 1 <= gaps <= 0.05 * journal.records
    targets = journal_targets(journal.frame)
    quality = targets["signal_quality"]
    assert not np.isnan(quality).any()
    assert 0.15 < quality.mean() < 0.85  # both classes, neither rare
    assert set(np.unique(targets["tp_level"]).tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert np.all((targets["position_size"] >= -2) & (targets["position_size"] <= 3))
    features = encode_features(journal.frame)
    assert not np.isnan(features[:, JOURNAL_FEATURES.index("signal.direction")]).any()
    assert not np.isnan(features[:, JOURNAL_FEATURES.index("market.regime")]).all()


def test_generate_journal_reproduces_the_committed_sample(generated: list[dict[str, Any]]) -> None:
    committed = sample_journal_path().read_text(encoding="utf-8")
    assert to_jsonl(generated) == committed, (
        "the sample journal is stale: python -m quantrain.data.journal_sample"
    )


@pytest.mark.parametrize("cut", [2000, 4100])
def test_entry_fields_do_not_look_ahead(
    bars: pd.DataFrame, generated: list[dict[str, Any]], cut: int
) -> None:
    """Regenerating from bars cut at T keeps every entry-time field of trades signalled before
    T - horizon; only outcomes may need later bars, and those trades' outcomes are complete."""
    truncated = generate_journal(bars.iloc[:cut].reset_index(drop=True), SAMPLE_SYMBOL)
    stamps = pd.DatetimeIndex(bars["timestamp"])

    def signal_bar(record: dict[str, Any]) -> int:
        return int(stamps.get_loc(pd.Timestamp(record["opened_at"]))) - 1

    before = [r for r in generated if signal_bar(r) < cut - HORIZON]
    assert len(before) > 50
    assert len(truncated) == len(before)
    for full, cut_record in zip(before, truncated, strict=True):
        assert {k: full[k] for k in ENTRY_KEYS} == {k: cut_record[k] for k in ENTRY_KEYS}
    assert all(signal_bar(r) < cut - HORIZON for r in truncated)


def _other_future(bars: pd.DataFrame, cut: int) -> pd.DataFrame:
    """The same bars up to ``cut``, then a different future: moves mirrored and doubled (a
    rally becomes a steeper drop, so trends, returns and ranges all change)."""
    changed = bars.copy()
    pivot = float(bars["close"].iloc[cut - 1])
    future = bars.iloc[cut:]

    def mirrored(column: str) -> pd.Series:
        return pivot - 2.0 * (future[column] - pivot)

    changed.loc[future.index, "open"] = mirrored("open")
    changed.loc[future.index, "close"] = mirrored("close")
    changed.loc[future.index, "high"] = mirrored("low")
    changed.loc[future.index, "low"] = mirrored("high")
    assert (changed["low"] > 0).all()
    return changed


def test_entry_fields_ignore_every_future_bar(
    bars: pd.DataFrame, generated: list[dict[str, Any]]
) -> None:
    """Changing every bar after a trade's signal bar leaves its entry-time fields alone, even
    against a one-bar look-ahead (truncation only catches look-ahead beyond the horizon)."""
    stamps = pd.DatetimeIndex(bars["timestamp"])
    checked = 0
    for record in generated[::12]:
        entry_bar = int(stamps.get_loc(pd.Timestamp(record["opened_at"])))
        if entry_bar + HORIZON >= len(bars):
            continue
        changed = generate_journal(_other_future(bars, entry_bar), SAMPLE_SYMBOL)
        (same,) = [r for r in changed if r["opened_at"] == record["opened_at"]]
        assert {k: same[k] for k in ENTRY_KEYS} == {k: record[k] for k in ENTRY_KEYS}
        assert same["outcome"] != record["outcome"]  # the future did change
        checked += 1
    assert checked >= 30


def test_generate_journal_is_deterministic_and_seeded(
    bars: pd.DataFrame, generated: list[dict[str, Any]]
) -> None:
    head = bars.iloc[:1500].reset_index(drop=True)
    assert generate_journal(head, SAMPLE_SYMBOL) == generate_journal(head, SAMPLE_SYMBOL)
    other = generate_journal(bars, "eth/btc", seed=8)
    assert [r["outcome"] for r in other] == [r["outcome"] for r in generated]
    assert [r["market"] for r in other] != [r["market"] for r in generated]  # other gaps
    assert other[0]["id"].startswith("ETH-BTC-")


def test_generated_outcomes_are_consistent(generated: list[dict[str, Any]]) -> None:
    for record in generated:
        outcome = record["outcome"]
        assert 1 <= outcome["bars_held"] <= HORIZON
        assert outcome["max_adverse_excursion"] >= 0
        assert outcome["max_favourable_excursion"] >= 0
        assert outcome["tp_level"] in (0, 1, 2, 3)
        assert -2 <= outcome["r_multiple"] <= 3
        assert np.sign(outcome["r_multiple"]) == np.sign(outcome["pnl"])
        assert 0 <= record["signal"]["strength"] <= 1
        assert record["signal"]["sources"]
        assert record["closed_at"] > record["opened_at"]
        assert record["market"]["funding"] is None
