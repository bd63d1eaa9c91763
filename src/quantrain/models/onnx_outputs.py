"""Give every converted graph the same names: input ``features``; outputs ``label`` and
``probabilities`` (classifiers) or ``value`` (regressors), all with a dynamic batch axis."""

from __future__ import annotations

import onnx
from onnxmltools.convert.common.data_types import FloatTensorType

INPUT_NAME = "features"
BATCH_DIM = "N"


def normalise_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """Rename the graph outputs in order to ``names`` and make their first axis dynamic."""
    graph = model.graph
    if len(graph.output) != len(names):
        raise ValueError(f"expected {len(names)} outputs, graph has {len(graph.output)}")
    renames = {out.name: new for out, new in zip(graph.output, names, strict=True)}
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    for out in graph.output:
        out.name = renames[out.name]
        dims = out.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = BATCH_DIM
        if out.name == "label" and len(dims) > 1:
            del dims[1:]
    return model


def output_names(task: str) -> list[str]:
    """The graph outputs every family of ``task`` exposes."""
    return ["label", "probabilities"] if task == "classification" else ["value"]


def float_input(n_features: int) -> list[tuple[str, FloatTensorType]]:
    """The converters' input declaration: a float32 matrix with a dynamic batch axis."""
    return [(INPUT_NAME, FloatTensorType([None, n_features]))]
