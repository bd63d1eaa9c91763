"""One symbol end to end on real data: honest folds, every head, a failure that stays local."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain import pipeline
from quantrain.config import JobConfig
from quantrain.data import DataSource, read_ohlcv
from quantrain.errors import DataError
from quantrain.features import get_feature_set
from quantrain.pipeline import build_dataset, run_symbol, train_suite
from quantrain.split import walk_forward
from quantrain.store import open_store

from ..conftest import SAMPLE_DIR, fast_job, package_path


def test_no_training_label_reaches_into_its_test_window(eth_frame: pd.DataFrame) -> None:
    job = JobConfig()
    data = build_dataset(eth_frame, get_feature_set(job.features), job)
    folds = walk_forward(len(data.bars), n_folds=3, label_end=data.label_end, min_train=500)
    for fold in folds:
        last_bar_seen_by_training = data.labels.label_end[data.bars[fold.train]].max()
        assert last_bar_seen_by_training < data.bars[fold.test[0]]
        assert fold.purged > 0


def test_dataset_rows_have_features_and_labels(eth_frame: pd.DataFrame) -> None:
    job = JobConfig()
    data = build_dataset(eth_frame, get_feature_set(job.features), job)
    assert np.isfinite(data.X).all()
    assert (data.labels.valid[data.bars]).all()
    assert data.bars[-1] <= len(eth_frame) - 1 - job.labels.horizon
    assert (np.diff(data.bars) > 0).all()


def test_suite_reports_fold_and_pooled_metrics(eth_frame: pd.DataFrame) -> None:
    suite = train_suite(eth_frame, symbol="ETH-BTC", timeframe="5m", job=JobConfig())
    direction, size = suite.heads
    assert len(direction.folds) == 3
    assert 0.2 < direction.oos["balanced_accuracy"] < 0.8
    assert direction.oos["rows"] == sum(f["rows"] for f in direction.folds)
    assert size.oos["mae"] > 0
    starts = [f["test_start"] for f in suite.folds]
    assert starts == sorted(starts)


def test_too_little_history_is_a_clear_error(eth_frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="usable rows"):
        train_suite(eth_frame.head(900), symbol="ETH-BTC", timeframe="5m", job=JobConfig())


def test_bad_file_becomes_a_failed_result(tmp_path: Path) -> None:
    bad = tmp_path / "BAD-BTC_5m.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n")
    result = run_symbol(DataSource("BAD-BTC", "5m", bad), fast_job(tmp_path / "models"))
    assert not result.ok
    assert result.error is not None and str(bad) in result.error
    assert not (tmp_path / "models").exists()


def test_timeframe_in_name_must_match_the_data(sample_dir: Path, tmp_path: Path) -> None:
    source = DataSource("ETH-BTC", "1h", sample_dir / "ETH-BTC_5m.parquet")
    result = run_symbol(source, fast_job(tmp_path / "models"))
    assert not result.ok
    assert result.error is not None and "1h" in result.error and "5m" in result.error


def test_a_retried_symbol_with_a_fixed_version_publishes_once(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Ray retry after node loss does: same version name, so no duplicate version."""
    source = DataSource("ETH-BTC", "5m", sample_dir / "ETH-BTC_5m.parquet")
    job = fast_job(tmp_path / "store", promote={"channel": "approved"})
    first = run_symbol(source, job, version="20260101T000000Z-retry1")
    assert first.ok, first.error
    calls: list[str] = []
    original = pipeline.train_suite

    def counting_train_suite(*args: object, **kwargs: object) -> object:
        calls.append("trained")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "train_suite", counting_train_suite)
    again = run_symbol(source, job, version="20260101T000000Z-retry1")
    assert again.ok and again.version == first.version and again.metrics == first.metrics
    assert calls == []  # the complete version was found, not trained and pushed again
    store = open_store(str(tmp_path / "store"))
    assert [v.version for v in store.versions()] == ["20260101T000000Z-retry1"]
    assert store.versions()[0].channels == ("approved",)


def test_run_symbol_trains_on_frames_shipped_by_the_driver(
    eth_frame: pd.DataFrame, tmp_path: Path
) -> None:
    loaded = read_ohlcv(SAMPLE_DIR / "ETH-BTC_5m.parquet")
    source = DataSource("ETH-BTC", "5m", "/path/only/the/driver/had/ETH-BTC_5m.parquet")
    result = run_symbol(source, fast_job(tmp_path / "store"), loaded=loaded)
    assert result.ok, result.error
    assert result.rows == len(eth_frame)


def test_packages_record_training_time_and_the_next_run_starts_the_longest_first(
    trained_store: Path, sample_dir: Path
) -> None:
    from quantrain.orchestration.fanout import submission_order

    recorded = {}
    for symbol in ("ETH-BTC", "LTC-BTC"):
        manifest = json.loads((package_path(trained_store, symbol) / "manifest.json").read_text())
        recorded[symbol] = manifest["train_seconds"]
        assert 0 < recorded[symbol] < 600
    sources = [DataSource(s, "5m", sample_dir / f"{s}_5m.parquet") for s in recorded]
    expected = sorted(recorded, key=lambda s: -recorded[s])
    for given in (sources, sources[::-1]):
        ordered = submission_order(given, fast_job(trained_store), None)
        assert [s.symbol for s in ordered] == expected
