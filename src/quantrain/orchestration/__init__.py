"""The only package that imports Ray: per-symbol fan-out now; Train and Tune in later issues."""

from quantrain.orchestration.fanout import ray_status, run_symbols

__all__ = ["ray_status", "run_symbols"]
