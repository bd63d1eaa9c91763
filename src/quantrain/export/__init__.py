"""ONNX export is done by each family's ``to_onnx``; this package gates it on parity."""

from quantrain.export.parity import ParityResult, check_parity

__all__ = ["ParityResult", "check_parity"]
