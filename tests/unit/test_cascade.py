"""Cascade heads (``suite.cascade``): a downstream head reads only out-of-fold upstream outputs.
In-sample upstream predictions must be refused; the inner walk-forward the pipeline uses must
pass that check; the meta-label follows the primary head's side; bad ``inputs`` are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantrain.config import JobConfig, build_job
from quantrain.errors import ConfigError
from quantrain.labels.targets import LONG_WINS, SHORT_WINS, meta_labels
from quantrain.split import walk_forward
from quantrain.suite.cascade import (
    CascadeLeakError,
    OOFPredictions,
    cascade_fold,
    cascade_inputs,
    inner_oof,
    walk_forward_oof,
)
from quantrain.suite.dataset import Dataset

COLUMNS = ("direction_p_SELL", "direction_p_HOLD", "direction_p_BUY")
FAST = {"n_estimators": 10, "max_depth": 2}


def planted(rows: int = 600, seed: int = 3) -> Dataset:
    """Four features, a three-class direction label that the first feature drives, labels
    that look 5 rows ahead, and the meta-label's side outcomes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4)).astype(np.float32)
    direction = np.digitize(X[:, 0] + 0.5 * rng.normal(size=rows), [-0.5, 0.5]).astype(np.int8)
    outcomes = rng.integers(0, 4, size=rows).astype(np.int8)
    return Dataset(
        X=X,
        targets={"direction": direction, "meta_label": outcomes},
        label_end=np.minimum(np.arange(rows) + 5, rows - 1),
        stamps=pd.Series(pd.date_range("2024-01-01", periods=rows, freq="5min", tz="UTC")),
    )


def job() -> JobConfig:
    return build_job(
        {
            "split": {"n_folds": 2},
            "suite": {
                "name": "c",
                "heads": [
                    {"name": "direction", "target": "direction", "params": FAST},
                    {
                        "name": "meta",
                        "target": "meta_label",
                        "inputs": ["direction"],
                        "params": FAST,
                    },
                ],
            },
        }
    )


def test_in_sample_upstream_predictions_are_refused() -> None:
    X = np.zeros((10, 2), dtype=np.float32)
    outputs = np.full((10, 3), 1 / 3)
    # one model trained on rows 0-9 and predicted rows 0-9: in-sample
    leaky = OOFPredictions.from_models(
        "direction", COLUMNS, [(np.arange(10), np.arange(10), outputs)]
    )
    with pytest.raises(CascadeLeakError, match="in-sample upstream predictions refused"):
        cascade_inputs(X, np.arange(10), [leaky])
    # a model trained on rows 0-4 and predicting rows 4-9 overlaps in row 4 only: still refused
    overlap = OOFPredictions.from_models(
        "direction", COLUMNS, [(np.arange(5), np.arange(4, 10), outputs[:6])]
    )
    with pytest.raises(CascadeLeakError, match="first: row 4"):
        cascade_inputs(X, np.arange(4, 10), [overlap])


def test_rows_without_an_upstream_output_are_refused_not_filled() -> None:
    oof = OOFPredictions.from_models(
        "direction", COLUMNS, [(np.arange(5), np.arange(5, 10), np.ones((5, 3)))]
    )
    with pytest.raises(CascadeLeakError, match="no out-of-fold output for 2 of 7 rows"):
        cascade_inputs(np.zeros((10, 2), np.float32), np.arange(3, 10), [oof])


def test_out_of_fold_outputs_are_appended_in_row_order() -> None:
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    first = np.array([[0.1, 0.2, 0.7]] * 3)
    second = np.array([[0.6, 0.3, 0.1]] * 2)
    oof = OOFPredictions.from_models(
        "direction",
        COLUMNS,
        [(np.arange(5), np.array([5, 6, 7]), first), (np.arange(8), np.array([8, 9]), second)],
    )
    got = cascade_inputs(X, np.array([6, 9]), [oof])
    np.testing.assert_array_equal(got[:, :2], X[[6, 9]])
    np.testing.assert_allclose(got[:, 2:], [[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], rtol=1e-6)


def test_the_inner_walk_forward_passes_the_leak_check_and_drops_early_rows() -> None:
    data, config = planted(), job()
    direction, meta = config.suite.heads
    (fold,) = walk_forward(len(data.X), n_folds=1, label_end=data.label_end)
    inner = inner_oof(direction, data, fold.train, config, COLUMNS)
    assert set(inner.rows) <= set(fold.train.tolist())
    assert inner.rows[0] > fold.train[0]  # the first inner block trained, it was not predicted
    for model, trained in enumerate(inner.trained_on):
        predicted = inner.rows[inner.model_of == model]
        assert trained.max() < predicted.min()  # chronological, never the same row
    test = OOFPredictions.from_models(
        "direction", COLUMNS, [(fold.train, fold.test, np.full((len(fold.test), 3), 1 / 3))]
    )
    sub, local = cascade_fold(meta, data, fold, [inner], [test])
    assert len(local.train) == len(inner.rows) and len(local.test) == len(fold.test)
    assert sub.X.shape[1] == data.X.shape[1] + 3
    assert set(np.unique(sub.targets["meta_label"])) <= {0, 1}


def test_the_fold_models_own_training_rows_are_refused_as_test_inputs() -> None:
    data = planted()
    folds = walk_forward(len(data.X), n_folds=2, label_end=data.label_end)
    outputs = [np.full((len(f.test), 3), 1 / 3) for f in folds]
    oof = walk_forward_oof("direction", COLUMNS, folds, outputs)
    cascade_inputs(data.X, folds[1].test, [oof])  # fold 1's model never saw its test rows
    # fold 0's test rows are fold 1's training rows: fold 1's model is in-sample there
    swapped = OOFPredictions.from_models(
        "direction", COLUMNS, [(folds[1].train, folds[0].test, outputs[0])]
    )
    with pytest.raises(CascadeLeakError):
        cascade_inputs(data.X, folds[0].test, [swapped])


def test_meta_label_is_one_where_the_primary_side_won() -> None:
    outcomes = np.array([LONG_WINS, LONG_WINS, SHORT_WINS, SHORT_WINS, LONG_WINS | SHORT_WINS, 0])
    side = np.array([1, -1, -1, 1, 0, 1])
    assert meta_labels(outcomes, side).tolist() == [1, 0, 1, 0, 0, 0]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["nope"], "head 'size': inputs names 'nope', not a head of this suite"),
        (["size"], "head 'size': inputs names the head itself"),
        (["meta"], "head 'size': its input 'meta' reads heads itself"),
    ],
)
def test_bad_inputs_are_a_config_error_naming_the_head(inputs: list[str], message: str) -> None:
    heads = [
        {"name": "direction", "target": "direction"},
        {"name": "size", "target": "position_size", "inputs": inputs},
        {"name": "meta", "target": "meta_label", "inputs": ["direction", "size"]},
    ]
    with pytest.raises(ConfigError, match=message):
        build_job({"suite": {"name": "c", "heads": heads}})


def test_a_composite_upstream_is_refused() -> None:
    heads = [
        {"name": "path", "target": "trade_path", "family": "mlp_multitask"},
        {"name": "size", "target": "position_size", "inputs": ["path"]},
    ]
    with pytest.raises(ConfigError, match="its input 'path' has the composite target"):
        build_job({"suite": {"name": "c", "heads": heads}})


@pytest.mark.parametrize(
    "extra",
    [
        {"transforms": [{"kind": "gmm", "columns": ["atr_pct", "rv_24"]}]},
        {"select": {"method": "importance", "top": 10}},
    ],
)
def test_cascades_with_fold_fitted_transforms_or_selection_are_refused(extra: dict) -> None:
    heads = [
        {"name": "direction", "target": "direction"},
        {"name": "size", "target": "position_size", "inputs": ["direction"]},
    ]
    with pytest.raises(ConfigError, match=r"cascade heads \(size\) cannot be combined"):
        build_job({"suite": {"name": "c", "heads": heads, **extra}})


def test_meta_label_without_a_direction_input_is_refused() -> None:
    heads = [
        {"name": "size", "target": "position_size"},
        {"name": "meta", "target": "meta_label", "inputs": ["size"]},
    ]
    with pytest.raises(ConfigError, match="head 'meta': target meta_label takes the side"):
        build_job({"suite": {"name": "c", "heads": heads}})


def test_tuning_leaves_cascade_heads_alone_and_refuses_to_search_one() -> None:
    from quantrain.tuning.search import tuned_heads

    assert [h.name for h in tuned_heads(job())] == ["direction"]
    raw = job().model_dump(mode="json")
    raw["tune"]["heads"] = ["meta"]
    with pytest.raises(ConfigError, match=r"tune.heads names cascade heads \['meta'\]"):
        tuned_heads(JobConfig.model_validate(raw))
