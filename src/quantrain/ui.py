"""How results look in a terminal: rich tables and progress, nothing else."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
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


def summary_table(results: Iterable[SymbolResult], title: str = "run summary") -> Table:
    """One row per symbol: rows, out-of-sample metrics beside their baselines, the version."""
    table = Table(title=title)
    for column in (
        "symbol",
        "rows",
        "dir bal.acc",
        "dir acc",
        "majority acc",
        "size MAE",
        "mean MAE",
        "secs",
        "node",
        "package version / error",
    ):
        left = column in ("symbol", "node", "package version / error")
        table.add_column(column, justify="left" if left else "right")
    table.caption = (
        "out-of-sample, pooled over walk-forward folds; chance for balanced accuracy is 1/3; "
        "'majority acc' and 'mean MAE' are the naive baselines a model has to beat"
    )
    for r in results:
        m = r.metrics
        table.add_row(
            r.symbol,
            str(r.rows) if r.rows else "-",
            _fmt(m.get("direction.balanced_accuracy")),
            _fmt(m.get("direction.accuracy")),
            _fmt(m.get("direction.baseline_accuracy")),
            _fmt(m.get("position_size.mae")),
            _fmt(m.get("position_size.baseline_mae")),
            f"{r.seconds:.1f}",
            r.node or "-",
            r.version if r.ok else "[red]FAILED[/red] (reason below)",
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
