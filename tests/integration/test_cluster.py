"""The cluster path on this machine: `ray job submit` to a real head, two nodes, a node lost.

Each cluster here is separate from the session's local Ray cluster and is driven the way a user
drives one: `quantrain run` in its own process with RAY_ADDRESS set, or `ray job submit`. The
nodes get the S3 server's AWS settings from their environment, as real nodes get theirs.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from ray.cluster_utils import Cluster

from quantrain.store import open_store
from quantrain.store.base import Catalog
from tests.conftest import put_test_object
from tests.support.s3server import S3Server
from tests.support.synthetic import random_walk

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.s3]

RAY_BIN = Path(sys.executable).with_name("ray")
CLUSTER_DEMO = Path(__file__).parents[2] / "jobs" / "cluster-demo.yaml"
NODE_LABEL = re.compile(r"\d+\.\d+\.\d+\.\d+/([0-9a-f]{8})")
SYMBOLS = ["ADA-BTC", "DASH-BTC", "ETH-BTC", "LTC-BTC", "XLM-BTC", "XMR-BTC"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for processes started inside the block (Ray nodes inherit them)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_cluster(s3_server: S3Server, **head_args: object) -> Cluster:
    with environment({**s3_server.env, "RAY_AUTH_MODE": "disabled"}):
        return Cluster(
            initialize_head=True,
            connect=False,
            head_node_args={"num_cpus": 2, "include_dashboard": False, **head_args},
        )


def write_job(directory: Path, store: str, symbols: list[str]) -> Path:
    job = directory / "job.yaml"
    job.write_text(
        f"name: cluster-test\ndata: {{symbols: [{', '.join(symbols)}]}}\nstore: {store}\n"
    )
    return job


def quantrain_run(
    job: Path, address: str, *extra: str, wait: bool = True
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    command = [sys.executable, "-m", "quantrain", "run", str(job), *extra]
    # Wide enough that the summary keeps its node column (narrow output drops it first).
    env = {**os.environ, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "disabled", "COLUMNS": "250"}
    if wait:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def summary_nodes(output: str, symbols: list[str] = SYMBOLS) -> dict[str, str]:
    """``{symbol: node id prefix}`` from the run's summary table."""
    nodes = {}
    for line in output.splitlines():
        found = NODE_LABEL.search(line)
        symbol = next((s for s in symbols if f" {s} " in line), None)
        if found and symbol:
            nodes[symbol] = found.group(1)
    return nodes


def assert_one_complete_version_each(uri: str, symbols: list[str]) -> None:
    store = open_store(uri)
    versions = store.versions()
    assert sorted(v.symbol for v in versions) == sorted(symbols)  # exactly one per symbol
    assert all(check.error is None for check in store.verify())
    assert Catalog.parse(store._list("")).incomplete == {}  # nothing partial left behind


@pytest.fixture(scope="module")
def two_nodes(s3_server: S3Server) -> Iterator[Cluster]:
    cluster = start_cluster(s3_server)
    with environment({**s3_server.env, "RAY_AUTH_MODE": "disabled"}):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def test_symbols_run_on_both_nodes_and_every_package_verifies(
    two_nodes: Cluster, s3_uri: str, tmp_path: Path
) -> None:
    symbols = SYMBOLS[:4]
    result = quantrain_run(
        CLUSTER_DEMO,
        two_nodes.address,
        "--set",
        f"store={s3_uri}",
        "--set",
        f"data.symbols=[{', '.join(symbols)}]",
    )
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 0, result.stdout + result.stderr
    ran_on = summary_nodes(result.stdout)
    assert sorted(ran_on) == symbols
    cluster_nodes = {node.node_id[:8] for node in two_nodes.list_all_nodes()}
    assert set(ran_on.values()) == cluster_nodes  # both nodes trained symbols
    assert_one_complete_version_each(s3_uri, symbols)
    assert result.stdout.count("promoted") == len(symbols)  # the job file's promote step


def test_twelve_symbols_from_object_storage_spread_over_both_nodes(
    two_nodes: Cluster, s3_uri: str, tmp_path: Path
) -> None:
    """A universe larger than the cluster's slots (12 symbols, 4 CPUs): the queue drains over
    both nodes, each task reads its own symbol from S3, and every symbol gets one package."""
    symbols = [f"SYN{i:02d}-USDT" for i in range(12)]
    for seed, symbol in enumerate(symbols):
        body = io.BytesIO()
        random_walk(3000, seed).to_parquet(body, index=False)
        put_test_object(f"data/{symbol}_5m.parquet", body.getvalue())
    data = s3_uri.rpartition("/")[0] + "/data/"
    heads = ", ".join(
        f"{{name: {n}, target: {n}, params: {{n_estimators: 20, early_stopping_rounds: 5}}}}"
        for n in ("direction", "position_size")
    )
    job = tmp_path / "job.yaml"
    job.write_text(
        f"name: cluster-universe\ndata: {{path: '{data}'}}\nstore: {s3_uri}\n"
        f"split: {{n_folds: 2}}\nsuite: {{name: core, heads: [{heads}]}}\n"
        "evaluate: {random_strategies: 10}\n"
    )
    result = quantrain_run(job, two_nodes.address)
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 0, result.stdout + result.stderr
    ran_on = summary_nodes(result.stdout, symbols)
    assert sorted(ran_on) == symbols  # every symbol trained and reported where
    per_node = Counter(ran_on.values())
    assert set(per_node) == {node.node_id[:8] for node in two_nodes.list_all_nodes()}, per_node
    assert_one_complete_version_each(s3_uri, symbols)


def test_a_local_store_on_a_multi_node_cluster_is_refused(
    two_nodes: Cluster, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    result = quantrain_run(write_job(tmp_path, str(store), ["ETH-BTC"]), two_nodes.address)
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 2
    assert "has 2 nodes" in result.stderr and "is a path on the driver's disk" in result.stderr
    assert "use object storage" in result.stderr and "--allow-local" in result.stderr
    assert "Traceback" not in result.stderr
    assert not store.exists()  # refused before anything was trained or written


def test_allow_local_checks_every_node_sees_the_path(two_nodes: Cluster, tmp_path: Path) -> None:
    # One machine: both nodes share the disk, so the preflight passes and packages land.
    store = tmp_path / "shared-models"
    job = write_job(tmp_path, str(store), ["ETH-BTC", "LTC-BTC"])
    result = quantrain_run(job, two_nodes.address, "--allow-local")
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(open_store(str(store)).versions()) == 2
    assert not list(store.glob(".quantrain-shared-*"))  # the preflight marker is cleaned up


def _running_on(dashboard: str, node_id: str) -> int:
    from ray.util.state import list_tasks

    tasks = list_tasks(
        address=dashboard,
        filters=[("func_or_class_name", "=", "_train_one"), ("state", "=", "RUNNING")],
        detail=True,
        raise_on_missing_output=False,
    )
    return sum(1 for task in tasks if task.node_id == node_id)


def test_a_node_lost_mid_run_retries_its_symbols_on_the_survivor(
    s3_server: S3Server, s3_uri: str, tmp_path: Path
) -> None:
    from ray.util.state import list_tasks

    port = free_port()
    cluster = start_cluster(
        s3_server,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=port,
        _system_config={"health_check_period_ms": 500, "health_check_failure_threshold": 3},
    )
    dashboard = f"http://127.0.0.1:{port}"
    try:
        with environment({**s3_server.env, "RAY_AUTH_MODE": "disabled"}):
            doomed = cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        survivor = cluster.head_node.node_id
        run = quantrain_run(write_job(tmp_path, s3_uri, SYMBOLS), cluster.address, wait=False)
        assert isinstance(run, subprocess.Popen)
        deadline = time.monotonic() + 180
        while _running_on(dashboard, doomed.node_id) < 2:  # both of its slots busy
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no symbol ever started on the second node"
            time.sleep(0.2)
        cluster.remove_node(doomed, allow_graceful=False)  # the node dies mid-training
        stdout, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stdout + stderr
        ran_on = summary_nodes(stdout)
        assert sorted(ran_on) == SYMBOLS
        attempts = list_tasks(
            address=dashboard,
            filters=[("func_or_class_name", "=", "_train_one")],
            detail=True,
            raise_on_missing_output=False,
        )
        retried = [t for t in attempts if t.attempt_number > 0]
        assert retried, "the lost node's symbols were never retried"
        assert all(t.node_id == survivor for t in retried if t.state == "FINISHED")
        assert_one_complete_version_each(s3_uri, SYMBOLS)
    finally:
        cluster.shutdown()


@pytest.fixture
def ray_head(s3_server: S3Server) -> Iterator[str]:
    """`ray start --head --block` with its dashboard on loopback, in a temporary directory.

    --block keeps the command in the foreground; stopping it stops exactly this head (unlike
    `ray stop`, which would stop every Ray process on the machine, the session's included).
    """
    temp_dir = tempfile.mkdtemp(prefix="qr-", dir="/tmp")  # short: Ray's socket paths are long
    dashboard_port = free_port()
    head = subprocess.Popen(
        [
            str(RAY_BIN),
            "start",
            "--head",
            "--block",
            f"--port={free_port()}",
            "--num-cpus=2",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard_port}",
            # Other clusters on this machine (the session's, the two-node one) hold Ray's
            # default agent ports; a second agent on them never comes up.
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        from ray.job_submission import JobSubmissionClient

        # Ready means a job can be submitted: the head's job agent starts after its dashboard.
        deadline = time.monotonic() + 120
        while True:
            try:
                JobSubmissionClient(address).submit_job(entrypoint="true")
                break
            except Exception:
                assert head.poll() is None, "ray start --head exited"
                assert time.monotonic() < deadline, "the head never accepted a job"
                time.sleep(1)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)
        head.wait(timeout=60)


def test_ray_job_submit_runs_a_job_that_publishes_to_s3(
    ray_head: str, s3_server: S3Server, s3_uri: str, tmp_path: Path
) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    working_dir = tmp_path / "project"
    working_dir.mkdir()
    write_job(working_dir, s3_uri, ["ETH-BTC", "LTC-BTC"])
    submission_id = f"quantrain-test-{os.getpid()}-{time.time_ns()}"
    submitted = subprocess.run(
        [
            str(RAY_BIN),
            "job",
            "submit",
            f"--address={ray_head}",
            f"--submission-id={submission_id}",
            f"--working-dir={working_dir}",
            f"--runtime-env-json={json.dumps({'env_vars': s3_server.env})}",
            "--",
            sys.executable,
            "-m",
            "quantrain",
            "run",
            "job.yaml",
        ],
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    client = JobSubmissionClient(ray_head)
    logs = client.get_job_logs(submission_id)
    assert client.get_job_status(submission_id) == JobStatus.SUCCEEDED
    assert "cluster-test: run summary" in logs and "ETH-BTC" in logs
    assert_one_complete_version_each(s3_uri, ["ETH-BTC", "LTC-BTC"])
