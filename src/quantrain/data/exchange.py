"""Download OHLCV candles from an exchange through ccxt into a local dataset directory.

One file per symbol and timeframe, ``<dataset>/<SYMBOL-KEY>_<timeframe>.parquet`` (e.g.
``BTC-USDT_1h.parquet``), in the OHLCV contract, so ``read_ohlcv`` and ``discover`` read it like
any other data file.

Downloads are incremental and resumable: an existing file is read and the download continues
after its last bar, so a rerun of the same command fetches only what is new, and a download that
was interrupted (network failure, Ctrl-C) continues where it stopped. Progress is written
atomically every ``CHECKPOINT_PAGES`` pages and whenever the download stops, so the file is
always valid. Gaps the venue has are counted and reported, never filled.

ccxt is an optional dependency (``pip install 'quantrain[exchange]'``), imported only here and
only when called, so the rest of quantrain works without it.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from quantrain.data.discover import symbol_key
from quantrain.data.readers import read_raw
from quantrain.data.validate import (
    format_timeframe,
    parse_timeframe,
    plural,
    span_text,
    validate_ohlcv,
)
from quantrain.errors import ConfigError, DataError, QuantrainError, ServiceUnavailableError
from quantrain.fsmodes import as_umask_allows

logger = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
CHECKPOINT_PAGES = 10  # write progress this often, so a hard kill loses at most this many pages
INSTALL_HINT = "pip install 'quantrain[exchange]'"
_CREDENTIALS = (("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password"))
_SECRET_ATTRIBUTES = ("apiKey", "secret", "password", "uid", "privateKey", "token")
_MS = 10**6  # nanoseconds per millisecond
#: Seconds one page may spend failing and backing off before the download gives up: offline,
#: retrying for minutes only hides the problem.
RETRY_BUDGET_S = 20.0
_LISTED = 8


@dataclass(frozen=True)
class DownloadReport:
    """What one download did, so a CLI can print it and a caller can decide what to train on."""

    exchange: str
    symbol: str  # symbol_key form, e.g. BTC-USDT
    timeframe: str
    path: Path
    new_rows: int
    total_rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    gaps: int
    missing_bars: int
    pages: int
    retries: int
    resumed_from: pd.Timestamp | None  # last bar already on disk, None for a fresh download

    def summary(self) -> str:
        """One line for a CLI table."""
        span = span_text(self.first, self.last)
        gaps = "no gaps"
        if self.gaps:
            gaps = f"{plural(self.gaps, 'gap')} ({plural(self.missing_bars, 'bar')} missing)"
        how = (
            "fresh" if self.resumed_from is None else f"resumed after {_when_ts(self.resumed_from)}"
        )
        return (
            f"{self.exchange} {self.symbol} {self.timeframe}: +{self.new_rows} rows "
            f"({self.total_rows} in {self.path.name}), {span}, {gaps}, {how}, "
            f"{plural(self.pages, 'page')}, {plural(self.retries, 'retry', 'retries')}"
        )


# --------------------------------------------------------------------------- ccxt


def _import_ccxt() -> ModuleType:
    """ccxt, imported on first use so quantrain works without the optional extra."""
    try:
        return importlib.import_module("ccxt")
    except ImportError as exc:
        raise ConfigError(
            f"downloading from an exchange needs ccxt, which is not installed\n"
            f"  fix: {INSTALL_HINT}"
        ) from exc


def _env_name(exchange_id: str, suffix: str) -> str:
    return f"QUANTRAIN_{re.sub(r'[^A-Z0-9]', '_', exchange_id.upper())}_{suffix}"


def open_exchange(name: str) -> Any:
    """A ccxt exchange instance with rate limiting on; keys from env if set.

    Keys are read from ``QUANTRAIN_<ID>_API_KEY``, ``QUANTRAIN_<ID>_SECRET`` and
    ``QUANTRAIN_<ID>_PASSWORD`` (``<ID>`` the exchange id upper-cased) and only when set: public
    candle endpoints need none. Their values are never logged. Construction does no network I/O.
    """
    ccxt = _import_ccxt()
    exchange_id = str(name).strip().lower()
    known: list[str] = list(ccxt.exchanges)
    if exchange_id not in known:
        close = difflib.get_close_matches(exchange_id, known, n=5, cutoff=0.6)
        hint = f"\n  did you mean: {', '.join(close)}" if close else ""
        raise ConfigError(
            f"unknown exchange {name!r}{hint}\n"
            f"  fix: use a ccxt exchange id, e.g. binance, bitget, kraken, okx "
            f"(ccxt {getattr(ccxt, '__version__', '?')} knows {len(known)})"
        )
    config: dict[str, Any] = {"enableRateLimit": True}
    used: list[str] = []
    for suffix, option in _CREDENTIALS:
        variable = _env_name(exchange_id, suffix)
        value = os.environ.get(variable)
        if value:
            config[option] = value
            used.append(variable)
    if used:
        logger.info("%s: credentials from %s", exchange_id, ", ".join(used))
    return getattr(ccxt, exchange_id)(config)


# --------------------------------------------------------------------------- helpers


def _to_ms(value: pd.Timestamp | str, label: str) -> int:
    """Epoch milliseconds from a timestamp or text; naive times are UTC."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"{label} {value!r} is not a date or time\n"
            "  fix: use ISO 8601, e.g. 2024-01-01 or 2024-01-01T12:00Z"
        ) from exc
    if pd.isna(stamp):
        raise DataError(f"{label} is empty (NaT)\n  fix: pass a date, or leave it out")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // _MS)


def _when(ms: int) -> str:
    return f"{pd.Timestamp(ms, unit='ms', tz='UTC'):%Y-%m-%d %H:%M} UTC"


def _when_ts(stamp: pd.Timestamp | None) -> str:
    return "-" if stamp is None else f"{stamp:%Y-%m-%d %H:%M} UTC"


def _secrets(exchange: Any) -> list[str]:
    values = (getattr(exchange, attribute, None) for attribute in _SECRET_ATTRIBUTES)
    return [v for v in values if isinstance(v, str) and len(v) >= 4]


def _describe(exc: BaseException, secrets: Sequence[str]) -> tuple[str, bool]:
    """``Type: first line`` of an exception with credentials masked, and whether any were."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    leaked = False
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
            leaked = True
    if len(text) > 300:
        text = text[:297] + "..."
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__), leaked


def _network_cause(exc: BaseException) -> str:
    """The socket-level reason under a ccxt network error, e.g. ``Failed to resolve
    'api.binance.com' ([Errno -2] Name or service not known)`` or ``Connection refused``."""
    chain: list[BaseException] = []
    seen = exc
    while seen is not None and len(chain) < 16:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    useful = [
        e
        for e in chain[1:]
        if type(e).__module__.startswith("urllib3") and type(e).__name__ != "MaxRetryError"
    ] or chain[1:]
    if not useful:
        return ""
    text = str(useful[-1]).splitlines()[0] if str(useful[-1]) else type(useful[-1]).__name__
    return re.sub(r"^\w*Connection\w*\([^)]*\):\s*", "", text)[:200]


def _transient_kind(exc: BaseException, ccxt: ModuleType) -> str:
    """What kind of transient failure ``exc`` is, in words."""
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return "rate limited by the exchange"
    if isinstance(exc, ccxt.RequestTimeout):
        return "the request timed out"
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return "the exchange is not available"
    return "network unreachable"


def _page_arrays(page: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """ccxt rows ``[ms, o, h, l, c, v]`` as int64 milliseconds and a float64 (n, 5) block."""
    if not page:
        return np.empty(0, np.int64), np.empty((0, 5), np.float64)
    try:
        ms = np.array([int(row[0]) for row in page], dtype=np.int64)
        values = np.array([[row[i] for i in range(1, 6)] for row in page], dtype=np.float64)
    except (TypeError, ValueError, IndexError) as exc:
        raise DataError(
            f"{where}: the venue returned candles in an unexpected shape ({exc})\n"
            "  fix: report this venue to quantrain; ccxt rows should be "
            "[timestamp, open, high, low, close, volume]"
        ) from exc
    return ms, values


def _frame(ms: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    stamps = pd.to_datetime(ms, unit="ms", utc=True).astype("datetime64[ns, UTC]")
    data: dict[str, Any] = {"timestamp": stamps}
    for i, column in enumerate(COLUMNS[1:]):
        data[column] = values[:, i]
    return pd.DataFrame(data, columns=list(COLUMNS))


def _merge(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate in order, keep the last row per timestamp (newer wins), sort by time."""
    combined = pd.concat([f for f in frames if len(f)], ignore_index=True)
    combined = combined.drop_duplicates("timestamp", keep="last")
    return combined.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write via a hidden temporary file in the same folder and ``os.replace``: never half a file.

    The temporary name starts with ``.`` so ``discover`` ignores it if a crash leaves it behind.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            frame.to_parquet(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        as_umask_allows(Path(name))  # mkstemp made it 0600
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _read_existing(path: Path) -> pd.DataFrame | None:
    """The bars already downloaded, or None for a fresh download."""
    if not path.exists():
        return None
    raw = read_raw(path)
    if len(raw) == 0:
        return None
    if len(raw) == 1 and set(COLUMNS) <= set(raw.columns):
        # One bar is a valid download (a new listing) but too few for validate_ohlcv.
        frame = raw[list(COLUMNS)].copy()
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype(
            "datetime64[ns, UTC]"
        )
        return frame.reset_index(drop=True)
    try:
        return validate_ohlcv(raw, str(path)).frame
    except DataError as exc:
        raise DataError(
            f"{exc}\n  or: move {path} away (or delete it) to download this symbol afresh"
        ) from exc


def _close_symbols(exchange: Any, symbol: str) -> list[str]:
    """Venue symbols like ``symbol``; markets are loaded only if needed, failures ignored."""
    symbols = getattr(exchange, "symbols", None)
    if not symbols:
        try:
            exchange.load_markets()
        except Exception as exc:  # a hint only: never mask the real error with this one
            logger.debug("load_markets failed while suggesting symbols: %s", type(exc).__name__)
        symbols = getattr(exchange, "symbols", None)
    if not symbols:
        return []
    known = [str(s) for s in symbols]
    bare = re.sub(r"[^A-Z0-9]", "", symbol.upper())
    same = [s for s in known if re.sub(r"[^A-Z0-9]", "", s.upper()) == bare]
    close = difflib.get_close_matches(symbol.upper(), known, n=5, cutoff=0.6)
    return list(dict.fromkeys([*same, *close]))[:5]


def _check_timeframe(exchange: Any, exchange_id: str, timeframe: str) -> None:
    offered = getattr(exchange, "timeframes", None)
    if isinstance(offered, dict) and offered and timeframe not in offered:
        listed = ", ".join(str(t) for t in offered)
        raise DataError(
            f"{exchange_id}: timeframe {timeframe!r} is not offered\n"
            f"  supported: {listed}\n"
            "  fix: pick one of the supported timeframes (case matters: 1m is a minute, 1M a month)"
        )
    has = getattr(exchange, "has", None)
    if isinstance(has, dict) and has.get("fetchOHLCV") is False:
        raise DataError(
            f"{exchange_id}: this venue does not serve candles (OHLCV) through ccxt\n"
            "  fix: download from another exchange that lists the pair"
        )


# --------------------------------------------------------------------------- download


class _Download:
    """State of one download: the pages fetched since the last write, counters, and the file."""

    def __init__(
        self,
        exchange: Any,
        ccxt: ModuleType,
        symbol: str,
        timeframe: str,
        path: Path,
        *,
        step_ms: int,
        page_limit: int,
        max_retries: int,
        backoff_s: float,
        sleep: Callable[[float], None],
        retry_budget_s: float = RETRY_BUDGET_S,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.exchange_id = str(getattr(exchange, "id", type(exchange).__name__))
        self.ccxt = ccxt
        self.symbol = symbol
        self.timeframe = timeframe
        self.path = path
        self.step_ms = step_ms
        self.page_limit = page_limit
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.retry_budget_s = retry_budget_s
        self.on_retry = on_retry
        self.where = f"{self.exchange_id} {symbol} {timeframe}"
        self.saved = _read_existing(path)
        self.initial_rows = 0 if self.saved is None else len(self.saved)
        self.pending: list[pd.DataFrame] = []
        self.pages = 0
        self.retries = 0

    def save(self) -> None:
        """Merge pending pages into the file (atomically); nothing to do if nothing is pending."""
        if not self.pending:
            return
        merged = _merge([*([] if self.saved is None else [self.saved]), *self.pending])
        _write_atomic(merged, self.path)
        self.saved = merged
        self.pending = []
        logger.debug("%s: saved %d rows to %s", self.where, len(merged), self.path)

    def fetch(self, since: int) -> Any:
        """One page from ``since``, retrying transient failures with exponential backoff."""
        ccxt = self.ccxt
        retryable = (
            ccxt.RateLimitExceeded,
            ccxt.DDoSProtection,
            ccxt.RequestTimeout,
            ccxt.ExchangeNotAvailable,
            ccxt.NetworkError,
        )
        attempt = 0
        waited = 0.0  # backoff slept for this page
        failing_since = time.monotonic()
        while True:
            try:
                return self.exchange.fetch_ohlcv(
                    self.symbol, self.timeframe, since=since, limit=self.page_limit
                )
            except retryable as exc:
                text, leaked = _describe(exc, _secrets(self.exchange))
                kind = _transient_kind(exc, ccxt)
                cause = _network_cause(exc) if kind == "network unreachable" else ""
                why = f"{kind} ({cause})" if cause else f"{kind} ({text})"
                delay = self.backoff_s * 2**attempt
                spent = max(waited, time.monotonic() - failing_since)
                if attempt >= self.max_retries or spent + delay > self.retry_budget_s:
                    raise self._gave_up(since, why, attempt, kind) from (None if leaked else exc)
                attempt += 1
                self.retries += 1
                waited += delay
                line = f"{self.where}: {why}; retry {attempt}/{self.max_retries} in {delay:.1f} s"
                logger.info("%s", line)
                if self.on_retry is not None:
                    self.on_retry(line)
                self.sleep(delay)
            except ccxt.BadSymbol as exc:
                text, leaked = _describe(exc, _secrets(self.exchange))
                close = _close_symbols(self.exchange, self.symbol)
                hint = f"\n  close matches: {', '.join(close)}" if close else ""
                raise DataError(
                    f"{self.exchange_id}: no market {self.symbol!r} ({text}){hint}\n"
                    "  fix: use the venue's symbol in ccxt's unified form BASE/QUOTE, e.g. "
                    "BTC/USDT (BTC/USDT:USDT for a USDT-margined perpetual)"
                ) from (None if leaked else exc)
            except ccxt.BaseError as exc:
                text, leaked = _describe(exc, _secrets(self.exchange))
                raise DataError(
                    f"{self.where}: the exchange refused the request for candles from "
                    f"{_when(since)}: {text}\n"
                    "  fix: check the symbol, timeframe and dates; for a private endpoint set "
                    f"{_env_name(self.exchange_id, 'API_KEY')} and "
                    f"{_env_name(self.exchange_id, 'SECRET')}; rerun to resume"
                ) from (None if leaked else exc)

    def _gave_up(self, since: int, why: str, retries: int, kind: str) -> QuantrainError:
        """The error after the last retry: what failed, where, what is on disk, the fix.

        "saved" only when there is something to save: offline, nothing was ever fetched and
        no file is written.
        """
        kept, resume = "  nothing was written\n", ""
        if self.saved is not None or self.pending:
            kept = f"  saved: everything fetched before is in {self.path}\n"
            resume = "; it resumes after the last saved bar"
        message = (
            f"{self.where}: fetching candles from {_when(since)} failed after "
            f"{plural(retries, 'retry', 'retries')}: {why}\n{kept}"
        )
        if kind == "network unreachable" or kind.startswith("the "):
            return ServiceUnavailableError(
                message + f"  fix: check the network connection and that {self.exchange_id} is "
                f"reachable from here (proxy, firewall, DNS), then rerun the same command{resume}"
            )
        return DataError(
            message + f"  fix: rerun the same download later{resume} (raise max_retries or "
            "backoff if the venue keeps throttling)"
        )


def download_ohlcv(
    exchange: Any,
    symbol: str,
    timeframe: str,
    *,
    dataset: Path,
    since: pd.Timestamp | str | None = None,
    until: pd.Timestamp | str | None = None,
    page_limit: int = 1000,
    max_retries: int = 5,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    on_page: Callable[[int], None] | None = None,
    on_retry: Callable[[str], None] | None = None,
    retry_budget_s: float = RETRY_BUDGET_S,
) -> DownloadReport:
    """Download closed candles of ``symbol`` into ``dataset``, continuing any earlier download.

    ``exchange`` is a ccxt exchange (``open_exchange``); ``symbol`` is in the venue's ccxt form
    (``BTC/USDT``); the file is named by ``symbol_key``. Only closed candles in
    ``[since, until)`` are kept: the still-forming candle is dropped, so a rerun never stores a
    bar that later changes.

    ``since`` applies to a fresh download only (``None``: the earliest the venue serves, asked
    as epoch 0; venues that serve only recent history return what they have). With an existing
    file the download resumes after its last bar and an earlier ``since`` is ignored (a later
    one skips ahead, leaving a reported gap); to backfill earlier history, delete the file.

    Transient failures (rate limits, timeouts, network) are retried ``max_retries`` times per
    page, sleeping ``backoff_s * 2**attempt``, while the page has failed for less than
    ``retry_budget_s``; ``on_retry`` gets a line per retry (what failed, which attempt), and
    ``on_page`` the rows fetched so far after every page. A venue that cannot be reached
    raises ``ServiceUnavailableError``; a symbol, timeframe or date it refuses ``DataError``.
    On any failure or interruption what was fetched is saved before the exception
    propagates, so rerunning the same call continues. Gaps are counted, never filled.
    """
    ccxt = _import_ccxt()
    exchange_id = str(getattr(exchange, "id", type(exchange).__name__))
    key = symbol_key(symbol)
    _check_timeframe(exchange, exchange_id, timeframe)
    step = parse_timeframe(timeframe)
    step_ms = int(step.value // _MS)
    canonical = format_timeframe(step)
    if page_limit < 1 or max_retries < 0 or backoff_s < 0:
        raise ConfigError(
            f"page_limit must be >= 1, max_retries >= 0 and backoff_s >= 0 "
            f"(got {page_limit}, {max_retries}, {backoff_s})"
        )
    since_ms = None if since is None else _to_ms(since, "since")
    until_ms = math.inf if until is None else _to_ms(until, "until")

    dataset = Path(dataset)
    dataset.mkdir(parents=True, exist_ok=True)
    path = dataset / f"{key}_{canonical}.parquet"
    run = _Download(
        exchange,
        ccxt,
        symbol,
        timeframe,
        path,
        step_ms=step_ms,
        page_limit=page_limit,
        max_retries=max_retries,
        backoff_s=backoff_s,
        sleep=sleep,
        retry_budget_s=retry_budget_s,
        on_retry=on_retry,
    )
    resumed_from: pd.Timestamp | None = None
    if run.saved is not None:
        resumed_from = run.saved["timestamp"].iloc[-1]
        start = int(resumed_from.value // _MS) + step_ms
        if since_ms is not None and since_ms > start:
            logger.info("%s: skipping ahead to since=%s", run.where, _when(since_ms))
            start = since_ms
        logger.info("%s: %s holds bars up to %s; resuming", run.where, path, _when_ts(resumed_from))
    else:
        start = 0 if since_ms is None else since_ms

    try:
        fetched = _paginate(run, start, until_ms, on_page)
        run.save()
    except BaseException:
        try:
            run.save()
        except Exception:
            logger.exception("%s: could not save progress to %s", run.where, path)
        raise

    return _report(run, canonical, fetched, start, resumed_from)


def _paginate(
    run: _Download, start: int, until_ms: float, on_page: Callable[[int], None] | None
) -> int:
    """Fetch pages from ``start`` until the venue has nothing new; the rows kept."""
    exchange, step_ms = run.exchange, run.step_ms
    cursor = start
    fetched = 0
    while True:
        now = int(exchange.milliseconds())
        if cursor >= until_ms or cursor + step_ms > now:
            break  # the next candle is outside the range or not closed yet
        page = run.fetch(cursor)
        run.pages += 1
        ms, values = _page_arrays(page, run.where)
        if not len(ms):
            logger.debug("%s: empty page from %s; done", run.where, _when(cursor))
            break
        now = int(exchange.milliseconds())
        closed = ms + step_ms <= now
        keep = (ms >= start) & (ms < until_ms) & closed
        if not keep.any() or int(ms[keep].max()) < cursor:
            logger.debug("%s: page from %s adds nothing new; done", run.where, _when(cursor))
            break
        fetched += int((ms[keep] >= cursor).sum())
        run.pending.append(_frame(ms[keep], values[keep]))
        logger.debug(
            "%s: page %d from %s: %d rows, %d so far",
            run.where,
            run.pages,
            _when(cursor),
            int(keep.sum()),
            fetched,
        )
        cursor = int(ms[keep].max()) + step_ms
        if on_page is not None:
            on_page(fetched)
        if run.pages % CHECKPOINT_PAGES == 0:
            run.save()
        if not closed.all():
            break  # reached the still-forming candle: nothing newer exists yet
    return fetched


def _report(
    run: _Download,
    timeframe: str,
    fetched: int,
    start: int,
    resumed_from: pd.Timestamp | None,
) -> DownloadReport:
    frame = run.saved
    if frame is None or not len(frame):
        raise DataError(
            f"{run.where}: the venue returned no closed candles from {_when(start)}\n"
            "  fix: check since/until and that the pair was listed then (nothing was written)"
        )
    gaps = missing = 0
    if len(frame) >= 2:
        try:
            loaded = validate_ohlcv(frame, str(run.path))
        except DataError as exc:
            raise DataError(
                f"{run.path}: the downloaded candles fail validation (the file holds them as "
                f"the venue sent them)\n{exc}"
            ) from exc
        gaps, missing = loaded.report.gaps, loaded.report.missing_bars
        if loaded.report.timeframe != timeframe:
            logger.warning(
                "%s: bars are %s apart, not %s; check what the venue serves",
                run.where,
                loaded.report.timeframe,
                timeframe,
            )
    report = DownloadReport(
        exchange=run.exchange_id,
        symbol=symbol_key(run.symbol),
        timeframe=timeframe,
        path=run.path,
        new_rows=len(frame) - run.initial_rows,
        total_rows=len(frame),
        first=frame["timestamp"].iloc[0],
        last=frame["timestamp"].iloc[-1],
        gaps=gaps,
        missing_bars=missing,
        pages=run.pages,
        retries=run.retries,
        resumed_from=resumed_from,
    )
    logger.info("%s (%d fetched)", report.summary(), fetched)
    return report
