"""A target is one catalogue entry: a new one is labelled, trained, packaged and served without
an edit anywhere else (issue 17)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import build_job
from quantrain.data import DataSource
from quantrain.errors import ConfigError
from quantrain.labels import BarContext, TargetDef, register_target, unregister_target
from quantrain.package import Predictor, read_manifest
from quantrain.pipeline import run_symbol

from ..conftest import SAMPLE_DIR

pytestmark = pytest.mark.slow


def _closes_green(context: BarContext) -> np.ndarray:
    """1 (GREEN) where the horizon's last close is above the fill, else 0 (RED)."""
    n = len(context.close)
    out = np.full(n, -1, dtype=np.int8)
    t = np.arange(max(n - context.horizon, 0))
    out[t] = (context.close[t + context.horizon] > context.entry[t]).astype(np.int8)
    return out


@pytest.fixture
def green_target() -> Iterator[str]:
    register_target(
        TargetDef(
            "closes_green",
            "classification",
            "does the horizon end above the fill",
            classes=("RED", "GREEN"),
            from_bars=_closes_green,
        )
    )
    yield "closes_green"
    unregister_target("closes_green")


def test_a_catalogue_entry_alone_is_labelled_trained_packaged_and_served(
    green_target: str, tmp_path: Path, eth_frame: pd.DataFrame
) -> None:
    job = build_job(
        {
            "store": str(tmp_path),
            "suite": {
                "name": "green",
                "heads": [
                    {"name": "direction", "target": "direction"},
                    {"name": "green", "target": green_target},
                ],
            },
            "evaluate": {"random_strategies": 0, "risk": {"enabled": False}},
        }
    )
    result = run_symbol(DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet"), job)
    assert result.ok, result.error
    (package,) = (tmp_path / "ETH-BTC" / "green").glob("2*")
    head = read_manifest(package)["heads"]["green"]
    assert head["target"] == green_target and head["classes"] == ["RED", "GREEN"]
    assert 0.3 < head["metrics"]["balanced_accuracy"] < 0.7  # scored out of sample
    served = Predictor(package).predict(eth_frame)
    probabilities = served[["green_p_RED", "green_p_GREEN"]].dropna().to_numpy()
    assert len(probabilities) > 5000
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_an_unknown_target_names_the_catalogue(green_target: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown target 'closes_red'; targets: direction,"):
        build_job({"suite": {"name": "x", "heads": [{"name": "h", "target": "closes_red"}]}})
    with pytest.raises(ConfigError, match="already in the catalogue"):
        register_target(TargetDef(green_target, "regression", "twice", from_bars=_closes_green))


def test_the_journal_recipes_cover_the_catalogues_journal_targets() -> None:
    from quantrain.data.journal import JOURNAL_TARGETS
    from quantrain.labels import target_names

    assert tuple(JOURNAL_TARGETS) == target_names("journal")
