"""HistGradientBoosting as ONNX nodes, written by hand: one ``TreeEnsembleRegressor`` for the
raw scores (NaN routing kept, thresholds exact in float32) and the link to probabilities.

skl2onnx's own converter is not used: with this onnx it fails on a boolean attribute, and it
rounds thresholds to the nearest float32, which can move a row across a split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

from quantrain.errors import ModelError

_ML_DOMAIN = "ai.onnx.ml"


def _float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 ``w`` with ``w <= threshold``: for float32 ``x``, ``x <= threshold``
    (scikit-learn compares in float64) holds exactly when ``x <= w``."""
    rounded = threshold.astype(np.float32)
    above = rounded.astype(np.float64) > threshold
    return np.where(above, np.nextafter(rounded, np.float32(-np.inf)), rounded)


def hgb_tree_node(hgb: Any, input_name: str, output_name: str) -> onnx.NodeProto:
    """HistGradientBoosting's raw scores ``(N, trees per iteration)`` as one
    ``TreeEnsembleRegressor``, NaN routing included."""
    per_iteration = int(hgb.n_trees_per_iteration_)
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            *("tree", "node", "feature", "value", "true", "false", "missing", "leaf"),
            *("t_tree", "t_node", "t_id", "t_weight"),
        )
    }
    for iteration, trees in enumerate(hgb._predictors):
        for k, predictor in enumerate(trees):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ModelError("categorical HistGradientBoosting splits are not exported")
            tree_id = iteration * per_iteration + k
            leaf = nodes["is_leaf"].astype(bool)
            ids = np.arange(len(nodes), dtype=np.int64)
            cols["tree"].append(np.full(len(nodes), tree_id, dtype=np.int64))
            cols["node"].append(ids)
            cols["feature"].append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
            threshold = _float32_at_most(nodes["num_threshold"].astype(np.float64))
            cols["value"].append(np.where(leaf, np.float32(0), threshold).astype(np.float32))
            cols["true"].append(np.where(leaf, 0, nodes["left"]).astype(np.int64))
            cols["false"].append(np.where(leaf, 0, nodes["right"]).astype(np.int64))
            cols["missing"].append(np.where(leaf, 0, nodes["missing_go_to_left"]).astype(np.int64))
            cols["leaf"].append(leaf)
            cols["t_tree"].append(np.full(int(leaf.sum()), tree_id, dtype=np.int64))
            cols["t_node"].append(ids[leaf])
            cols["t_id"].append(np.full(int(leaf.sum()), k, dtype=np.int64))
            cols["t_weight"].append(nodes["value"][leaf].astype(np.float32))
    flat = {k: np.concatenate(v) for k, v in cols.items()}
    return helper.make_node(
        "TreeEnsembleRegressor",
        [input_name],
        [output_name],
        domain=_ML_DOMAIN,
        n_targets=per_iteration,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[float(v) for v in np.asarray(hgb._baseline_prediction).ravel()],
        nodes_treeids=flat["tree"].tolist(),
        nodes_nodeids=flat["node"].tolist(),
        nodes_featureids=flat["feature"].tolist(),
        nodes_modes=["LEAF" if leaf else "BRANCH_LEQ" for leaf in flat["leaf"]],
        nodes_values=flat["value"].tolist(),
        nodes_truenodeids=flat["true"].tolist(),
        nodes_falsenodeids=flat["false"].tolist(),
        nodes_missing_value_tracks_true=flat["missing"].tolist(),
        target_treeids=flat["t_tree"].tolist(),
        target_nodeids=flat["t_node"].tolist(),
        target_ids=flat["t_id"].tolist(),
        target_weights=flat["t_weight"].tolist(),
    )


def binary_from_logit(logit: str, output: str, const: Any) -> list[onnx.NodeProto]:
    """``[1 - σ(z), σ(z)]``, as scikit-learn's binary losses compute probabilities."""
    one = const(f"{output}_one", np.array([1.0], dtype=np.float32))
    return [
        helper.make_node("Sigmoid", [logit], [f"{output}_p1"]),
        helper.make_node("Sub", [one, f"{output}_p1"], [f"{output}_p0"]),
        helper.make_node("Concat", [f"{output}_p0", f"{output}_p1"], [output], axis=1),
    ]


def probabilities(hgb: Any, raw: str, output: str, const: Any) -> list[onnx.NodeProto]:
    """Class probabilities from :func:`hgb_tree_node`'s raw scores, by the classifier's link:
    sigmoid for one tree per iteration, softmax for one per class."""
    if int(hgb.n_trees_per_iteration_) == 1:
        return binary_from_logit(raw, output, const)
    return [helper.make_node("Softmax", [raw], [output], axis=1)]
