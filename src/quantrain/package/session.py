"""The one way quantrain opens an ONNX graph: onnxruntime on the CPU, tuned for a bot's small
batches. Training (the parity gate) and serving (the ``Predictor``) share it, so a graph that
passed the gate runs the same way in a bot; it needs nothing but onnxruntime."""

from __future__ import annotations

import onnxruntime as ort


def onnx_session(model_bytes: bytes, threads: int = 1) -> ort.InferenceSession:
    """A CPU session tuned for small batches (a bot predicts one bar at a time)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
