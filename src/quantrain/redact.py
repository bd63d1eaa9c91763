"""Credentials never reach a log line: a ``logging.Filter`` that masks them in every record.

The CLI puts it on the root logger's handlers at every verbosity, so the records of third-party
loggers pass through it too: ccxt's request dumps at ``-vv`` (``X-MBX-APIKEY`` headers,
``signature=`` query parameters), urllib3's request lines, botocore's signed requests. Masked:

- the values of headers, query or form parameters, mapping keys and ``name=value`` pairs whose
  names look like credentials (api key, secret, signature, token, password, passphrase,
  authorization, credential, cookie, access key …);
- the password of a ``scheme://user:password@host`` URL;
- wherever it appears, the value of every environment variable named like a credential
  (``QUANTRAIN_<EXCHANGE>_API_KEY`` / ``_SECRET`` / ``_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_SESSION_TOKEN`` …), read when the record is logged.
"""

from __future__ import annotations

import logging
import os
import re
import traceback

MASK = "***"

#: A header, parameter or key with this in its name holds a credential.
SECRET_NAME = re.compile(
    r"api[-_]?key|secret|signature|token|passw(?:or)?d|passphrase|authori[sz]ation|credential"
    r"|cookie|access[-_]?key|private[-_]?key|(?:^|[-_])sign(?:$|[-_])",
    re.IGNORECASE,
)
#: An environment variable named so holds a credential (anchored at the end: TOKENIZERS_X and
#: RAY_AUTH_MODE are not secrets, and masking their values would mask common words). An
#: access key *ID* names an account, like a bucket does, and often equals one in test setups:
#: it is left alone (the secret key and any signed header are masked).
SECRET_VARIABLE = re.compile(
    r"(?:^|_)(?:API_?KEY|API_?SECRET|SECRET|SECRET_?KEY|SECRET_ACCESS_KEY"
    r"|PASSWORD|PASSWD|PASSPHRASE|TOKEN|PRIVATE_KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)
#: Shorter environment values are not masked: they would hide ordinary words and numbers.
MIN_SECRET_CHARS = 4

# 'name': 'value' / "name": b"value" (dict reprs, JSON bodies, botocore's header dicts).
_QUOTED = re.compile(
    r"""(?P<head>(?P<q>['"])(?P<name>[\w.-]+)(?P=q)\s*:\s*b?(?P<vq>['"]))"""
    r"""(?P<value>(?:\\.|(?!(?P=vq)).)*)(?P=vq)"""
)
# name=value, name: value, name='value' (query strings, header lines, Authorization params).
_ASSIGNED = re.compile(
    r"""(?<![\w.-])(?P<name>[\w.-]+)(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>'[^']*'|"[^"]*"|(?:(?:Bearer|Basic|Digest|Token|AWS4-HMAC-SHA256)\s+)?"""
    r"""[^\s&?,;'"<>(){}\[\]]+)"""
)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(?=@)", re.I)


def _quoted(match: re.Match[str]) -> str:
    if not SECRET_NAME.search(match["name"]):
        return match[0]
    return f"{match['head']}{MASK}{match['vq']}"


def _assigned(match: re.Match[str]) -> str:
    if not SECRET_NAME.search(match["name"]):
        return match[0]
    return f"{match['name']}{match['sep']}{MASK}"


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of the credential variables in ``environ`` (default: ``os.environ``), longest
    first so a value containing another is masked whole."""
    env = os.environ if environ is None else environ
    values = {
        value
        for name, value in env.items()
        if SECRET_VARIABLE.search(name) and len(value) >= MIN_SECRET_CHARS
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every credential it holds replaced by ``***``."""
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, MASK)
    text = _QUOTED.sub(_quoted, text)
    text = _ASSIGNED.sub(_assigned, text)
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


class RedactingFilter(logging.Filter):
    """Formats each record's message once, masks credentials in it, its traceback and stack,
    and hands the masked text on (args cleared), so no handler sees the raw values."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what it would have printed, masked
            message = f"{record.msg!s} {record.args!r}"
        message = redact(message, secrets)
        if record.exc_info and record.exc_info[0] is not None:
            shown = "".join(traceback.format_exception(*record.exc_info))
            masked = redact(shown, secrets)
            if masked != shown:  # the traceback held a credential: log it as masked text
                message = f"{message}\n{masked.rstrip()}"
                record.exc_info = None
                record.exc_text = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        record.msg = message
        record.args = None
        return True


def redact_logging(logger: logging.Logger | None = None) -> None:
    """Put a ``RedactingFilter`` on every handler of ``logger`` (the root by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def redact_value(value: object, secrets: list[str] | None = None) -> object:
    """A JSON-like value (a job config) with credentials masked before it is stored: the
    value of every key named like a credential, and credentials inside any text."""
    found = secret_values() if secrets is None else secrets
    if isinstance(value, dict):
        return {
            key: MASK
            if isinstance(key, str) and SECRET_NAME.search(key) and item not in (None, "")
            else redact_value(item, found)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item, found) for item in value]
    if isinstance(value, str):
        return redact(value, found)
    return value
