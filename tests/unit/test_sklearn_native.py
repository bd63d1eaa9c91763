"""The scikit-learn families' native files: skops, never pickle, only trusted types load."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from skops import io as skops_io

from quantrain.errors import ModelError
from quantrain.models.sklearn.base import read_estimators, write_estimators


def test_estimators_round_trip_bit_identically(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)), rng.normal(size=200)
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    write_estimators(tmp_path / "model.skops", {"forest": forest})
    loaded = read_estimators(tmp_path / "model.skops")["forest"]
    np.testing.assert_array_equal(loaded.predict(X), forest.predict(X))


def test_a_file_naming_a_foreign_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    skops_io.dump({"sklearn": "1.0", "estimators": {"x": datetime.timedelta(days=1)}}, path)
    with pytest.raises(ModelError, match="types outside scikit-learn"):
        read_estimators(path)


def test_a_file_from_another_sklearn_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    skops_io.dump({"sklearn": "0.1.0", "estimators": {}}, path)
    with pytest.raises(ModelError, match=r"written by scikit-learn 0\.1\.0"):
        read_estimators(path)
