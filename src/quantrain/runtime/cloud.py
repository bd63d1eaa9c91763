"""S3 clients for everything quantrain reads or writes in object storage (data and models).

Endpoint, credentials and region come from the standard AWS chain: ``AWS_ENDPOINT_URL`` (R2,
MinIO), ``AWS_PROFILE``, environment variables, instance and pod roles. boto3 is imported only
when a client is made, so code that merely asks ``is_s3`` (a bot's Predictor) never loads it.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from quantrain.errors import QuantrainError, StoreError

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client

ADDRESSING_STYLES = ("auto", "path", "virtual")


def client_config(addressing_style: str | None = None) -> Config:
    """The botocore settings every quantrain S3 client uses.

    ``when_required`` checksums: boto3 >= 1.36 otherwise streams uploads with an aws-chunked
    CRC trailer that Cloudflare R2 and older MinIO reject. We send our own ``ChecksumSHA256``
    header instead, which every S3-compatible server accepts.
    """
    from botocore.config import Config

    return Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=32,
        s3=cast(Any, {"addressing_style": addressing_style}) if addressing_style else None,
    )


_SESSION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _session(aws_environment: tuple[tuple[str, str], ...]) -> boto3.session.Session:
    """One boto3 session per AWS environment: it caches the service models, so clients after
    the first take milliseconds instead of a quarter second."""
    try:
        import boto3
    except ImportError:
        raise StoreError(
            "s3:// needs boto3, which this install lacks; fix: pip install 'quantrain[s3]'"
        ) from None
    return boto3.session.Session()


def new_client(addressing_style: str | None = None) -> S3Client:
    """An S3 client from the standard AWS chain, with ``client_config``."""
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    with _SESSION_LOCK:  # sessions are not thread-safe; the clients they make are
        return _session(environment).client("s3", config=client_config(addressing_style))


def is_s3(uri: object) -> bool:
    return isinstance(uri, str) and uri.startswith("s3://")


def parse_s3_uri(
    uri: str, *, error: type[QuantrainError] = StoreError
) -> tuple[str, str, str | None]:
    """``s3://bucket/prefix?addressing=path`` → (bucket, "prefix/", addressing style)."""
    parts = urlsplit(uri)
    bucket = parts.netloc
    if parts.scheme != "s3" or not bucket:
        raise error(
            f"store URI {uri!r}: expected s3://BUCKET[/PREFIX]; fix: name the bucket, e.g. "
            "s3://my-models/quantrain"
        )
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"addressing"})
    if unknown:
        raise error(f"store URI {uri!r}: unknown option {unknown[0]!r}; known: addressing")
    style = query.get("addressing", [None])[0]
    if style is not None and style not in ADDRESSING_STYLES:
        raise error(
            f"store URI {uri!r}: addressing={style!r}; use one of {', '.join(ADDRESSING_STYLES)}"
        )
    prefix = parts.path.strip("/")
    return bucket, f"{prefix}/" if prefix else "", style


#: Codes S3-compatible servers use for "no such object".
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def s3_errors(
    error: type[QuantrainError],
    where: str,
    action: str,
    *,
    client: S3Client,
    bucket: str,
    missing: str | None = None,
) -> Iterator[None]:
    """Turn botocore failures into ``error("<where>: cannot <action>: ... fix: ...")``.

    ``missing`` is the message for a missing object (else it is reported like any other code).
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    endpoint = client.meta.endpoint_url
    try:
        yield
    except NoCredentialsError:
        raise error(
            f"{where}: no AWS credentials found while trying to {action}\n"
            "  fix: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
            "or run with an instance role"
        ) from None
    except ClientError as failure:
        code = error_code(failure)
        if missing is not None and code in MISSING_CODES:
            raise error(f"{where}: {missing}") from None
        message = failure.response.get("Error", {}).get("Message", str(failure))
        fix = {
            "NoSuchBucket": f"bucket {bucket!r} does not exist at {endpoint}\n"
            "  fix: create it or correct the URI (for R2/MinIO set AWS_ENDPOINT_URL)",
            "AccessDenied": "access denied\n  fix: check the credentials' permissions on "
            f"s3://{bucket}",
            "InvalidAccessKeyId": f"the access key is not known to {endpoint}\n"
            "  fix: check AWS_ACCESS_KEY_ID / AWS_PROFILE",
            "SignatureDoesNotMatch": "the secret key does not match the access key\n"
            "  fix: check AWS_SECRET_ACCESS_KEY",
        }.get(code, f"{code}: {message}")
        raise error(f"{where}: cannot {action}: {fix}") from None
    except BotoCoreError as failure:
        raise error(
            f"{where}: cannot {action} at {endpoint}: {failure}\n"
            "  fix: check the network, AWS_ENDPOINT_URL (R2/MinIO) and, for a private CA, "
            "AWS_CA_BUNDLE"
        ) from None
