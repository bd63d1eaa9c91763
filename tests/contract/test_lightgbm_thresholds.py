"""LightGBM splits in double, ONNX in float32: a threshold rounded to the nearest float32 can
land on an input just above it and send that row down the other branch. Thresholds are lowered
to the largest float32 not above them, which changes no float32 input's path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig
from quantrain.export import check_parity
from quantrain.features import get_feature_set
from quantrain.models import get_family
from quantrain.models.lightgbm_family import float32_thresholds
from quantrain.pipeline import build_dataset

#: LightGBM's kZeroThreshold: inputs this close to 0 count as 0.
ZERO_BAND = float(np.float32(1e-35))  # as stored: 1.0000000180025095e-35


@pytest.fixture(scope="module")
def fitted(eth_frame: pd.DataFrame) -> tuple[object, np.ndarray]:
    data = build_dataset(eth_frame, get_feature_set("standard"), JobConfig())
    y = data.target("direction").astype(np.int64)
    model = get_family("lightgbm")("classification", {"n_estimators": 40}, n_classes=3, seed=1)
    return model.fit(data.X[:3000], y[:3000]), data.X[3000:3500]


def _splits(booster: object) -> list[tuple[int, float]]:
    found: list[tuple[int, float]] = []

    def walk(node: dict) -> None:
        if "split_feature" in node:
            found.append((node["split_feature"], node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:  # type: ignore[attr-defined]
        walk(tree["tree_structure"])
    return found


def test_every_threshold_is_a_float32_not_above_the_original() -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4)).astype(np.float32)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 20)
    before = _splits(booster)
    after = _splits(lgb.Booster(model_str=float32_thresholds(booster.model_to_string())))
    assert len(before) == len(after) > 0
    for (f0, t0), (f1, t1) in zip(before, after, strict=True):
        assert f0 == f1 and t1 <= t0 and float(np.float32(t1)) == t1
        assert float(np.nextafter(np.float32(t1), np.float32(np.inf))) > t0  # none between


def test_inputs_sitting_on_rounded_thresholds_keep_parity(
    fitted: tuple[object, np.ndarray],
) -> None:
    """Rows whose feature equals a threshold rounded to the nearest float32 (the value that
    went the wrong way before): native and ONNX agree on every one of them."""
    model, rows = fitted
    # LightGBM reads |x| <= 1e-35 as zero (kZeroThreshold) and splits "at zero" with a
    # threshold of -1e-35: an input of exactly ±1e-35 follows LightGBM's zero rule, which no
    # feature value reaches. Such splits are probed with an exact 0 instead.
    splits = [
        (feature, 0.0 if abs(threshold) <= ZERO_BAND else threshold)
        for feature, threshold in _splits(model.booster_)  # type: ignore[attr-defined]
    ]
    adversarial = np.repeat(rows[:1], len(splits), axis=0)
    for i, (feature, threshold) in enumerate(splits):
        adversarial[i, feature] = np.float32(threshold)
    result = check_parity(
        model,  # type: ignore[arg-type]
        model.to_onnx(),  # type: ignore[attr-defined]
        np.concatenate([adversarial, rows]),
        tolerance=1e-4,
        head="direction",
    )
    assert result.label_flips == 0 and result.max_abs_diff <= 1e-4
