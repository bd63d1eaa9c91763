"""Variants: presets as data between a family's defaults and a head's params, refused with the
choices when unknown, and the resolved params recorded in the package manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from quantrain.config import Variant, build_job
from quantrain.data import DataSource
from quantrain.errors import ConfigError
from quantrain.models import get_family
from quantrain.models.variants import PRESETS, VARIANTS, variant_params
from quantrain.pipeline import run_symbol
from quantrain.preflight import job_problems
from quantrain.suite.fit import new_model
from tests.conftest import SAMPLE_DIR, package_path


def test_config_and_presets_name_the_same_three_variants() -> None:
    assert get_args(Variant) == VARIANTS
    for family, presets in PRESETS.items():
        assert set(presets) == set(VARIANTS), family
        assert presets["balanced"] == {}, family  # balanced is the family's defaults


@pytest.mark.parametrize("family", sorted(PRESETS))
def test_every_preset_names_params_its_family_reads(family: str) -> None:
    cls = get_family(family)
    for variant, params in PRESETS[family].items():
        for task in sorted(cls.tags.tasks):
            assert cls.unknown_params(task, params) == [], (family, variant, task)
        unknown = set(params) - set(cls.default_params)
        assert not unknown, (family, variant, unknown)


def test_head_params_override_the_preset_and_the_job_variant_is_the_default() -> None:
    job = build_job(
        {
            "model": {"family": "xgboost", "variant": "conservative"},
            "suite": {
                "name": "s",
                "heads": [
                    {"name": "a", "target": "direction", "params": {"max_depth": 5}},
                    {"name": "b", "target": "direction", "variant": "aggressive"},
                ],
            },
        }
    )
    a, b = (new_model(head, job, 1) for head in job.suite.heads)
    assert a.resolved_params()["max_depth"] == 5  # the head's own param wins
    assert a.resolved_params()["learning_rate"] == 0.03  # the job's conservative preset
    assert b.resolved_params()["max_depth"] == 6  # the head's aggressive preset
    assert b.resolved_params()["learning_rate"] == 0.1


def test_unknown_variant_is_refused_listing_the_three() -> None:
    with pytest.raises(ConfigError) as error:
        build_job(
            {
                "suite": {
                    "name": "s",
                    "heads": [{"name": "a", "target": "direction", "variant": "bold"}],
                }
            }
        )
    message = str(error.value)
    assert "variant" in message
    for name in VARIANTS:
        assert name in message
    with pytest.raises(ConfigError, match="conservative, balanced, aggressive"):
        variant_params("xgboost", "bold")


def test_a_family_without_presets_is_refused_by_preflight() -> None:
    with pytest.raises(ConfigError, match="has no variants"):
        variant_params("no_such_family", "balanced")
    job = build_job({"model": {"family": "xgboost", "variant": "aggressive"}})
    assert job_problems(job) == []


def test_variants_change_the_fitted_model(eth_frame: object) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 6))
    y = (X[:, 0] + 0.5 * rng.normal(size=1500) > 0).astype(np.int64)
    out = {}
    for variant in ("conservative", "aggressive"):
        model = get_family("lightgbm")(
            "classification",
            {**variant_params("lightgbm", variant), "n_estimators": 40, "early_stopping_rounds": 0},
            n_classes=2,
            seed=1,
        )
        out[variant] = model.fit(X, y).predict_proba(X[:200])
    assert not np.allclose(out["conservative"], out["aggressive"])


def test_manifest_records_the_resolved_params(tmp_path: Path) -> None:
    job = build_job(
        {
            "store": str(tmp_path),
            "model": {"family": "ftrl", "variant": "conservative"},
            "suite": {
                "name": "core",
                "heads": [{"name": "direction", "target": "direction", "params": {"l1": 2.0}}],
            },
        }
    )
    source = DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet")
    result = run_symbol(source, job)
    assert result.ok, result.error
    manifest = json.loads((package_path(tmp_path, "ETH-BTC") / "manifest.json").read_text())
    head = manifest["heads"]["direction"]
    assert head["variant"] == "conservative"
    assert head["params"]["l1"] == 2.0  # the head's param over the preset's 3.0
    assert head["params"]["l2"] == 3000.0  # the preset over the default 1000
    assert head["params"]["alpha"] == 0.02
