"""No credential reaches a log line, at any level, from our loggers or third-party ones (issue
24: ``-vv`` printed the exchange API key in ccxt's ``X-MBX-APIKEY`` request header).

The request lines are the libraries' own: ccxt's signer builds the signed Binance request and
its logger logs it as ccxt's ``fetch`` does; botocore signs and logs a real S3 request to the
loopback S3 server. No test reaches a real venue or account.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.redact import RedactingFilter, redact, redact_logging, secret_values
from quantrain.store import open_store
from tests.support.fake_venue import FakeVenue, to_rows
from tests.support.s3server import S3Server

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
PASSPHRASE = "correct-horse-battery"
CREDENTIAL_ENV = {
    "QUANTRAIN_BINANCE_API_KEY": API_KEY,
    "QUANTRAIN_BINANCE_SECRET": SECRET,
    "QUANTRAIN_BINANCE_PASSWORD": PASSPHRASE,
}
# ccxt's own request line (ccxt/base/exchange.py, Exchange.fetch).
CCXT_REQUEST = "%s %s, Request: %s %s"


def signed_request(exchange: Any) -> dict[str, Any]:
    """A private Binance request as ccxt signs it: key header, ``signature=`` parameter."""
    request: dict[str, Any] = exchange.sign("capital/config/getall", ["sapi"], "GET", {})
    assert request["headers"]["X-MBX-APIKEY"] == API_KEY and "signature=" in request["url"]
    return request


def log_signed_request(exchange: Any) -> None:
    request = signed_request(exchange)
    exchange.logger.debug(
        CCXT_REQUEST, request["method"], request["url"], request["headers"], request["body"]
    )


def signature_of(url: str) -> str:
    return url.rpartition("signature=")[2]


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIAL_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def root_output() -> Iterator[io.StringIO]:
    """The root logger at DEBUG with one more handler, filtered as ``quantrain -vv`` does;
    afterwards every redaction filter this put on the root's handlers is taken off again."""
    stream = io.StringIO()
    # Only quantrain's masking is under test: a library imported earlier in the session
    # (MLflow masks urllib3's query strings its own way) must not have done the work first.
    foreign = {
        name: logging.getLogger(name).filters for name in ("urllib3", "urllib3.connectionpool")
    }
    for name in foreign:
        logging.getLogger(name).filters = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        redact_logging()
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, filters in foreign.items():
            logging.getLogger(name).filters = filters
        _remove_filters()


def _remove_filters() -> None:
    for handler in logging.getLogger().handlers:
        for found in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(found)


def test_ccxt_debug_line_keeps_everything_but_the_key_and_signature(
    credentials: None, root_output: io.StringIO
) -> None:
    exchange = ccxt.binance({"apiKey": API_KEY, "secret": SECRET})
    request = signed_request(exchange)
    log_signed_request(exchange)
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s',
        "https",
        "api.binance.com",
        443,
        "GET",
        request["url"].removeprefix("https://api.binance.com"),
        "HTTP/1.1",
        200,
        1234,
    )
    text = root_output.getvalue()
    for secret in (API_KEY, SECRET, signature_of(request["url"])):
        assert secret not in text
    url = "https://api.binance.com/sapi/v1/capital/config/getall?"
    assert f"DEBUG ccxt.base.exchange: GET {url}" in text
    assert "recvWindow=10000&signature=***, Request: {'X-MBX-APIKEY': '***'} None" in text
    assert '"GET /sapi/v1/capital/config/getall?timestamp=' in text  # urllib3's line, masked
    assert text.count("signature=***") == 2


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR])
def test_every_level_and_the_traceback_are_masked(
    credentials: None, root_output: io.StringIO, level: int
) -> None:
    log = logging.getLogger("quantrain.data.exchange")
    log.log(level, "venue said: %s", {"apiKey": API_KEY, "secret": SECRET, "recvWindow": 5000})
    try:
        raise ccxt.AuthenticationError(f'binance {{"msg": "bad key {API_KEY}", "code": -2015}}')
    except ccxt.AuthenticationError:
        log.log(level, "download failed", exc_info=True)
    text = root_output.getvalue()
    assert API_KEY not in text and SECRET not in text
    assert "venue said: {'apiKey': '***', 'secret': '***', 'recvWindow': 5000}" in text
    assert "AuthenticationError: binance" in text and '"code": -2015' in text


@pytest.mark.s3
def test_s3_requests_logged_by_botocore_are_masked(
    s3_uri: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, root_output: io.StringIO
) -> None:
    token = "FwoGZXIvYXdzEJr//////////wEaDOqy5Xh8zQ=="
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    open_store(s3_uri).versions()  # LIST requests, signed with SigV4 and the session token
    text = root_output.getvalue()
    assert "botocore" in text and "Sending http request" in text  # the libraries did log
    # The access key ID names the account (here it equals the bucket's name, which must stay
    # readable); it appears only inside the masked Authorization header.
    for secret in (token, os.environ["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in text
    assert f"Credential={os.environ['AWS_ACCESS_KEY_ID']}" not in text
    assert "Signature=" not in text.replace("Signature=***", "")
    assert "'Authorization': b'***'" in text and "'X-Amz-Security-Token': b'***'" in text


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.SflKxw", "Authorization: ***"),
        ("GET /v5/order?api_key=abc123&sign=deadbeef&limit=5", "api_key=***&sign=***&limit=5"),
        (
            "headers={'OK-ACCESS-PASSPHRASE': 'pp', 'OK-ACCESS-SIGN': 'ss'}",
            "'OK-ACCESS-SIGN': '***'",
        ),
        ('{"apiKey":"k","signature":"s","symbol":"BTCUSDT"}', '"symbol":"BTCUSDT"'),
        ("endpoint https://admin:hunter22@minio:9000/models", "https://admin:***@minio:9000"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key = ***"),
        ("X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=abc", "X-Amz-Signature=***"),
    ],
)
def test_credential_shaped_values_are_masked(line: str, shown: str) -> None:
    masked = redact(line, [])
    assert shown in masked
    for secret in ("eyJzdWIi", "abc123", "deadbeef", "'pp'", '"k"', "hunter22", "wJalrX", "AKIA"):
        assert secret not in masked


def test_only_credential_variables_are_masked_and_short_values_never() -> None:
    env = {
        "QUANTRAIN_OKX_PASSWORD": "long-enough",
        "AWS_SESSION_TOKEN": "tok-123456",
        "QUANTRAIN_OKX_SECRET": "abc",  # too short: would hide ordinary words
        "RAY_AUTH_MODE": "disabled",
        "TOKENIZERS_PARALLELISM": "false",
        "HOME": "/home/someone",
    }
    assert secret_values(env) == ["long-enough", "tok-123456"]


def test_the_cli_installs_the_filter(
    credentials: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    eth_frame: Any,
) -> None:
    """``quantrain -vv data download`` against the fake venue (it replays recorded Binance
    candles); each page is logged first as ccxt logs the signed request it would send."""

    class SignedVenue(FakeVenue):
        def __init__(self, rows: list[list[float]]) -> None:
            super().__init__(rows)
            self.signer = ccxt.binance({"apiKey": API_KEY, "secret": SECRET})

        def fetch_ohlcv(self, *args: Any, **kwargs: Any) -> list[list[float]]:
            log_signed_request(self.signer)
            return super().fetch_ohlcv(*args, **kwargs)

    monkeypatch.setattr(
        "quantrain.data.exchange.open_exchange", lambda name: SignedVenue(to_rows(eth_frame))
    )
    caplog.set_level(logging.DEBUG)
    download = ["data", "download", "--exchange", "binance", "--symbol", "ETH/BTC"]
    try:
        result = CliRunner().invoke(
            main, ["-vv", *download, "--timeframe", "5m", "--dataset", str(tmp_path)]
        )
    finally:
        text = caplog.text
        _remove_filters()
    assert result.exit_code == 0, result.output
    assert "Request: {'X-MBX-APIKEY': '***'}" in text
    assert API_KEY not in text + result.output and "signature=***" in text


SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import ccxt
import quantrain.data.exchange as exchange
from quantrain.cli import main
from quantrain.data import read_ohlcv
from quantrain.jobs import sample_data_dir
from tests.support.fake_venue import FakeVenue, to_rows

signer = ccxt.binance({{"apiKey": {key!r}, "secret": {secret!r}}})

class SignedVenue(FakeVenue):
    def fetch_ohlcv(self, *args, **kwargs):
        request = signer.sign("capital/config/getall", ["sapi"], "GET", {{}})
        signer.logger.debug({line!r}, "GET", request["url"], request["headers"], None)
        return super().fetch_ohlcv(*args, **kwargs)

rows = to_rows(read_ohlcv(sample_data_dir() / "ETH-BTC_5m.parquet").frame)
exchange.open_exchange = lambda name: SignedVenue(rows)
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_quantrain_vv_in_its_own_process_prints_no_key(tmp_path: Path) -> None:
    """The reported case end to end: a fresh process, rich's handler, stderr as a user sees it."""
    script = tmp_path / "download.py"
    script.write_text(SCRIPT.format(root=str(ROOT), key=API_KEY, secret=SECRET, line=CCXT_REQUEST))
    command = [sys.executable, str(script), "-vv", "data", "download", "--exchange", "binance"]
    command += ["--symbol", "ETH/BTC", "--timeframe", "5m", "--dataset", str(tmp_path / "data")]
    env = {**os.environ, **CREDENTIAL_ENV, "COLUMNS": "400"}  # wide: no line is wrapped
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "X-MBX-APIKEY" in shown and "signature=***" in shown  # ccxt's lines are there
    assert API_KEY not in shown and SECRET not in shown
