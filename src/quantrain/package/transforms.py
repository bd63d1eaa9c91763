"""A package's fold-fitted feature transforms served (issue 20): each step's ONNX graph appends
its columns to the recomputed feature rows before the heads read them, as in training
(``suite/transforms.py`` fits them). numpy and onnxruntime only, like the rest of serving.

The recipe hash covers the feature spec and every step (its graph's sha256, inputs, outputs,
settings), so a package with transforms never passes for one without.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from quantrain.errors import PackageError
from quantrain.package.manifest import TransformEntry
from quantrain.package.session import onnx_session

#: Where a package keeps the transform graphs: ``transforms/<name>.onnx``.
TRANSFORMS_DIR = "transforms"


def recipe_hash(spec_hash: str, transforms: Sequence[TransformEntry]) -> str:
    """The feature recipe's hash: the spec's alone without transforms (older packages keep
    theirs), else sha256 of the spec hash and each step's identity."""
    if not transforms:
        return spec_hash
    steps = [
        {k: v for k, v in entry.model_dump().items() if k not in ("parity_max_abs_diff", "rows")}
        for entry in transforms
    ]
    canonical = json.dumps({"spec": spec_hash, "transforms": steps}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ServedTransforms:
    """The steps' sessions in order; ``apply`` maps feature rows to the columns heads read."""

    def __init__(
        self,
        root: Path,
        base: Sequence[str],
        entries: Sequence[TransformEntry],
        listed: Mapping[str, Mapping[str, object]],
    ) -> None:
        self.entries = list(entries)
        columns = list(base)
        self._steps: list[tuple[TransformEntry, ort.InferenceSession, list[int]]] = []
        for entry in self.entries:
            if entry.file not in listed:
                raise PackageError(
                    f"{root}: transform {entry.name!r} names {entry.file!r}, which is not a "
                    "checksummed file of the package; fix: pull or re-train the package"
                )
            if listed[entry.file].get("sha256") != entry.sha256:
                raise PackageError(
                    f"{root}: transform {entry.name!r}: its graph is not the one the feature "
                    f"recipe was built with ({entry.file} was replaced); fix: pull or re-train "
                    "the package"
                )
            missing = [c for c in entry.inputs if c not in columns]
            if missing:
                raise PackageError(
                    f"{root}: transform {entry.name!r} reads {missing}, which no earlier step or "
                    "feature makes; fix: pull or re-train the package"
                )
            self._steps.append(
                (entry, _session(root, entry), [columns.index(c) for c in entry.inputs])
            )
            columns += entry.outputs
        self.columns = tuple(columns)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``X`` with every step's columns appended (NaN for rows whose inputs are missing,
        which are not complete rows anyway)."""
        if not self._steps:
            return X
        matrix = np.asarray(X, dtype=np.float32)
        for entry, session, index in self._steps:
            inputs = np.ascontiguousarray(matrix[:, index])
            finite = np.isfinite(inputs).all(axis=1)
            out = np.full((len(matrix), len(entry.outputs)), np.nan, dtype=np.float32)
            if finite.any():
                result = session.run([entry.onnx_output], {entry.onnx_input: inputs[finite]})[0]
                out[finite] = np.asarray(result, dtype=np.float32).reshape(-1, len(entry.outputs))
            matrix = np.concatenate([matrix, out], axis=1)
        return matrix


def _session(root: Path, entry: TransformEntry) -> ort.InferenceSession:
    path = root / entry.file
    try:
        return onnx_session(path.read_bytes())
    except OSError as error:
        raise PackageError(f"{path}: cannot read transform {entry.name!r}: {error}") from None
    except Exception as error:  # onnxruntime raises its own types
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PackageError(
            f"{path}: onnxruntime cannot load transform {entry.name!r}: {first}; fix: pull or "
            "re-train the package"
        ) from None
