"""Where a job's inputs and outputs live, and whether every node of a cluster can reach them.

A path on the driver's disk means nothing to a worker on another machine: there the task would
read nothing, or write packages that nobody ever sees. On a multi-node cluster quantrain wants
data and store in object storage, or the user's word (``--allow-local``) that the paths are on a
filesystem every node mounts — which a preflight task on every node then checks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from quantrain.config import JobConfig
from quantrain.data import DataSource
from quantrain.errors import ConfigError, QuantrainError
from quantrain.runtime.cloud import is_s3
from quantrain.store import open_store


@dataclass(frozen=True)
class Placement:
    """What the fan-out must do: ship bundled data as frames; check these paths on each node."""

    ship_frames: bool
    local_paths: tuple[str, ...]


def plan_placement(
    job: JobConfig, sources: list[DataSource], *, nodes: int, driver_on_cluster: bool = True
) -> Placement:
    """Refuse driver-local data or store on a multi-node cluster, or on any cluster the driver
    is not a node of, unless ``allow_local``.

    The bundled sample pairs are the exception: the driver reads them and puts the frames into
    Ray's object store, which every node reaches.
    """
    bundled = job.data.path is None
    shipped = bundled or job.data.kind == "journal"  # the driver reads and ships these rows
    local_data = [str(s.path) for s in sources if not is_s3(str(s.path))] if not shipped else []
    local_store = [] if is_s3(job.store) else [job.store]
    # Read by the tasks too: funding and event tables, the package a warm start continues.
    inputs = {"data.funding": job.data.funding, "data.events": job.data.events}
    inputs["warm_start"] = job.warm_start
    local_inputs = {key: path for key, path in inputs.items() if path and not is_s3(path)}
    if nodes <= 1 and driver_on_cluster:
        return Placement(ship_frames=False, local_paths=())
    if (local_data or local_store or local_inputs) and not job.ray.allow_local:
        what = []
        if local_store:
            what.append(f"the model store {job.store!r}")
        if local_data:
            what.append(f"the data {job.data.path!r}")
        what += [f"{key} {path!r}" for key, path in local_inputs.items()]
        cluster = (
            f"this Ray cluster has {nodes} nodes"
            if driver_on_cluster
            else "this machine (the driver) is not a node of the Ray cluster it joined"
        )
        raise ConfigError(
            f"{cluster}, but {' and '.join(what)} "
            f"{'is a path' if len(what) == 1 else 'are paths'} on the driver's disk, which "
            f"workers on {'other nodes' if driver_on_cluster else 'the cluster'} cannot reach.\n"
            "  fix: use object storage (store: s3://BUCKET/PREFIX, data.path: s3://BUCKET/PREFIX/"
            "), or, if the path is on a filesystem every node mounts, pass --allow-local "
            "(ray.allow_local: true)"
        )
    paths = [str(Path(p).resolve()) for p in local_store]
    paths += sorted({str(Path(p).resolve().parent) for p in local_data})
    # A {symbol} template is checked up to its first placeholder: the folder every node needs.
    paths += sorted(
        {str(Path(p.partition("{")[0] or ".").resolve()) for p in local_inputs.values()}
    )
    return Placement(ship_frames=bundled, local_paths=tuple(paths))


def shared_marker(store: str) -> str:
    """Write a uniquely named file into a local store; a node that sees it shares the disk."""
    root = Path(store).resolve()
    root.mkdir(parents=True, exist_ok=True)
    marker = root / f".quantrain-shared-{uuid.uuid4().hex}"
    marker.write_text("written by the quantrain driver; every node must see this file\n")
    return str(marker)


def probe_node(store: str, local_paths: tuple[str, ...], marker: str | None) -> str | None:
    """Run on one node: why it cannot reach the job's store and paths, or None if it can."""
    problems: list[str] = []
    if is_s3(store):
        try:
            open_store(store).versions(symbol="quantrain-preflight")  # one LIST request
        except QuantrainError as error:
            problems.append(str(error))
    if marker and not Path(marker).is_file():
        problems.append(f"does not see {store} as the driver does (no {Path(marker).name} there)")
    problems += [f"no {path} here" for path in local_paths if not Path(path).exists()]
    return "; ".join(problems) or None
