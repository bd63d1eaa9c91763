"""Fuzzing what users and bots hand quantrain (issue 22): job files, ``--set`` overrides,
``train`` options and package manifests, with random keys, value types, nesting and names.

Every outcome must be a loaded object or a ``QuantrainError`` (exit 2, message only) whose
message names the file or option at fault; any other exception is a traceback a user or a bot
would see, so a bug. Job documents mix the real keys of ``JobConfig`` (read off the pydantic
models, so new keys are fuzzed without editing this file) with unknown ones; manifests start
from a real trained package and are damaged a few edits at a time.

Each case the fuzzer found stays covered: as an ``@example`` and a ``FOUND_IN_*`` test, or a
named test beside the comment that says where the traceback was.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from quantrain.cli import main
from quantrain.config import JobConfig, job_from_options, load_job
from quantrain.errors import ConfigError, PackageError, QuantrainError
from quantrain.features.registry import INDICATORS
from quantrain.features.spec import FEATURE_SETS
from quantrain.labels import target_names
from quantrain.names import SAFE_NAME
from quantrain.package import Predictor, load_manifest, read_manifest, verify_package

from ..conftest import package_path

FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- values -------------------------------------------------------------------------------------

NASTY = (
    "",
    " ",
    ".",
    "..",
    "../x",
    "../../etc/passwd",
    "/abs",
    "/",
    "C:\\x",
    "a/b",
    "a\\b",
    "~",
    "~root",
    "[/red]",
    "[bold]x[/bold]",
    "[link=file:///etc/passwd]x[/link]",
    "{symbol}",
    "%s%n",
    "${HOME}",
    "\x00",
    "\t",
    "\n",
    "\u202eevil",
    "é",
    "😀",
    "null",
    "NaN",
    "yes",
    "-1",
    "1e999",
    "--help",
    "s3://bucket/x",
    "s3://",
    "ETH/USDT:USDT",
    "a" * 129,
    "a" * 5000,
)
NAMES = st.one_of(
    st.from_regex(SAFE_NAME, fullmatch=True),
    st.sampled_from(NASTY),
    st.text(max_size=40),
)
HUGE_INTS = (2**31, 2**63, -(2**63) - 1, 10**30, -(10**30), 10**400)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]),
    st.text(max_size=30),
    NAMES,
)
KEYS = st.one_of(st.text(max_size=16), NAMES, st.integers(), st.booleans(), st.none())


def _nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value


RANDOM = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
#: Random values, now and then nested past the loader's depth limit (32).
VALUES = st.one_of(RANDOM, st.builds(_nest, RANDOM, st.integers(1, 40), st.booleans()))

# -- job documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """A key whose value is not a section: its annotation gives the plausible values."""

    annotation: Any


Shape = dict[str, Any]  # key -> Shape (a section), [Shape] (a list of sections) or Leaf


def _model_of(annotation: Any) -> type[BaseModel] | None:
    options = get_args(annotation) or (annotation,)
    found = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
    return found[0] if found else None


def _shape(model: type[BaseModel]) -> Shape:
    """The keys a job file may hold, read off the pydantic models."""
    shape: Shape = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = get_args(annotation)
        if get_origin(annotation) in (tuple, list) and args and _model_of(args[0]):
            item = _model_of(args[0])
            assert item is not None
            shape[name] = [_shape(item)]
        elif (section := _model_of(annotation)) is not None:
            shape[name] = _shape(section)
        else:
            shape[name] = Leaf(annotation)
    return shape


JOB_SHAPE = _shape(JobConfig)


def _dotted(shape: Shape, prefix: str = "") -> list[str]:
    out = []
    for key, sub in shape.items():
        out.append(prefix + key)
        if isinstance(sub, dict):
            out += _dotted(sub, f"{prefix}{key}.")
    return out


DOTTED_KEYS = sorted(_dotted(JOB_SHAPE))
TARGETS = sorted({*target_names("ohlcv"), *target_names("journal")})
#: Values that pass the type check, so the fuzzer gets past it to the validators behind it.
BY_KEY: dict[str, st.SearchStrategy[Any]] = {
    "target": st.sampled_from(TARGETS),
    "kind": st.sampled_from([*sorted(INDICATORS), "ohlcv", "journal"]),
    "family": st.sampled_from(["xgboost", "lightgbm", "sklearn_hgb", "mlp", "nosuch"]),
    "base": st.sampled_from(sorted(FEATURE_SETS)),
    "features": st.sampled_from(sorted(FEATURE_SETS)),
    "if_better": st.sampled_from(["balanced_accuracy", "direction.rmse", "backtest.sharpe"]),
    "space": st.dictionaries(
        st.sampled_from(["max_depth", "learning_rate", "subsample"]),
        st.dictionaries(
            st.sampled_from(["int", "uniform", "loguniform", "logint", "choice", "nosuch"]),
            st.lists(SCALARS, max_size=3),
            max_size=2,
        )
        | SCALARS,
        max_size=3,
    ),
}


def _now_and_then(
    usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int
) -> st.SearchStrategy[Any]:
    """``usual``, and ``rare`` about once in ``one_in`` draws."""
    return st.integers(1, one_in).flatmap(lambda i: rare if i == 1 else usual)


def _plausible(annotation: Any) -> st.SearchStrategy[Any]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _plausible(args[0])
    if origin is Literal:
        return st.sampled_from(args)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-5, 5000) | st.sampled_from(HUGE_INTS)
    if annotation is float:
        return st.floats(-2, 5000) | st.sampled_from([math.nan, math.inf, -math.inf])
    if annotation is str:
        return NAMES
    if annotation is type(None):
        return st.none()
    if origin in (tuple, list):
        return st.lists(_plausible(args[0]) if args else SCALARS, max_size=4)
    if origin is dict:
        return st.dictionaries(NAMES, _plausible(args[1]) if len(args) == 2 else VALUES, max_size=3)
    if args:  # a union
        return st.one_of([_plausible(a) for a in args])
    return VALUES


def _node(key: str, sub: Any) -> st.SearchStrategy[Any]:
    if isinstance(sub, dict):
        real = _section(sub)
        if key == "suite":  # a named suite is a string
            real = real | st.sampled_from(["core", "full"]) | NAMES
    elif isinstance(sub, list):
        real = st.lists(_section(sub[0]), max_size=3)
    else:
        real = _plausible(sub.annotation)
    if key in BY_KEY:
        real = BY_KEY[key] | real
    return _now_and_then(real, VALUES, 6)  # mostly the real shape, else anything


def _section(shape: Shape) -> st.SearchStrategy[dict[Any, Any]]:
    known = st.fixed_dictionaries({}, optional={key: _node(key, sub) for key, sub in shape.items()})
    unknown = _now_and_then(st.just({}), st.dictionaries(KEYS, VALUES, min_size=1, max_size=2), 8)
    return st.builds(lambda k, u: {**u, **k}, known, unknown)


JOB_DOCS = _now_and_then(_section(JOB_SHAPE), VALUES, 10)

GARBAGE = (
    "{",
    "[",
    ": :",
    "- x",
    "\n  bad: 1\n bad: 2\n",
    "\x00",
    "\x1b[31m",
    "%YAML 9.9\n---\n",
    "---\n---\n",
    "...\n",
    "!!python/object/apply:os.system ['true']\n",
    "? [a, b]\n: 1\n",
    "<<: {seed: 3}\n",
    "<<: [1, 2]\n",
    "when: !!binary aGVsbG8=\n",
    "when: 2020-01-01\n",
    "when: !!set {a, b}\n",
    "when: !custom x\n",
    "x-a: &a {seed: 1}\nx-b: *a\n",
    "name: &n train\n",
    "seed: *undefined\n",
    "@",
    "`",
    "'unterminated\n",
    '"\\xZZ"\n',
    "when: 2020-13-45\n",
    "when: !!timestamp 2020-99-99\n",
    "seed: !!int x\n",
    "seed: !!float x\n",
    "seed: !!bool maybe\n",
    "seed: !!bool\n",
    "seed: !!float []\n",
    "seed: !!str {a: 1}\n",
    'seed: !!binary "%%%"\n',
    "seed: !!merge x\n",
    "seed: !!null x\n",
    "seed: !!omap [a]\n",
    "seed: !!pairs [a]\n",
    "seed: 0x1G\n",
    "seed: " + "9" * 5000 + "\n",
    "seed: " + "9" * 5000 + ".0\n",
)


@st.composite
def job_bytes(draw: st.DrawFn) -> bytes:
    """A job document as YAML, often damaged: truncated, tabbed, duplicated, garbage added,
    several documents, a byte-order mark, or not text at all."""
    doc = draw(JOB_DOCS)
    text = yaml.safe_dump(
        doc,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([False, True, None])),
        sort_keys=False,
    )
    how = draw(
        st.sampled_from(
            ["plain"] * 4
            + ["truncate", "tabs", "duplicate", "garbage", "documents", "bom", "text", "bytes"]
        )
    )
    if how == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif how == "tabs":
        text = text.replace("  ", "\t")
    elif how == "duplicate":
        lines = text.splitlines(keepends=True)
        at = draw(st.integers(0, len(lines)))
        text = "".join([*lines[:at], *lines[: draw(st.integers(1, 3))], *lines[at:]])
    elif how == "garbage":
        junk = draw(st.sampled_from(GARBAGE))
        text = junk + text if draw(st.booleans()) else text + "\n" + junk
    elif how == "documents":
        text = f"{text}---\n{text}"
    elif how == "bom":
        text = "\ufeff" + text
    elif how == "text":
        text = draw(st.text(max_size=200))
    elif how == "bytes":
        return draw(st.binary(max_size=200))
    return text.encode()


def _flow(value: Any) -> str:
    """A value as ``--set`` takes it: one line of YAML."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


OVERRIDES = st.lists(
    st.one_of(
        st.builds(
            "{}={}".format,
            st.sampled_from(DOTTED_KEYS) | st.text(max_size=20) | st.sampled_from(NASTY),
            st.builds(_flow, VALUES) | st.text(max_size=30) | st.sampled_from(GARBAGE),
        ),
        st.text(max_size=30),
    ),
    max_size=4,
)


def _refused_by_name(error: QuantrainError, *names: str) -> None:
    """A readable refusal: a message, naming the file or option at fault, no traceback."""
    message = str(error)
    assert message.strip(), f"{type(error).__name__} with an empty message"
    assert any(name in message for name in names), f"{names} not named in: {message}"
    assert "Traceback" not in message


def _loaded_job(job: JobConfig) -> None:
    assert isinstance(job, JobConfig)
    # The manifest records the job: it must be JSON any language parses (no NaN, no Infinity).
    json.dumps(job.model_dump(mode="json"), allow_nan=False)
    assert len(job.config_hash()) == 64


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-jobs")


@FUZZ
@given(data=job_bytes(), overrides=st.just([]) | OVERRIDES)
@example(data=b"features: {base: standard, bogus: 1}\n", overrides=[])
@example(data=b"tune: {space: {max_depth: {int: [1, 1e999]}}}\n", overrides=[])
@example(data=b"tune: {space: {max_depth: {int: [0, %d]}}}\n" % 10**400, overrides=[])
@example(data=b"seed: 1\n", overrides=["features.bogus=1"])
@example(data=b"when: 2020-13-45\n", overrides=[])
@example(data=b"\x1f", overrides=[])
@example(data=b"seed: 1\n", overrides=["data=0: !!bool"])
@example(data=b"seed: 1\n", overrides=["seed=" + "9" * 5000])
@example(data=b"labels: {r_min: .nan, k_tp: .inf}\n", overrides=[])
@example(data=b"suite: {heads: [{name: d, target: direction, params: {x: .nan}}]}\n", overrides=[])
@example(data=b"features: {add: [{kind: rsi, params: {period: %d}}]}\n" % 2**64, overrides=[])
@example(data=b"features: {add: [{kind: nosuch}]}\n", overrides=[])
@example(data=b"a: " + b"[" * 40 + b"]" * 40, overrides=[])
@example(data=b"x" * (1 << 20) + b"\n", overrides=[])
def test_a_job_file_loads_or_is_refused_by_name(
    job_dir: Path, data: bytes, overrides: list[str]
) -> None:
    path = job_dir / "job.yaml"
    path.write_bytes(data)
    try:
        job = load_job(path, overrides)
    except QuantrainError as error:
        _refused_by_name(error, str(path), "--set")
    else:
        _loaded_job(job)


FOUND_IN_JOBS: dict[str, tuple[bytes, str]] = {
    # KeyError 'FeatureSelection' in config._allowed_keys (the union member in the error's loc)
    "an unknown key in a feature selection": (
        b"features: {base: standard, bogus: 1}\n",
        "features.bogus: unknown key (allowed here: base, drop, add, name)",
    ),
    # OverflowError in tuning.space._number (math.isfinite of a 401-digit integer)
    "a tuning bound of 401 digits": (
        b"tune: {space: {max_depth: {int: [0, %d]}}}\n" % 10**400,
        "tune.space.max_depth.int.1: an integer of 401 digits is out of range",
    ),
    # ValueError from PyYAML's timestamp constructor (datetime.date(2020, 13, 45))
    "a date that is no date": (b"when: 2020-13-45\n", "a value YAML cannot read"),
    # ValueError "Exceeds the limit (4300 digits)" from PyYAML's int constructor
    "an integer of 5,000 digits": (b"seed: " + b"9" * 5000 + b"\n", "a value YAML cannot read"),
    # KeyError '' from PyYAML's bool constructor
    "an empty !!bool": (b"seed: !!bool\n", "a value YAML cannot read"),
    # yaml ReaderError raised by the loader's constructor, outside load_yaml's try
    "a control character": (b"\x1f", "not valid YAML"),
    # ConfigError from FeatureDef without the file's name
    "an unknown indicator": (b"features: {add: [{kind: nosuch}]}\n", "'nosuch'"),
    # accepted, then NaN in the manifest's job config (not JSON other languages parse)
    "a NaN setting": (b"labels: {r_min: .nan}\n", "labels.r_min: nan is not a finite number"),
    "an infinite head param": (
        b"suite: {heads: [{name: d, target: direction, params: {eta: .inf}}]}\n",
        "suite.heads.0.params.eta: inf is not a finite number",
    ),
}


@pytest.mark.parametrize("case", sorted(FOUND_IN_JOBS))
def test_what_the_fuzzer_found_in_job_files_is_refused(job_dir: Path, case: str) -> None:
    text, words = FOUND_IN_JOBS[case]
    path = job_dir / "found.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as refused:
        load_job(path)
    message = str(refused.value)
    assert message.startswith(str(path)) and words in message, message


@FUZZ
@given(
    data=st.sampled_from(["data", *NASTY]) | st.text(max_size=20),
    symbols=st.none() | st.text(max_size=30) | st.sampled_from(NASTY),
    store=st.none() | NAMES,
    suite=st.none() | NAMES,
    family=st.none() | BY_KEY["family"] | st.text(max_size=10),
    params_from=st.none() | NAMES,
    warm_start=st.none() | NAMES,
    overrides=OVERRIDES,
)
def test_train_options_load_or_are_refused(
    data: str,
    symbols: str | None,
    store: str | None,
    suite: str | None,
    family: str | None,
    params_from: str | None,
    warm_start: str | None,
    overrides: list[str],
) -> None:
    """What ``quantrain train --data ... --symbols ... --set ...`` builds its job from."""
    try:
        job = job_from_options(
            data,
            symbols=symbols,
            store=store,
            suite=suite,
            family=family,
            params_from=params_from,
            warm_start=warm_start,
            overrides=overrides,
        )
    except QuantrainError as error:
        _refused_by_name(error, "<options>", "--set")
    else:
        _loaded_job(job)


# -- manifests ----------------------------------------------------------------------------------

FORMAT_VERSIONS = (0, 2, -1, "1", 1.0, True, None, 10**30, [1], {"v": 1})
FILE_PATHS = st.one_of(
    NAMES,
    st.sampled_from(
        [
            "heads/../../x",
            "heads/direction/../../../etc/passwd",
            "/etc/passwd",
            "heads//x",
            "heads/direction/",
            "/".join(["a"] * 9),
            "manifest.json",
            "features.json/x",
        ]
    ),
)
SHA = "0" * 64
FILE_ENTRIES = st.one_of(
    VALUES,
    st.sampled_from(
        [
            {"size": -1, "sha256": SHA},
            {"size": 1.5, "sha256": SHA},
            {"size": True, "sha256": SHA},
            {"size": 10**30, "sha256": SHA},
            {"size": 0, "sha256": SHA.upper()},
            {"size": 0, "sha256": "abc"},
            {"size": 0},
            [0, SHA],
            SHA,
            -5,
        ]
    ),
)


CLASS_LISTS = st.lists(st.sampled_from(["SELL", "HOLD", "BUY", "TP0", "LOW"]) | NAMES, max_size=5)
#: Values of the right type for a head's fields, so the edit gets past the type check to what
#: the Predictor does with them.
HEAD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "task": st.sampled_from(["classification", "regression"]),
    "classes": st.none() | CLASS_LISTS,
    "inputs": st.sampled_from(["features", "equity_state"]),
    "input_columns": st.none() | st.lists(NAMES, max_size=4),
    "onnx_input": st.sampled_from(["features", "input", "X"]) | NAMES,
    "onnx_outputs": st.lists(st.sampled_from(["label", "probabilities", "variable"]), max_size=3),
    # Not 2**31: lookback windows that long would try to allocate 656 GiB.
    "sequence_length": st.none() | st.integers(-2, 500) | st.sampled_from([2**62, 10**30]),
    "thresholds": st.none() | st.lists(st.floats(allow_nan=True), max_size=4),
    "family": st.sampled_from(["xgboost", "lightgbm", "mlp", "nosuch"]) | NAMES,
    "target": st.sampled_from(TARGETS) | NAMES,
}
NUMBERS = (
    st.integers(-5, 500)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(HUGE_INTS)
)
POLICY_NUMBERS = ("threshold", "k_tp", "k_sl", "horizon", "atr_period", "r_max", "leverage_cap")
POLICY_NUMBERS += ("fee_bps", "slippage_bps", "meta_threshold")
POLICY_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "direction_head": st.sampled_from(["direction", "position_size", "risk_multiplier"]) | NAMES,
    "meta_head": st.none() | st.sampled_from(["direction", "position_size"]) | NAMES,
    "size_head": st.none() | st.sampled_from(["direction", "position_size"]) | NAMES,
    "entry": st.sampled_from(["next_open", "close", "nosuch"]),
    **dict.fromkeys(POLICY_NUMBERS, NUMBERS),
}
TIMEFRAMES = (
    st.sampled_from(
        [
            "1m",
            "5m",
            "1h",
            "4h",
            "1d",
            "1w",
            "1M",
            "0m",
            "-5m",
            "5x",
            "",
            "m",
            "99999999999999999999h",
        ]
    )
    | NAMES
)


@dataclass
class Spot:
    """A place in the manifest: ``parent[key]``."""

    parent: Any
    key: Any


def _spot(draw: st.DrawFn, manifest: dict[str, Any], under: tuple[str, ...] = ()) -> Spot | None:
    """A random place, reached from the top (or from ``under``) by a few random steps."""
    node: Any = manifest
    for key in under:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    spot = None
    for _ in range(draw(st.integers(1, 4))):
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node, key=repr)))
        elif isinstance(node, list) and node:
            key = draw(st.integers(0, len(node) - 1))
        else:
            break
        spot, node = Spot(node, key), node[key]
    return spot


def _mutate(draw: st.DrawFn, m: Any) -> Any:
    """One random edit of the manifest (or of its replacement)."""
    if not isinstance(m, dict):
        return m
    op = draw(
        st.sampled_from(
            [
                "delete",
                "replace",
                "replace",
                "nest",
                "rename_head",
                "rename_file",
                "head_field",
                "head_plausible",
                "head_plausible",
                "head_files",
                "file_entry",
                "format_version",
                "names",
                "policy",
                "policy_plausible",
                "timeframe",
                "whole",
            ]
        )
    )
    heads, files = m.get("heads"), m.get("files")
    if op in ("delete", "replace", "nest") and (spot := _spot(draw, m)) is not None:
        if op == "delete":
            del spot.parent[spot.key]
        elif op == "replace":
            spot.parent[spot.key] = draw(VALUES | NAMES | st.just("x" * 100_000))
        else:
            old = spot.parent[spot.key]
            spot.parent[spot.key] = [old] if draw(st.booleans()) else {"value": old}
    elif op == "rename_head" and isinstance(heads, dict) and heads:
        old = draw(st.sampled_from(sorted(heads, key=repr)))
        new = draw(NAMES | st.sampled_from(sorted(heads, key=repr)))
        head = heads.pop(old)
        heads[new] = head
        if isinstance(head, dict) and draw(st.booleans()):
            head["name"] = new
    elif op == "rename_file" and isinstance(files, dict) and files:
        old = draw(st.sampled_from(sorted(files, key=repr)))
        files[draw(FILE_PATHS)] = files.pop(old)
    elif op == "head_field" and isinstance(heads, dict) and heads:
        spot = _spot(draw, m, ("heads", draw(st.sampled_from(sorted(heads, key=repr)))))
        if spot is not None:
            spot.parent[spot.key] = draw(VALUES | NAMES)
    elif op == "head_plausible" and isinstance(heads, dict) and heads:
        head = heads[draw(st.sampled_from(sorted(heads, key=repr)))]
        if isinstance(head, dict):
            key = draw(st.sampled_from(sorted(HEAD_FIELDS)))
            head[key] = draw(HEAD_FIELDS[key])
    elif op == "policy_plausible" and isinstance(m.get("policy"), dict):
        key = draw(st.sampled_from(sorted(POLICY_FIELDS)))
        m["policy"][key] = draw(POLICY_FIELDS[key])
    elif op == "timeframe":
        m["timeframe"] = draw(TIMEFRAMES)
    elif op == "head_files" and isinstance(heads, dict) and heads:
        head = heads[draw(st.sampled_from(sorted(heads, key=repr)))]
        if isinstance(head, dict):
            head["files"] = draw(st.lists(FILE_PATHS, max_size=3) | VALUES)
    elif op == "file_entry" and isinstance(files, dict) and files:
        files[draw(st.sampled_from(sorted(files, key=repr)))] = draw(FILE_ENTRIES)
    elif op == "format_version":
        m["format_version"] = draw(st.sampled_from(FORMAT_VERSIONS))
    elif op == "names":
        key = draw(st.sampled_from(["symbol", "suite", "version", "timeframe", "created_at"]))
        m[key] = draw(NAMES | st.just("x" * 100_000) | VALUES)
    elif op == "policy":
        spot = _spot(draw, m, ("policy",))
        if spot is not None:
            spot.parent[spot.key] = draw(VALUES | NAMES)
    elif op == "whole":
        return draw(VALUES)
    return m


def _changes(old: Any, new: Any, at: str = "") -> list[str]:
    """What differs between two JSON values, one line per change (for failure reports)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = [f"-{at}.{k}" for k in old if k not in new]
        out += [f"+{at}.{k} = {new[k]!r:.80}" for k in new if k not in old]
        for k in old.keys() & new.keys():
            out += _changes(old[k], new[k], f"{at}.{k}")
        return out
    same = old == new or (old != old and new != new)  # NaN == NaN here
    return [] if same else [f"~{at}: {old!r:.40} -> {new!r:.80}"]


class Damaged:
    """Manifest bytes that print as the edits made, not as 10 kB of JSON (a plain class:
    hypothesis prints a dataclass field by field)."""

    def __init__(self, data: bytes, damage: str, edits: list[str]) -> None:
        self.data, self.damage, self.edits = data, damage, edits

    def __repr__(self) -> str:
        return f"Damaged(damage={self.damage!r}, edits={self.edits!r})"


@st.composite
def damaged_manifests(draw: st.DrawFn, manifest: dict[str, Any]) -> Damaged:
    """The real manifest after one to four random edits, as JSON, now and then damaged."""
    m: Any = copy.deepcopy(manifest)
    for _ in range(draw(st.integers(1, 4))):
        m = _mutate(draw, m)
    edits = _changes(manifest, m) if isinstance(m, dict) else [f"replaced by {m!r:.80}"]
    text = json.dumps(m, indent=draw(st.sampled_from([None, 2])))
    damage = ["truncate", "deep", "bom", "bytes", "duplicate", "bigint"]
    how = draw(st.sampled_from(["plain"] * 6 + damage))
    if how == "truncate":
        cut = draw(st.integers(0, len(text)))
        text, how = text[:cut], f"truncated to {cut} characters"
    elif how == "deep":
        text = "[" * 100_000 + "]" * 100_000
    elif how == "bom":
        text = "\ufeff" + text
    elif how == "bytes":
        junk = draw(st.binary(max_size=100))
        return Damaged(junk + text.encode(), f"bytes {junk!r} first", edits)
    elif how == "duplicate":
        text = text.replace("{", '{"format_version": 1, ', 1)
    elif how == "bigint":  # more digits than Python reads (4,300)
        text = text.replace("{", '{"train_seconds": ' + "9" * 5000 + ", ", 1)
    return Damaged(text.encode(), how, edits)


class Workspace:
    """One copy of a real package, and a local store holding another, rewritten per example
    (a plain class, so a failing example prints its folder, not the whole manifest)."""

    def __init__(self, root: Path, stored: Path, manifest: dict[str, Any], bars: pd.DataFrame):
        self.package, self.store, self.stored = root / "package", root / "store", stored
        self.manifest, self.bars = manifest, bars

    def __repr__(self) -> str:
        return f"Workspace({self.package.parent})"


@pytest.fixture(scope="module")
def workspace(
    trained_store: Path, eth_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    source = package_path(trained_store, "ETH-BTC")
    root = tmp_path_factory.mktemp("fuzz-manifests")
    shutil.copytree(source, root / "package")
    stored = root / "store" / "ETH-BTC" / "core" / source.name
    shutil.copytree(source, stored)
    manifest = json.loads((source / "manifest.json").read_text())
    bars = eth_frame.tail(400).reset_index(drop=True)
    return Workspace(root, stored, manifest, bars)


def _loads_or_refuses(call: Callable[[], Any]) -> Any:
    """``call()``'s result, or None when it raised a ``QuantrainError`` with a message."""
    try:
        return call()
    except QuantrainError as error:
        refused = error
    assert str(refused).strip(), f"{type(refused).__name__} with an empty message"
    return None


def _check_readers(ws: Workspace, data: bytes) -> None:
    """The package readers a bot and ``quantrain predict`` use load it or refuse it cleanly."""
    (ws.package / "manifest.json").write_bytes(data)
    _loads_or_refuses(lambda: read_manifest(ws.package))
    _loads_or_refuses(lambda: load_manifest(ws.package))
    _loads_or_refuses(lambda: verify_package(ws.package))
    predictor = _loads_or_refuses(lambda: Predictor(ws.package))
    if predictor is not None:
        _loads_or_refuses(lambda: predictor.predict(ws.bars, last=50))


def _check_store(ws: Workspace, data: bytes) -> None:
    """``models verify`` and ``models list`` over a store holding it: exit 0 or 2, no traceback."""
    (ws.stored / "manifest.json").write_bytes(data)
    for command in (["models", "verify"], ["models", "list"]):
        result = CliRunner().invoke(main, [*command, "--store", str(ws.store)])
        crash = result.exception is not None and not isinstance(result.exception, SystemExit)
        assert not crash and result.exit_code in (0, 2), (
            f"{' '.join(command)} exited {result.exit_code}:\n{result.output}"
            + "".join(traceback.format_exception(*result.exc_info) if crash else [])
        )


def test_the_unedited_package_loads(workspace: Workspace) -> None:
    """The fuzzer's starting point is a package every reader accepts."""
    data = json.dumps(workspace.manifest).encode()
    _check_readers(workspace, data)
    _check_store(workspace, data)
    assert len(Predictor(workspace.package).predict(workspace.bars, last=5)) == 5


@FUZZ
@given(data=st.data())
def test_a_damaged_manifest_loads_or_is_refused(workspace: Workspace, data: st.DataObject) -> None:
    damaged = data.draw(damaged_manifests(workspace.manifest))
    _check_readers(workspace, damaged.data)
    _check_store(workspace, damaged.data)


# -- what the fuzzer found ----------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Edit:
    """An edit setting the manifest's dotted ``path`` to ``value``."""

    def edit(m: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = m
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


def _swap_heads(m: dict[str, Any]) -> None:
    m["heads"]["direction"], m["heads"]["position_size"] = (
        m["heads"]["position_size"],
        m["heads"]["direction"],
    )


def _manifest(ws: Workspace, edit: Edit) -> bytes:
    """The unedited manifest after ``edit``, as JSON."""
    m = copy.deepcopy(ws.manifest)
    edit(m)
    return json.dumps(m).encode()


def _text(ws: Workspace, prefix: bytes = b"", first_field: bytes = b"") -> bytes:
    """The unedited manifest as bytes, with junk before it or a raw field put first."""
    return prefix + json.dumps(ws.manifest).encode().replace(b"{", b"{" + first_field, 1)


FOUND_IN_READERS: dict[str, tuple[Callable[[Workspace], bytes], str]] = {
    # read_manifest: UnicodeDecodeError (layout.py)
    "not UTF-8": (lambda ws: _text(ws, prefix=b"\xc0"), "not JSON text"),
    # read_manifest: ValueError "Exceeds the limit (4300 digits)" (layout.py)
    "an integer of 5,000 digits": (
        lambda ws: _text(ws, first_field=b'"train_seconds": ' + b"9" * 5000 + b", "),
        "not JSON text",
    ),
    # Predictor.predict: StopIteration (predictor.py, the policy's direction head)
    "policy.direction_head names no head": (
        lambda ws: _manifest(ws, _set("policy.direction_head", "nosuch")),
        "policy.direction_head 'nosuch' is not a classification head",
    ),
    # Predictor.predict: TypeError unhashable type (predictor.py, outputs[policy.size_head])
    "policy.size_head is a list": (
        lambda ws: _manifest(ws, _set("policy.size_head", [{}, []])),
        "policy.size_head",
    ),
    # Predictor.predict: KeyError (predictor.py, outputs[policy.size_head])
    "policy.size_head names no head": (
        lambda ws: _manifest(ws, _set("policy.size_head", "ZZ")),
        "policy.size_head 'ZZ' is not a regression head",
    ),
    # Predictor.predict: AssertionError (predictor.py, assert head.classes is not None)
    "a classifier without classes": (
        lambda ws: _manifest(ws, _set("heads.direction.classes", None)),
        "lists its distinct classes",
    ),
    # Predictor.predict: IndexError results[1] (a regressor's graph run as a classifier)
    "heads filed under each other's names": (
        lambda ws: _manifest(ws, _swap_heads),
        "filed under another name",
    ),
    # Predictor(): OverflowError in policy.check_number (float(10**80))
    "a policy number no float holds": (
        lambda ws: _manifest(ws, _set("policy.slippage_bps", 10**400)),
        "policy.slippage_bps",
    ),
    # Predictor.predict: OverflowError in the ATR kernel (int64)
    "a policy period beyond int64": (
        lambda ws: _manifest(ws, _set("policy.atr_period", 2**63)),
        "policy.atr_period",
    ),
    # Predictor(): pandas OutOfBoundsTimedelta in parse_timeframe (data/validate.py)
    "a timeframe beyond pandas' range": (
        lambda ws: _manifest(ws, _set("timeframe", "99999999999999999999h")),
        "timeframe '99999999999999999999h' is not a bar size",
    ),
    # Predictor.risk_multiplier: AssertionError (found by reading, not by the fuzzer)
    "an equity-state head without input_columns": (
        lambda ws: _manifest(ws, _set("heads.position_size.inputs", "equity_state")),
        "input_columns",
    ),
}


@pytest.mark.parametrize("case", sorted(FOUND_IN_READERS))
def test_what_the_fuzzer_found_in_the_readers_is_refused(workspace: Workspace, case: str) -> None:
    build, words = FOUND_IN_READERS[case]
    data = build(workspace)
    (workspace.package / "manifest.json").write_bytes(data)
    with pytest.raises(PackageError) as refused:
        read_manifest(workspace.package)
    message = str(refused.value)
    assert str(workspace.package / "manifest.json") in message and words in message, message
    assert "fix:" in message
    with pytest.raises(PackageError):
        Predictor(workspace.package)


# store/base.py _manifest caught JSONDecodeError only (not UnicodeDecodeError)
def test_a_store_manifest_that_is_not_utf8_fails_verification(workspace: Workspace) -> None:
    _check_store(workspace, _text(workspace, prefix=b"\xc0"))


# store/base.py _manifest: ValueError "Exceeds the limit (4300 digits)"
def test_a_store_manifest_with_a_huge_integer_fails_verification(workspace: Workspace) -> None:
    _check_store(workspace, _text(workspace, first_field=b'"x": ' + b"9" * 5000 + b", "))


# ui.py versions_table: f"{val:.3f}" on a string (a dict, a list: TypeError); refused now by
# layout.check_manifest, which every store read goes through
def test_models_list_survives_a_metric_that_is_not_a_number(workspace: Workspace) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["summary_metrics"]["direction.accuracy"] = "high"

    _check_store(workspace, _manifest(workspace, edit))


# ui.py versions_table: rich NotRenderableError on a list created_at (the same)
def test_models_list_survives_a_created_at_that_is_not_text(workspace: Workspace) -> None:
    _check_store(workspace, _manifest(workspace, _set("created_at", ["2026"])))


GRAPH_MISMATCHES: dict[str, Edit] = {
    # onnxruntime ValueError "Required inputs (['features']) are missing from input feed"
    "onnx_input is not the graph's input": _set("heads.position_size.onnx_input", "X"),
    # onnxruntime InvalidArgument "Invalid rank for input: features Got: 3 Expected: 2"
    "sequence_length on a one-row head": _set("heads.direction.sequence_length", 54),
    # windows.py ValueError "array is too big" (2**31: MemoryError, 656 GiB asked for)
    "sequence_length of 2**62": _set("heads.direction.sequence_length", 2**62),
    # predictor.py IndexError "index 3 is out of bounds for axis 1 with size 3"
    "more classes than the graph": _set("heads.direction.classes", ["SELL", "HOLD", "BUY", "X"]),
    # predictor.py IndexError on np.asarray(head.classes)[labels]
    "fewer classes than the graph": _set("heads.direction.classes", ["SELL", "BUY"]),
}


# predictor.py did not check the manifest's head fields against the ONNX graph
@pytest.mark.parametrize("case", sorted(GRAPH_MISMATCHES))
def test_a_head_that_does_not_match_its_graph_is_refused(workspace: Workspace, case: str) -> None:
    (workspace.package / "manifest.json").write_bytes(_manifest(workspace, GRAPH_MISMATCHES[case]))
    with pytest.raises(PackageError, match="fix:"):
        Predictor(workspace.package).predict(workspace.bars, last=50)
