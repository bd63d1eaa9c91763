"""moto's S3 server on loopback: a real HTTP(S) endpoint that boto3 talks to over TCP.

moto checks an ``If-Match``/``If-None-Match`` precondition and then writes without a lock, so
under its threaded server two conditional writes can both pass the check; real S3 (and R2,
MinIO) decide them atomically. ``_AtomicWrites`` serialises mutating requests so the tests
measure quantrain's protocol rather than that gap in the emulator. Reads stay concurrent.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server, make_ssl_devcert

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "quantrain-test",
    "AWS_SECRET_ACCESS_KEY": "quantrain-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class _AtomicWrites:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] in ("PUT", "POST", "DELETE"):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


@dataclass
class S3Server:
    endpoint: str
    server: BaseWSGIServer
    thread: threading.Thread
    ca_bundle: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a client (or a Ray worker) needs to reach this server."""
        env = {"AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS}
        if self.ca_bundle:
            env["AWS_CA_BUNDLE"] = self.ca_bundle
        return env

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        context = None
        if self.ca_bundle:
            import ssl

            context = ssl.create_default_context(cafile=self.ca_bundle)
        with urllib.request.urlopen(request, context=context) as response:
            json.loads(response.read() or b"{}")

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def start_s3_server(*, tls_dir: Path | None = None) -> S3Server:
    """Start the server on a free loopback port (HTTPS with a fresh certificate if asked)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    app = _AtomicWrites(DomainDispatcherApplication(create_backend_app))
    ssl_context = None
    ca_bundle = None
    host = "127.0.0.1"
    if tls_dir is not None:
        cert, key = make_ssl_devcert(str(tls_dir / "moto"), host="localhost")
        ssl_context, ca_bundle, host = (cert, key), cert, "localhost"
    server = make_server(
        "127.0.0.1",
        0,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
        ssl_context=ssl_context,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls_dir is not None else "http"
    return S3Server(f"{scheme}://{host}:{server.server_port}", server, thread, ca_bundle)
