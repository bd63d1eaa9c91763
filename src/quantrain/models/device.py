"""Pick the compute device: ``auto`` finds CUDA or ROCm when a library can use it, else CPU."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

from quantrain.errors import ConfigError

log = logging.getLogger(__name__)

#: Families trained with PyTorch: ``auto`` puts them on whatever GPU torch itself can use.
TORCH_FAMILIES = ("mlp", "lstm", "cnn1d", "transformer", "mlp_multitask", "mlp_gaussian")


@dataclass(frozen=True)
class Accelerators:
    """What this machine offers: GPUs by vendor tool and whether the installed XGBoost uses CUDA."""

    cuda_gpus: tuple[str, ...]
    rocm_gpus: tuple[str, ...]
    xgboost_cuda: bool


def _query(command: list[str]) -> tuple[str, ...]:
    if shutil.which(command[0]) is None:
        return ()
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip())


@cache
def detect() -> Accelerators:
    """Ask the vendor tools once per process; cheap enough for ``doctor`` and every task."""
    import xgboost

    cuda = _query(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
    rocm = tuple(g for g in _query(["rocm-smi", "--showproductname"]) if "GPU" in g)
    info = xgboost.build_info()
    return Accelerators(cuda, rocm, bool(info.get("USE_CUDA")))


def resolve_device(requested: str, *, family: str) -> str:
    """Turn ``auto|cpu|cuda|rocm`` into what ``family`` will really use, saying why once."""
    if requested not in {"auto", "cpu", "cuda", "rocm"}:
        raise ConfigError(f"device must be auto, cpu, cuda or rocm, got {requested!r}")
    if requested == "cpu":
        return "cpu"
    if family in TORCH_FAMILIES:
        return _torch_device(requested, family)
    found = detect()
    usable_cuda = bool(found.cuda_gpus) and family == "xgboost" and found.xgboost_cuda
    if requested == "cuda" and not usable_cuda:
        raise ConfigError(
            f"device 'cuda' was asked for {family}, but "
            + (
                "no NVIDIA GPU is visible"
                if not found.cuda_gpus
                else f"{family} here has no CUDA build (install `xgboost`, not `xgboost-cpu`)"
            )
        )
    if requested == "rocm":
        raise ConfigError(f"device 'rocm' is not supported by the {family} family yet; use auto")
    if usable_cuda:
        return "cuda"
    if found.cuda_gpus or found.rocm_gpus:
        log.info("%s: a GPU is present but this build cannot use it; training on CPU", family)
    return "cpu"


@cache
def torch_gpu() -> str | None:
    """The GPU torch can use, described (``"CUDA 12.8: NVIDIA H100"``, ``"ROCm 6.3: …"``), or
    None. ROCm builds of torch also answer ``torch.cuda.is_available()`` and use device
    ``"cuda"``; ``torch.version.hip`` tells them apart. Logged once per process."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        log.info("torch sees no GPU (torch %s); torch families train on CPU", torch.__version__)
        return None
    hip = getattr(torch.version, "hip", None)
    backend = f"ROCm {hip}" if hip else f"CUDA {torch.version.cuda}"
    found = f"{backend}: {torch.cuda.get_device_name(0)}"
    log.info("torch families train on the GPU (%s)", found)
    return found


def _torch_device(requested: str, family: str) -> str:
    """``auto`` → ``cuda`` when torch sees a CUDA or ROCm GPU, else ``cpu``; an explicit
    ``cuda``/``rocm`` must match the GPU torch was built for."""
    gpu = torch_gpu()
    if requested == "auto":
        return "cuda" if gpu else "cpu"
    if gpu is None:
        raise ConfigError(
            f"device {requested!r} was asked for {family}, but torch sees no GPU here "
            "(a CPU-only torch build, or no driver); use device auto or cpu"
        )
    if (requested == "rocm") != gpu.startswith("ROCm"):
        raise ConfigError(
            f"device {requested!r} was asked for {family}, but this torch drives {gpu}; "
            "use device auto"
        )
    return "cuda"
