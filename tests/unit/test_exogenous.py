"""Exogenous inputs are merged as of each bar's close and never from later times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.errors import ConfigError, DataError
from quantrain.features import (
    FeatureDef,
    FeatureSpec,
    compute_features,
    get_feature_set,
    merge_exogenous,
    read_events,
    read_funding,
)

FIVE_MIN = pd.Timedelta("5min")


@pytest.fixture(scope="module")
def frame(eth_frame: pd.DataFrame) -> pd.DataFrame:
    return eth_frame.iloc[:2000].reset_index(drop=True)


@pytest.fixture(scope="module")
def funding(frame: pd.DataFrame) -> pd.DataFrame:
    times = pd.date_range(frame["timestamp"].iloc[0].floor("8h"), periods=30, freq="8h")
    rates = np.random.default_rng(3).normal(1e-4, 1e-4, len(times))
    return pd.DataFrame({"timestamp": times, "funding_rate": rates})


def spec_of(*kinds: str) -> FeatureSpec:
    return FeatureSpec(name="x", features=tuple(FeatureDef(kind=k) for k in kinds))


def test_funding_is_the_newest_value_known_at_each_close(
    frame: pd.DataFrame, funding: pd.DataFrame
) -> None:
    merged = merge_exogenous(frame, funding=funding)
    closes = frame["timestamp"] + FIVE_MIN
    for t in (0, 1, 95, 96, 97, 500, 1999):
        known = funding[funding["timestamp"] <= closes[t]]
        expected = known["funding_rate"].iloc[-1] if len(known) else np.nan
        assert merged["funding_rate"][t] == pytest.approx(expected, nan_ok=True), t
    # the rate stamped exactly at a bar's close is usable at that bar, not one bar earlier
    t = int(np.flatnonzero((closes == funding["timestamp"].iloc[3]).to_numpy())[0])
    assert merged["funding_rate"][t] == funding["funding_rate"].iloc[3]
    assert merged["funding_rate"][t - 1] == funding["funding_rate"].iloc[2]


def test_a_value_stamped_after_the_close_never_reaches_the_bar(
    frame: pd.DataFrame, funding: pd.DataFrame
) -> None:
    t = 1000
    close_t = frame["timestamp"][t] + FIVE_MIN
    late = pd.DataFrame({"timestamp": [close_t + pd.Timedelta("1s")], "funding_rate": [0.5]})
    merged = merge_exogenous(frame, funding=pd.concat([funding, late], ignore_index=True))
    base = merge_exogenous(frame, funding=funding)
    assert (merged["funding_rate"][: t + 1] == base["funding_rate"][: t + 1]).all()
    assert merged["funding_rate"][t + 1] == 0.5  # but it does reach the next bar
    spec = spec_of("funding_rate", "funding_z")
    out, ref = compute_features(merged, spec), compute_features(base, spec)
    pd.testing.assert_frame_equal(out.iloc[: t + 1], ref.iloc[: t + 1])
    assert not out.iloc[t + 1 :].equals(ref.iloc[t + 1 :])


def test_event_minutes_count_from_the_close_and_are_capped(frame: pd.DataFrame) -> None:
    start = frame["timestamp"][0]
    events = pd.DataFrame(
        {
            "timestamp": [start + pd.Timedelta(h, "h") for h in (2, 3, 10, 40)],
            "impact": ["High", "low", "medium", "HIGH"],
            "name": ["CPI", "x", "y", "FOMC"],
        }
    )
    merged = merge_exogenous(frame, events=events, min_impact="high")
    out = compute_features(merged, spec_of("event_minutes_to", "event_minutes_since"))
    to, since = out["event_minutes_to_1440"], out["event_minutes_since_1440"]
    assert to[0] == 115.0  # bar 0 closes at +5 min; CPI at +2h
    assert since[0] == 1440.0  # nothing before: capped ("far")
    assert to[22] == 5.0  # the next bar closes at the event
    assert since[23] == 0.0  # closing at +2h: the event is now the last one
    assert since[24] == 5.0
    assert to[23] == 1440.0  # FOMC is 38 h away: capped; low/medium ones are not counted
    medium = merge_exogenous(frame, events=events, min_impact="medium")
    near = compute_features(medium, spec_of("event_minutes_to"))
    assert near.iloc[24, 0] == pytest.approx(10 * 60 - 125)


def test_a_spec_needing_a_merge_names_it(frame: pd.DataFrame, funding: pd.DataFrame) -> None:
    spec = get_feature_set("standard_exo")
    assert spec.required_columns() == ["event_last_at", "event_next_at", "funding_rate"]
    needs_both = r"(?s)funding_rate, funding_z_288, event_minutes_to_1440.*merge_exogenous"
    with pytest.raises(DataError, match=needs_both + r"\(frame, events=.*funding="):
        compute_features(frame, spec)
    needs_events = r"(?s)^feature\(s\) event_minutes_to_1440, event_minutes_since_1440 read"
    with pytest.raises(DataError, match=needs_events + r".*merge_exogenous\(frame, events="):
        compute_features(merge_exogenous(frame, funding=funding), spec)
    assert get_feature_set("standard").required_columns() == []


def test_standard_exo_computes_on_a_merged_frame(
    frame: pd.DataFrame, funding: pd.DataFrame
) -> None:
    events = pd.DataFrame(
        {"timestamp": [frame["timestamp"][300], frame["timestamp"][900]], "impact": ["high"] * 2}
    )
    before = frame.copy(deep=True)
    merged = merge_exogenous(frame, funding=funding, events=events)
    pd.testing.assert_frame_equal(frame, before)  # the input is not changed
    out = compute_features(merged, get_feature_set("standard_exo"))
    tail = out.iloc[get_feature_set("standard_exo").warmup_bars("5m") :]
    assert np.isfinite(tail.to_numpy()).all()


def test_readers_accept_csv_and_parquet(tmp_path: Path, funding: pd.DataFrame) -> None:
    csv = tmp_path / "funding.csv"
    funding.assign(timestamp=funding["timestamp"].astype("int64") // 10**6).rename(
        columns={"funding_rate": "fundingRate"}
    ).to_csv(csv, index=False)
    parquet = tmp_path / "funding.parquet"
    funding.iloc[::-1].to_parquet(parquet)
    for path in (csv, parquet):
        got = read_funding(path)
        pd.testing.assert_frame_equal(got, read_funding(funding), check_dtype=False)
    events = tmp_path / "events.csv"
    events.write_text("timestamp,impact,name\n2024-01-02T13:30:00Z,High,CPI\n")
    assert read_events(events)["impact"].tolist() == [3]


def test_readers_name_the_file_row_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "funding.csv"
    bad.write_text("timestamp,funding_rate\n2024-01-01T00:00:00Z,0.0001\n2024-01-01T08:00Z,abc\n")
    with pytest.raises(DataError, match=r"funding\.csv: field 'funding_rate'.*row\(s\) \[2\]"):
        read_funding(bad)
    bad.write_text("timestamp,funding_rate\nnot a time,0.1\n")
    with pytest.raises(DataError, match=r"funding\.csv: field 'timestamp'.*row\(s\) \[1\]"):
        read_funding(bad)
    bad.write_text("when,funding_rate\n2024-01-01,0.1\n")
    with pytest.raises(DataError, match="no timestamp column"):
        read_funding(bad)
    events = tmp_path / "events.csv"
    events.write_text("timestamp,impact\n2024-01-01,high\n2024-01-02,urgent\n")
    with pytest.raises(DataError, match=r"events\.csv: field 'impact'.*'urgent'.*row\(s\) \[2\]"):
        read_events(events)
    with pytest.raises(DataError, match="file not found"):
        read_funding(tmp_path / "missing.csv")


def test_bad_merge_arguments(frame: pd.DataFrame, funding: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="min_impact"):
        merge_exogenous(frame, events=funding, min_impact="huge")
    with pytest.raises(DataError, match="timeframe='5m'"):
        merge_exogenous(frame.iloc[:1], funding=funding)
    one = merge_exogenous(frame.iloc[:1], funding=funding, timeframe="5m")
    assert len(one) == 1
