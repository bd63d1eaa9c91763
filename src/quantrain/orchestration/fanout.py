"""One Ray task per symbol: failures stay per symbol, results stream back as they finish."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import traceback
from collections.abc import Callable, Sequence

import ray

from quantrain.config import JobConfig
from quantrain.data import DataSource
from quantrain.errors import ConfigError
from quantrain.pipeline import SymbolResult, run_symbol

log = logging.getLogger(__name__)


def _unreachable(address: str, timeout_s: float = 3.0) -> str | None:
    """Why ``host:port`` (or ``ray://host:port``) cannot be reached, or None if it answers.

    Ray itself retries an absent head for minutes; a bad address should fail in seconds.
    """
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return None  # "auto", "local" and other forms are Ray's to resolve
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return None
    except OSError as error:
        return f"nothing answers at {host}:{port} ({error.strerror or error})"


def connect(address: str | None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``), else start a local cluster sized to this machine."""
    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS")
    if target:
        problem = _unreachable(target)
        if problem is None:
            try:
                ray.init(address=target, configure_logging=False, log_to_driver=False)
                return
            except (ConnectionError, RuntimeError, ValueError) as error:
                problem = str(error)
        raise ConfigError(
            f"cannot join the Ray cluster at {target!r}: {problem}\n"
            "  fix: start the head (ray start --head) or correct ray.address / RAY_ADDRESS "
            "(e.g. ray://head:10001 or auto); unset both to train on a local cluster"
        )
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
    )


def _train_one(source: DataSource, job: JobConfig, n_jobs: int) -> SymbolResult:
    """The task body: the pipeline, plus where it ran."""
    result = run_symbol(source, job, n_jobs=n_jobs)
    return dataclasses.replace(result, node=ray.util.get_node_ip_address())


def run_symbols(
    sources: Sequence[DataSource],
    job: JobConfig,
    *,
    on_result: Callable[[SymbolResult], None] | None = None,
) -> list[SymbolResult]:
    """Train every symbol in parallel; a crash in one symbol becomes its failure row."""
    connect(job.ray.address)
    n_jobs = max(1, int(job.ray.num_cpus_per_symbol))
    task = ray.remote(_train_one).options(
        num_cpus=job.ray.num_cpus_per_symbol,
        num_gpus=job.ray.num_gpus_per_symbol,
        # A bad symbol fails the same way twice; node-loss retries arrive with the cluster path.
        max_retries=0,
    )
    pending = {task.remote(source, job, n_jobs): source for source in sources}
    results: list[SymbolResult] = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        source = pending.pop(done[0])
        try:
            result = ray.get(done[0])
        except Exception as error:
            cause = getattr(error, "cause", None) or error
            log.error(
                "%s crashed:\n%s",
                source.symbol,
                "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)),
            )
            result = SymbolResult(
                symbol=source.symbol,
                ok=False,
                error=f"internal error ({type(cause).__name__}: {cause})",
            )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return sorted(results, key=lambda r: r.symbol)


def ray_status(address: str | None = None) -> str:
    """One line for ``doctor``: the cluster we would join, or that a local one will start."""
    target = address or os.environ.get("RAY_ADDRESS")
    version = ray.__version__
    if not target:
        return f"ray {version}: no RAY_ADDRESS; jobs start a local cluster ({os.cpu_count()} CPUs)"
    return f"ray {version}: jobs join {target}"
