"""One Ray task per symbol: failures stay per symbol, results stream back as they finish."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from quantrain.config import JobConfig
from quantrain.data import DataSource, LoadedOHLCV, read_ohlcv
from quantrain.errors import ConfigError
from quantrain.orchestration.placement import Placement, plan_placement, probe_node, shared_marker
from quantrain.orchestration.schedule import longest_first, previous_seconds, row_counts
from quantrain.pipeline import StageEvent, SymbolResult, run_symbol
from quantrain.runtime.cpus import thread_budget, usable_cpus
from quantrain.store import is_remote, open_store
from quantrain.suite.fit import Fitter, plain_fit
from quantrain.tuning.search import TuneOutcome

log = logging.getLogger(__name__)

PREFLIGHT_TIMEOUT_S = 120
#: How often the driver collects stage events while it waits for results.
STAGE_POLL_S = 1.0
#: Ray 2.60 logs this on every local start; the token it made stays in force, and a local
#: user has nothing to do about it.
_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"
_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


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
    quiet = _DropLine(_TOKEN_NOTICE)
    logging.getLogger(_TOKEN_LOGGER).addFilter(quiet)
    try:
        ray.init(
            num_cpus=usable_cpus(),
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )
    finally:
        logging.getLogger(_TOKEN_LOGGER).removeFilter(quiet)


class _DropLine(logging.Filter):
    """Drops records starting with ``prefix`` (a notice that is noise where it is logged)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


class _StageBox:
    """A Ray actor holding stage events until the driver collects them: tasks run in other
    processes (or nodes), so this is how their progress reaches the terminal."""

    def __init__(self) -> None:
        self.events: list[StageEvent] = []

    def put(self, event: StageEvent) -> None:
        self.events.append(event)

    def drain(self) -> list[StageEvent]:
        events, self.events = self.events, []
        return events


def _stage_box() -> Any:
    """The stage mailbox, placed on the driver's node where it can be (soft affinity): a
    worker node lost mid-run then does not take the progress with it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    options: dict[str, Any] = {"num_cpus": 0}
    try:
        here = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=True)
    except Exception as error:  # a Ray Client driver has no node of its own
        log.debug("stage box placed by Ray (%s)", error)
    return ray.remote(_StageBox).options(**options).remote()


def node_label() -> str:
    """Where this process runs: the node's IP and the first 8 hex digits of its Ray node ID
    (several nodes can share an IP, e.g. in tests or with one node per container)."""
    return f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()[:8]}"


def _train_one(
    source: DataSource,
    job: JobConfig,
    n_jobs: int,
    version: str,
    loaded: LoadedOHLCV | pd.DataFrame | None,
    tuned: TuneOutcome | None,
    box: Any = None,
) -> SymbolResult:
    """The task body: the pipeline (large fits data-parallel on Ray Train), plus where it ran;
    each stage is posted to ``box`` (fire and forget: progress never slows training)."""

    def on_stage(stage: str) -> None:
        if box is not None:
            box.put.remote(StageEvent(source.symbol, stage, time.time()))

    fit: Fitter = plain_fit
    if job.ray.train_workers > 1:  # Ray Train's import costs every worker ~0.4 s otherwise
        from quantrain.orchestration.gbdt_train import fitter_for

        fit = fitter_for(job)
    with thread_budget(n_jobs):
        result = run_symbol(
            source,
            job,
            n_jobs=n_jobs,
            version=version,
            loaded=loaded,
            tuned=tuned,
            fit=fit,
            on_stage=on_stage,
        )
    return dataclasses.replace(result, node=node_label())


def _alive_nodes() -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def driver_on_cluster(nodes: list[dict[str, Any]]) -> bool:
    """Whether this process runs on one of ``nodes``, so that its disk is one of theirs.

    A driver joined through a raylet runs on that raylet's node. A Ray Client driver
    (``ray://``) runs wherever the user is: on the cluster only if this machine's address or
    host name is a node's.
    """
    if not ray.util.client.ray.is_connected():
        return ray.get_runtime_context().get_node_id() in {n["NodeID"] for n in nodes}
    here = {ray.util.get_node_ip_address(), socket.gethostname()}
    return any(here & {n.get("NodeManagerAddress"), n.get("NodeManagerHostname")} for n in nodes)


def _preflight(job: JobConfig, placement: Placement, nodes: list[dict[str, Any]]) -> None:
    """Run a probe on every node: can it reach the store, and see the shared paths?"""
    marker = None
    if placement.local_paths and not is_remote(job.store):
        marker = shared_marker(job.store)
    probe = ray.remote(probe_node)
    refs = {
        node["NodeID"]: probe.options(
            num_cpus=0,
            max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        ).remote(job.store, placement.local_paths, marker)
        for node in nodes
    }
    try:
        answers = ray.get(list(refs.values()), timeout=PREFLIGHT_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        raise ConfigError(
            f"the preflight check did not come back from every node within "
            f"{PREFLIGHT_TIMEOUT_S} s; check `ray status` for nodes that are dead or stuck"
        ) from None
    finally:
        if marker:
            Path(marker).unlink(missing_ok=True)
    problems = {node_id: why for node_id, why in zip(refs, answers, strict=True) if why}
    if problems:
        lines = "\n".join(f"  node {nid[:8]}: {why}" for nid, why in problems.items())
        raise ConfigError(
            f"{len(problems)} of {len(nodes)} nodes cannot reach what this job needs:\n{lines}\n"
            "  fix: give every node the same store credentials/endpoint (AWS_* or a role) and, "
            "with --allow-local, mount the same filesystem at the same path on every node"
        )


def version_names(sources: Sequence[DataSource]) -> dict[str, str]:
    """One version name per symbol, fixed before any task starts, so a task that is retried
    after its node died publishes under the same name: never a second, duplicate version."""
    started = datetime.now(UTC)
    run_id = uuid.uuid4().hex
    return {
        s.symbol: f"{started:%Y%m%dT%H%M%SZ}-"
        + hashlib.sha256(f"{run_id}/{s.symbol}".encode()).hexdigest()[:6]
        for s in sources
    }


def submission_order(
    sources: Sequence[DataSource], job: JobConfig, preloaded: Mapping[str, Any] | None
) -> list[DataSource]:
    """Longest symbols first, as timed by their previous packages in the store, else by rows.

    Ray starts queued tasks in the order they were submitted, so this is the order they run.
    A single symbol has no order: the store is not read for it.
    """
    if len(sources) < 2:
        return list(sources)
    rows = (
        {symbol: len(frame) for symbol, frame in preloaded.items()}
        if preloaded is not None
        else row_counts(sources)
    )
    seconds = previous_seconds(open_store(job.store), job.suite.name, [s.symbol for s in sources])
    ordered = longest_first(sources, seconds, rows)
    log.debug(
        "submission order: %s",
        ", ".join(f"{s.symbol} ({seconds.get(s.symbol, '?')} s)" for s in ordered),
    )
    return ordered


def run_symbols(
    sources: Sequence[DataSource],
    job: JobConfig,
    *,
    on_result: Callable[[SymbolResult], None] | None = None,
    on_stage: Callable[[StageEvent], None] | None = None,
    preloaded: Mapping[str, Any] | None = None,
    tuned: Mapping[str, TuneOutcome] | None = None,
) -> list[SymbolResult]:
    """Train every symbol in parallel; a crash in one symbol becomes its failure row.

    ``on_stage`` gets each symbol's stages (read, features, every head's folds, final fits,
    backtest, package, push) about once a second, before that symbol's result.

    ``preloaded`` holds data the driver already read (a journal's rows per asset); it travels
    to the tasks through Ray's object store. ``tuned`` holds each symbol's search: its best
    params train the package, which also gets the trial table.
    """
    connect(job.ray.address)
    nodes = _alive_nodes()
    on_cluster = driver_on_cluster(nodes)
    placement = plan_placement(job, list(sources), nodes=len(nodes), driver_on_cluster=on_cluster)
    if len(nodes) > 1 or not on_cluster:
        _preflight(job, placement, nodes)
    n_jobs = max(1, int(job.ray.num_cpus_per_symbol))
    task = ray.remote(_train_one).options(
        num_cpus=job.ray.num_cpus_per_symbol,
        num_gpus=job.ray.num_gpus_per_symbol,
        # Retries cover a lost worker or node only; a bad symbol comes back as a failed result.
        max_retries=job.ray.max_retries,
        scheduling_strategy="SPREAD",
    )
    versions = version_names(sources)
    sources = submission_order(sources, job, preloaded)
    box: Any = _stage_box() if on_stage else None

    def deliver_stages() -> None:
        """Hand the stages so far to ``on_stage``; progress that fails never stops training."""
        nonlocal box
        if box is None or on_stage is None:
            return
        try:
            events = ray.get(box.drain.remote(), timeout=10 * STAGE_POLL_S)
        except ray.exceptions.RayError as error:
            log.warning("per-stage progress stopped (%s); training goes on", type(error).__name__)
            box = None
            return
        for event in events:
            on_stage(event)

    def payload(source: DataSource) -> Any:
        if preloaded is not None:
            return ray.put(preloaded[source.symbol])
        return ray.put(read_ohlcv(source.path)) if placement.ship_frames else None

    pending = {
        task.remote(
            source,
            job,
            n_jobs,
            versions[source.symbol],
            payload(source),
            (tuned or {}).get(source.symbol),
            box,
        ): source
        for source in sources
    }
    results: list[SymbolResult] = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=STAGE_POLL_S if box else None)
        deliver_stages()
        if not done:
            continue
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
    if box is not None:
        ray.kill(box)  # a box lost with its node is gone already (and box is None then)
    return sorted(results, key=lambda r: r.symbol)


def ray_status(address: str | None = None) -> str:
    """One line for ``doctor``: the cluster we would join, or that a local one will start."""
    target = address or os.environ.get("RAY_ADDRESS")
    version = ray.__version__
    if not target:
        return f"ray {version}: no RAY_ADDRESS; jobs start a local cluster ({usable_cpus()} CPUs)"
    return f"ray {version}: jobs join {target}"
