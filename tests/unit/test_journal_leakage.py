"""Journal inputs must be known when the trade opens: outcome, exit and duration fields leak."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.config import build_job, load_job
from quantrain.data.journal import (
    JOURNAL_FEATURES,
    JOURNAL_TARGETS,
    post_entry_fields,
    read_journal,
)
from quantrain.data.journal_sample import sample_journal_path
from quantrain.errors import ConfigError
from quantrain.features.journal_spec import JournalSpec, journal_spec

DEMO_JOB = Path(__file__).parents[2] / "jobs" / "journal-demo.yaml"


def test_in_the_bundled_journal_outcome_and_closed_at_are_post_entry() -> None:
    columns = list(read_journal(sample_journal_path()).frame.columns)
    outcome = [c for c in columns if c.startswith("outcome.")]
    assert "outcome.pnl" in outcome and "outcome.bars_held" in outcome
    assert post_entry_fields(columns) == ["closed_at", *outcome]


def test_every_target_source_is_post_entry_and_no_standard_feature_is() -> None:
    assert post_entry_fields(t.field for t in JOURNAL_TARGETS.values()) == [
        t.field for t in JOURNAL_TARGETS.values()
    ]
    assert post_entry_fields(JOURNAL_FEATURES) == []


@pytest.mark.parametrize(
    "field",
    [
        "outcome.pnl",
        "outcome.r_multiple",
        "outcome.max_adverse_excursion",
        "outcome.fills_count",  # a list under outcome
        "Outcome.PNL",
        "closed_at",
        "exit.price",
        "trade.exitPrice",
        "trade.close_reason",
        "pnl",
        "mfe",
        "holding_time",
        "result",
    ],
)
def test_a_post_entry_field_is_refused_by_name(field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        journal_spec(["signal.strength", field])
    message = str(caught.value)
    assert f"journal features: {field} is known only after the trade opened" in message
    assert "signal.strength" not in message.split("\n")[0]
    assert "fix: use fields known at entry, e.g. signal.direction" in message


def test_every_leaking_field_is_named_at_once() -> None:
    with pytest.raises(ConfigError, match=r"outcome\.pnl, closed_at are known only after"):
        journal_spec(["outcome.pnl", "market.volatility", "closed_at"])


@pytest.mark.parametrize(
    "features",
    [None, JOURNAL_FEATURES, ["market.volatility", "market.volume_z", "signal.sources_count"]],
)
def test_entry_fields_pass(features: list[str] | None) -> None:
    spec = journal_spec(features)
    assert JournalSpec.model_validate(spec.to_json_dict()) == spec  # a package reloads it


def test_a_loaded_package_with_a_leaking_recipe_is_refused() -> None:
    written = journal_spec().to_json_dict()
    tampered = {**written, "features": [*written["features"], "outcome.r_multiple"]}
    with pytest.raises(ConfigError, match=r"outcome\.r_multiple is known only after"):
        JournalSpec.model_validate(tampered)


def test_a_job_naming_a_post_entry_field_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_job(
            {"data": {"kind": "journal", "journal_features": ["signal.strength", "outcome.pnl"]}},
            source="jobs/leak.yaml",
        )
    message = str(caught.value)
    assert message.startswith("jobs/leak.yaml: invalid job configuration")
    assert "journal_features: outcome.pnl is known only after the trade opened" in message
    assert load_job(DEMO_JOB).data.journal_features is None  # the demo job still loads


def _leaking_job(tmp_path: Path) -> Path:
    text = DEMO_JOB.read_text().replace(
        "  min_samples: 100",
        "  min_samples: 100\n  journal_features: [signal.strength, outcome.pnl]",
    )
    assert "outcome.pnl" in text
    job = tmp_path / "leak.yaml"
    job.write_text(text)
    return job


def test_the_run_command_exits_2_naming_the_field(tmp_path: Path) -> None:
    job = _leaking_job(tmp_path)
    result = CliRunner().invoke(main, ["run", str(job), "--set", f"store={tmp_path / 'models'}"])
    assert result.exit_code == 2, result.output
    assert "outcome.pnl is known only after the trade opened" in result.output
    assert "fix: use fields known at entry" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "models").exists()


def test_the_train_command_exits_2_naming_the_field(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(sample_journal_path()),
            "--store",
            str(tmp_path / "models"),
            "--set",
            "data.kind=journal",
            "--set",
            "data.journal_features=[market.regime, outcome.max_favourable_excursion]",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "outcome.max_favourable_excursion is known only after" in result.output
    assert "Traceback" not in result.output
