"""What a user reads: tables that fit the terminal, --help examples, --out refusals, stages."""

from __future__ import annotations

import io
import itertools
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from quantrain import ui
from quantrain.cli import main
from quantrain.data import DataSource
from quantrain.pipeline import StageEvent, SymbolResult
from quantrain.store import open_store

from ..conftest import SAMPLE_DIR, fast_job, package_path

WIDTHS = (80, 100, 120, 200)
VERSION = "20250101T120000Z-abc123"
METRICS = {
    "direction.balanced_accuracy": 0.3456,
    "direction.accuracy": 0.4101,
    "direction.baseline_accuracy": 0.4502,
    "position_size.mae": 0.8123,
    "position_size.baseline_mae": 0.8222,
}


def _results() -> list[SymbolResult]:
    return [
        SymbolResult(
            "ETH-BTC",
            True,
            rows=5760,
            version=VERSION,
            metrics=METRICS,
            seconds=12.3,
            node="10.0.0.1/abcdef12",
            backtest={"total_return": -0.0312, "buy_and_hold_return": 0.0123},
            verdict="no edge after costs: ...",
            holdout_return=0.0101,
        ),
        SymbolResult("LTC-BTC", False, rows=5760, error="bad data", seconds=1.0),
    ]


def _render(table: object, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_summary_fits_the_width_without_cutting_a_number(width: int) -> None:
    text = _render(ui.summary_table(_results(), width=width), width)
    assert "…" not in text
    assert VERSION in text  # whole, on one line: what `models promote` takes
    assert all(len(line) <= width for line in text.splitlines())
    for kept in ("0.346", "0.812", "-3.1%", "no edge"):  # the key metrics stay at any width
        assert kept in text
    if width >= 200:
        assert "0.450" in text and "+1.2%" in text and "10.0.0.1/abcdef12" in text
        assert "left out" not in text
    else:
        assert "left out at" in text and "node" in text.split("left out at")[1]


def test_piped_output_is_120_columns_unless_columns_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert not ui.out.is_terminal
    assert ui.out.width == ui.PIPED_WIDTH == 120
    monkeypatch.setenv("COLUMNS", "93")
    assert ui.out.width == 93


@pytest.mark.parametrize("width", WIDTHS)
def test_models_list_shows_whole_version_ids_at_any_width(trained_store: Path, width: int) -> None:
    result = CliRunner(env={"COLUMNS": str(width)}).invoke(
        main, ["models", "list", "--store", str(trained_store)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    versions = [v.version for v in open_store(str(trained_store)).versions()]
    assert len(versions) == 2
    for version in versions:
        assert version in result.output
    assert "…" not in result.output
    assert all(len(line) <= width for line in result.output.splitlines())


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(main), ids=lambda c: " ".join(c) or "quantrain")
def test_every_help_has_an_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    example = result.output.split("Example:")
    assert len(example) == 2, result.output
    assert example[1].lstrip().startswith("quantrain ")


def test_report_out_is_honoured_when_the_package_has_a_report(
    trained_store: Path, tmp_path: Path
) -> None:
    package = package_path(trained_store, "ETH-BTC")
    out = tmp_path / "eth.html"
    result = CliRunner().invoke(main, ["report", str(package), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (package / "report.html").read_bytes()
    assert f"report: {out}" in " ".join(result.output.split())


@pytest.mark.parametrize("command", ["report", "predict"])
def test_out_with_an_unsupported_suffix_exits_2_naming_the_supported(
    trained_store: Path, tmp_path: Path, command: str
) -> None:
    package = package_path(trained_store, "ETH-BTC")
    args = [command, str(package)]
    if command == "predict":
        args.append(str(SAMPLE_DIR / "ETH-BTC_5m.parquet"))
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2
    assert ".xlsx" in result.output and "fix" in result.output
    assert (".html" if command == "report" else ".parquet") in result.output
    assert not (tmp_path / "x.xlsx").exists()


@pytest.mark.s3
def test_models_list_on_a_missing_bucket_exits_2(s3_uri: str) -> None:
    result = CliRunner().invoke(main, ["models", "list", "--store", "s3://no-such-bucket/m"])
    assert result.exit_code == 2
    assert "no-such-bucket" in result.output and "does not exist" in result.output


def test_stage_durations_are_logged_with_verbose(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="quantrain.ui")
    with ui.SymbolProgress() as progress:
        progress.start([DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet")])
        progress.stage(StageEvent("ETH-BTC", "features and labels", 100.0))
        progress.stage(StageEvent("ETH-BTC", "direction fold 1/3", 102.5))
        progress.done(SymbolResult("ETH-BTC", True, version=VERSION, seconds=4.0))
        progress.stage(StageEvent("ETH-BTC", "push", 103.0))  # late: ignored
    lines = [r.getMessage() for r in caplog.records]
    assert "ETH-BTC: features and labels took 2.5 s" in lines
    assert any(line.startswith("ETH-BTC: direction fold 1/3 took") for line in lines)
    assert not any("push" in line for line in lines)


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
def test_a_symbol_reports_every_stage_through_ray(tmp_path: Path) -> None:
    from quantrain.orchestration import run_symbols

    job = fast_job(tmp_path / "models", split={"n_folds": 2})
    events: list[StageEvent] = []
    done: list[str] = []

    def on_result(result: SymbolResult) -> None:
        done.append(result.symbol)
        assert [e.stage for e in events][-1] in ("push", "export and package")

    source = DataSource("ETH-BTC", "5m", SAMPLE_DIR / "ETH-BTC_5m.parquet")
    (result,) = run_symbols([source], job, on_result=on_result, on_stage=events.append)
    assert result.ok, result.error
    stages = [e.stage for e in events]
    expected = [
        "read data",
        "features and labels",
        "direction fold 1/2",
        "direction fold 2/2",
        "direction holdout",
        "direction final fit",
        "position_size fold 1/2",
        "position_size final fit",
        "backtest",
        "export and package",
    ]
    assert [s for s in stages if s in expected] == expected
    assert {e.symbol for e in events} == {"ETH-BTC"} and done == ["ETH-BTC"]
    assert all(b.at >= a.at for a, b in itertools.pairwise(events))


@pytest.mark.ray
@pytest.mark.slow
def test_a_local_cluster_starts_without_the_token_notice(tmp_path: Path) -> None:
    """Ray 2.60 prints a token-authentication notice on every local start; a local user has
    nothing to do about it. A fresh process (the session cluster has auth disabled)."""
    script = textwrap.dedent(
        """
        from quantrain.orchestration.fanout import connect
        import ray
        connect(None)
        print("nodes", len(ray.nodes()))
        ray.shutdown()
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    env["HOME"] = str(tmp_path)  # no token yet: Ray makes one, as on a first run
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "nodes 1" in done.stdout
    assert "Token authentication" not in done.stderr + done.stdout
    assert (tmp_path / ".ray" / "auth_token").exists()  # auth stays on; only the notice goes
