"""The local store: versions appear whole, are never overwritten, and pulls are verified."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.errors import PackageError, StoreError
from quantrain.package import read_manifest
from quantrain.store import LocalStore, open_store
from quantrain.store.base import INCOMPLETE_GRACE

from ..conftest import package_path


@pytest.fixture
def store(trained_store: Path, tmp_path: Path) -> LocalStore:
    """A private store seeded with the ETH-BTC and LTC-BTC packages."""
    root = tmp_path / "store"
    shutil.copytree(trained_store, root)
    return LocalStore(root)


def _eth_version(store: LocalStore) -> str:
    (info,) = store.versions("ETH-BTC")
    return info.version


def test_list_shows_complete_versions_only(store: LocalStore) -> None:
    (store.root / "ETH-BTC/core/.incoming-x").mkdir()
    (store.root / "ETH-BTC/core/20990101T000000Z-half").mkdir()  # no manifest: not a version
    rows = store.versions()
    assert [r.symbol for r in rows] == ["ETH-BTC", "LTC-BTC"]
    assert "direction.balanced_accuracy" in rows[0].metrics


def test_push_refuses_to_overwrite_a_version(store: LocalStore, eth_package: Path) -> None:
    with pytest.raises(StoreError, match="immutable"):
        store.push(eth_package)


def test_push_of_a_damaged_package_leaves_nothing(store: LocalStore, eth_package: Path) -> None:
    manifest = read_manifest(eth_package)
    other = store.root / "ETH-BTC/core" / manifest["version"]
    shutil.rmtree(other)
    (eth_package / "heads/direction/model.onnx").write_bytes(b"not a model")
    with pytest.raises(PackageError):
        store.push(eth_package)
    assert list((store.root / "ETH-BTC/core").iterdir()) == []


def test_promote_then_pull_the_approved_channel(store: LocalStore, tmp_path: Path) -> None:
    version = _eth_version(store)
    pointer = store.promote("ETH-BTC", version)
    assert (pointer.channel, pointer.version, pointer.previous) == ("approved", version, None)
    assert store.versions("ETH-BTC")[0].channels == ("approved",)
    target = store.pull("ETH-BTC", tmp_path / "live")
    assert read_manifest(target)["version"] == version
    again = store.promote("ETH-BTC", version, channel="approved")
    assert again.previous == version


def test_promote_refuses_an_unknown_version(store: LocalStore) -> None:
    with pytest.raises(StoreError, match="no complete version"):
        store.promote("ETH-BTC", "20000101T000000Z-nope")


def test_pull_without_a_promotion_says_how_to_promote(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="quantrain models promote ETH-BTC"):
        store.pull("ETH-BTC", tmp_path / "live")


def test_failed_pull_leaves_the_target_untouched(store: LocalStore, tmp_path: Path) -> None:
    version = _eth_version(store)
    target = tmp_path / "live"
    target.mkdir()
    (target / "keep.txt").write_text("bot state")
    corrupt = store.root / "ETH-BTC/core" / version / "heads/direction/model.onnx"
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\x00")
    with pytest.raises(StoreError, match=r"damaged.*\n.*heads/direction/model.onnx: sha256"):
        store.pull("ETH-BTC", target, version=version, force=True)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pulling")]


def test_pull_refuses_to_replace_other_content_without_force(
    store: LocalStore, tmp_path: Path
) -> None:
    version = _eth_version(store)
    target = tmp_path / "live"
    store.pull("ETH-BTC", target, version=version)
    assert store.pull("ETH-BTC", target, version=version) == target  # same version: a no-op
    ltc = store.versions("LTC-BTC")[0].version
    with pytest.raises(StoreError, match="--force"):
        store.pull("LTC-BTC", target, version=ltc)
    store.pull("LTC-BTC", target, version=ltc, force=True)
    assert read_manifest(target)["symbol"] == "LTC-BTC"


def test_unknown_symbol_lists_what_the_store_has(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="ETH-BTC, LTC-BTC"):
        store.pull("BTC-USDT", tmp_path / "x", version="v")


def test_channel_pointer_is_plain_json(store: LocalStore) -> None:
    version = _eth_version(store)
    store.promote("ETH-BTC", version, channel="staging")
    pointer = json.loads((store.root / "ETH-BTC/core/channels/staging.json").read_text())
    assert pointer["version"] == version


def test_open_store_refuses_unsupported_schemes() -> None:
    with pytest.raises(StoreError, match="not supported; use a local directory or s3:"):
        open_store("gs://bucket/models")
    assert isinstance(open_store("file:///tmp/x"), LocalStore)


def test_package_path_helper_finds_one_version(trained_store: Path) -> None:
    assert (package_path(trained_store, "LTC-BTC") / "manifest.json").is_file()


def _push_with_backtest(store: LocalStore, source: Path, version: str, **metrics: float) -> str:
    """Push a copy of ``source`` as ``version`` with its backtest metrics changed (the manifest
    is not in its own checksum list, so the copy is a valid package)."""
    copy = store.root.parent / "copies" / version
    shutil.copytree(source, copy)
    manifest = read_manifest(copy)
    manifest["version"] = version
    manifest["evaluation"].update(metrics)
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    store.push(copy)
    return version


def _promote(store: LocalStore, version: str, metric: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from quantrain.cli import main

    args = ["models", "promote", "ETH-BTC", version, "--store", str(store.root)]
    result = CliRunner().invoke(main, [*args, "--if-better", metric])
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def test_models_promote_if_better_on_backtest_metrics(store: LocalStore) -> None:
    original = _eth_version(store)
    source = store.root / "ETH-BTC/core" / original
    recorded = read_manifest(source)["evaluation"]
    assert {"sharpe", "sortino", "hit_rate", "profit_factor", "annual_return"} <= set(recorded)
    drawdown = recorded["max_drawdown"]
    # The sample spans under 90 days, so its Sharpe is null: the copies carry explicit ones.
    base = _push_with_backtest(store, source, "20990101T000000Z-000000", sharpe=0.5)
    calm = _push_with_backtest(
        store, source, "20990101T000001Z-000001", sharpe=0.2, max_drawdown=drawdown / 2
    )
    bold = _push_with_backtest(
        store, source, "20990101T000002Z-000002", sharpe=0.9, max_drawdown=drawdown * 2
    )

    assert _promote(store, base, "backtest.sharpe") == (
        0,
        f"ETH-BTC/core: approved -> {base} backtest.sharpe: 0.5000 vs nothing",
    )
    code, output = _promote(store, calm, "backtest.sharpe")
    assert code == 1 and "0.2000 vs 0.5000" in output and "so not better" in output
    assert store.channels("ETH-BTC", "core")["approved"] == base
    code, output = _promote(store, bold, "backtest.sharpe")
    assert code == 0 and f"approved -> {bold} (was {base})" in output
    code, output = _promote(store, calm, "backtest.max_drawdown")  # half the drawdown wins
    assert code == 0 and f"approved -> {calm} (was {bold})" in output
    code, output = _promote(store, bold, "backtest.max_drawdown")
    assert code == 1 and "lower is better, so not better" in output
    assert store.channels("ETH-BTC", "core")["approved"] == calm


def test_promote_if_better_refuses_a_null_metric(store: LocalStore) -> None:
    original = _eth_version(store)
    if read_manifest(store.root / "ETH-BTC/core" / original)["evaluation"]["sharpe"] is not None:
        pytest.skip("the sample backtest is long enough to annualise")
    code, output = _promote(store, original, "backtest.sharpe")
    assert code == 2
    assert f"ETH-BTC/{original}: no metric 'backtest.sharpe'" in output
    assert "records it as null" in output and "Traceback" not in output


def test_promote_if_better_refuses_a_package_without_a_backtest(store: LocalStore) -> None:
    v1 = Path(__file__).parents[1] / "fixtures" / "package_v1"  # format 1: no evaluation
    old = store.push(v1).version
    store.promote("ETH-BTC", _eth_version_other_than(store, old))
    code, output = _promote(store, old, "backtest.total_return")
    assert code == 2, output
    assert f"ETH-BTC/{old}: no metric 'backtest.total_return'" in output
    assert "records no out-of-sample backtest" in output and "Traceback" not in output


def _eth_version_other_than(store: LocalStore, version: str) -> str:
    (other,) = [info.version for info in store.versions("ETH-BTC") if info.version != version]
    return other


def test_models_promote_require_holds_a_package_to_bounds_of_its_own(store: LocalStore) -> None:
    """``--require`` checks the candidate alone: the deflated Sharpe ratio the package records,
    its net return, and refuses names with no direction."""
    from click.testing import CliRunner

    from quantrain.cli import main

    version = _eth_version(store)
    manifest = read_manifest(store.root / "ETH-BTC/core" / version)
    dsr = manifest["selection"]["deflated_sharpe"]
    assert manifest["selection"]["trials"] == 1 and 0.0 <= dsr <= 1.0
    args = ["models", "promote", "ETH-BTC", version, "--store", str(store.root)]

    def promote(*require: str) -> tuple[int, str]:
        options = [a for r in require for a in ("--require", r)]
        result = CliRunner().invoke(main, [*args, *options])
        return result.exit_code, " ".join(result.output.split())

    code, output = promote(f"selection.deflated_sharpe={dsr + 0.01}", "backtest.max_drawdown=1")
    assert code == 1, output
    assert f"selection.deflated_sharpe {dsr:.4g} is below the required minimum" in output
    assert "backtest.max_drawdown" not in output  # that bound was met
    assert "approved" not in store.channels("ETH-BTC", "core")
    code, output = promote("backtest.sharpe_period=-1000", f"selection.deflated_sharpe={dsr}")
    assert code == 0, output
    assert store.channels("ETH-BTC", "core")["approved"] == version
    code, output = promote("sharpe=1")
    assert code == 2 and "a trading metric is backtest.sharpe" in output
    code, output = promote("backtest.total_return")
    assert code == 2 and "--require expects METRIC=NUMBER" in output


def test_gc_stale_after_from_the_cli_keeps_a_younger_leftover_and_removes_an_older_one(
    store: LocalStore,
) -> None:
    def gc(*options: str) -> str:
        args = ["models", "gc", "--store", str(store.root), "--keep", "1", *options]
        result = CliRunner().invoke(main, args)
        return f"{result.exit_code}: " + " ".join(result.output.split())

    assert INCOMPLETE_GRACE.total_seconds() == 24 * 3600  # what the help says
    assert "--stale-after (24 h by default)" in gc("--help")
    leftover = store.root / "ETH-BTC/core/.incoming-20990101T000000Z-x-0123456789ab"
    (leftover / "heads/direction").mkdir(parents=True)
    (leftover / "heads/direction/model.onnx").write_bytes(b"half a push")
    three_hours_ago = time.time() - 3 * 3600
    os.utime(leftover / "heads/direction/model.onnx", (three_hours_ago, three_hours_ago))
    assert gc("--stale-after", "4h") == "0: deleted 0 versions"
    assert gc() == "0: deleted 0 versions"  # 24h by default
    assert gc("--stale-after", "2h") == (
        f"0: deleted ETH-BTC/core/{leftover.name} (incomplete upload older than 2h) "
        "deleted 1 version"
    )
    assert not leftover.exists()
    assert [v.symbol for v in store.versions()] == ["ETH-BTC", "LTC-BTC"]
    refused = gc("--stale-after", "soon")
    assert refused.startswith("2: ") and "--stale-after must be" in refused and "'soon'" in refused
