"""Trade journals in S3: read an object like a local file, against a real (moto) S3 server."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantrain.data.journal import read_journal
from quantrain.data.journal_sample import SAMPLE_FILE, sample_journal_path
from quantrain.data.remote import TEMP_PREFIX
from quantrain.errors import DataError
from tests.conftest import put_test_object

pytestmark = pytest.mark.s3

BUCKET = "quantrain-test"
JOURNAL_URI = f"s3://{BUCKET}/journals/{SAMPLE_FILE}"


def test_a_journal_in_s3_reads_like_the_local_file(s3_uri: str, own_tmp: Path) -> None:
    put_test_object(f"journals/{SAMPLE_FILE}", sample_journal_path().read_bytes())
    remote = read_journal(JOURNAL_URI)
    local = read_journal(sample_journal_path())
    pd.testing.assert_frame_equal(remote.frame, local.frame)
    assert remote.fields == local.fields
    assert (remote.records, remote.dropped) == (local.records, local.dropped)
    assert remote.source == JOURNAL_URI
    assert not [p for p in own_tmp.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_a_json_journal_in_s3_and_errors_name_the_uri(s3_uri: str, own_tmp: Path) -> None:
    put_test_object(
        "journals/bad.json", b'[{"id": "T0", "opened_at": "2018-01-12T03:05:00Z"},\n oops]'
    )
    with pytest.raises(DataError, match=r"^s3://quantrain-test/journals/bad.json: line 2: not "):
        read_journal(f"s3://{BUCKET}/journals/bad.json")
    assert not [p for p in own_tmp.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_a_missing_journal_object_names_the_uri(s3_uri: str) -> None:
    uri = f"s3://{BUCKET}/journals/nothing.jsonl"
    with pytest.raises(DataError, match=r"^s3://quantrain-test/journals/nothing.jsonl: ") as info:
        read_journal(uri)
    assert "not found" in str(info.value)
    assert "\n  fix: " in str(info.value)


def test_an_unsupported_journal_object_is_refused_before_download(s3_uri: str) -> None:
    with pytest.raises(DataError, match=r"journal.csv: unsupported journal file type"):
        read_journal(f"s3://{BUCKET}/journals/journal.csv")
