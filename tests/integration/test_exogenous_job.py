"""A job that merges funding rates and an economic calendar into the bars: the exogenous
features and the news override reach training, and the package says a bot must merge too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import build_job
from quantrain.data import DataSource
from quantrain.errors import DataError
from quantrain.features import resolve_feature_set
from quantrain.features.exogenous import merge_exogenous
from quantrain.package import Predictor, verify_package
from quantrain.pipeline import build_dataset, run_symbol, with_exogenous

from ..conftest import SAMPLE_DIR

CALENDAR = Path(__file__).parents[1] / "fixtures" / "exogenous" / "calendar_2018-01.csv"


def _funding(directory: Path) -> Path:
    """Eight-hourly rates (00:00, 08:00, 16:00 UTC) over the sample's span; a perpetual
    venue's series is recorded the same way. Seeded, since Binance had no perpetuals in 2018."""
    stamps = pd.date_range("2018-01-05", "2018-02-05", freq="8h", tz="UTC")
    rates = np.random.default_rng(3).normal(1e-4, 3e-4, len(stamps))
    path = directory / "funding_ETH-BTC.csv"
    pd.DataFrame({"timestamp": stamps, "funding_rate": rates}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def exo_job_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    directory = tmp_path_factory.mktemp("exo")
    _funding(directory)
    return {
        "store": str(directory / "store"),
        "features": "standard_exo",
        "data": {
            "symbols": ["ETH-BTC"],
            "funding": str(directory / "funding_{symbol}.csv"),
            "events": str(CALENDAR),
        },
        "labels": {"news_override": {"enabled": True, "minutes": 60, "volume_z": 1.0}},
    }


def test_the_news_override_holds_direction_near_events(
    exo_job_settings: dict[str, object], eth_frame: pd.DataFrame
) -> None:
    job = build_job(exo_job_settings)
    quiet = build_job({**exo_job_settings, "labels": {}})
    frame = with_exogenous(eth_frame, job, "ETH-BTC")
    assert {"funding_rate", "event_next_at", "event_last_at"} <= set(frame.columns)
    spec = resolve_feature_set(job.features)
    held = build_dataset(frame, spec, job).target("direction")
    plain = build_dataset(frame, spec, quiet).target("direction")
    changed = np.flatnonzero(held != plain)
    assert len(changed) > 0, "some bars near the calendar's events should be forced to HOLD"
    assert (held[changed] == 1).all()  # only ever to HOLD


def test_a_job_with_exogenous_inputs_packages_and_serves(
    exo_job_settings: dict[str, object], eth_frame: pd.DataFrame, tmp_path: Path
) -> None:
    job = build_job(exo_job_settings)
    result = run_symbol(DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet"), job)
    assert result.ok, result.error
    (package,) = (Path(job.store) / "ETH-BTC" / job.suite.name).glob("2*")
    manifest = verify_package(package)
    columns = resolve_feature_set(job.features).columns()
    assert {"funding_z_288", "event_minutes_to_1440"} <= set(columns)
    predictor = Predictor(package)
    with pytest.raises(DataError, match="merge_exogenous"):
        predictor.predict(eth_frame, last=5)
    merged = merge_exogenous(
        eth_frame, funding=_funding(tmp_path), events=CALENDAR, min_impact="high"
    )
    served = predictor.predict(merged, last=5)
    assert len(served) == 5
    assert manifest["heads"]["direction"]["parity_max_abs_diff"] <= 1e-4
