"""How results look in a terminal: rich tables and progress, nothing else."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from quantrain.data import DataSource, ValidationReport
from quantrain.pipeline import SymbolResult
from quantrain.store import VersionInfo

#: Tables are wide; piped output (CI logs, files) gets room instead of rich's 80-column default.
PIPED_WIDTH = 160
out = Console()
if not out.is_terminal:
    out = Console(width=PIPED_WIDTH)
err = Console(stderr=True, soft_wrap=True)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


#: Per-head columns of the summary: (metric key suffix, column label).
_CLASSIFIER_COLUMNS = (
    ("balanced_accuracy", "bal.acc"),
    ("accuracy", "acc"),
    ("baseline_accuracy", "majority acc"),
)
_REGRESSOR_COLUMNS = (("mae", "MAE"), ("baseline_mae", "mean MAE"))
_SHORT = {
    "direction": "dir",
    "position_size": "size",
    "signal_quality": "quality",
    "tp_level": "TP",
}


def _head_columns(results: list[SymbolResult]) -> list[tuple[str, str]]:
    """(metric key, label) for every head the results report, in the order they appear."""
    heads: dict[str, bool] = {}
    for r in results:
        for key in r.metrics:
            head, _, metric = key.rpartition(".")
            heads.setdefault(head, metric in ("balanced_accuracy", "accuracy"))
    columns = []
    for head, classifier in heads.items():
        for metric, label in _CLASSIFIER_COLUMNS if classifier else _REGRESSOR_COLUMNS:
            columns.append((f"{head}.{metric}", f"{_SHORT.get(head, head)} {label}"))
    return columns


def summary_table(results: Iterable[SymbolResult], title: str = "run summary") -> Table:
    """One row per symbol: rows, out-of-sample metrics beside their baselines, the version."""
    rows = list(results)
    metric_columns = _head_columns(rows)
    table = Table(title=title)
    table.add_column("symbol")
    table.add_column("rows", justify="right")
    for _, label in metric_columns:
        table.add_column(label, justify="right")
    traded = any(r.backtest for r in rows)
    if traded:
        for label in ("OOS return", "B&H return", "rand pct"):
            table.add_column(label, justify="right")
    table.add_column("secs", justify="right")
    table.add_column("node", no_wrap=True)
    table.add_column("package version / error", no_wrap=True, min_width=23)
    table.caption = (
        "out-of-sample, pooled over walk-forward folds; chance for balanced accuracy is "
        "1/classes; 'majority acc' and 'mean MAE' are the naive baselines a model has to beat; "
        "returns are after costs, 'rand pct' is the model's percentile among random strategies "
        "with the same activity"
    )
    for r in rows:
        table.add_row(
            r.symbol,
            str(r.rows) if r.rows else "-",
            *(_fmt(r.metrics.get(key)) for key, _ in metric_columns),
            *(_backtest_cells(r) if traded else ()),
            f"{r.seconds:.1f}",
            r.node or "-",
            r.version if r.ok else "[red]FAILED[/red] (reason below)",
        )
    return table


def _backtest_cells(r: SymbolResult) -> tuple[str, str, str]:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:+.1%}"

    percentile = r.backtest.get("random_percentile")
    return (
        pct(r.backtest.get("total_return")),
        pct(r.backtest.get("buy_and_hold_return")),
        "-" if percentile is None else f"{percentile:.0f}",
    )


def backtest_table(backtest: dict[str, dict[str, float]]) -> Table:
    """The model beside its baselines, out of sample and after costs."""
    table = Table(title="backtest (out of sample, after costs)")
    names = [n for n in ("model", "buy_and_hold", "flat", "random_median") if n in backtest]
    table.add_column("metric")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    percent = {"total_return", "annual_return", "max_drawdown", "hit_rate", "exposure"}
    for key in (
        "total_return",
        "annual_return",
        "sharpe",
        "max_drawdown",
        "hit_rate",
        "profit_factor",
        "trades",
        "exposure",
    ):
        cells = [backtest[n].get(key) for n in names]
        table.add_row(
            key,
            *("-" if v is None else f"{v:.2%}" if key in percent else f"{v:,.2f}" for v in cells),
        )
    return table


def print_failures(results: Iterable[SymbolResult]) -> None:
    """Full error messages and promotion outcomes, unwrapped, after the table."""
    for r in results:
        if not r.ok:
            out.print(f"[red]{r.symbol} failed:[/red] {r.error}", soft_wrap=True, highlight=False)
        elif r.promotion:
            out.print(r.promotion, soft_wrap=True, highlight=False)


def validation_table(reports: Iterable[ValidationReport]) -> Table:
    table = Table(title="data validation")
    for column in ("file", "rows", "timeframe", "first", "last", "gaps", "missing bars", "repairs"):
        table.add_column(column)
    for rep in reports:
        table.add_row(
            rep.source,
            str(rep.rows),
            rep.timeframe,
            str(rep.first) if rep.first is not None else "-",
            str(rep.last) if rep.last is not None else "-",
            str(rep.gaps),
            str(rep.missing_bars),
            "; ".join(rep.repairs) or "none",
        )
    return table


def versions_table(rows: Iterable[VersionInfo], store: str) -> Table:
    table = Table(title=f"model store {store}")
    for column in ("symbol", "suite", "version", "created", "channels", "key metrics"):
        table.add_column(column)
    for v in rows:
        metrics = ", ".join(
            f"{k}={val:.3f}" for k, val in sorted(v.metrics.items()) if "baseline" not in k
        )
        table.add_row(
            v.symbol, v.suite, v.version, v.created_at, ",".join(v.channels) or "-", metrics
        )
    return table


class SymbolProgress:
    """A progress bar over symbols on stderr; each symbol is printed as it finishes."""

    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> SymbolProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def start(self, sources: list[DataSource]) -> None:
        self._task = self._bar.add_task(f"training {len(sources)} symbols", total=len(sources))

    def done(self, result: SymbolResult) -> None:
        status = "[green]ok[/green]" if result.ok else "[red]failed[/red]"
        self._bar.console.print(f"{result.symbol}: {status} in {result.seconds:.1f}s")
        if self._task is not None:
            self._bar.advance(self._task)


class RowProgress:
    """A spinner with a row count on stderr, for downloads whose length is not known upfront."""

    def __init__(self, description: str) -> None:
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}: {task.completed} rows"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self._task = self._bar.add_task(description, total=None)

    def __enter__(self) -> RowProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def update(self, rows: int) -> None:
        self._bar.update(self._task, completed=rows)
