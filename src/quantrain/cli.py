"""The ``quantrain`` command. Each command parses options, calls one library function and
renders the result; user errors (``QuantrainError``) exit with status 2 and no traceback."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

import quantrain
from quantrain.errors import QuantrainError, ServiceUnavailableError
from quantrain.names import DEFAULT_CHANNEL, DEFAULT_STORE, SAFE_NAME_RULE, is_safe_name, symbol_key

if TYPE_CHECKING:
    from quantrain.config import JobConfig

P = ParamSpec("P")
R = TypeVar("R")


class UserError(click.ClickException):
    """A problem the user can fix: message only, exit status 2."""

    exit_code = 2


class ServiceError(click.ClickException):
    """A service could not be reached (nothing the user typed is wrong): exit status 1."""

    exit_code = 1


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into clean CLI errors."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ServiceUnavailableError as error:
            raise ServiceError(str(error)) from None
        except QuantrainError as error:
            raise UserError(str(error)) from None

    return wrapper


store_option = click.option(
    "--store",
    default=None,
    metavar="URI",
    help="Model store: a local directory or s3://BUCKET/PREFIX (default ./models).",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a job setting, e.g. --set split.n_folds=4 (repeatable).",
)


def _symbol(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A symbol as the store keys it (``ETH/BTC`` -> ``ETH-BTC``): it becomes a store path."""
    if value is None:
        return None
    try:
        return symbol_key(value)
    except QuantrainError as error:
        raise click.BadParameter(str(error)) from None


def _safe_name(kind: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A callback refusing a ``kind`` name (suite, version, channel) that could not be one
    path part: each becomes a directory or key in the store."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None and not is_safe_name(value):
            raise click.BadParameter(
                f"{kind} {value!r} is not a safe name\n  fix: use {SAFE_NAME_RULE}"
            )
        return value

    return check


suite_option = click.option(
    "--suite", default=None, callback=_safe_name("suite"), help="Suite name (needed if several)."
)
symbol_option = click.option("--symbol", default=None, callback=_symbol, help="Only this symbol.")
allow_local_option = click.option(
    "--allow-local",
    is_flag=True,
    help="On a multi-node Ray cluster, accept local data/store paths because every node mounts "
    "them (checked on each node before training).",
)


address_option = click.option(
    "--address",
    default=None,
    metavar="ADDRESS",
    help="Join this Ray cluster (HOST:PORT, ray://HOST:10001 or auto) instead of RAY_ADDRESS; "
    "without either a local cluster starts.",
)


def _with_cluster(
    overrides: tuple[str, ...], allow_local: bool, address: str | None
) -> tuple[str, ...]:
    """``--allow-local`` and ``--address`` as ``--set`` overrides (the address as a JSON string,
    which YAML reads back unchanged)."""
    extra = ["ray.allow_local=true"] if allow_local else []
    extra += [f"ray.address={json.dumps(address)}"] if address else []
    return (*overrides, *extra)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(quantrain.__version__, prog_name="quantrain")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Train, validate and ship per-symbol trading models as verified ONNX packages.

    \b
    Example:
      quantrain -v run jobs/demo.yaml
    """
    from rich.logging import RichHandler

    from quantrain.redact import redact_logging

    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=True)],
    )
    redact_logging()  # every level, every library's records (ccxt, urllib3, botocore)


dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    help="Only the preflight (data, features, folds, store; no Ray, nothing written): print "
    "the plan and exit 0, or every problem and exit 2.",
)


def _run(job: JobConfig, dry_run: bool = False) -> None:
    from quantrain import ui
    from quantrain.jobs import plan_job, run_job, store_record, track_run

    if dry_run:
        ui.print_plan(plan_job(job))
        return

    tuned: dict[str, Any] = {}
    with ui.SymbolProgress() as progress:

        def on_tuned(outcome: Any) -> None:
            tuned[outcome.symbol] = outcome
            progress.tuned(outcome)

        summary = run_job(
            job,
            on_start=progress.start,
            on_result=progress.done,
            on_refresh=lambda report: ui.err.print(f"data {report.summary()}", highlight=False),
            on_tune=progress.search,
            on_tuned=on_tuned,
            on_stage=progress.stage,
        )
    if tuned:
        ui.out.print(ui.tuning_table(tuned, title=f"{job.name}: tuning summary"))
    ui.out.print(ui.summary_table(summary.results, title=f"{job.name}: run summary"))
    ui.print_verdicts(summary.results)
    ui.print_failures(summary.results)
    saved = summary.save(Path("runs"))
    record = summary.record()
    where = store_record(summary.job, record)
    ui.out.print(
        f"packages in {summary.job.store}; run record {where} (summary CSV {saved})",
        soft_wrap=True,
        highlight=False,
    )
    tracked = track_run(summary.job, record)
    if tracked:
        ui.out.print(tracked, highlight=False)
    if summary.failed:
        raise click.exceptions.Exit(1)


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@set_option
@allow_local_option
@address_option
@dry_run_option
@user_errors
def run(
    job_file: str,
    overrides: tuple[str, ...],
    allow_local: bool,
    address: str | None,
    dry_run: bool,
) -> None:
    """Run a job file: every symbol trained in parallel on Ray, packaged and stored.

    \b
    Example:
      quantrain run jobs/demo.yaml --set split.n_folds=4
    """
    from quantrain.config import load_job
    from quantrain.runtime.install import require_training

    require_training("run")

    _run(load_job(job_file, _with_cluster(overrides, allow_local, address)), dry_run)


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option(
    "--no-train",
    is_flag=True,
    help="Only search: write each symbol's tuning.csv/tuning.json under runs/, train nothing.",
)
@set_option
@allow_local_option
@address_option
@dry_run_option
@user_errors
def tune(
    job_file: str,
    no_train: bool,
    overrides: tuple[str, ...],
    allow_local: bool,
    address: str | None,
    dry_run: bool,
) -> None:
    """Tune every symbol's heads (Optuna TPE + ASHA on Ray Tune, scored on the walk-forward
    folds), then train each symbol with its best params; the package holds the trial table.

    \b
    Example:
      quantrain tune jobs/demo.yaml --no-train
    """
    from quantrain.runtime.install import require_training

    require_training("tune")
    from quantrain import ui
    from quantrain.config import load_job
    from quantrain.jobs import store_record, tune_job

    job = load_job(job_file, (*_with_cluster(overrides, allow_local, address), "tune.enabled=true"))
    if dry_run or not no_train:
        _run(job, dry_run)
        return
    with ui.SymbolProgress() as progress:
        summary = tune_job(job, on_progress=progress.search, on_tuned=progress.tuned)
    ui.out.print(ui.tuning_table(summary.outcomes, title=f"{job.name}: tuning summary"))
    for symbol, why in summary.failures.items():
        ui.out.print(ui.failure_line(symbol, why), soft_wrap=True, highlight=False)
    saved = summary.save(Path("runs"))
    where = store_record(job, summary.record())
    ui.out.print(f"trial tables saved to {saved}; run record {where}", soft_wrap=True)
    if summary.failures:
        raise click.exceptions.Exit(1)


@main.command()
@click.option(
    "--data",
    "data_path",
    required=True,
    metavar="PATH_OR_URI",
    help="A data file, or a directory or s3://BUCKET/PREFIX/ of SYMBOL_timeframe.<ext> files.",
)
@click.option("--symbols", default=None, help="Comma-separated symbols to train (default: all).")
@store_option
@suite_option
@click.option("--model", "family", default=None, help="Model family for every head.")
@click.option(
    "--params-from",
    default=None,
    metavar="PACKAGE_OR_FILE",
    help="Train with these head params: a tuned package directory, or a YAML/JSON file "
    "{head: {param: value}} (e.g. a tuning.json).",
)
@click.option(
    "--warm-start",
    default=None,
    metavar="PACKAGE",
    help="Add boosting rounds to this package's models (final fits only; {symbol} in the path "
    "is replaced per symbol). Refused if its features or heads differ.",
)
@set_option
@allow_local_option
@address_option
@dry_run_option
@user_errors
def train(
    data_path: str,
    symbols: str | None,
    store: str | None,
    suite: str | None,
    family: str | None,
    params_from: str | None,
    warm_start: str | None,
    overrides: tuple[str, ...],
    allow_local: bool,
    address: str | None,
    dry_run: bool,
) -> None:
    """Train one suite per symbol from data files, without a job file.

    \b
    Example:
      quantrain train --data data/binance --symbols BTC-USDT,ETH-USDT --model lightgbm
    """
    from quantrain.config import job_from_options
    from quantrain.runtime.install import require_training

    require_training("train")

    _run(
        job_from_options(
            data_path,
            symbols=symbols,
            store=store,
            suite=suite,
            family=family,
            params_from=params_from,
            warm_start=warm_start,
            overrides=_with_cluster(overrides, allow_local, address),
        ),
        dry_run,
    )


@main.command()
@click.argument("package", type=click.Path(exists=True, file_okay=False))
@click.argument("data_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write every bar's predictions here (.csv or .parquet).",
)
@click.option(
    "--last", type=int, default=10, show_default=True, help="Bars to show when no --out is given."
)
@user_errors
def predict(package: str, data_file: str, out: str | None, last: int) -> None:
    """Run a package through ONNX on a data file, as a bot would: OHLCV bars, or a trade
    journal for journal-trained packages.

    \b
    Example:
      quantrain predict models/ETH-BTC/core/VERSION ETH-BTC_5m.parquet --out signals.csv
    """
    from quantrain import ui
    from quantrain.data import check_output_file, write_frame
    from quantrain.package import Predictor

    if out is not None:
        check_output_file(out)
    predictions = Predictor(package).predict_file(data_file)
    if out is None:
        ui.out.print(predictions.tail(last).to_string(index=False))
    else:
        write_frame(predictions, out)
        ui.out.print(f"{len(predictions)} rows written to {out}")


@main.command()
@click.argument("package", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the report here (.html); a package without one (older packages) gets "
    "one made from its files.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the report in a web browser.")
@user_errors
def report(package: str, out: str | None, open_browser: bool) -> None:
    """Print a package's out-of-sample backtest and caveats, and the path of its report.html.

    \b
    Example:
      quantrain report models/ETH-BTC/core/VERSION --out eth-btc-report.html
    """
    import webbrowser

    from quantrain import ui
    from quantrain.evaluate.files import locate_report, read_evaluation
    from quantrain.package.layout import read_manifest

    path = locate_report(Path(package), Path(out) if out else None)
    evaluation = read_evaluation(Path(package))
    if evaluation:
        ui.print_verdict_block(evaluation, read_manifest(Path(package)).get("holdout"))
        ui.out.print(ui.backtest_table(evaluation["backtest"]))
        for note in evaluation.get("notes", []):
            ui.out.print(f"- {note}", highlight=False)
    ui.out.print(f"report: {path}")
    if open_browser:
        webbrowser.open(path.resolve().as_uri())


@main.group()
def data() -> None:
    """Inspect market data files.

    \b
    Example:
      quantrain data validate data/binance
    """


@data.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@user_errors
def data_validate(paths: tuple[str, ...]) -> None:
    """Check data files against the OHLCV contract; exit 2 if any is refused.

    \b
    Example:
      quantrain data validate data/binance/BTC-USDT_1h.parquet
    """
    from quantrain import ui
    from quantrain.jobs import validate_paths

    checks = validate_paths(paths)
    reports = [c.report for c in checks if c.report is not None]
    if reports:
        ui.out.print(ui.validation_table(reports))
    refused = [c for c in checks if c.error]
    for check in refused:
        ui.err.print(ui.refusal_line(str(check.error)), highlight=False)
    if refused:
        raise click.exceptions.Exit(2)


@data.command("download")
@click.option(
    "--exchange",
    "exchange_id",
    required=True,
    help="ccxt exchange id: binance, bitget, hyperliquid, ...",
)
@click.option(
    "--symbol",
    "symbols",
    required=True,
    multiple=True,
    help="Market symbol, e.g. BTC/USDT (repeatable).",
)
@click.option("--timeframe", required=True, help="Candle size the exchange offers, e.g. 5m, 1h.")
@click.option("--since", default=None, help="First candle of a fresh download (e.g. 2024-01-01).")
@click.option("--until", default=None, help="Stop before this time (default: now).")
@click.option(
    "--dataset",
    default="data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory of SYMBOL_timeframe.parquet files; reruns append only new bars.",
)
@user_errors
def data_download(
    exchange_id: str,
    symbols: tuple[str, ...],
    timeframe: str,
    since: str | None,
    until: str | None,
    dataset: str,
) -> None:
    """Download closed candles into a local dataset: paginated, rate-limit aware, resumable.

    Public candles need no API keys; a venue that wants them reads QUANTRAIN_<EXCHANGE>_API_KEY,
    _SECRET and _PASSWORD from the environment (never logged). Needs the `exchange` extra:
    pip install 'quantrain[exchange]'.

    \b
    Example:
      quantrain data download --exchange binance --symbol BTC/USDT --timeframe 1h \\
        --since 2024-01-01 --dataset data/binance
    """
    from quantrain import ui
    from quantrain.data.exchange import download_ohlcv, open_exchange

    venue = open_exchange(exchange_id)
    for symbol in symbols:
        with ui.RowProgress(f"{symbol} {timeframe}") as progress:
            report = download_ohlcv(
                venue,
                symbol,
                timeframe,
                dataset=Path(dataset),
                since=since,
                until=until,
                on_page=progress.update,
                on_retry=progress.note,
            )
        ui.out.print(report.summary(), highlight=False)


@data.command("resample")
@click.argument("source", metavar="PATH_OR_URI")
@click.option("--to", "timeframe", required=True, help="Target timeframe, e.g. 15m, 1h, 4h, 1d.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output file (.parquet or .csv); name it SYMBOL_<timeframe>.parquet to train on it.",
)
@click.option("--drop-partial", is_flag=True, help="Drop bins that a data gap left incomplete.")
@user_errors
def data_resample(source: str, timeframe: str, out: str, drop_partial: bool) -> None:
    """Aggregate bars to a higher timeframe (first open, max high, min low, last close, summed
    volume; bars stamped with their open time, so causal).

    \b
    Example:
      quantrain data resample data/BTC-USDT_5m.parquet --to 1h --out data/BTC-USDT_1h.parquet
    """
    from quantrain import ui
    from quantrain.data import check_output_file, read_ohlcv, resample_ohlcv, write_frame

    check_output_file(out)
    loaded = read_ohlcv(source)
    frame, report = resample_ohlcv(
        loaded.frame,
        timeframe,
        source_timeframe=loaded.report.timeframe,
        keep_partial=not drop_partial,
    )
    write_frame(frame, out)
    ui.out.print(f"{source}: {report.summary()}; written to {out}", highlight=False)


@main.group()
def models() -> None:
    """Push, list, verify, pull, promote and gc model packages in a store.

    --store takes a local directory or s3://BUCKET/PREFIX (AWS S3, Cloudflare R2, MinIO);
    endpoint and credentials come from the AWS chain (AWS_ENDPOINT_URL, AWS_PROFILE, ...).

    \b
    Example:
      quantrain models list --store s3://my-bucket/models
    """


def _store(uri: str | None, *, existing: bool = True) -> Any:
    """The --store; every command but push reads it, so a local one must exist."""
    from quantrain.store import open_store

    return open_store(uri or DEFAULT_STORE, existing=existing)


@models.command("list")
@symbol_option
@store_option
@user_errors
def models_list(symbol: str | None, store: str | None) -> None:
    """Complete package versions with their channels and key out-of-sample metrics.

    \b
    Example:
      quantrain models list --store ./models --symbol ETH-BTC
    """
    from quantrain import ui

    model_store = _store(store)
    ui.out.print(ui.versions_table(model_store.versions(symbol), model_store.uri))


@models.command("verify")
@symbol_option
@store_option
@user_errors
def models_verify(symbol: str | None, store: str | None) -> None:
    """Re-check every package's checksums; exit 2 if any file is missing or changed.

    \b
    Example:
      quantrain models verify --store s3://my-bucket/models
    """
    from quantrain import ui

    checks = _store(store).verify(symbol)
    for check in checks:
        v = check.info
        status = ui.status_word(check.error is None)
        ui.out.print(f"{v.symbol}/{v.suite}/{v.version}: ", status, sep="")
    failed = [c for c in checks if c.error]
    for check in failed:
        ui.err.print(check.error, highlight=False)
    ui.out.print(f"{len(checks) - len(failed)} of {len(checks)} packages verified")
    if failed:
        raise click.exceptions.Exit(2)


@models.command("pull")
@click.argument("symbol", callback=_symbol)
@store_option
@suite_option
@click.option(
    "--channel",
    default=None,
    callback=_safe_name("channel"),
    help="Channel to pull (default approved).",
)
@click.option(
    "--version",
    default=None,
    callback=_safe_name("version"),
    help="Exact version instead of a channel.",
)
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory that will hold the package.",
)
@click.option("--force", is_flag=True, help="Replace what is at --to.")
@user_errors
def models_pull(
    symbol: str,
    store: str | None,
    suite: str | None,
    channel: str | None,
    version: str | None,
    target: str,
    force: bool,
) -> None:
    """Copy a package out of the store, verified before it appears at --to.

    \b
    Example:
      quantrain models pull ETH-BTC --store s3://my-bucket/models --to bot/ETH-BTC
    """
    from quantrain import ui

    path = _store(store).pull(
        symbol, Path(target), suite=suite, channel=channel, version=version, force=force
    )
    ui.out.print(f"{symbol}: package verified at {path}")


@models.command("push")
@click.argument("package", type=click.Path(exists=True, file_okay=False))
@store_option
@user_errors
def models_push(package: str, store: str | None) -> None:
    """Publish a package directory; an existing version is refused, never overwritten.

    \b
    Example:
      quantrain models push staging/ETH-BTC/core/VERSION --store s3://my-bucket/models
    """
    from quantrain import ui

    info = _store(store, existing=False).push(Path(package))
    ui.out.print(f"{info.symbol}/{info.suite}: pushed {info.version} to {store or './models'}")


@models.command("promote")
@click.argument("symbol", callback=_symbol)
@click.argument("version", callback=_safe_name("version"))
@store_option
@suite_option
@click.option(
    "--channel", default=DEFAULT_CHANNEL, show_default=True, callback=_safe_name("channel")
)
@click.option(
    "--if-better",
    "if_better",
    default=None,
    metavar="METRIC",
    help="Only promote if VERSION beats the channel's current version on this out-of-sample "
    "metric (exit 1 if not): a head's, e.g. direction.balanced_accuracy or position_size.mae; "
    "the net-of-costs backtest's, e.g. backtest.total_return, backtest.sharpe_period, "
    "backtest.max_drawdown; or the untouched holdout's, e.g. holdout.backtest.total_return.",
)
@click.option(
    "--require",
    "require",
    multiple=True,
    metavar="METRIC=BOUND",
    help="A bound VERSION must meet on its own (repeatable; exit 1 if missed): at least BOUND "
    "for higher-is-better metrics, at most for the others, e.g. "
    "selection.deflated_sharpe=0.95, selection.pbo.direction=0.5, backtest.total_return=0.",
)
@user_errors
def models_promote(
    symbol: str,
    version: str,
    store: str | None,
    suite: str | None,
    channel: str,
    if_better: str | None,
    require: tuple[str, ...],
) -> None:
    """Point a channel (approved, staging, ...) at a verified version (``latest``: the
    newest complete one).

    The pointer moves only if nobody else moved it meanwhile; a lost race exits 2 and names
    the version that won.

    \b
    Example:
      quantrain models promote ETH-BTC latest --if-better direction.balanced_accuracy
    """
    from quantrain import ui
    from quantrain.config import parse_requirements
    from quantrain.errors import PromotionRefused

    try:
        pointer = _store(store).promote(
            symbol,
            version,
            suite=suite,
            channel=channel,
            if_better=if_better,
            require=parse_requirements(require),
        )
    except PromotionRefused as refused:
        ui.out.print(str(refused), highlight=False)
        raise click.exceptions.Exit(1) from None
    was = f" (was {pointer.previous})" if pointer.previous else ""
    ui.out.print(f"{symbol}/{pointer.suite}: {channel} -> {pointer.version}{was}")
    if pointer.comparison:
        c = pointer.comparison
        against = f"{c['incumbent']:.4f}" if c["incumbent"] is not None else "nothing"
        ui.out.print(f"  {c['metric']}: {c['candidate']:.4f} vs {against}")


@models.command("gc")
@store_option
@click.option(
    "--keep", type=click.IntRange(min=1), required=True, help="Newest versions kept per symbol."
)
@symbol_option
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option(
    "--stale-after",
    metavar="DURATION",
    help="Age (30m, 2h, 1d; default 24h) after which a killed push's leftovers count as "
    "abandoned; keep it longer than any push takes.",
)
@user_errors
def models_gc(
    store: str | None, keep: int, symbol: str | None, dry_run: bool, stale_after: str | None
) -> None:
    """Delete old versions, keeping the newest --keep per symbol and every version a channel
    points at.

    What a killed push leaves (incomplete versions, staging copies, unfinished S3 multipart
    uploads) is removed too, but only once older than --stale-after (24 h by default): until
    then it may belong to a push still running.

    \b
    Example:
      quantrain models gc --store ./models --keep 3 --dry-run
    """
    from quantrain import ui

    items = _store(store).gc(keep, symbol=symbol, dry_run=dry_run, stale_after=stale_after)
    verb = "would delete" if dry_run else "deleted"
    for item in items:
        ui.out.print(f"{verb} {item.symbol}/{item.suite}/{item.version} ({item.reason})")
    ui.out.print(f"{verb} {len(items)} version{'' if len(items) == 1 else 's'}")


@main.command()
def doctor() -> None:
    """Versions, usable CPUs, GPUs (CUDA/ROCm) and the device each family would train on.

    \b
    Example:
      quantrain doctor
    """
    from quantrain import ui
    from quantrain.orchestration import ray_status
    from quantrain.runtime.doctor import report_lines

    lines = report_lines(ray_status())
    ui.out.print("\n".join(lines), highlight=False)


@models.command("history")
@click.argument("symbol", callback=_symbol)
@suite_option
@store_option
@user_errors
def models_history(symbol: str, suite: str | None, store: str | None) -> None:
    """Every version of SYMBOL, newest first: key out-of-sample metrics, the channels that
    point at it and the run that made it.

    \b
    Example: quantrain models history ETH-BTC --store s3://models/prod
    """
    from quantrain import ui
    from quantrain.store.history import history

    model_store = _store(store)
    entries = history(model_store, symbol, suite)
    ui.out.print(ui.history_table(entries, symbol, model_store.uri))


@models.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@suite_option
@store_option
@user_errors
def models_diff(a: str, b: str, suite: str | None, store: str | None) -> None:
    """Compare two versions: metrics side by side with the change (B - A), then what differs
    in features, head params, data range, rows and configuration.

    A and B are version ids, SYMBOL@VERSION, SYMBOL@CHANNEL (SYMBOL@approved) or
    SYMBOL@latest.

    \b
    Example: quantrain models diff ETH-BTC@approved ETH-BTC@latest
    """
    from quantrain import ui
    from quantrain.store.history import diff

    found = diff(_store(store), a, b, suite)
    ui.out.print(f"A = {found.a}\nB = {found.b}", highlight=False)
    for table in ui.diff_tables(found):
        ui.out.print(table)


@main.group()
def runs() -> None:
    """Recorded job runs: every run, train and tune keeps a record in its model store
    (runs/<run id>.json beside the packages).

    \b
    Example:
      quantrain runs show latest --store ./models
    """


@runs.command("list")
@store_option
@click.option("--job", default=None, help="Only runs of this job name.")
@click.option(
    "--last", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N runs."
)
@user_errors
def runs_list(store: str | None, job: str | None, last: int) -> None:
    """Recorded runs, newest first: run id, job, when, symbols ok / failed, duration.

    \b
    Example: quantrain runs list --store ./models --job nightly --last 5
    """
    from quantrain import ui

    model_store = _store(store)
    ui.out.print(ui.runs_table(model_store.runs(job)[:last], model_store.uri))


@runs.command("show")
@click.argument("run_id")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the stored record as JSON.")
@user_errors
def runs_show(run_id: str, store: str | None, as_json: bool) -> None:
    """One run (``latest``: the newest): its times, every symbol's outcome and package, and
    the resolved config.

    \b
    Example: quantrain runs show 20260101T120000Z-1a2b3c4d --store ./models
    """
    from quantrain import ui

    record = _store(store).run(run_id)
    if as_json:
        click.echo(json.dumps(record, indent=2, sort_keys=True))
        return
    ui.print_run(record)
