"""``--if-better`` on hand-built manifests: a head's ML metrics, the backtest's trading ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantrain.config import build_job
from quantrain.errors import ConfigError, StoreError
from quantrain.evaluate import higher_is_better
from quantrain.store.compare import compare, metric_of, recorded_metrics

V1_MANIFEST = Path(__file__).parents[1] / "fixtures" / "package_v1" / "manifest.json"


def manifest(version: str, **sections: Any) -> dict[str, Any]:
    """The parts of a manifest ``--if-better`` reads, plus ``sections`` (e.g. evaluation)."""
    return {
        "symbol": "ETH-BTC",
        "version": version,
        "summary_metrics": {"direction.balanced_accuracy": 0.40},
        "heads": {"direction": {"metrics": {"balanced_accuracy": 0.40, "log_loss": 1.09}}},
        **sections,
    }


def backtest(sharpe: float | None, max_drawdown: float, **more: float) -> dict[str, Any]:
    """An ``evaluation`` section as ``write_evaluation`` writes it."""
    return {
        "sharpe": sharpe,
        "max_drawdown": max_drawdown,
        "total_return": 0.05,
        "trades": 130.0,
        "buy_and_hold_return": 0.11,
        "random_percentile": 90.0,
        **more,
    }


@pytest.mark.parametrize(
    ("metric", "higher"),
    [
        ("backtest.total_return", True),
        ("backtest.annual_return", True),
        ("backtest.sharpe", True),
        ("backtest.sharpe_period", True),
        ("backtest.sortino", True),
        ("backtest.hit_rate", True),
        ("backtest.profit_factor", True),
        ("backtest.max_drawdown", False),
        ("holdout.backtest.sharpe", True),
        ("holdout.backtest.max_drawdown", False),
        ("holdout.direction.balanced_accuracy", True),
        ("holdout.position_size.mae", False),
        ("direction.balanced_accuracy", True),
        ("log_loss", False),
    ],
)
def test_directions(metric: str, higher: bool) -> None:
    assert higher_is_better(metric) is higher


@pytest.mark.parametrize("metric", ["backtest.trades", "backtest.accuracy", "direction.sharpe"])
def test_metrics_without_a_direction_are_refused(metric: str) -> None:
    with pytest.raises(ValueError, match=r"no known direction.*backtest\.max_drawdown"):
        higher_is_better(metric)


def test_a_bare_trading_metric_points_to_its_backtest_key() -> None:
    with pytest.raises(ValueError, match=r"a trading metric is backtest\.sharpe"):
        higher_is_better("sharpe")


def test_a_higher_sharpe_is_better() -> None:
    incumbent = manifest("v1", evaluation=backtest(sharpe=0.8, max_drawdown=0.10))
    candidate = manifest("v2", evaluation=backtest(sharpe=1.2, max_drawdown=0.20))
    better = compare("backtest.sharpe", candidate, incumbent)
    assert (better.candidate, better.incumbent, better.higher_is_better) == (1.2, 0.8, True)
    assert better.better and "higher is better, so better" in better.describe()
    assert not compare("backtest.sharpe", incumbent, candidate).better
    assert not compare("backtest.sharpe", candidate, candidate).better  # a tie keeps it


def test_a_lower_drawdown_is_better() -> None:
    incumbent = manifest("v1", evaluation=backtest(sharpe=0.8, max_drawdown=0.10))
    candidate = manifest("v2", evaluation=backtest(sharpe=1.2, max_drawdown=0.20))
    worse = compare("backtest.max_drawdown", candidate, incumbent)
    assert not worse.better and "lower is better, so not better" in worse.describe()
    assert compare("backtest.max_drawdown", incumbent, candidate).better


def test_nothing_to_beat_promotes() -> None:
    candidate = manifest("v2", evaluation=backtest(sharpe=-0.3, max_drawdown=0.5))
    assert compare("backtest.sharpe", candidate, None).better


def test_an_unknown_metric_is_refused_before_reading_anything() -> None:
    with pytest.raises(StoreError, match=r"--if-better: metric 'backtest\.trades' has no known"):
        compare("backtest.trades", manifest("v2"), None)


def test_a_package_without_a_backtest_is_refused_with_what_it_has() -> None:
    with pytest.raises(StoreError) as caught:
        compare("backtest.sharpe", manifest("v2"), None)
    message = str(caught.value)
    assert message.startswith("ETH-BTC/v2: no metric 'backtest.sharpe'")
    assert "records no out-of-sample backtest" in message
    assert "direction.balanced_accuracy, direction.log_loss" in message


def test_an_incumbent_without_the_metric_is_refused_by_version() -> None:
    v1 = json.loads(V1_MANIFEST.read_text())  # the committed format-1 package: no evaluation
    candidate = manifest("v2", evaluation=backtest(sharpe=1.0, max_drawdown=0.1))
    with pytest.raises(StoreError, match=f"ETH-BTC/{v1['version']}: no metric 'backtest.sharpe'"):
        compare("backtest.sharpe", candidate, v1)


def test_a_backtest_from_an_older_quantrain_lists_what_it_recorded() -> None:
    older = manifest("v1", evaluation=backtest(sharpe=0.8, max_drawdown=0.1))
    with pytest.raises(StoreError) as caught:
        metric_of(older, "backtest.sortino")
    message = str(caught.value)
    assert "does not record it" in message
    assert "backtest.max_drawdown, backtest.sharpe, backtest.total_return" in message
    assert "backtest.trades" not in message  # recorded, but not comparable


def test_holdout_metrics_are_read_when_the_manifest_has_a_holdout() -> None:
    holdout = {
        "heads": {"direction": {"balanced_accuracy": 0.47, "rows": 900.0}},
        "backtest": {"sharpe": 0.6, "max_drawdown": 0.07},
    }
    found = manifest("v2", holdout=holdout)
    assert metric_of(found, "holdout.direction.balanced_accuracy") == 0.47
    assert metric_of(found, "holdout.backtest.max_drawdown") == 0.07
    assert {"holdout.direction.rows", "holdout.backtest.sharpe"} <= set(recorded_metrics(found))
    with pytest.raises(StoreError, match=r"(?s)does not record it.*holdout\.backtest\.sharpe"):
        metric_of(found, "holdout.backtest.sortino")


def test_a_manifest_without_a_holdout_says_so() -> None:
    with pytest.raises(StoreError, match="has no holdout evaluation"):
        metric_of(manifest("v2"), "holdout.backtest.sharpe")


def test_a_null_metric_is_refused_as_undefined() -> None:
    short = manifest("v2", evaluation=backtest(sharpe=None, max_drawdown=0.1, sharpe_period=-2.9))
    with pytest.raises(StoreError) as caught:
        metric_of(short, "backtest.sharpe")
    message = str(caught.value)
    assert "no metric 'backtest.sharpe': the package records it as null" in message
    assert "backtest.sharpe_period" in message.split("fix:")[1]
    assert metric_of(short, "backtest.sharpe_period") == -2.9


def test_a_job_may_promote_on_a_backtest_metric() -> None:
    job = build_job({"promote": {"if_better": "backtest.sharpe"}})
    assert job.promote is not None and job.promote.if_better == "backtest.sharpe"
    with pytest.raises(
        ConfigError, match=r"promote\.if_better.*trading metric is backtest\.sharpe"
    ):
        build_job({"promote": {"if_better": "sharpe"}})


def test_selection_metrics_have_directions_and_requirements_read_them() -> None:
    from quantrain.config import parse_requirements
    from quantrain.store.compare import unmet_requirements

    assert higher_is_better("selection.deflated_sharpe")
    assert not higher_is_better("selection.pbo.direction")
    selection = {
        "trials": 40,
        "deflated_sharpe": 0.62,
        "pbo": {"direction": {"pbo": 0.7}, "position_size": {"pbo": None, "reason": "too few"}},
    }
    candidate = manifest("v2", evaluation=backtest(None, 0.1), selection=selection)
    assert recorded_metrics(candidate)["selection.pbo.direction"] == 0.7
    require = parse_requirements(
        ["selection.deflated_sharpe=0.95", "selection.pbo.direction=0.5", "backtest.total_return=0"]
    )
    assert unmet_requirements(candidate, require) == [
        "selection.deflated_sharpe 0.62 is below the required minimum 0.95",
        "selection.pbo.direction 0.7 is above the allowed maximum 0.5",
    ]
    assert unmet_requirements(candidate, {"selection.pbo.direction": 0.7}) == []
    with pytest.raises(StoreError, match="records it as null"):
        unmet_requirements(candidate, {"selection.pbo.position_size": 0.5})
    with pytest.raises(ConfigError, match="METRIC=NUMBER"):
        parse_requirements(["selection.pbo.direction=half"])
    with pytest.raises(ConfigError, match="no known direction"):
        parse_requirements(["trades=10"])
    job = build_job({"promote": {"require": {"selection.pbo.direction": 0.5}}})
    assert job.promote is not None and job.promote.require == {"selection.pbo.direction": 0.5}
    with pytest.raises(ConfigError, match=r"promote\.require"):
        build_job({"promote": {"require": {"trades": 10}}})
