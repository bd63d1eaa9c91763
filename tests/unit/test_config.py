"""Job configuration rules that span sections: data kind vs head targets, sources, promotion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantrain.config import build_job
from quantrain.errors import ConfigError
from quantrain.labels import target_names


def test_a_journal_job_without_a_suite_trains_the_journal_heads() -> None:
    job = build_job({"data": {"kind": "journal"}})  # path null: the bundled sample journal
    assert job.suite.name == "journal"
    assert tuple(h.target for h in job.suite.heads) == target_names("journal")


def test_a_head_whose_target_the_data_cannot_label_is_refused() -> None:
    raw = {
        "data": {"kind": "journal", "path": "trades.jsonl"},
        "suite": {"heads": [{"name": "d", "target": "direction"}]},
    }
    with pytest.raises(ConfigError, match="target 'direction' cannot be labelled from journal"):
        build_job(raw)
    bars = {"suite": {"heads": [{"name": "q", "target": "signal_quality"}]}}
    with pytest.raises(ConfigError, match="targets for ohlcv: direction, position_size"):
        build_job(bars)


def test_an_exchange_source_needs_a_dataset_and_symbols() -> None:
    with pytest.raises(ConfigError, match=r"data\.exchange needs data\.path") as error:
        build_job({"data": {"exchange": {"name": "binance"}}})
    assert "got {" not in str(error.value)  # a section-level message is not followed by a dump
    job = build_job(
        {"data": {"path": "data/binance", "symbols": ["BTC/USDT"], "exchange": {"name": "binance"}}}
    )
    assert job.data.exchange is not None and job.data.exchange.timeframe == "1h"


def test_promotion_metric_must_have_a_known_direction() -> None:
    with pytest.raises(ConfigError, match="no known direction"):
        build_job({"promote": {"if_better": "direction.rows"}})
    job = build_job({"promote": {"if_better": "position_size.mae"}})
    assert job.promote is not None and job.promote.channel == "approved"


def test_ray_retry_and_locality_settings() -> None:
    job = build_job({}, ["ray.max_retries=0", "ray.allow_local=true"])
    assert job.ray.max_retries == 0 and job.ray.allow_local
    with pytest.raises(ConfigError, match="max_retries"):
        build_job({"ray": {"max_retries": -1}})


def test_the_risk_ceiling_comes_from_the_profile_or_an_override() -> None:
    assert build_job({}).evaluate.risk.max_drawdown is None  # profile 3's 15 % applies
    job = build_job({}, ["evaluate.risk.max_drawdown=0.08", "evaluate.risk.profile=1"])
    assert job.evaluate.risk.max_drawdown == 0.08 and job.evaluate.risk.profile == 1
    with pytest.raises(ConfigError, match=r"evaluate\.risk\.profile"):
        build_job({"evaluate": {"risk": {"profile": 6}}})


def test_the_run_summary_is_saved_with_every_key_metric(tmp_path: Path) -> None:
    from quantrain.jobs import RunSummary
    from quantrain.pipeline import SymbolResult

    results = [
        SymbolResult(
            symbol="ETH-BTC",
            ok=True,
            rows=5760,
            version="v1",
            metrics={"direction.balanced_accuracy": 0.39},
            backtest={"total_return": -0.18, "random_percentile": 99.0},
        ),
        SymbolResult(symbol="BAD-BTC", ok=False, error="data.parquet: row 3 is broken"),
    ]
    saved = RunSummary(build_job({"name": "nightly"}), results).save(tmp_path / "runs")
    assert saved.name.startswith("nightly-") and saved.suffix == ".csv"
    table = pd.read_csv(saved)
    assert list(table["symbol"]) == ["ETH-BTC", "BAD-BTC"]
    assert table.loc[0, "backtest.total_return"] == -0.18
    assert table.loc[1, "error"] == "data.parquet: row 3 is broken"


def test_a_suite_can_be_named() -> None:
    from quantrain.config import NAMED_SUITES, load_job

    full = build_job({"suite": "full"})
    assert full.suite.name == "full" and full.suite.heads == NAMED_SUITES["full"]
    assert build_job({}).suite == build_job({"suite": "core"}).suite  # core stays the default
    quantiles = {h.name: h.params.get("quantile") for h in full.suite.heads}
    assert quantiles["stop_loss_q50"] == 0.5 and quantiles["stop_loss_q90"] == 0.9
    assert {h.target for h in full.suite.heads} <= set(target_names("ohlcv"))
    shipped = load_job(Path(__file__).parents[2] / "jobs" / "full.yaml")
    assert shipped.suite == full.suite
    with pytest.raises(ConfigError) as error:
        build_job({"suite": "fulll"})
    assert "suite: unknown suite name; named suites: core, full" in str(error.value)
    with pytest.raises(ConfigError, match="cannot be labelled from journal data"):
        build_job({"data": {"kind": "journal"}, "suite": "full"})


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ({"tp_levels": [1.0, 3.0, 2.0]}, r"labels\.tp_levels: expected 3 strictly increasing"),
        ({"tp_levels": [1.0, 2.0]}, r"labels\.tp_levels: expected 3 .*classes TP0-TP3"),
        ({"regime_quantiles": [0.2, 0.5, 1.0]}, r"labels\.regime_quantiles: expected 3"),
        ({"direction_method": "sign"}, r"labels\.direction_method: got 'sign', allowed values"),
        ({"neutral_band": -1}, r"labels\.neutral_band"),
        ({"news_override": {"minutes": 5, "z": 2}}, r"labels\.news_override\.z: unknown key"),
    ],
)
def test_bad_label_settings_name_the_key(labels: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_job({"labels": labels})


def test_label_settings_defaults_and_overrides() -> None:
    labels = build_job({}, ["labels.news_override.enabled=true", "labels.tp_levels=[1, 1.5, 2]"])
    assert labels.labels.news_override.enabled and labels.labels.news_override.minutes == 30
    assert labels.labels.tp_levels == (1.0, 1.5, 2.0)
    assert build_job({}).labels.direction_method == "triple_barrier"


def test_purged_kfold_needs_two_splits_and_says_so() -> None:
    with pytest.raises(ConfigError, match=r"split\.n_folds must be an integer ≥ 2 .*got 1"):
        build_job({"split": {"mode": "purged_kfold", "n_folds": 1}})
    job = build_job({}, ["split.mode=purged_kfold", "split.n_folds=5", "split.embargo=12"])
    assert (job.split.mode, job.split.n_folds, job.split.embargo) == ("purged_kfold", 5, 12)
    assert job.split.sample_weights == "none"
    assert build_job({"split": {"sample_weights": "uniqueness"}}).split.sample_weights == (
        "uniqueness"
    )
    with pytest.raises(ConfigError, match=r"split\.sample_weights: got 'equal'"):
        build_job({"split": {"sample_weights": "equal"}})
