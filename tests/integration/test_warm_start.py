"""Warm start: a new package's final boosters continue the previous package's trees; a package
whose features or heads differ is refused before anything trains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.data import DataSource
from quantrain.package import load_native_head, verify_package
from quantrain.pipeline import run_symbol

from ..conftest import SAMPLE_DIR, fast_job, package_path

pytestmark = pytest.mark.slow

HEADS = ("direction", "position_size")
EVALUATE = {"random_strategies": 0, "risk": {"enabled": False}}


@pytest.mark.parametrize(("symbol", "family"), [("ETH-BTC", "xgboost"), ("LTC-BTC", "lightgbm")])
def test_warm_start_adds_rounds_to_every_head(
    trained_store: Path, tmp_path: Path, symbol: str, family: str
) -> None:
    previous = package_path(trained_store, symbol)
    before = {head: load_native_head(previous, head).best_iteration_ for head in HEADS}
    store = tmp_path / "models"
    job = fast_job(
        store,
        model={"family": family},
        evaluate=EVALUATE,
        warm_start=str(trained_store / "{symbol}" / "core" / previous.name),
    )
    result = run_symbol(DataSource(symbol, "5m", SAMPLE_DIR / f"{symbol}_5m.parquet"), job)
    assert result.ok, result.error

    package = package_path(store, symbol)
    manifest = verify_package(package)  # parity-checked ONNX of the continued boosters
    assert manifest["warm_start"]["package"] == str(previous)
    for head in HEADS:
        model = load_native_head(package, head)
        record = manifest["warm_start"]["heads"][head]
        assert record["previous_rounds"] == before[head] == model.warm_start_rounds_
        assert model.best_iteration_ == record["rounds"] > before[head]


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_a_package_with_other_features_is_refused(trained_store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "other-features"
    shutil.copytree(package_path(trained_store, "ETH-BTC"), copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    dropped = manifest["features"]["columns"].pop()
    manifest["features"]["hash"] = "f" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))

    code, output = _invoke(
        "train",
        "--data",
        str(SAMPLE_DIR / "ETH-BTC_5m.parquet"),
        "--store",
        str(tmp_path / "m"),
        "--warm-start",
        str(copy),
    )
    assert code == 2, output
    assert "feature hash differs" in output and f"only in this job: ['{dropped}']" in output
    assert "Traceback" not in output
    assert not (tmp_path / "m").exists()  # refused before anything trained


def test_other_heads_and_other_symbols_are_refused(trained_store: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for symbol in ("ETH-BTC", "LTC-BTC"):
        shutil.copy(SAMPLE_DIR / f"{symbol}_5m.parquet", data)
    code, output = _invoke(
        "train",
        "--data",
        str(data),
        "--store",
        str(tmp_path / "m"),
        "--model",
        "lightgbm",
        "--warm-start",
        str(package_path(trained_store, "ETH-BTC")),
    )
    assert code == 2, output
    assert (
        "head 'direction': family differs: the package has 'xgboost', this job has 'lightgbm'"
        in (" ".join(output.split()))
    )
    assert "LTC-BTC" in output and "symbol differs" in output
    assert "Traceback" not in output
