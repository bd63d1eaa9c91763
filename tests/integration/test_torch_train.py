"""Ray Train: one torch head trained data-parallel by two CPU workers on a real local cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig
from quantrain.evaluate import classification_metrics
from quantrain.export import check_parity
from quantrain.features import get_feature_set
from quantrain.models import get_family
from quantrain.pipeline import build_dataset

pytest.importorskip("torch")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

PARAMS = {"sequence_length": 8, "hidden": 16, "epochs": 6, "early_stopping_rounds": 2}


def _balanced(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=3).astype(np.float64)
    return (len(y) / (3 * counts))[y]


def test_two_workers_share_the_rows_and_match_one_process(
    ray_cluster: None, eth_frame: pd.DataFrame, tmp_path: Path
) -> None:
    from quantrain.orchestration.torch_train import train_torch_head

    data = build_dataset(eth_frame, get_feature_set("standard"), JobConfig())
    X, y = data.X, data.target("direction").astype(np.int64)
    train, val, test = slice(0, 3500), slice(3500, 4200), slice(4300, None)
    eval_set, weights = (X[val], y[val]), _balanced(y[train])

    parallel = train_torch_head(
        "lstm",
        "classification",
        X[train],
        y[train],
        params=PARAMS,
        n_classes=3,
        seed=5,
        num_workers=2,
        eval_set=eval_set,
        sample_weight=weights,
        storage_path=tmp_path / "ray-train",
    )
    single = get_family("lstm")("classification", PARAMS, n_classes=3, seed=5)
    single.fit(X[train], y[train], eval_set=eval_set, sample_weight=weights)

    # Every training row once per epoch across the two workers, split about evenly.
    assert len(parallel.rows_per_worker) == 2
    assert sum(parallel.rows_per_worker) == 3500 * parallel.epochs
    assert min(parallel.rows_per_worker) >= 1749 * parallel.epochs
    assert 1 <= parallel.model.best_iteration_ <= parallel.epochs <= PARAMS["epochs"]

    scores = {
        name: classification_metrics(y[test], model.predict_proba(X[test]), train_labels=y[train])
        for name, model in (("parallel", parallel.model), ("single", single))
    }
    for metric in ("accuracy", "balanced_accuracy"):
        assert abs(scores["parallel"][metric] - scores["single"][metric]) <= 0.06, scores

    result = check_parity(
        parallel.model, parallel.model.to_onnx(), X[test], tolerance=1e-4, head="direction"
    )
    assert result.max_abs_diff <= 1e-4 and result.label_flips == 0
