"""Fold-fitted selection and transforms in a real package (issue 20): the GMM and VAE graphs
ship in the feature recipe, the Predictor (and the live stream) append the same columns as
training and feed each head its selected columns, and the recipe hash covers all of it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.errors import PackageError
from quantrain.package import Predictor
from quantrain.package.checksums import sha256_file
from quantrain.package.writer import write_package
from quantrain.pipeline import train_suite
from quantrain.suite.heads import TrainedSuite

from ..conftest import SAMPLE_DIR, fast_job
from .test_serving_install import SCRIPT, TRAINING_ONLY

TRANSFORMS = [
    {
        "kind": "gmm",
        "name": "regime",
        "columns": ["atr_frac_14", "volatility_48", "ema_slope_50_12", "adx_14"],
        "components": 3,
    },
    {"kind": "vae", "latent": 3, "hidden": 16, "epochs": 5},
]
SUITE = {
    "name": "xform",
    "heads": [
        {"name": "direction", "target": "direction", "select": {"method": "importance", "top": 12}},
        {"name": "position_size", "target": "position_size"},
    ],
    "transforms": TRANSFORMS,
}


@pytest.fixture(scope="module")
def trained(
    eth_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainedSuite, Path]:
    """One ETH-BTC suite with selection, a GMM and a VAE, and its package."""
    root = tmp_path_factory.mktemp("xform")
    job = fast_job(root / "store", suite=SUITE)
    suite = train_suite(eth_frame, symbol="ETH-BTC", timeframe="5m", job=job)
    write_package(suite, root / "package")
    return suite, root / "package"


def test_the_manifest_records_transforms_selection_and_a_recipe_hash(
    trained: tuple[TrainedSuite, Path],
) -> None:
    suite, package = trained
    manifest = json.loads((package / "manifest.json").read_text())
    features = manifest["features"]
    assert [t["name"] for t in features["transforms"]] == ["regime", "vae"]
    regime, vae = features["transforms"]
    assert regime["outputs"] == ["regime_0", "regime_1", "regime_2"]
    assert vae["outputs"] == ["vae_0", "vae_1", "vae_2"]
    assert vae["inputs"] == features["columns"]  # every feature column
    for entry in (regime, vae):
        assert entry["file"] in manifest["files"]
        assert entry["sha256"] == manifest["files"][entry["file"]]["sha256"]
        assert entry["parity_max_abs_diff"] <= 1e-4
        assert 2000 < entry["rows"] <= manifest["data"]["rows"]  # every dataset row
    assert features["spec_hash"] == suite.spec.spec_hash() != features["hash"]
    selected = manifest["heads"]["direction"]["input_columns"]
    assert len(selected) == 12
    assert manifest["heads"]["position_size"]["input_columns"] is None


def test_predictor_matches_the_training_time_transforms_and_heads(
    trained: tuple[TrainedSuite, Path], eth_frame: pd.DataFrame
) -> None:
    """Parity of the whole chain: recomputed features -> transform graphs -> selected columns
    -> head graph, against the fitted transforms and the native final model."""
    suite, package = trained
    predictor = Predictor(package)
    fitted = suite.transforms
    assert fitted is not None
    X = np.ascontiguousarray(predictor.feature_matrix(eth_frame).to_numpy(np.float32))
    rows = np.flatnonzero(np.isfinite(X).all(axis=1))[-3000:]
    served = predictor.transforms.apply(X[rows])
    want = fitted.apply(X[rows])
    assert predictor.transforms.columns == fitted.columns()
    np.testing.assert_allclose(served, want, rtol=0, atol=1e-4)
    head = suite.heads[0]
    assert head.input_columns is not None
    keep = [fitted.columns().index(c) for c in head.input_columns]
    native = head.model.predict_proba(np.ascontiguousarray(want[:, keep]))
    batch = predictor.predict(eth_frame)
    got = batch[["direction_p_SELL", "direction_p_HOLD", "direction_p_BUY"]].to_numpy()[rows]
    np.testing.assert_allclose(got, native, rtol=0, atol=1e-4)


def test_the_live_stream_equals_the_batch_with_transforms(
    trained: tuple[TrainedSuite, Path], eth_frame: pd.DataFrame
) -> None:
    _, package = trained
    predictor = Predictor(package)
    warm = predictor.history_bars
    live = predictor.live(eth_frame.iloc[:warm])
    batch = predictor.predict(eth_frame)
    for t in range(warm, min(len(eth_frame), warm + 200)):
        got = live.update(eth_frame.iloc[t].to_dict())
        want = batch.iloc[t]
        assert got["direction"] == want["direction"]
        for column in ("direction_p_BUY", "direction_p_SELL", "position_size"):
            np.testing.assert_allclose(got[column], want[column], rtol=0, atol=1e-6)


def test_an_edited_transform_entry_is_a_feature_hash_mismatch(
    trained: tuple[TrainedSuite, Path], tmp_path: Path
) -> None:
    """The recipe hash covers each step: swapping a GMM input is refused, not served."""
    _, package = trained
    copy = tmp_path / "package"
    shutil.copytree(package, copy)
    path = copy / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["features"]["transforms"][0]["inputs"][0] = "rsi_14"
    path.write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="feature hash mismatch"):
        Predictor(copy)


def test_a_replaced_transform_graph_is_refused(
    trained: tuple[TrainedSuite, Path], tmp_path: Path
) -> None:
    _, package = trained
    copy = tmp_path / "package"
    shutil.copytree(package, copy)
    graph = copy / "transforms" / "regime.onnx"
    graph.write_bytes(b"not a graph")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["transforms/regime.onnx"] = {
        "sha256": sha256_file(graph),
        "size": graph.stat().st_size,
    }
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="transform 'regime': its graph is not the one"):
        Predictor(copy)


def test_a_bot_serves_transforms_with_no_training_library_installed(
    trained: tuple[TrainedSuite, Path],
) -> None:
    """The GMM and VAE graphs run on onnxruntime alone: no sklearn, torch or onnx import."""
    _, package = trained
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            ",".join(TRAINING_ONLY),
            str(package),
            str(SAMPLE_DIR / "ETH-BTC_5m.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["answered"] > 5000
