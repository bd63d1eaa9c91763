"""Model packages: the on-disk contract with trading bots, and the ``Predictor`` they call.

``Predictor`` (onnxruntime, the feature kernels) is imported on first use, so code that only
reads or checks package files (the store) does not load the serving stack.
"""

from typing import TYPE_CHECKING, Any

from quantrain.package.layout import (
    FORMAT_VERSION,
    MANIFEST,
    load_manifest,
    package_problems,
    read_manifest,
    verify_package,
    write_manifest,
)
from quantrain.package.manifest import HeadEntry, Manifest, parse_manifest

if TYPE_CHECKING:
    from quantrain.package.live import LivePredictor, PredictorPool
    from quantrain.package.predictor import Predictor, load_feature_spec, load_native_head

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "HeadEntry",
    "LivePredictor",
    "Manifest",
    "Predictor",
    "PredictorPool",
    "load_feature_spec",
    "load_manifest",
    "load_native_head",
    "package_problems",
    "parse_manifest",
    "read_manifest",
    "verify_package",
    "write_manifest",
]

_SERVING = frozenset({"Predictor", "load_feature_spec", "load_native_head"})
_LIVE = frozenset({"LivePredictor", "PredictorPool"})


def __getattr__(name: str) -> Any:
    if name in _SERVING:
        from quantrain.package import predictor

        return getattr(predictor, name)
    if name in _LIVE:
        from quantrain.package import live

        return getattr(live, name)
    raise AttributeError(f"module 'quantrain.package' has no attribute {name!r}")
