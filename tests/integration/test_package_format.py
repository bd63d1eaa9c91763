"""Formats that last: a package written by an earlier quantrain must still load and answer the same.

``tests/fixtures/package_v1`` is a real format_version 1 package with the predictions it gave
when written. If this test fails, a change broke existing bots' packages: either restore
compatibility, or bump FORMAT_VERSION / FEATURE_CODE_VERSION deliberately, keep this fixture
loading (or refused with a clear message), and add a fixture for the new version.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.data import read_ohlcv
from quantrain.package import FORMAT_VERSION, Predictor, verify_package

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_version_1_package_still_verifies() -> None:
    manifest = verify_package(FIXTURES / "package_v1")
    assert manifest["format_version"] == 1
    assert FORMAT_VERSION >= 1


def test_version_1_package_gives_its_recorded_predictions(sample_dir: Path) -> None:
    recorded = pd.read_csv(FIXTURES / "package_v1_predictions.csv")
    frame = read_ohlcv(sample_dir / "ETH-BTC_5m.parquet").frame
    now = Predictor(FIXTURES / "package_v1").predict(frame, last=len(recorded))
    assert (now["direction"].to_numpy() == recorded["direction"].to_numpy()).all()
    for column in ("direction_p_SELL", "direction_p_HOLD", "direction_p_BUY", "position_size"):
        np.testing.assert_allclose(now[column], recorded[column], atol=1e-6, err_msg=column)


@pytest.mark.parametrize("head", ["direction", "position_size"])
def test_version_1_manifest_fields_bots_rely_on(head: str) -> None:
    entry = verify_package(FIXTURES / "package_v1")["heads"][head]
    assert entry["onnx_input"] == "features"
    assert (FIXTURES / "package_v1" / "heads" / head / "model.onnx").is_file()
    assert entry["parity_max_abs_diff"] <= 1e-4
