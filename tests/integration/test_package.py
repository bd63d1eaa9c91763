"""Packages: complete, checksummed, refused when damaged, and served by ``Predictor``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.errors import PackageError
from quantrain.package import Predictor, load_native_head, read_manifest, verify_package
from quantrain.package.checksums import sha256_file

from ..conftest import package_path


def _rewrite_checksum(package: Path, rel: str) -> None:
    manifest_path = package / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][rel] = {
        "sha256": sha256_file(package / rel),
        "size": (package / rel).stat().st_size,
    }
    manifest_path.write_text(json.dumps(manifest))


def test_manifest_pins_recipe_data_and_every_file(trained_store: Path) -> None:
    package = package_path(trained_store, "ETH-BTC")
    manifest = verify_package(package)
    assert manifest["symbol"] == "ETH-BTC"
    assert manifest["timeframe"] == "5m"
    assert len(manifest["features"]["columns"]) >= 30
    assert manifest["data"]["rows"] == 5760
    # The risk head ships only when it beats a constant multiplier on held-out trades.
    assert {"direction", "position_size"} <= set(manifest["heads"])
    assert set(manifest["heads"]) <= {"direction", "position_size", "risk_multiplier"}
    assert manifest["policy"]["direction_head"] == "direction"
    assert manifest["policy"]["size_head"] == "position_size"
    direction = manifest["heads"]["direction"]
    assert direction["classes"] == ["SELL", "HOLD", "BUY"]
    assert direction["parity_max_abs_diff"] <= 1e-4
    assert direction["onnx_outputs"] == ["label", "probabilities"]
    on_disk = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(manifest["files"])


@pytest.mark.parametrize(
    "rel", ["heads/direction/model.onnx", "features.json", "heads/position_size/model.ubj"]
)
def test_one_flipped_byte_is_refused_on_load(eth_package: Path, rel: str) -> None:
    target = eth_package / rel
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="sha256 differs"):
        Predictor(eth_package)


def test_missing_and_extra_files_are_refused(eth_package: Path) -> None:
    (eth_package / "heads/direction/importance.csv").unlink()
    (eth_package / "notes.txt").write_text("hello")
    with pytest.raises(PackageError) as info:
        verify_package(eth_package)
    assert "missing heads/direction/importance.csv" in str(info.value)
    assert "unexpected file notes.txt" in str(info.value)


def test_feature_hash_mismatch_is_refused(eth_package: Path) -> None:
    recipe_path = eth_package / "features.json"
    recipe = json.loads(recipe_path.read_text())
    recipe["features"] = recipe["features"][:-1]  # a recipe that is no longer the trained one
    recipe_path.write_text(json.dumps(recipe))
    _rewrite_checksum(eth_package, "features.json")
    with pytest.raises(PackageError, match="feature hash mismatch"):
        Predictor(eth_package)


def test_unknown_format_version_is_refused(eth_package: Path) -> None:
    manifest_path = eth_package / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="format_version 99"):
        read_manifest(eth_package)


@pytest.mark.parametrize("symbol", ["ETH-BTC", "LTC-BTC"])
def test_predictor_matches_native_models(
    trained_store: Path, sample_dir: Path, symbol: str
) -> None:
    from quantrain.data import read_ohlcv

    package = package_path(trained_store, symbol)
    frame = read_ohlcv(sample_dir / f"{symbol}_5m.parquet").frame
    predictor = Predictor(package)
    predictions = predictor.predict(frame)
    complete = predictions["features_complete"].to_numpy()
    X = predictor.feature_matrix(frame).to_numpy()[complete]
    direction = load_native_head(package, "direction")
    size = load_native_head(package, "position_size")
    probs = predictions.loc[complete, ["direction_p_SELL", "direction_p_HOLD", "direction_p_BUY"]]
    np.testing.assert_allclose(probs.to_numpy(), direction.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(
        predictions.loc[complete, "position_size"], size.predict(X), atol=1e-5
    )
    labels = np.array(["SELL", "HOLD", "BUY"])[direction.predict(X)]
    assert (predictions.loc[complete, "direction"].to_numpy() == labels).all()
    # complete from the bar where features no longer depend on where the window started
    assert complete.sum() == len(frame) - predictor.history_bars


def test_predictor_serves_the_newest_bar(trained_store: Path, eth_frame: pd.DataFrame) -> None:
    predictor = Predictor(package_path(trained_store, "ETH-BTC"))
    window = eth_frame.tail(predictor.history_bars + 1).reset_index(drop=True)
    newest = predictor.predict(window, last=1)
    assert len(newest) == 1
    assert bool(newest["features_complete"].iloc[0])
    assert newest["timestamp"].iloc[0] == window["timestamp"].iloc[-1]
    assert newest["direction"].iloc[0] in {"SELL", "HOLD", "BUY"}
    probs = newest[["direction_p_SELL", "direction_p_HOLD", "direction_p_BUY"]].to_numpy()
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_warm_up_bars_get_no_prediction(trained_store: Path, eth_frame: pd.DataFrame) -> None:
    predictions = Predictor(package_path(trained_store, "ETH-BTC")).predict(eth_frame.head(50))
    assert not predictions["features_complete"].any()
    assert predictions["position_size"].isna().all()


def test_predictor_names_missing_columns(trained_store: Path, eth_frame: pd.DataFrame) -> None:
    with pytest.raises(PackageError, match="missing"):
        Predictor(package_path(trained_store, "ETH-BTC")).predict(eth_frame.drop(columns="volume"))


def test_predict_latest_equals_the_last_row_of_predict(
    trained_store: Path, eth_frame: pd.DataFrame
) -> None:
    predictor = Predictor(package_path(trained_store, "ETH-BTC"))
    window = eth_frame.tail(1000).reset_index(drop=True)
    latest = predictor.predict_latest(window)
    row = predictor.predict(window).iloc[-1]
    assert set(latest) == set(row.index)
    assert latest["timestamp"] == row["timestamp"]
    assert latest["direction"] == row["direction"]
    for key in ("direction_p_SELL", "direction_p_HOLD", "direction_p_BUY", "position_size"):
        assert latest[key] == row[key]


def test_features_complete_means_what_training_saw(
    trained_store: Path, eth_frame: pd.DataFrame
) -> None:
    """Rows flagged complete in a late-starting window give the full-history outputs; a window
    shorter than the measured history is never complete, though it still gets outputs."""
    predictor = Predictor(package_path(trained_store, "ETH-BTC"))
    assert predictor.warmup_bars < predictor.history_bars < 3000
    full = predictor.predict(eth_frame)
    start = 1000
    late = predictor.predict(eth_frame.iloc[start:].reset_index(drop=True))
    complete = late["features_complete"].to_numpy()
    assert complete.any() and not complete[: predictor.history_bars].any()
    columns = ["direction_p_SELL", "direction_p_HOLD", "direction_p_BUY", "position_size"]
    got = late.loc[complete, columns].to_numpy()
    want = full.iloc[start:].reset_index(drop=True).loc[complete, columns].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    short = predictor.predict(eth_frame.tail(300).reset_index(drop=True))
    assert not short["features_complete"].any()
    assert short["direction_p_BUY"].notna().sum() > 0  # outputs, flagged as not yet converged


def test_live_rows_far_from_training_are_flagged(
    trained_store: Path, eth_frame: pd.DataFrame
) -> None:
    """ood_score is the share of features outside their training band; the threshold is fit
    on training rows, so training-like bars are rarely flagged and a volatility shock is."""
    predictor = Predictor(package_path(trained_store, "ETH-BTC"))
    normal = predictor.predict(eth_frame)
    usable = normal["direction_p_BUY"].notna()
    assert normal.loc[usable, "ood"].mean() < 0.03
    shocked = eth_frame.copy()
    tail = slice(len(shocked) - 400, None)
    rng = np.random.default_rng(0)
    jumps = np.exp(np.cumsum(rng.normal(0.0, 0.03, 400)))  # ~10x the usual 5m volatility
    for column in ("open", "high", "low", "close"):
        shocked.loc[shocked.index[tail], column] = shocked[column].iloc[tail].to_numpy() * jumps
    shocked["high"] = shocked[["open", "high", "close"]].max(axis=1)
    shocked["low"] = shocked[["open", "low", "close"]].min(axis=1)
    flagged = predictor.predict(shocked)["ood"].to_numpy()[-300:]
    assert flagged.mean() > 0.5


def test_packages_are_written_and_pulled_with_the_umask_modes(
    trained_store: Path, tmp_path: Path
) -> None:
    """A bot running as another user on a shared volume can read what the umask allows:
    nothing is left at mkstemp's 0600 or mkdtemp's 0700."""
    from quantrain.fsmodes import current_umask
    from quantrain.store import open_store

    mask = current_umask()
    assert mask & 0o044 == 0, "this test expects a umask that lets others read"
    version = package_path(trained_store, "ETH-BTC").name
    pulled = open_store(str(trained_store)).pull("ETH-BTC", tmp_path / "pulled", version=version)
    for root in (package_path(trained_store, "ETH-BTC"), pulled):
        for path in [root, *root.rglob("*")]:
            want = (0o777 if path.is_dir() else 0o666) & ~mask
            assert path.stat().st_mode & 0o777 == want, path
