"""The typed manifest: the v1 fixture reads, a damaged one is refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantrain.errors import PackageError
from quantrain.package import parse_manifest

V1 = Path(__file__).parents[1] / "fixtures" / "package_v1" / "manifest.json"


def v1() -> dict[str, Any]:
    return json.loads(V1.read_text())


def test_the_v1_fixture_reads_typed() -> None:
    manifest = parse_manifest(v1(), "v1")
    assert manifest.symbol == "ETH-BTC" and manifest.format_version == 1
    direction = manifest.heads["direction"]
    assert direction.task == "classification" and direction.classes == ["SELL", "HOLD", "BUY"]
    assert direction.inputs == "features" and direction.sequence_length is None
    assert manifest.policy is None and manifest.holdout is None  # older than both
    assert set(manifest.feature_heads()) == set(manifest.heads) - {"risk_multiplier"}
    assert all(len(f.sha256) == 64 for f in manifest.files.values())


def test_a_missing_or_mistyped_field_is_named() -> None:
    raw = v1()
    del raw["heads"]["direction"]["onnx_input"]
    raw["summary_metrics"]["direction.accuracy"] = "high"
    with pytest.raises(PackageError) as refused:
        parse_manifest(raw, "pkg/manifest.json")
    message = str(refused.value)
    assert "pkg/manifest.json" in message
    assert "heads.direction.onnx_input: Field required" in message
    assert "summary_metrics.direction.accuracy" in message


def test_an_unknown_format_is_refused_and_new_optional_fields_are_kept() -> None:
    with pytest.raises(PackageError, match="format_version 2; this quantrain reads 1"):
        parse_manifest({**v1(), "format_version": 2}, "x")
    kept = parse_manifest({**v1(), "written_by": "a newer quantrain"}, "x")
    assert kept.model_extra == {"written_by": "a newer quantrain"}
