"""What only the S3 backend has: uploads over the wire, TLS, multipart, and its error messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.errors import StoreConflictError, StoreError
from quantrain.package import MANIFEST, Predictor, read_manifest
from quantrain.runtime.cloud import client_config, parse_s3_uri
from quantrain.store import open_store
from quantrain.store.s3 import S3Store
from tests.integration.test_store_contract import (
    FIXTURE_PACKAGE,
    SUITE,
    SYMBOL,
    make_version,
    package_bytes,
    racing_package,
    version_name,
)
from tests.support.s3server import start_s3_server

pytestmark = pytest.mark.s3


def test_an_interrupted_push_is_invisible_and_a_rerun_completes_it(
    s3_uri: str, tmp_path: Path
) -> None:
    store = S3Store(s3_uri)
    uploads = 0

    def drop_the_connection_after_three_objects(**_: Any) -> None:
        nonlocal uploads
        uploads += 1
        if uploads > 3:
            raise EndpointConnectionError(endpoint_url=store.client.meta.endpoint_url)

    store.client.meta.events.register(
        "before-call.s3.PutObject", drop_the_connection_after_three_objects
    )
    # The network stays down, so the push cannot remove its staged copy either: as if killed.
    store.client.meta.events.register(
        "before-call.s3.DeleteObjects", drop_the_connection_after_three_objects
    )
    version = read_manifest(FIXTURE_PACKAGE)["version"]
    with pytest.raises(StoreError, match="cannot upload"):
        store.push(FIXTURE_PACKAGE)
    fresh = S3Store(s3_uri)  # another process: a bot, a promoter
    stored = [o.key for o in fresh._list("")]
    assert stored and all(version in key for key in stored)  # some objects did land
    assert not any(key.endswith(MANIFEST) for key in stored)
    assert fresh.versions() == []
    with pytest.raises(StoreError, match="no packages for symbol"):
        fresh.pull(SYMBOL, tmp_path / "live", version=version)
    with pytest.raises(StoreError, match="no packages for symbol"):
        fresh.promote(SYMBOL, version)
    fresh.push(FIXTURE_PACKAGE)  # the retry completes the version
    assert [v.version for v in fresh.versions()] == [version]
    fresh.promote(SYMBOL, version)
    Predictor(fresh.pull(SYMBOL, tmp_path / "live"))


def test_every_object_carries_its_sha256_and_the_manifest_comes_last(s3_uri: str) -> None:
    store = S3Store(s3_uri)
    keys: list[str] = []
    store.client.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: keys.append(params["Key"])
    )
    info = store.push(FIXTURE_PACKAGE)
    assert keys[-1].endswith(f"{info.version}/{MANIFEST}")
    manifest = read_manifest(FIXTURE_PACKAGE)
    for rel, entry in manifest["files"].items():
        head = store.client.head_object(
            Bucket=store.bucket,
            Key=f"{store.prefix}{SYMBOL}/{SUITE}/{info.version}/{rel}",
            ChecksumMode="ENABLED",
        )
        assert head["Metadata"]["sha256"] == entry["sha256"]
        assert head["ContentLength"] == entry["size"]


def test_large_files_go_multipart_and_still_verify(s3_uri: str, tmp_path: Path) -> None:
    store = S3Store(s3_uri, multipart_threshold=16 * 1024)
    calls: list[str] = []
    store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name)
    )
    info = store.push(FIXTURE_PACKAGE)
    big = [e for e in read_manifest(FIXTURE_PACKAGE)["files"].values() if e["size"] >= 16384]
    assert calls.count("CreateMultipartUpload") == len(big) >= 2
    assert calls.count("CompleteMultipartUpload") == len(big)
    pulled = store.pull(SYMBOL, tmp_path / "live", version=info.version)
    assert read_manifest(pulled)["version"] == info.version


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto over HTTPS with a fresh certificate that the client trusts via AWS_CA_BUNDLE."""
    server = start_s3_server(tls_dir=tmp_path)
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", config=client_config()).create_bucket(Bucket="quantrain-tls")
    yield "s3://quantrain-tls/models"
    server.stop()


def _headers_seen(client: Any) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    client.meta.events.register(
        "before-send.s3",
        lambda request, **_: seen.append({k.lower(): str(v) for k, v in request.headers.items()}),
    )
    return seen


def test_uploads_over_tls_send_no_aws_chunked_trailer(tls_server: str, tmp_path: Path) -> None:
    # boto3's own default over HTTPS streams uploads with a CRC trailer (what R2 rejects) ...
    default = boto3.client("s3", config=Config(retries={"mode": "standard"}))
    seen_default = _headers_seen(default)
    default.put_object(Bucket="quantrain-tls", Key="probe", Body=b"x" * 2048)
    assert any("x-amz-trailer" in h for h in seen_default)
    # ... quantrain's client sends a plain body with a ChecksumSHA256 header instead.
    store = S3Store(tls_server)
    assert store.client.meta.endpoint_url.startswith("https://")
    seen = _headers_seen(store.client)
    info = store.push(FIXTURE_PACKAGE)
    puts = [h for h in seen if "x-amz-checksum-sha256" in h]
    # Every file and the manifest staged, then the claim, then the manifest itself.
    assert len(puts) == len(read_manifest(FIXTURE_PACKAGE)["files"]) + 3
    assert not any(
        "x-amz-trailer" in h or "aws-chunked" in h.get("content-encoding", "") for h in seen
    )
    store.promote(SYMBOL, info.version)
    assert read_manifest(store.pull(SYMBOL, tmp_path / "live"))["version"] == info.version


def test_uri_options_and_refusals() -> None:
    assert parse_s3_uri("s3://bucket/a/b/?addressing=path") == ("bucket", "a/b/", "path")
    assert parse_s3_uri("s3://bucket") == ("bucket", "", None)
    with pytest.raises(StoreError, match="addressing='sideways'; use one of auto, path"):
        parse_s3_uri("s3://bucket/x?addressing=sideways")
    with pytest.raises(StoreError, match="unknown option 'region'"):
        parse_s3_uri("s3://bucket/x?region=eu")
    with pytest.raises(StoreError, match="expected s3://BUCKET"):
        parse_s3_uri("s3:///nobucket")


def test_path_style_addressing_reaches_the_server(s3_uri: str, tmp_path: Path) -> None:
    store = S3Store(f"{s3_uri}?addressing=path")
    urls: list[str] = []
    store.client.meta.events.register(
        "before-send.s3", lambda request, **_: urls.append(request.url)
    )
    store.push(FIXTURE_PACKAGE)
    host = store.client.meta.endpoint_url
    in_path = (f"{host}/quantrain-test/models/", f"{host}/quantrain-test?")  # objects, bucket
    assert urls and all(url.startswith(in_path) for url in urls)
    assert any(url.startswith(f"{host}/quantrain-test?list-type=2") for url in urls)
    assert store.uri == s3_uri  # options are not part of the store's name


def test_missing_bucket_and_bad_endpoint_say_what_to_fix(
    s3_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist at http"):
        open_store("s3://no-such-bucket/models").versions()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    client = boto3.client("s3", config=client_config().merge(Config(retries={"max_attempts": 1})))
    with pytest.raises(
        StoreError,
        match=r"(?s)cannot list the store at http://127\.0\.0\.1:9.*AWS_ENDPOINT_URL",
    ):
        S3Store(s3_uri, client=client).versions()


def test_missing_credentials_say_where_they_come_from(
    s3_uri: str, no_aws_credentials: None
) -> None:
    with pytest.raises(StoreError, match=r"(?s)no AWS credentials found.*AWS_PROFILE"):
        open_store(s3_uri).versions()


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_push_list_promote_pull_gc(s3_uri: str, tmp_path: Path) -> None:
    metric = "direction.balanced_accuracy"
    packages = [
        make_version(tmp_path, version_name(i), metrics={metric: score})
        for i, score in enumerate((0.40, 0.35, 0.50))
    ]
    for package in packages:
        pushed = _cli("models", "push", str(package), "--store", s3_uri)
        assert pushed.exit_code == 0, pushed.output
    again = _cli("models", "push", str(packages[0]), "--store", s3_uri)
    assert again.exit_code == 2 and "versions are immutable" in again.output
    listed = _cli("models", "list", "--store", s3_uri)
    assert listed.exit_code == 0 and all(version_name(i) in listed.output for i in range(3))
    first = _cli("models", "promote", SYMBOL, version_name(0), "--store", s3_uri)
    assert first.exit_code == 0 and f"approved -> {version_name(0)}" in first.output
    worse = _cli(
        "models", "promote", SYMBOL, version_name(1), "--store", s3_uri, "--if-better", metric
    )
    assert worse.exit_code == 1 and "not better" in worse.output
    better = _cli(
        "models", "promote", SYMBOL, version_name(2), "--store", s3_uri, "--if-better", metric
    )
    assert better.exit_code == 0, better.output
    assert f"(was {version_name(0)})" in better.output and "0.5000 vs 0.4000" in better.output
    target = tmp_path / "bot" / "ETH-BTC"
    pulled = _cli("models", "pull", SYMBOL, "--store", s3_uri, "--to", str(target))
    assert pulled.exit_code == 0 and read_manifest(target)["version"] == version_name(2)
    dry = _cli("models", "gc", "--store", s3_uri, "--keep", "1", "--dry-run")
    assert dry.exit_code == 0 and "would delete" in dry.output
    assert dry.output.count("would delete ETH-BTC") == 2
    gone = _cli("models", "gc", "--store", s3_uri, "--keep", "1")
    assert gone.exit_code == 0 and "deleted 2 versions" in gone.output
    assert [v.version for v in open_store(s3_uri).versions()] == [version_name(2)]
    verified = _cli("models", "verify", "--store", s3_uri)
    assert verified.exit_code == 0 and "1 of 1 packages verified" in verified.output


@pytest.mark.ray
@pytest.mark.slow
def test_a_job_publishes_and_promotes_to_s3_from_ray_workers(
    s3_uri: str, ray_cluster: None, tmp_path: Path
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: s3-publish\n"
        "data: {symbols: [ETH-BTC, LTC-BTC]}\n"
        f"store: {s3_uri}\n"
        "promote: {channel: approved, if_better: direction.balanced_accuracy}\n"
    )
    result = _cli("run", str(job))
    assert result.exit_code == 0, result.output
    assert result.output.count("to approved\n") == 2
    store = open_store(s3_uri)
    rows = store.versions()
    assert sorted(v.symbol for v in rows) == ["ETH-BTC", "LTC-BTC"]
    assert all(v.channels == ("approved",) for v in rows)
    assert all(check.error is None for check in store.verify())
    rerun = _cli("run", str(job))  # same data and seed: equal metrics, so no promotion
    assert rerun.exit_code == 0, rerun.output
    assert rerun.output.count("not promoted to approved") == 2
    assert len(store.versions()) == 4
    pointers = {v.symbol: v.version for v in store.versions() if v.channels}
    assert pointers == {v.symbol: v.version for v in rows}
    approved = json.loads(store._get(f"ETH-BTC/{SUITE}/channels/approved.json")[0])  # type: ignore[index]
    assert approved["comparison"]["metric"] == "direction.balanced_accuracy"


def test_a_push_killed_after_its_claim_is_finished_by_the_next_push_of_that_version(
    s3_uri: str, tmp_path: Path
) -> None:
    """A Ray retry after its first attempt died while copying into place: the retry finishes
    the first attempt's version from the bytes that attempt verified, and is told it lost."""
    version = version_name(1)
    first, second = (racing_package(tmp_path, version, racer) for racer in (0, 1))
    dying = S3Store(s3_uri)
    copies = 0

    def die_after_two_copies(**_: Any) -> None:
        nonlocal copies
        copies += 1
        if copies > 2:
            raise EndpointConnectionError(endpoint_url=dying.client.meta.endpoint_url)

    dying.client.meta.events.register("before-call.s3.CopyObject", die_after_two_copies)
    with pytest.raises(StoreError, match="cannot copy"):
        dying.push(first)
    retry = S3Store(s3_uri)
    assert retry.versions() == []  # claimed and half copied: not a version yet
    with pytest.raises(StoreConflictError, match=r"claimed by another push.*NOT published"):
        retry.push(second)
    pulled = retry.pull(SYMBOL, tmp_path / "live", version=version)
    assert package_bytes(pulled) == package_bytes(first)
    assert [check.error for check in retry.verify()] == [None]
    # The retry removed its own staged copy; the dead push's goes once it is stale.
    staged = {o.key.split("/")[2] for o in retry._list("") if "/.incoming-" in o.key}
    assert len(staged) == 1
    (item,) = retry.gc(1, stale_after="0s")
    assert item.version in staged and "incomplete upload" in item.reason
    assert not [o for o in retry._list("") if "/.incoming-" in o.key]
    assert [check.error for check in retry.verify()] == [None]


def test_gc_aborts_an_unfinished_multipart_upload_only_once_it_is_stale(s3_uri: str) -> None:
    store = S3Store(s3_uri)
    store.push(FIXTURE_PACKAGE)
    key = f"{SYMBOL}/{SUITE}/.incoming-{version_name(9)}-0123456789ab/heads/direction/model.ubj"
    started = store.client.create_multipart_upload(Bucket=store.bucket, Key=store.prefix + key)
    store.client.upload_part(
        Bucket=store.bucket,
        Key=store.prefix + key,
        UploadId=started["UploadId"],
        PartNumber=1,
        Body=b"part of a killed push",
    )
    (upload,) = store._unfinished_uploads("")
    assert store.gc(1, stale_after="2h", now=upload.started + timedelta(minutes=119)) == []
    assert store.gc(1, now=upload.started + timedelta(hours=23)) == []  # the default: 24h
    assert store._unfinished_uploads("") == [upload]
    (item,) = store.gc(1, stale_after="2h", now=upload.started + timedelta(hours=3))
    assert item.reason == f"unfinished multipart upload older than 2h: {key}"
    assert store._unfinished_uploads("") == []
    assert [check.error for check in store.verify()] == [None]
