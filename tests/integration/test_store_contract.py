"""The store guarantees, held by both backends: a local directory and S3 (moto on loopback)."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest

from quantrain.errors import PromotionRefused, StoreConflictError, StoreError
from quantrain.package import MANIFEST, Predictor
from quantrain.package.checksums import file_entries
from quantrain.runtime.cloud import client_config
from quantrain.store import GcItem, LocalStore, ModelStore, open_store
from quantrain.store.s3 import S3Store

FIXTURE_PACKAGE = Path(__file__).parents[1] / "fixtures" / "package_v1"
SYMBOL, SUITE = "ETH-BTC", "core"


def make_version(tmp_path: Path, version: str, *, metrics: dict[str, float] | None = None) -> Path:
    """A copy of the committed v1 package under another version name (and metrics).

    Only the manifest changes, and the manifest is not in its own checksum list, so the copy
    is a valid package.
    """
    target = tmp_path / "packages" / version
    shutil.copytree(FIXTURE_PACKAGE, target)
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["version"] = version
    manifest["summary_metrics"].update(metrics or {})
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return target


def version_name(i: int) -> str:
    return f"20260101T0000{i:02d}Z-{i:06x}"


def snapshot(store: ModelStore) -> dict[str, tuple[int, str]]:
    """Every object's size and content token (ETag, or sha256 for local files)."""
    return {
        obj.key: (obj.size, found[1])
        for obj in store._list("")
        if (found := store._get(obj.key)) is not None
    }


def put_object(store: ModelStore, key: str, body: bytes) -> None:
    """Write one stored file behind the store's back (a bad actor, a bit flip, a crash)."""
    if isinstance(store, LocalStore):
        (store.root / key).parent.mkdir(parents=True, exist_ok=True)
        (store.root / key).write_bytes(body)
    else:
        assert isinstance(store, S3Store)
        store.client.put_object(Bucket=store.bucket, Key=store.prefix + key, Body=body)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    if request.param == "s3":
        return open_store(request.getfixturevalue("s3_uri"))
    return open_store(str(tmp_path / "store"))


def test_round_trip_push_list_pull_predicts_like_the_local_package(
    store: ModelStore, tmp_path: Path, eth_frame: pd.DataFrame
) -> None:
    info = store.push(FIXTURE_PACKAGE)
    (listed,) = store.versions()
    assert (listed.symbol, listed.suite, listed.version) == (SYMBOL, SUITE, info.version)
    assert listed.metrics["direction.balanced_accuracy"] > 0
    store.promote(SYMBOL, info.version)
    pulled = store.pull(SYMBOL, tmp_path / "live")
    assert store.versions()[0].channels == ("approved",)
    window = eth_frame.tail(1500)
    expected = Predictor(FIXTURE_PACKAGE).predict(window)
    pd.testing.assert_frame_equal(Predictor(pulled).predict(window), expected)
    from_store = Predictor.from_store(store.uri, SYMBOL, cache_dir=tmp_path / "cache")
    assert from_store.manifest["version"] == info.version
    pd.testing.assert_frame_equal(from_store.predict(window), expected)


def test_pushing_an_existing_version_is_refused_and_changes_nothing(store: ModelStore) -> None:
    store.push(FIXTURE_PACKAGE)
    before = snapshot(store)
    with pytest.raises(StoreError, match="exists; versions are immutable"):
        store.push(FIXTURE_PACKAGE)
    assert snapshot(store) == before


@pytest.mark.parametrize("channel_state", ["empty", "pointing"])
def test_sixteen_concurrent_promoters_exactly_one_wins(
    store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channel_state: str
) -> None:
    versions = [version_name(i) for i in range(17)]
    for version in versions:
        store.push(make_version(tmp_path, version))
    if channel_state == "pointing":
        store.promote(SYMBOL, versions[16])
    racers = versions[:16]
    # Every promoter reads the pointer before any writes: the worst interleaving, every time.
    barrier = threading.Barrier(len(racers), timeout=60)
    original = type(store)._put_pointer

    def put_after_everyone_read(self: ModelStore, key: str, body: bytes, expected: str | None):
        barrier.wait()
        return original(self, key, body, expected)

    monkeypatch.setattr(type(store), "_put_pointer", put_after_everyone_read)
    winners: list[str] = []
    conflicts: list[str] = []

    def promote(version: str) -> None:
        try:
            winners.append(open_store(store.uri).promote(SYMBOL, version).version)
        except StoreConflictError as error:
            conflicts.append(str(error))

    threads = [threading.Thread(target=promote, args=(v,)) for v in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(conflicts) == 15
    (winner,) = winners
    assert store.channels(SYMBOL, SUITE) == {"approved": winner}
    assert all(f"now points at {winner}" in message for message in conflicts)
    assert all("was NOT promoted" in message for message in conflicts)


def test_an_altered_object_fails_the_pull_by_name_and_leaves_the_target(
    store: ModelStore, tmp_path: Path
) -> None:
    info = store.push(FIXTURE_PACKAGE)
    target = tmp_path / "live"
    target.mkdir()
    (target / "bot-state.txt").write_text("keep me")
    key = f"{SYMBOL}/{SUITE}/{info.version}/heads/direction/model.onnx"
    put_object(store, key, b"not the model")
    with pytest.raises(StoreError, match=r"damaged.*\n.*heads/direction/model\.onnx: size"):
        store.pull(SYMBOL, target, version=info.version, force=True)
    assert [p.name for p in target.iterdir()] == ["bot-state.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pulling")]
    (check,) = store.verify()
    assert check.error is not None and "heads/direction/model.onnx" in check.error
    with pytest.raises(StoreError, match="damaged"):
        store.promote(SYMBOL, info.version)


def test_if_better_refuses_a_worse_package_and_accepts_a_better_one(
    store: ModelStore, tmp_path: Path
) -> None:
    metric = "direction.balanced_accuracy"
    for i, score in enumerate((0.40, 0.38, 0.45)):
        store.push(make_version(tmp_path, version_name(i), metrics={metric: score}))
    store.promote(SYMBOL, version_name(0), if_better=metric)  # nothing to beat yet
    with pytest.raises(PromotionRefused, match=r"0\.3800 vs 0\.4000.*-0\.0200.*not better"):
        store.promote(SYMBOL, version_name(1), if_better=metric)
    assert store.channels(SYMBOL, SUITE)["approved"] == version_name(0)
    pointer = store.promote(SYMBOL, version_name(2), if_better=metric)
    assert pointer.previous == version_name(0)
    assert pointer.comparison == {
        "metric": metric,
        "candidate": 0.45,
        "incumbent": 0.40,
        "incumbent_version": version_name(0),
    }
    assert store.channels(SYMBOL, SUITE)["approved"] == version_name(2)
    again = store.promote(SYMBOL, version_name(2), if_better=metric)  # already there: a no-op
    assert again.previous == version_name(2)


def test_if_better_knows_that_a_lower_error_is_better(store: ModelStore, tmp_path: Path) -> None:
    metric = "position_size.mae"
    for i, mae in enumerate((1.0, 1.2, 0.9)):
        store.push(make_version(tmp_path, version_name(i), metrics={metric: mae}))
    store.promote(SYMBOL, version_name(0))
    with pytest.raises(PromotionRefused, match="lower is better"):
        store.promote(SYMBOL, version_name(1), if_better=metric)
    assert store.promote(SYMBOL, version_name(2), if_better=metric).version == version_name(2)
    with pytest.raises(StoreError, match="no known direction"):
        store.promote(SYMBOL, version_name(1), if_better="direction.rows")


def test_gc_keeps_the_newest_and_everything_a_channel_points_at(
    store: ModelStore, tmp_path: Path
) -> None:
    names = [version_name(i) for i in range(4)]
    for name in names:
        store.push(make_version(tmp_path, name))
    store.promote(SYMBOL, names[0])
    store.promote(SYMBOL, names[1], channel="staging")
    planned = store.gc(1, dry_run=True)
    assert [item.version for item in planned] == [names[2]]
    assert len(store.versions()) == 4  # a dry run deletes nothing
    deleted = store.gc(1)
    assert [item.version for item in deleted] == [names[2]]
    assert [v.version for v in store.versions()] == [names[0], names[1], names[3]]
    assert not [o for o in store._list("") if names[2] in o.key]
    store.pull(SYMBOL, tmp_path / "approved")  # what a channel points at still pulls


def test_gc_removes_only_stale_incomplete_uploads(
    store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.push(FIXTURE_PACKAGE)
    partial = f"{SYMBOL}/{SUITE}/{version_name(9)}/heads/direction/model.onnx"
    put_object(store, partial, b"half an upload")
    assert store.gc(1, dry_run=True) == []  # younger than a day: may still be uploading
    monkeypatch.setattr("quantrain.store.base.INCOMPLETE_GRACE", timedelta(0))
    (item,) = store.gc(1)
    assert item.version == version_name(9) and "incomplete" in item.reason
    assert [o.key for o in store._list("") if version_name(9) in o.key] == []
    assert len(store.versions()) == 1


def test_promote_and_pull_refuse_what_is_not_there(store: ModelStore, tmp_path: Path) -> None:
    info = store.push(FIXTURE_PACKAGE)
    with pytest.raises(StoreError, match="no complete version '20000101T000000Z-nope'"):
        store.promote(SYMBOL, "20000101T000000Z-nope")
    with pytest.raises(StoreError, match="points nowhere yet; run `quantrain models promote"):
        store.pull(SYMBOL, tmp_path / "x")
    with pytest.raises(StoreError, match=r"no packages for symbol 'BTC-USDT'.*ETH-BTC"):
        store.pull("BTC-USDT", tmp_path / "x", version=info.version)
    with pytest.raises(StoreError, match="channel names use letters"):
        store.promote(SYMBOL, info.version, channel="../escape")


def test_s3_client_is_configured_for_r2_and_minio(s3_uri: str) -> None:
    store = open_store(s3_uri)
    assert isinstance(store, S3Store)
    config = store.client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.retries["mode"] == "standard"
    raw = boto3.client("s3", config=client_config())
    assert raw.meta.endpoint_url == store.client.meta.endpoint_url  # AWS_ENDPOINT_URL honoured


def test_newest_manifests_read_each_symbols_newest_version_and_give_training_times(
    store: ModelStore, tmp_path: Path
) -> None:
    from quantrain.orchestration.schedule import previous_seconds

    def push(i: int, seconds: object) -> None:
        package = make_version(tmp_path, version_name(i))
        manifest = json.loads((package / MANIFEST).read_text())
        manifest["train_seconds"] = seconds
        (package / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        store.push(package)

    for i, seconds in ((1, 10.0), (3, 30.0), (2, 20.0)):  # pushed out of order on purpose
        push(i, seconds)

    newest = store.newest_manifests(SUITE, [SYMBOL, "XMR-BTC"])
    assert list(newest) == [SYMBOL]  # a symbol with nothing published is left out
    assert newest[SYMBOL]["version"] == version_name(3)
    assert store.newest_manifests("full", [SYMBOL]) == {}  # another suite's history is not it
    assert previous_seconds(store, SUITE, [SYMBOL, "XMR-BTC"]) == {SYMBOL: 30.0}
    for i, junk in ((4, True), (5, -1.0), (6, "slow")):  # not a duration: no estimate from it
        push(i, junk)
        assert previous_seconds(store, SUITE, [SYMBOL]) == {}


def racing_package(tmp_path: Path, version: str, racer: int) -> Path:
    """The v1 package under ``version`` with different bytes in every JSON and CSV file (still
    valid: trailing whitespace) and the manifest's checksums rewritten to match."""
    target = make_version(tmp_path / f"racer-{racer}", version)
    manifest = json.loads((target / MANIFEST).read_text())
    for rel in manifest["files"]:
        path = target / rel
        if path.suffix in (".json", ".csv"):
            path.write_bytes(path.read_bytes() + b"\n" * (racer + 1))
    manifest["files"] = file_entries(target, exclude=frozenset({MANIFEST}))
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return target


def package_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def push_at_once(uri: str, packages: list[Path]) -> dict[int, object]:
    """Push every package from its own thread and store client, released by one barrier:
    ``{index: VersionInfo or the StoreError it raised}``."""
    barrier = threading.Barrier(len(packages), timeout=60)
    outcomes: dict[int, object] = {}

    def push(i: int) -> None:
        own = open_store(uri)  # another process's store, with its own client
        barrier.wait()
        try:
            outcomes[i] = own.push(packages[i])
        except StoreError as error:
            outcomes[i] = error

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(packages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_different_packages_pushed_as_one_version_at_once_never_damage_it(
    store: ModelStore, tmp_path: Path
) -> None:
    """What a Ray retry of a symbol does (it reuses the version name): the version that wins is
    exactly the files its pusher verified, and the loser is told, every round."""
    damaged: list[str] = []
    losses: list[object] = []
    for round_ in range(20):
        version = version_name(round_)
        packages = [racing_package(tmp_path / str(round_), version, racer) for racer in (0, 1)]
        outcomes = push_at_once(store.uri, packages)
        (winner,) = [r for r, o in outcomes.items() if not isinstance(o, Exception)]
        losses.append(outcomes[1 - winner])
        try:
            pulled = store.pull(SYMBOL, tmp_path / "pulled" / version, version=version)
        except StoreError as error:
            damaged.append(f"round {round_}: {error}")
            continue
        if package_bytes(pulled) != package_bytes(packages[winner]):
            damaged.append(f"round {round_}: pulled bytes differ from the winner's")
    assert damaged == [], f"{len(damaged)} of 20 rounds damaged:\n" + "\n".join(damaged)
    # A loser that started after the winner finished is refused up front ("exists"); one
    # that raced it is told it lost (StoreConflictError). Either way the pipeline reads the
    # version the winner published.
    assert all(isinstance(loss, StoreError) for loss in losses), losses
    assert all("versions are immutable" in str(loss) for loss in losses), losses
    assert [check.error for check in store.verify()] == [None] * 20
    assert not [o.key for o in store._list("") if "/." in o.key.rsplit("/", 1)[0]]


def test_gc_stale_after_keeps_a_younger_staging_leftover_and_removes_an_older_one(
    store: ModelStore,
) -> None:
    store.push(FIXTURE_PACKAGE)
    leftover = f"{SYMBOL}/{SUITE}/.incoming-{version_name(9)}-0123456789ab"
    put_object(store, f"{leftover}/heads/direction/model.onnx", b"half an upload")
    left_at = max(o.modified for o in store._list(leftover))
    assert store.gc(1, stale_after="2h", now=left_at + timedelta(minutes=119)) == []
    assert store.gc(1, now=left_at + timedelta(hours=23)) == []  # the default: 24h
    (planned,) = store.gc(1, stale_after="2h", dry_run=True, now=left_at + timedelta(hours=3))
    assert (planned.version, planned.reason) == (
        leftover.rsplit("/", 1)[1],
        "incomplete upload older than 2h",
    )
    assert store._list(leftover)  # a dry run deletes nothing
    assert store.gc(1, stale_after="30m", now=left_at + timedelta(hours=3)) == [
        GcItem(SYMBOL, SUITE, planned.version, "incomplete upload older than 30m")
    ]
    assert store._list(leftover) == []
    assert len(store.versions()) == 1 and store.verify()[0].error is None
    with pytest.raises(StoreError, match=r"--stale-after must be .*\(30m, 2h, 1d\), got '2 days'"):
        store.gc(1, stale_after="2 days")
