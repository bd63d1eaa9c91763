"""Hostile inputs (issue 22): names that climb out of the store, a store object that tries to
write outside the pull target, YAML bombs and a FIFO given as data.

Every case is one row of ``CASES``: how to build the input, the command it goes to and the
words its refusal must hold. Each must exit 2 with a message naming what was wrong and the fix,
show no traceback, leave its whole workspace exactly as it was, and finish within
``LIMIT_S`` (the cases that used to hang or abort run in a subprocess, so a regression fails
the test instead of freezing or killing the suite).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.store import open_store

from ..conftest import SAMPLE_DIR, put_test_object

LIMIT_S = 20
VERSION = "20990101T000000Z-abc123"
DATA = str(SAMPLE_DIR / "ETH-BTC_5m.parquet")


@dataclass(frozen=True)
class Case:
    """A hostile input: ``build(workspace, package)`` writes what it needs and returns the
    command line; ``package`` asks for a private copy of a trained ETH-BTC package."""

    build: Callable[[Path, Path], list[str]]
    words: tuple[str, ...]
    package: bool = False
    subprocess: bool = False


def _edit_manifest(package: Path, **fields: object) -> Path:
    manifest = json.loads((package / "manifest.json").read_text())
    manifest.update(fields)
    (package / "manifest.json").write_text(json.dumps(manifest))
    return package


def _in_store(ws: Path, package: Path, symbol: str = "ETH-BTC", version: str = VERSION) -> Path:
    """The package placed by hand as a complete version of a local store; the store's path."""
    store = ws / "store"
    shutil.copytree(package, store / symbol / "core" / version)
    return store


def _job(ws: Path, text: str) -> str:
    (ws / "job.yaml").write_text(text)
    return str(ws / "job.yaml")


def _fifo(ws: Path, name: str) -> str:
    os.mkfifo(ws / name)
    return name


def _billion_laughs() -> str:
    """Nine levels of nine aliases under a key that takes any value (a head's params): a few
    hundred bytes that expand to 9**10 strings."""
    lol = '["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'
    levels = [f"        a0: &a0 {lol}"]
    levels += [f"        a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    head = "suite:\n  name: core\n  heads:\n    - name: direction\n      target: direction\n"
    return head + "      params:\n" + "\n".join(levels) + "\n"


def _pointer(ws: Path, package: Path, body: bytes) -> str:
    """A store holding the package and an ``approved`` channel pointer with ``body``."""
    store = _in_store(ws, _edit_manifest(package, version=VERSION))
    channels = store / "ETH-BTC" / "core" / "channels"
    channels.mkdir()
    (channels / "approved.json").write_bytes(body)
    return str(store)


def _drop_from_manifest(package: Path, *keys: str) -> Path:
    manifest = json.loads((package / "manifest.json").read_text())
    for key in keys:
        manifest.pop(key)
    (package / "manifest.json").write_text(json.dumps(manifest))
    return package


def _files_without_size(package: Path) -> Path:
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["files"] = {rel: {"sha256": e["sha256"]} for rel, e in manifest["files"].items()}
    (package / "manifest.json").write_text(json.dumps(manifest))
    return package


def _as_list(package: Path) -> Path:
    manifest = json.loads((package / "manifest.json").read_text())
    (package / "manifest.json").write_text(json.dumps([manifest]))
    return package


def _garbage_onnx(package: Path) -> Path:
    """An ONNX file replaced by garbage, with the manifest's size and sha256 updated to match:
    only onnxruntime can tell."""
    manifest = json.loads((package / "manifest.json").read_text())
    rel = next(r for r in manifest["files"] if r.endswith(".onnx"))
    body = b"not an onnx graph" * 8
    (package / rel).write_bytes(body)
    manifest["files"][rel] = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    (package / "manifest.json").write_text(json.dumps(manifest))
    return package


def _without_heads(package: Path) -> Path:
    """A consistent manifest whose heads (and their files) were removed."""
    manifest = json.loads((package / "manifest.json").read_text())
    for head in manifest["heads"].values():
        for rel in head["files"]:
            manifest["files"].pop(rel, None)
            (package / rel).unlink(missing_ok=True)
    manifest["heads"] = {}
    (package / "manifest.json").write_text(json.dumps(manifest))
    return package


def _rows(ws: Path, count: int) -> str:
    frame = pd.read_parquet(DATA).head(count)
    frame.to_parquet(ws / "ETH-BTC_5m.parquet")
    return str(ws / "ETH-BTC_5m.parquet")


def _markup_path(ws: Path) -> str:
    """A data file under a directory whose name is rich markup (``x[/red]``)."""
    folder = ws / "x[" / "red]"
    folder.mkdir(parents=True)
    (folder / "ETH-BTC_5m.csv").write_text("timestamp,open\n1,2\n")
    return str(folder / "ETH-BTC_5m.csv")


def _file(ws: Path, name: str) -> str:
    (ws / name).write_text("not a directory\n")
    return str(ws / name)


def _malicious_store(ws: Path, package: Path, rel: Callable[[Path], str]) -> list[str]:
    """A version whose manifest lists an extra file at ``rel`` (climbing out of the pull
    target) with the right size and sha256, so that only the path check can refuse it."""
    body = b"evil\n"
    entry = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    store = ws / "store"
    version_dir = store / "ETH-BTC" / "core" / VERSION
    shutil.copytree(package, version_dir)
    listed = rel(ws)
    source = Path(listed) if listed.startswith("/") else version_dir / listed
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(body)  # where the local store reads it from (and, absolute, writes it)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    manifest["version"] = VERSION
    manifest["files"][listed] = entry
    (version_dir / "manifest.json").write_text(json.dumps(manifest))
    (ws / "pulled").mkdir()
    target = ws / "pulled" / "here"
    return [
        "models",
        "pull",
        "ETH-BTC",
        "--store",
        str(store),
        "--version",
        VERSION,
        "--to",
        str(target),
    ]


CASES: dict[str, Case] = {
    "train --suite ../../x": Case(
        lambda ws, _: ["train", "--data", DATA, "--store", str(ws / "s"), "--suite", "../../x"],
        ("suite '../../x' is not a safe name", "fix"),
    ),
    "job name: ../x": Case(
        lambda ws, _: ["run", _job(ws, "name: ../x\n")],
        ("job.yaml", "name", "not a safe name", "fix", "'../x'"),
    ),
    "job suite.name: ../x": Case(
        lambda ws, _: ["run", _job(ws, "suite: {name: ../x}\n")],
        ("job.yaml", "suite.name", "not a safe name", "fix", "'../x'"),
    ),
    "--set suite.name=../x": Case(
        lambda ws, _: ["train", "--data", DATA, "--set", "suite.name=../x"],
        ("suite.name", "not a safe name", "fix", "'../x'"),
    ),
    "models verify --symbol ../..": Case(
        lambda ws, _: ["models", "verify", "--symbol", "../..", "--store", str(ws / "s")],
        ("symbol '../..'", "safe key", "fix"),
    ),
    "models pull ../x": Case(
        lambda ws, _: ["models", "pull", "../x", "--store", str(ws / "s"), "--to", str(ws / "t")],
        ("symbol '../x'", "safe key", "fix"),
    ),
    "models pull --version /abs": Case(
        lambda ws, _: ["models", "pull", "ETH-BTC", "--version", "/etc", "--to", str(ws / "t")],
        ("version '/etc' is not a safe name", "fix"),
    ),
    "models promote SYMBOL ../x": Case(
        lambda ws, _: ["models", "promote", "ETH-BTC", "../x", "--store", str(ws / "s")],
        ("version '../x' is not a safe name", "fix"),
    ),
    "push: manifest symbol ../x": Case(
        lambda ws, pkg: [
            "models",
            "push",
            str(_edit_manifest(pkg, symbol="../x")),
            "--store",
            str(ws / "store"),
        ],
        ("symbol '../x' is not a safe name", "fix"),
        package=True,
    ),
    "push: manifest version ../x": Case(
        lambda ws, pkg: [
            "models",
            "push",
            str(_edit_manifest(pkg, version="../../x")),
            "--store",
            str(ws / "store"),
        ],
        ("version '../../x' is not a safe name", "fix"),
        package=True,
    ),
    "predict: manifest version ../x": Case(
        lambda ws, pkg: ["predict", str(_edit_manifest(pkg, version="../x")), DATA],
        ("version '../x' is not a safe name", "fix"),
        package=True,
    ),
    "verify: stored manifest symbol ../x": Case(
        lambda ws, pkg: [
            "models",
            "verify",
            "--store",
            str(_in_store(ws, _edit_manifest(pkg, symbol="../x", version=VERSION))),
        ],
        ("symbol '../x' is not a safe name", "fix", "0 of 1 packages verified"),
        package=True,
    ),
    "pull: store object lists ../../evil": Case(
        lambda ws, pkg: _malicious_store(ws, pkg, lambda _: "../../evil"),
        ("'../../evil' is not a safe relative path", "fix"),
        package=True,
    ),
    "pull: store object lists an absolute path": Case(
        lambda ws, pkg: _malicious_store(ws, pkg, lambda w: str(w / "outside" / "evil")),
        ("outside/evil' is not a safe relative path", "fix"),
        package=True,
    ),
    "job file: billion laughs": Case(
        lambda ws, _: ["run", _job(ws, _billion_laughs())],
        ("job.yaml", "anchors", "aliases", "line 7", "fix"),
        subprocess=True,
    ),
    "--set: alias": Case(
        lambda ws, _: ["train", "--data", DATA, "--set", "seed=&a 1", "--set", "name=*a"],
        ("--set", "anchors", "fix"),
    ),
    "job file: deeply nested": Case(
        lambda ws, _: ["run", _job(ws, "name: " + "[" * 5000 + "]" * 5000 + "\n")],
        ("job.yaml", "nested deeper", "fix"),
        subprocess=True,
    ),
    "job file: larger than the limit": Case(
        lambda ws, _: ["run", _job(ws, "# padding\n" * 120_000)],
        ("job.yaml", "bytes", "refused", "fix"),
    ),
    "data validate: a FIFO": Case(
        lambda ws, _: ["data", "validate", _fifo(ws, "ETH-BTC_5m.csv")],
        ("ETH-BTC_5m.csv", "not a regular file", "fix"),
        subprocess=True,
    ),
    "run: a FIFO as the job file": Case(
        lambda ws, _: ["run", _fifo(ws, "job.yaml")],
        ("job.yaml", "not a regular file", "fix"),
        subprocess=True,
    ),
    # -- were tracebacks -----------------------------------------------------------------------
    "pull: channel pointer is not JSON": Case(
        lambda ws, pkg: [
            "models",
            "pull",
            "ETH-BTC",
            "--store",
            _pointer(ws, pkg, b"{nope"),
            "--to",
            str(ws / "t"),
        ],
        ("channels/approved.json", "not a JSON object", "fix"),
        package=True,
    ),
    "promote: channel pointer without version": Case(
        lambda ws, pkg: [
            "models",
            "promote",
            "ETH-BTC",
            VERSION,
            "--store",
            _pointer(ws, pkg, b'{"previous": null}'),
        ],
        ("channels/approved.json", "names no 'version'", "fix"),
        package=True,
    ),
    "list: channel pointer is not JSON": Case(
        lambda ws, pkg: ["models", "list", "--store", _pointer(ws, pkg, b"\xff\xfe")],
        ("channels/approved.json", "not a JSON object", "fix"),
        package=True,
    ),
    "list: channel pointer is a list": Case(
        lambda ws, pkg: ["models", "list", "--store", _pointer(ws, pkg, b'["v"]')],
        ("channels/approved.json", "names no 'version'", "fix"),
        package=True,
    ),
    "verify: manifest without files": Case(
        lambda ws, pkg: [
            "models",
            "verify",
            "--store",
            str(_in_store(ws, _drop_from_manifest(_edit_manifest(pkg, version=VERSION), "files"))),
        ],
        ("manifest.json", "'files'", "fix", "0 of 1 packages verified"),
        package=True,
    ),
    "predict: manifest without files": Case(
        lambda ws, pkg: ["predict", str(_drop_from_manifest(pkg, "files")), DATA],
        ("manifest.json", "'files'", "fix"),
        package=True,
    ),
    "push: manifest without files": Case(
        lambda ws, pkg: [
            "models",
            "push",
            str(_drop_from_manifest(pkg, "files")),
            "--store",
            str(ws / "store"),
        ],
        ("manifest.json", "'files'", "fix"),
        package=True,
    ),
    "verify: a file entry without size": Case(
        lambda ws, pkg: [
            "models",
            "verify",
            "--store",
            str(_in_store(ws, _files_without_size(_edit_manifest(pkg, version=VERSION)))),
        ],
        ("files entry", "needs a size", "fix", "0 of 1 packages verified"),
        package=True,
    ),
    "predict: a file entry without size": Case(
        lambda ws, pkg: ["predict", str(_files_without_size(pkg)), DATA],
        ("manifest.json", "files entry", "needs a size", "fix"),
        package=True,
    ),
    "push: a file entry without size": Case(
        lambda ws, pkg: [
            "models",
            "push",
            str(_files_without_size(pkg)),
            "--store",
            str(ws / "store"),
        ],
        ("manifest.json", "files entry", "needs a size", "fix"),
        package=True,
    ),
    "verify: manifest is a list": Case(
        lambda ws, pkg: [
            "models",
            "verify",
            "--store",
            str(_in_store(ws, _as_list(_edit_manifest(pkg, version=VERSION)))),
        ],
        ("is a JSON object, got list", "fix", "0 of 1 packages verified"),
        package=True,
    ),
    "predict: manifest is a list": Case(
        lambda ws, pkg: ["predict", str(_as_list(pkg)), DATA],
        ("manifest.json", "is a JSON object, got list", "fix"),
        package=True,
    ),
    "push: manifest is a list": Case(
        lambda ws, pkg: ["models", "push", str(_as_list(pkg)), "--store", str(ws / "store")],
        ("manifest.json", "is a JSON object, got list", "fix"),
        package=True,
    ),
    "predict: garbage ONNX that matches its manifest": Case(
        lambda ws, pkg: ["predict", str(_garbage_onnx(pkg)), DATA],
        ("model.onnx", "onnxruntime cannot load head", "fix"),
        package=True,
    ),
    "predict --out into a missing directory": Case(
        lambda ws, pkg: ["predict", str(pkg), DATA, "--out", str(ws / "nodir" / "p.csv")],
        ("--out", "nodir", "does not exist", "fix"),
        package=True,
    ),
    "resample --out into a missing directory": Case(
        lambda ws, _: ["data", "resample", DATA, "--to", "15m", "--out", "nodir/x.parquet"],
        ("--out", "nodir", "does not exist", "fix"),
    ),
    "resample --out .xlsx": Case(
        lambda ws, _: ["data", "resample", DATA, "--to", "15m", "--out", "x.xlsx"],
        ("--out", ".xlsx", "fix", ".parquet"),
    ),
    "push: store path is a file": Case(
        lambda ws, pkg: ["models", "push", str(pkg), "--store", _file(ws, "store")],
        ("is a file, not a directory", "fix"),
        package=True,
    ),
    "--set: bad YAML": Case(
        lambda ws, _: ["train", "--data", DATA, "--set", "seed=[1"],
        ("--set seed", "not valid YAML", "fix"),
    ),
    "job file: binary": Case(
        lambda ws, _: ["run", _job_bytes(ws, bytes(range(256)) * 4)],
        ("job.yaml", "not UTF-8", "fix"),
    ),
    "job file: store s3:// without a bucket": Case(
        lambda ws, _: ["run", _job(ws, "store: s3://\n")],
        ("s3://", "BUCKET", "fix"),
    ),
    "models list --store s3://": Case(
        lambda ws, _: ["models", "list", "--store", "s3://"],
        ("s3://", "BUCKET", "fix"),
    ),
    "data validate: rich markup in the path": Case(
        lambda ws, _: ["data", "validate", _markup_path(ws)],
        ("x[/red]/ETH-BTC_5m.csv", "missing required columns", "fix"),
    ),
    # -- were accepted silently ------------------------------------------------------------------
    "models list: store is a file": Case(
        lambda ws, _: ["models", "list", "--store", _file(ws, "store")],
        ("is a file, not a directory", "fix"),
    ),
    "models list: store does not exist": Case(
        lambda ws, _: ["models", "list", "--store", str(ws / "typo")],
        ("no model store at", "typo", "fix"),
    ),
    "models gc: store does not exist": Case(
        lambda ws, _: ["models", "gc", "--keep", "1", "--store", str(ws / "typo")],
        ("no model store at", "typo", "fix"),
    ),
    "job: unknown XGBoost param": Case(
        lambda ws, _: [
            "run",
            _head_job(ws, "xgboost", {"max_dept": 3}),
        ],
        ("'max_dept'", "did you mean max_depth", "fix"),
    ),
    "job: unknown LightGBM param": Case(
        lambda ws, _: [
            "run",
            _head_job(ws, "lightgbm", {"num_leavs": 3}),
        ],
        ("'num_leavs'", "did you mean num_leaves", "fix"),
    ),
    "job: n_folds: true": Case(
        lambda ws, _: ["run", _job(ws, "split: {n_folds: true}\n")],
        ("job.yaml", "split.n_folds", "not true/false", "fix"),
    ),
    "predict: 10 rows": Case(
        lambda ws, pkg: ["predict", str(pkg), _rows(ws, 10)],
        ("10 bars", "warm-up", "fix"),
        package=True,
    ),
    "verify: manifest.json deleted": Case(
        lambda ws, pkg: [
            "models",
            "verify",
            "--store",
            str(_in_store(ws, _drop_manifest_file(pkg))),
        ],
        ("no manifest.json", "fix", "0 of 1 packages verified"),
        package=True,
    ),
    "predict: heads removed from a consistent manifest": Case(
        lambda ws, pkg: ["predict", str(_without_heads(pkg)), DATA],
        ("lists no heads", "fix"),
        package=True,
    ),
}


def _head_job(ws: Path, family: str, params: dict[str, object]) -> str:
    """A one-head job whose head names ``family`` and ``params``."""
    head = {"name": "direction", "target": "direction", "family": family, "params": params}
    job = {"data": {"path": DATA}, "store": str(ws / "s"), "suite": {"heads": [head]}}
    return _job(ws, yaml.safe_dump(job))


def _job_bytes(ws: Path, body: bytes) -> str:
    (ws / "job.yaml").write_bytes(body)
    return str(ws / "job.yaml")


def _drop_manifest_file(package: Path) -> Path:
    (package / "manifest.json").unlink()
    return package


def _snapshot(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under ``root``: (size, mtime) for files, None for the rest."""
    out: dict[str, tuple[int, int] | None] = {}
    for path in root.rglob("*"):
        stat = path.lstat()
        regular = path.is_file() and not path.is_symlink()
        out[path.relative_to(root).as_posix()] = (
            (stat.st_size, stat.st_mtime_ns) if regular else None
        )
    return out


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail (not freeze) an in-process command that runs past ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _invoke(argv: list[str], cwd: Path, in_subprocess: bool) -> tuple[int, str]:
    if in_subprocess:
        done = subprocess.run(
            [sys.executable, "-m", "quantrain", *argv],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=LIMIT_S,
            check=False,
        )
        return done.returncode, done.stdout + done.stderr
    with _deadline(LIMIT_S):  # an unexpected exception fails the test with its traceback
        result = CliRunner().invoke(main, argv, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_refused_cleanly(
    name: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    package = request.getfixturevalue("eth_package") if case.package else tmp_path / "none"
    argv = case.build(ws, package)
    before = _snapshot(tmp_path)
    started = time.monotonic()
    exit_code, output = _invoke(argv, ws, case.subprocess)
    elapsed = time.monotonic() - started
    flat = " ".join(output.split())  # rich wraps long lines
    assert exit_code == 2, output
    for word in case.words:
        assert word in flat, f"{word!r} not in: {output}"
    assert "Traceback" not in output
    assert _snapshot(tmp_path) == before, "something was written, moved or deleted"
    assert elapsed < LIMIT_S


def test_every_refusal_names_the_fix() -> None:
    """The table itself: each case expects the message to say how to fix the input."""
    assert all("fix" in case.words for case in CASES.values())


def test_a_listing_skips_keys_that_are_not_safe_names(eth_package: Path, tmp_path: Path) -> None:
    """A store object under a name quantrain never writes is not listed (nor turned into a
    path); the real versions still are."""
    store = _in_store(tmp_path, eth_package)
    shutil.copytree(eth_package, store / "ETH-BTC" / "core" / "odd version!")
    shutil.copytree(eth_package, store / "ETH BTC" / "core" / VERSION)
    listed = [(v.symbol, v.version) for v in open_store(str(store)).versions()]
    assert listed == [("ETH-BTC", VERSION)]


def test_pull_lands_only_under_the_target(eth_package: Path, tmp_path: Path) -> None:
    """The safe path still works: symbols are normalised (eth/btc is ETH-BTC) and the package
    appears at --to and nowhere else."""
    store = _in_store(tmp_path, _edit_manifest(eth_package, version=VERSION))
    (tmp_path / "pulled").mkdir()
    before = _snapshot(tmp_path)
    target = tmp_path / "pulled" / "here"
    result = CliRunner().invoke(
        main,
        [
            "models",
            "pull",
            "eth/btc",
            "--store",
            str(store),
            "--version",
            VERSION,
            "--to",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    added = {p for p in _snapshot(tmp_path) if p not in before}
    assert added and all(p.startswith("pulled/here") for p in added)


@pytest.mark.parametrize(
    ("body", "words"),
    [(b"{nope", "not a JSON object"), (b'{"previous": null}', "names no 'version'")],
    ids=["not JSON", "no version"],
)
@pytest.mark.parametrize("command", ["pull", "promote", "list"])
def test_a_broken_s3_channel_pointer_is_refused_cleanly(
    command: str, body: bytes, words: str, s3_uri: str, eth_package: Path, tmp_path: Path
) -> None:
    """The S3 twin of the local pointer cases: same message, exit 2, nothing pulled."""
    version = open_store(s3_uri).push(_edit_manifest(eth_package, version=VERSION)).version
    put_test_object("models/ETH-BTC/core/channels/approved.json", body)
    argv = {
        "pull": ["models", "pull", "ETH-BTC", "--to", str(tmp_path / "t")],
        "promote": ["models", "promote", "ETH-BTC", version],
        "list": ["models", "list"],
    }[command]
    result = CliRunner().invoke(main, [*argv, "--store", s3_uri], catch_exceptions=False)
    flat = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert words in flat and "channels/approved.json" in flat and "fix" in flat
    assert not (tmp_path / "t").exists()
