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
    if "label" in names and "probabilities" in names:
        _label_from_probabilities(graph)
    return model


def _label_from_probabilities(graph: onnx.GraphProto) -> None:
    """Make ``label`` the argmax of ``probabilities``, whatever the converter computed.

    onnxruntime's binary TreeEnsembleClassifier from onnxmltools' LightGBM converter labels
    every row class 0 while its probabilities say otherwise; one rule for every family keeps
    the label and the probabilities a bot reads consistent.
    """
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == "label":
                node.output[i] = "converter_label"
    graph.node.append(
        onnx.helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0)
    )
    for out in graph.output:
        if out.name == "label":
            out.type.tensor_type.elem_type = onnx.TensorProto.INT64


def output_names(task: str) -> list[str]:
    """The graph outputs every family of ``task`` exposes."""
    return ["label", "probabilities"] if task == "classification" else ["value"]


def float_input(n_features: int) -> list[tuple[str, FloatTensorType]]:
    """The converters' input declaration: a float32 matrix with a dynamic batch axis."""
    return [(INPUT_NAME, FloatTensorType([None, n_features]))]
