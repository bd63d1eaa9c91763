"""``jobs/zoo.yaml`` and ``jobs/zoo-features.yaml`` as a user runs them (issue 20): every head of
every new family and strategy trains on both bundled pairs, and the run's summary CSV and each
package show each head's out-of-sample metrics beside its naive baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.config import load_job
from quantrain.labels import target_def
from quantrain.package import verify_package

pytest.importorskip("torch")

JOBS = Path(__file__).parents[2] / "jobs"
PAIRS = ("ETH-BTC", "LTC-BTC")


def _baseline(task: str) -> tuple[str, str]:
    """The head's own score and the baseline it is read beside."""
    if task == "classification":
        return "balanced_accuracy", "baseline_accuracy"
    return "mae", "baseline_mae"


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("name", ["zoo", "zoo-features"])
def test_every_zoo_head_reports_beside_its_baseline(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = JOBS / f"{name}.yaml"
    job = load_job(path)
    assert set(job.data.symbols or ()) == set(PAIRS)
    result = CliRunner().invoke(
        main, ["run", str(path), "--set", f"store={tmp_path / 'models'}"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output

    (summary_file,) = (tmp_path / "runs").glob(f"{name}-*.csv")
    summary = pd.read_csv(summary_file).set_index("symbol")
    assert sorted(summary.index) == sorted(PAIRS) and summary["ok"].all()
    for symbol in PAIRS:
        (version,) = (tmp_path / "models" / symbol / job.suite.name).glob("2*")
        manifest = verify_package(version)
        assert {h.name for h in job.suite.heads} <= set(manifest["heads"])  # + the risk head
        for head in job.suite.heads:
            metrics = manifest["heads"][head.name]["metrics"]
            score, baseline = _baseline(target_def(head.target).task)
            assert metrics["rows"] > 0
            for key in (score, baseline):
                assert pd.notna(metrics[key]), (symbol, head.name, key)
                assert summary.loc[symbol, f"{head.name}.{key}"] == pytest.approx(metrics[key])
        entries = manifest["heads"]
        if name == "zoo":
            assert entries["direction_auto"]["family_selection"]["winner"] in (
                "xgboost",
                "lightgbm",
                "ftrl",
            )
            assert entries["meta"]["upstream"] == ["direction"]
            assert entries["size_gaussian"]["onnx_outputs"] == ["value", "scale"]
            assert entries["direction_conservative"]["variant"] == "conservative"
        else:
            recipe = json.loads((version / "manifest.json").read_text())["features"]
            assert [t["kind"] for t in recipe["transforms"]] == ["gmm", "vae"]
            assert len(entries["direction_top24"]["input_columns"]) == 24
