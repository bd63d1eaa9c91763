"""The parity gate: an ONNX graph ships only if it reproduces the native model on held-out rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from quantrain.errors import ExportParityError
from quantrain.features.windows import lookback_windows
from quantrain.models.base import ModelFamily
from quantrain.models.onnx_outputs import INPUT_NAME
from quantrain.models.windows import sequence_length_of
from quantrain.package.session import onnx_session


@dataclass(frozen=True)
class ParityResult:
    """How closely ONNX matched native: largest absolute difference and label disagreements."""

    rows: int
    max_abs_diff: float
    label_flips: int


def graph_input(model: ModelFamily, X: np.ndarray) -> np.ndarray:
    """What ``model``'s graph reads for the rows of ``X``: the float32 rows, or for a sequence
    family their lookback windows, built by the same function the model and Predictor use."""
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    length = sequence_length_of(model)
    return X32 if length is None else np.ascontiguousarray(lookback_windows(X32, length))


def check_parity(
    model: ModelFamily, graph: onnx.ModelProto, X: np.ndarray, *, tolerance: float, head: str
) -> ParityResult:
    """Compare native and ONNX outputs on ``X``; raise :class:`ExportParityError` past tolerance.

    ``X`` is the feature matrix in time order; sequence graphs get its lookback windows.
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    feed = graph_input(model, X32)
    outputs = onnx_session(graph.SerializeToString()).run(None, {INPUT_NAME: feed})
    if model.task == "classification":
        native = model.predict_proba(X32)
        onnx_probs = np.asarray(outputs[1], dtype=np.float64)
        diff = float(np.max(np.abs(onnx_probs - native))) if len(X32) else 0.0
        flips = int(np.sum(np.asarray(outputs[0]) != native.argmax(axis=1)))
    else:  # every output: a value, or also a scale, or one value per task
        native_outputs = model.native_outputs(X32)
        if len(outputs) != len(native_outputs):
            raise ExportParityError(
                f"head {head!r} ({model.key}): the graph has {len(outputs)} outputs, the "
                f"model {len(native_outputs)}"
            )
        gaps = [
            np.abs(np.asarray(graph_values, dtype=np.float64).reshape(-1) - np.ravel(native))
            for graph_values, native in zip(outputs, native_outputs, strict=True)
        ]
        diff = float(np.max(np.concatenate(gaps))) if len(X32) else 0.0  # NaN stays NaN
        flips = 0
    result = ParityResult(rows=len(X32), max_abs_diff=diff, label_flips=flips)
    if not np.isfinite(diff) or diff > tolerance or flips:
        raise ExportParityError(
            f"head {head!r} ({model.key}): ONNX differs from the native model on {len(X32)} "
            f"held-out rows: max |diff| {diff:.3g} (tolerance {tolerance:g}), {flips} label flips. "
            "The package was not written; report this with the job file."
        )
    return result
