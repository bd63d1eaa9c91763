"""Model packages: the on-disk contract with trading bots, and the ``Predictor`` they call."""

from quantrain.package.layout import (
    FORMAT_VERSION,
    MANIFEST,
    HeadManifest,
    package_problems,
    read_manifest,
    verify_package,
    write_manifest,
)
from quantrain.package.predictor import Predictor, load_feature_spec, load_native_head

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "HeadManifest",
    "Predictor",
    "load_feature_spec",
    "load_native_head",
    "package_problems",
    "read_manifest",
    "verify_package",
    "write_manifest",
]
