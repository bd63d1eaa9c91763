"""Data-parallel GBDT on Ray Train: two workers see every row between them, the trees are grown
from all rows (not one shard), and the result is an ordinary family object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig
from quantrain.features import get_feature_set
from quantrain.models import ModelFamily, get_family
from quantrain.orchestration.gbdt_train import DistributedFitter, fit_data_parallel, fitter_for
from quantrain.pipeline import build_dataset
from quantrain.suite.dataset import Dataset
from quantrain.suite.fit import balanced_weights, plain_fit

from ..conftest import fast_job

pytestmark = [pytest.mark.ray, pytest.mark.slow]

#: No row or column sampling, so both fits see the same data in the same way.
PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 40, "early_stopping_rounds": 0, "subsample": 1.0},
    "lightgbm": {
        "n_estimators": 40,
        "early_stopping_rounds": 0,
        "bagging_fraction": 1.0,
        "bagging_freq": 0,
    },
}


@pytest.fixture(scope="module")
def eth_data(eth_frame: pd.DataFrame) -> Dataset:
    job = JobConfig()
    return build_dataset(eth_frame, get_feature_set(job.features), job)


def _root_rows(model: ModelFamily) -> float:
    """What the first tree's root saw: LightGBM's row count; XGBoost's hessian sum (cover)."""
    booster: Any = model.booster_  # type: ignore[attr-defined]
    if model.key == "lightgbm":
        return float(booster.dump_model()["tree_info"][0]["tree_structure"]["internal_count"])
    trees = booster.trees_to_dataframe()
    return float(trees[(trees.Tree == 0) & (trees.Node == 0)].Cover.iloc[0])


@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("family", ["xgboost", "lightgbm"])
def test_two_workers_train_on_every_row_as_well_as_one(
    family: str, eth_data: Dataset, tmp_path: Path
) -> None:
    X, y = eth_data.X, eth_data.target("direction").astype(np.int64)
    split = int(len(X) * 0.8)
    weights = balanced_weights(y[:split], 3)

    def model() -> ModelFamily:
        return get_family(family)("classification", PARAMS[family], n_classes=3, seed=42)

    single = model().fit(X[:split], y[:split], sample_weight=weights)
    run = fit_data_parallel(
        model(), X[:split], y[:split], sample_weight=weights, workers=2, storage=str(tmp_path)
    )
    assert run.rows_per_worker == [(split + 1) // 2, split // 2]
    assert sum(run.rows_per_worker) == split
    # The collective summed the workers' histograms: the first split was chosen on every row.
    # (A worker training alone on its shard would show about half.)
    assert _root_rows(run.model) == pytest.approx(_root_rows(single), rel=1e-3)
    if family == "lightgbm":
        assert _root_rows(run.model) == split

    test_X, test_y = X[split:], y[split:]
    distributed_acc = float(np.mean(run.model.predict(test_X) == test_y))
    single_acc = float(np.mean(single.predict(test_X) == test_y))
    assert abs(distributed_acc - single_acc) < 0.03
    assert run.model.best_iteration_ == single.best_iteration_ == 40
    # An ordinary family object: exports and round-trips like any other.
    assert run.model.to_onnx().graph.output
    run.model.save(tmp_path / "saved")
    reloaded = type(run.model).load(tmp_path / "saved")
    np.testing.assert_array_equal(reloaded.predict_proba(test_X), run.model.predict_proba(test_X))


def test_the_job_decides_which_fits_go_data_parallel(tmp_path: Path) -> None:
    assert fitter_for(fast_job(tmp_path)) is plain_fit
    job = fast_job(tmp_path, ray={"train_workers": 2, "distributed_rows_threshold": 1000})
    fitter = fitter_for(job)
    assert fitter == DistributedFitter(workers=2, threshold=1000)
    # Below the threshold (and for families without a trainer) the fit stays in-process,
    # with no Ray Train run: this test has no cluster.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)).astype(np.float32), rng.integers(0, 3, 200)
    small = fitter(get_family("xgboost")("classification", {"n_estimators": 5}, n_classes=3), X, y)
    assert small.best_iteration_ == 5


@pytest.mark.usefixtures("ray_cluster")
def test_auto_reads_the_real_cluster_and_stays_in_process_on_one_node() -> None:
    import ray

    from quantrain.orchestration.crossover import AUTO_MIN_ROWS, cluster_shape

    assert cluster_shape(ray.nodes()).node_cpus == (2.0,)  # the session's one 2-CPU node
    fitter = DistributedFitter(workers=2, threshold="auto")
    for cpus_per_worker in (1, 2, 8):  # fits on the node, or needs more than the cluster has
        assert not fitter._data_parallel(10 * AUTO_MIN_ROWS, cpus_per_worker)
    assert DistributedFitter(workers=2, threshold=1000)._data_parallel(1000, 1)


@pytest.mark.usefixtures("ray_cluster")
def test_the_fitter_sends_fits_from_the_threshold_to_ray_train(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(1200, 4)).astype(np.float32), rng.integers(0, 3, 1200)
    fitter = DistributedFitter(workers=2, threshold=1000, storage=str(tmp_path))

    def model() -> ModelFamily:
        return get_family("xgboost")("classification", {"n_estimators": 5}, n_classes=3)

    assert fitter(model(), X[:999], y[:999]).best_iteration_ == 5
    assert not list(tmp_path.glob("quantrain-xgboost-*"))  # below: no Ray Train run
    fitted = fitter(model(), X, y)
    assert list(tmp_path.glob("quantrain-xgboost-*"))  # at the threshold: a Ray Train run
    assert fitted.best_iteration_ == 5 and fitted.predict_proba(X).shape == (1200, 3)
