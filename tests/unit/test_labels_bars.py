"""Every bar target together: one valid-row set, no look-ahead past label_end, the dataset the
pipeline builds from them, direction methods and the news override."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantrain.config import build_job
from quantrain.errors import ConfigError
from quantrain.features import atr, get_feature_set
from quantrain.labels import (
    HOLD,
    BarLabelSettings,
    TripleBarrierParams,
    entry_prices,
    fixed_horizon_direction,
    label_bars,
    news_override,
    target_def,
    target_names,
    volume_zscore,
)
from quantrain.pipeline import build_dataset, fit_suite
from quantrain.suite.dataset import target_of
from tests.unit.test_triple_barrier import random_walk, wilder_atr

BAR_TARGETS = target_names("ohlcv")


def settings_for(p: TripleBarrierParams, method: str = "triple_barrier") -> BarLabelSettings:
    return BarLabelSettings(
        barrier=p,
        direction_method=method,  # type: ignore[arg-type]
        neutral_band=1.0,
        tp_levels=(1.0, 2.0, 3.0),
        timing_fast=1 / 3,
        timing_clean=0.5,
    )


def test_every_bar_target_is_known_and_the_label_set_is_complete() -> None:
    assert all(target_of(name) for name in BAR_TARGETS)
    rng = np.random.default_rng(0)
    high, low, close, a = random_walk(rng, 300)
    labels = label_bars(
        high, low, close, a, settings_for(TripleBarrierParams(entry="close", horizon=10))
    )
    assert set(labels.targets) == set(BAR_TARGETS)
    valid = labels.barrier.valid
    for name, values in labels.targets.items():
        assert len(values) == 300, name
        if values.dtype.kind == "f":
            assert not np.isnan(values[valid]).any(), name
        else:
            codes = values.astype(np.int64)
            assert (codes[valid] >= 0).all() and (codes[~valid] == -1).all(), name
            classes = target_of(name).classes
            if target_def(name).resolved_by is not None:
                continue  # side outcomes (meta_label): a cascade resolves them into classes
            assert classes is not None and codes[valid].max() < len(classes), name


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(20, 120),
    horizon=st.integers(1, 15),
    method=st.sampled_from(["triple_barrier", "fixed_horizon"]),
    cut_fraction=st.floats(0.0, 1.0),
)
def test_no_bar_target_reads_past_label_end(
    seed: int, n: int, horizon: int, method: str, cut_fraction: float
) -> None:
    rng = np.random.default_rng(seed)
    params = TripleBarrierParams(entry="close", k_tp=1.0, k_sl=0.8, horizon=horizon)
    high, low, close, a = random_walk(rng, n)
    cut = int(cut_fraction * (n - 1))
    high2, low2, close2, _ = random_walk(rng, n)
    for original, other in ((high, high2), (low, low2), (close, close2)):
        other[: cut + 1] = original[: cut + 1]
    before = label_bars(high, low, close, a, settings_for(params, method))
    after = label_bars(
        high2, low2, close2, wilder_atr(high2, low2, close2, 5), settings_for(params, method)
    )
    rows = before.barrier.label_end <= cut
    for name in BAR_TARGETS:
        np.testing.assert_array_equal(
            before.targets[name][rows], after.targets[name][rows], err_msg=name
        )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    from quantrain.data import read_ohlcv
    from quantrain.jobs import sample_data_dir

    return read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame


def test_build_dataset_holds_every_bar_target_on_the_same_rows(frame: pd.DataFrame) -> None:
    spec = get_feature_set("standard")
    data = build_dataset(frame, spec, build_job({}))
    assert set(data.targets) == set(BAR_TARGETS)
    assert all(len(v) == len(data.X) for v in data.targets.values())
    assert data.bins == {"volatility_regime": (0.25, 0.5, 0.75)}
    y, fitted = data.fold_target("volatility_regime")
    assert np.bincount(y).tolist() == pytest.approx([len(y) / 4] * 4, rel=0.01)
    assert len(fitted["thresholds"]) == 3

    fixed = build_dataset(frame, spec, build_job({"labels": {"direction_method": "fixed_horizon"}}))
    high, low, close = (frame[c].to_numpy(np.float64) for c in ("high", "low", "close"))
    entry = entry_prices(frame["open"].to_numpy(np.float64), close, "next_open")
    expected = fixed_horizon_direction(
        close, atr(high, low, close, 14), horizon=48, neutral_band=1.0, entry=entry
    )
    np.testing.assert_array_equal(fixed.target("direction"), expected[fixed.bars])
    assert not np.array_equal(fixed.target("direction"), data.target("direction"))
    for name in BAR_TARGETS:  # only the direction target and the size of the trade it takes
        if name not in ("direction", "position_size", "volatility_regime"):
            np.testing.assert_array_equal(fixed.targets[name], data.targets[name], err_msg=name)
    for dataset in (data, fixed):  # a HOLD takes no trade: its size target is 0
        hold = dataset.target("direction") == HOLD
        assert hold.any()
        assert (dataset.target("position_size")[hold] == 0).all()
        assert (dataset.target("position_size")[~hold] != 0).mean() > 0.9


def test_news_override_in_the_dataset(frame: pd.DataFrame) -> None:
    spec = get_feature_set("standard")
    on = {"labels": {"news_override": {"enabled": True, "minutes": 60, "volume_z": 1.0}}}
    with pytest.raises(
        ConfigError,
        match=r"head 'direction': labels\.news_override is enabled but the bars have no event",
    ):
        build_dataset(frame, spec, build_job(on))
    closes = frame["timestamp"] + pd.Timedelta("5min")
    events = closes.iloc[::50].to_numpy()  # an event at every 50th bar's close
    position = np.searchsorted(events, closes.to_numpy(), side="right") - 1
    with_events = frame.assign(event_last_at=events[position])  # newest event at or before
    data = build_dataset(with_events, spec, build_job(on))
    plain = build_dataset(with_events, spec, build_job({}))
    gaps = (closes - with_events["event_last_at"]).dt.total_seconds() / 60
    minutes = np.asarray(gaps, dtype=np.float64)
    z = volume_zscore(frame["volume"].to_numpy(np.float64), 96)
    full = np.full(len(frame), -1, dtype=np.int8)
    full[plain.bars] = plain.target("direction")
    expected = news_override(full, minutes, z, minutes=60, min_volume_z=1.0)[plain.bars]
    np.testing.assert_array_equal(data.target("direction"), expected)
    forced = (data.target("direction") == HOLD) & (plain.target("direction") != HOLD)
    assert forced.sum() > 20  # the override really fires on the sample data


def test_a_head_whose_target_the_data_lacks_is_named(frame: pd.DataFrame) -> None:
    spec = get_feature_set("standard")
    job = build_job({"suite": "full"})
    data = build_dataset(frame, spec, job)
    lacking = replace(data, targets={k: v for k, v in data.targets.items() if k != "timing"})
    with pytest.raises(ConfigError, match="head 'timing': target 'timing' is not labelled"):
        fit_suite(lacking, symbol="X", timeframe="5m", job=job, spec=spec, fingerprint={})
