"""``quantrain doctor``: what this machine (or container) offers a job, one line per fact."""

from __future__ import annotations

import importlib
import platform

import quantrain
from quantrain.models.device import TORCH_FAMILIES, detect, resolve_device, torch_gpu
from quantrain.runtime.cpus import usable_cpus

LIBRARIES = ("xgboost", "lightgbm", "onnxruntime", "onnxmltools", "numba", "pandas")


def _torch_line() -> str:
    """torch's build and the device its families get with ``auto`` (ROCm builds included)."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return "torch: not installed (torch families need pip install 'quantrain[torch]')"
    gpu = torch_gpu()
    where = gpu or ("no GPU visible" if torch.version.cuda or torch.version.hip else "CPU build")
    return (
        f"torch {torch.__version__}: {where}; torch families "
        f"({', '.join(TORCH_FAMILIES)}) device auto -> {'cuda' if gpu else 'cpu'}"
    )


def report_lines(cluster: str) -> list[str]:
    """Versions, usable CPUs, GPUs by vendor and what each family's ``auto`` device becomes;
    ``cluster`` is the Ray line (the orchestration layer knows where jobs would run)."""
    found = detect()
    lines = [
        f"quantrain {quantrain.__version__} on Python {platform.python_version()} "
        f"({platform.system()} {platform.machine()})",
        f"CPUs usable: {usable_cpus()} (affinity and container quota)",
        "CUDA GPUs: " + (", ".join(found.cuda_gpus) or "none found"),
        "ROCm GPUs: " + (", ".join(found.rocm_gpus) or "none found"),
        f"xgboost CUDA build: {'yes' if found.xgboost_cuda else 'no'}; device auto -> "
        f"{resolve_device('auto', family='xgboost')}",
        _torch_line(),
        cluster,
    ]
    for name in LIBRARIES:
        try:
            module = importlib.import_module(name)
            lines.append(f"{name} {module.__version__}")
        except ImportError:
            lines.append(f"{name}: not installed")
    return lines
