"""Store benchmarks against moto's S3 server on loopback: push, pull, promote, list.

Loopback moto measures quantrain's per-request work and request count, not a real network:
multiply by your round-trip time for a remote bucket. Run with
``python benchmarks/bench_store.py``; not part of the test suite.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.s3server import start_s3_server  # noqa: E402

PACKAGE = ROOT / "tests" / "fixtures" / "package_v1"


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), max(runs)


def clone(tmp: Path, version: str) -> Path:
    target = tmp / version
    shutil.copytree(PACKAGE, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["version"] = version
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def main() -> None:
    server = start_s3_server()
    os.environ.update(server.env)
    import boto3

    from quantrain.runtime.cloud import client_config
    from quantrain.store import open_store

    boto3.client("s3", config=client_config()).create_bucket(Bucket="bench-bucket")
    store = open_store("s3://bench-bucket/models")
    tmp = Path(tempfile.mkdtemp())
    size = sum(p.stat().st_size for p in PACKAGE.rglob("*") if p.is_file())
    counter = iter(range(10_000))
    push = timed(lambda: store.push(clone(tmp, f"20260101T000000Z-{next(counter):06d}")), 20)
    version = store.versions()[0].version
    promote = timed(lambda: store.promote("ETH-BTC", version), 1)
    pull = timed(lambda: store.pull("ETH-BTC", tmp / "pulled", force=True), 20)
    listing = timed(store.versions, 10)
    files = [p for p in PACKAGE.rglob("*") if p.is_file()]
    print(f"package: {len(files)} files including the manifest, {size / 1024:.0f} KiB")
    print("| operation | median | max |\n| --- | --- | --- |")
    for name, (median, worst) in (
        ("push (10 files, then the manifest)", push),
        ("promote (verify by download + conditional pointer write)", promote),
        ("pull --channel approved (resolve, download, verify, rename)", pull),
        ("list 20 versions (1 listing + 20 manifest reads, 8 threads)", listing),
    ):
        print(f"| {name} | {median * 1000:.0f} ms | {worst * 1000:.0f} ms |")
    server.stop()


if __name__ == "__main__":
    main()
