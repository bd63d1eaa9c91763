"""quantrain: train, validate and ship per-symbol trading models as verified ONNX packages."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("quantrain")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
