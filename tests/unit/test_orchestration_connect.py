"""Joining a cluster: a wrong address fails in seconds with a fix, not after minutes of retries."""

from __future__ import annotations

import socket

from quantrain.orchestration.fanout import _unreachable


def test_a_listening_address_is_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert _unreachable(f"127.0.0.1:{port}") is None
        assert _unreachable(f"ray://127.0.0.1:{port}") is None


def test_a_closed_port_is_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        problem = _unreachable(f"127.0.0.1:{port}", timeout_s=1.0)
    assert problem is not None
    assert f"127.0.0.1:{port}" in problem


def test_symbolic_addresses_are_left_to_ray() -> None:
    assert _unreachable("auto") is None
    assert _unreachable("local") is None
