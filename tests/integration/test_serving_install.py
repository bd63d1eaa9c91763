"""A bot's side of quantrain loads no training library (issue 18).

The subprocess below makes every training-only distribution unimportable (as if only the
serving dependencies were installed), then imports ``Predictor``, loads a real package and
predicts a real data file. It fails if any of those modules is imported, even indirectly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..conftest import SAMPLE_DIR, package_path

#: Top-level modules a bot must never need: the model libraries, their converters, the
#: distributed and tuning stack, the S3 client (only for pulls from S3) and plotting.
TRAINING_ONLY = (
    "xgboost",
    "lightgbm",
    "sklearn",
    "scipy",
    "skops",
    "onnx",
    "onnxmltools",
    "skl2onnx",
    "ray",
    "optuna",
    "torch",
    "boto3",
    "botocore",
    "matplotlib",
)

SCRIPT = """
import importlib.abc, json, sys, time

BLOCKED = set(sys.argv[1].split(","))


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not installed in a serving install")
        return None


sys.meta_path.insert(0, Refuse())
started = time.perf_counter()
from quantrain.package import Predictor
import_seconds = time.perf_counter() - started
predictor = Predictor(sys.argv[2])
predictions = predictor.predict_file(sys.argv[3])
print(json.dumps({
    "import_seconds": import_seconds,
    "modules": len(sys.modules),
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    "rows": len(predictions),
    "answered": int(predictions["direction_p_BUY"].notna().sum()),
    "ood_flagged": int(predictions["ood"].sum()),
    "actions": sorted(set(predictions["action"].dropna())),
}))
"""


def test_a_bot_predicts_with_no_training_library_installed(trained_store: Path) -> None:
    package = package_path(trained_store, "ETH-BTC")
    data = SAMPLE_DIR / "ETH-BTC_5m.parquet"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(TRAINING_ONLY), str(package), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["rows"] == 5760
    assert report["answered"] > 5000  # every bar past the warm-up got outputs
    assert report["ood_flagged"] < 5760 * 0.05  # its own history is not out of distribution
    assert set(report["actions"]) <= {"BUY", "SELL", "FLAT"}


CLI = """
import importlib.abc, sys

BLOCKED = set(sys.argv.pop(1).split(","))


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not installed in a serving install")
        return None


sys.meta_path.insert(0, Refuse())
from quantrain.cli import main

main(sys.argv[1:], prog_name="quantrain")
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, ",".join(TRAINING_ONLY), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_serving_commands_work_and_training_ones_say_what_to_install(
    trained_store: Path, tmp_path: Path
) -> None:
    package = package_path(trained_store, "ETH-BTC")
    verify = _cli("models", "verify", "--store", str(trained_store))
    assert verify.returncode == 0, verify.stderr[-3000:]
    assert "packages verified" in verify.stdout
    listed = _cli("models", "list", "--store", str(trained_store))
    assert listed.returncode == 0 and "ETH-BTC" in listed.stdout, listed.stderr[-3000:]
    out = tmp_path / "p.csv"
    predicted = _cli(
        "predict", str(package), str(SAMPLE_DIR / "ETH-BTC_5m.parquet"), "--out", str(out)
    )
    assert predicted.returncode == 0 and out.is_file(), predicted.stderr[-3000:]
    refused = _cli("train", "--data", str(SAMPLE_DIR / "ETH-BTC_5m.parquet"))
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "pip install 'quantrain[train]'" in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr
