"""Joining a Ray head started elsewhere: packages land where the user looks (issue 24).

The head is started by ``ray start --head`` in a directory of its own, as a user starts one in
another terminal; its workers run there. ``quantrain run --address`` from a third directory
with a relative data path and the default relative store must read and write the driver's
``./data`` and ``./models``, and say where the packages are as an absolute path.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantrain.jobs import sample_data_dir

pytestmark = [pytest.mark.ray, pytest.mark.slow]

RAY_BIN = Path(sys.executable).with_name("ray")
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "COLUMNS": "400"}  # 400: no wrapped paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def head_address(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A one-node head started by ``ray start --head --block`` with its own working directory
    and temp dir (a short path: Ray's sockets live there); stopped by signalling its process
    group, which holds only the processes it started."""
    head_dir = tmp_path / "head"
    head_dir.mkdir()
    ray_tmp = Path(tempfile.mkdtemp(prefix="qr-head-", dir="/tmp"))
    port = free_port()
    ports = [
        ("--port", port),
        ("--ray-client-server-port", free_port()),
        ("--dashboard-port", free_port()),
        ("--dashboard-agent-listen-port", free_port()),
    ]
    command = [str(RAY_BIN), "start", "--head", "--block", "--num-cpus", "2"]
    command += [f"{flag}={value}" for flag, value in ports]
    command += ["--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(ray_tmp)]
    log = (tmp_path / "head.log").open("w")
    head = subprocess.Popen(
        command, cwd=head_dir, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not answers(port):
            assert head.poll() is None, (tmp_path / "head.log").read_text()
            assert time.monotonic() < deadline, "the Ray head did not start within 60 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", head_dir
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head drains, then stops what it started
        try:
            head.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_relative_paths_resolve_on_the_driver_not_on_the_head(
    head_address: tuple[str, Path], tmp_path: Path
) -> None:
    address, head_dir = head_address
    driver_dir = tmp_path / "driver"
    (driver_dir / "data").mkdir(parents=True)
    shutil.copy(sample_data_dir() / "XMR-BTC_5m.parquet", driver_dir / "data")
    (driver_dir / "job.yaml").write_text(
        "name: external-head\ndata: {path: data, symbols: [XMR-BTC]}\n"
        "model: {family: lightgbm}\nsplit: {n_folds: 2}\n"
    )
    command = [sys.executable, "-m", "quantrain", "run", "job.yaml", "--address", address]
    result = subprocess.run(
        command, cwd=driver_dir, env=ENV, capture_output=True, text=True, timeout=240
    )
    shown = result.stdout + result.stderr
    assert result.returncode == 0, shown
    models = driver_dir / "models"
    (package,) = (models / "XMR-BTC" / "core").glob("2*")
    assert (package / "manifest.json").is_file()
    assert f"packages in {models};" in result.stdout  # absolute, not ./models
    assert not (head_dir / "models").exists() and list(head_dir.iterdir()) == []
