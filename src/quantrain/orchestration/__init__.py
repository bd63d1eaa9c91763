"""The only package that imports Ray: the per-symbol fan-out, Ray Tune searches, Ray Train fits."""

from quantrain.orchestration.fanout import ray_status, run_symbols

__all__ = ["ray_status", "run_symbols"]
