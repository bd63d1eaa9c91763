"""A journal job end to end: trade records → three heads → a package that serves predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.data.journal import read_journal
from quantrain.data.journal_sample import sample_journal_path
from quantrain.errors import PackageError
from quantrain.package import Predictor, load_native_head, read_manifest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

JOB = Path(__file__).parents[2] / "jobs" / "journal-demo.yaml"


@pytest.fixture(scope="module")
def journal_package(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("journal-store")
    result = CliRunner().invoke(main, ["run", str(JOB), "--set", f"store={store}"])
    assert result.exit_code == 0, result.output
    assert "journal-demo: run summary" in result.output and "quality" in result.output
    (package,) = (store / "ETH-BTC" / "journal").glob("2*")
    return package


def test_the_package_records_a_journal_recipe_and_three_heads(journal_package: Path) -> None:
    manifest = read_manifest(journal_package)
    assert manifest["features"]["kind"] == "journal"
    assert manifest["timeframe"] == "trades"
    assert set(manifest["heads"]) == {"signal_quality", "position_size", "tp_level"}
    assert manifest["heads"]["signal_quality"]["classes"] == ["LOSS", "WIN"]
    assert manifest["data"]["rows"] >= 300  # every sample trade has all three outcomes


def test_predictions_from_raw_records_match_the_native_models(journal_package: Path) -> None:
    records = [json.loads(line) for line in sample_journal_path().read_text().splitlines()]
    predictor = Predictor(journal_package)
    from_records = predictor.predict_records(records[-50:])
    from_frame = predictor.predict_records(read_journal(sample_journal_path()).frame.tail(50))
    pd.testing.assert_frame_equal(from_records, from_frame)
    quality = load_native_head(journal_package, "signal_quality")
    X = predictor.spec.matrix(read_journal(sample_journal_path()).frame.tail(50))
    native = quality.predict_proba(X)
    np.testing.assert_allclose(from_records["signal_quality_p_WIN"], native[:, 1], atol=1e-5)
    assert set(from_records["signal_quality"]) <= {"LOSS", "WIN"}
    assert from_records["tp_level"].isin(["TP0", "TP1", "TP2", "TP3"]).all()


def test_a_record_missing_fields_still_gets_a_prediction(journal_package: Path) -> None:
    record = json.loads(sample_journal_path().read_text().splitlines()[0])
    del record["market"]
    (row,) = Predictor(journal_package).predict_records([record]).to_dict("records")
    assert not row["features_complete"]
    assert row["signal_quality"] in ("LOSS", "WIN")
    assert np.isfinite(row["position_size"])


def test_bars_are_refused_by_a_journal_package(
    journal_package: Path, eth_frame: pd.DataFrame
) -> None:
    with pytest.raises(PackageError, match="trained on trade-journal records"):
        Predictor(journal_package).predict(eth_frame)


def test_the_predict_command_reads_a_journal(journal_package: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(
        main, ["predict", str(journal_package), str(sample_journal_path()), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(out)
    assert len(predictions) == read_journal(sample_journal_path()).records
    assert {"id", "signal_quality", "signal_quality_p_WIN", "tp_level"} <= set(predictions)


def test_too_few_trades_skips_training_with_a_clear_message(
    ray_cluster: None, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main, ["run", str(JOB), "--set", f"store={tmp_path}", "--set", "data.min_samples=5000"]
    )
    assert result.exit_code == 1
    assert "need at least 5000 (data.min_samples), so training is skipped" in result.output
    assert not list(tmp_path.rglob("manifest.json"))
