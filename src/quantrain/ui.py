"""How results look in a terminal: rich tables and progress, nothing else.

Console markup is off: symbols, paths and error messages come from users' files and may hold
``[...]`` (a file named ``x[/red].csv``). Styling is explicit, through :class:`rich.text.Text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

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
from rich.text import Text

from quantrain.preflight import JobPlan

if TYPE_CHECKING:  # types only: the serving install's commands (verify, list) load no trainer
    from quantrain.data import DataSource, ValidationReport
    from quantrain.pipeline import SymbolResult
    from quantrain.store import VersionInfo
    from quantrain.tuning.search import SearchProgress, TuneOutcome

#: Tables are wide; piped output (CI logs, files) gets room instead of rich's 80-column default.
PIPED_WIDTH = 160
out = Console(markup=False)
if not out.is_terminal:
    out = Console(width=PIPED_WIDTH, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False)


def status_word(ok: bool, good: str = "ok", bad: str = "FAILED") -> Text:
    """``ok`` in green or ``FAILED`` in red."""
    return Text(good, style="green") if ok else Text(bad, style="red")


def failure_line(who: str, why: str) -> Text:
    """``SYMBOL failed: why`` with the label in red; ``why`` printed as written."""
    return Text.assemble((f"{who} failed:", "red"), f" {why}")


def refusal_line(why: str) -> Text:
    return Text.assemble(("refused", "red"), f" {why}")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


#: Per-head columns of the summary: (metric key suffix, column label).
_CLASSIFIER_COLUMNS = (
    ("balanced_accuracy", "bal.acc"),
    ("accuracy", "acc"),
    ("baseline_accuracy", "majority acc"),
)
_REGRESSOR_COLUMNS = (("mae", "MAE"), ("baseline_mae", "mean MAE"))
#: With more heads than this the table keeps one column per head (see ``_head_columns``).
_WIDE_HEADS = 3
_SHORT = {
    "direction": "dir",
    "position_size": "size",
    "signal_quality": "quality",
    "tp_level": "TP",
    "volatility_regime": "regime",
    "stop_loss_q50": "SL q50",
    "stop_loss_q90": "SL q90",
    "time_to_hit": "TTH",
}


def _head_columns(results: list[SymbolResult]) -> list[tuple[tuple[str, ...], str]]:
    """(metric keys, label) per column for every head the results report, in order.

    Up to ``_WIDE_HEADS`` heads get a column per metric and baseline; a larger suite (``full``)
    gets one column per head so the table still fits: balanced accuracy for classifiers
    (chance is 1/classes), relative MAE (MAE / the mean predictor's MAE) for regressors.
    """
    heads: dict[str, bool] = {}
    for r in results:
        for key in r.metrics:
            head, _, metric = key.rpartition(".")
            heads.setdefault(head, metric in ("balanced_accuracy", "accuracy"))
    columns: list[tuple[tuple[str, ...], str]] = []
    for head, classifier in heads.items():
        short = _SHORT.get(head, head)
        if len(heads) > _WIDE_HEADS:
            if classifier:
                columns.append(((f"{head}.balanced_accuracy",), f"{short} bal.acc"))
            else:
                columns.append(((f"{head}.mae", f"{head}.baseline_mae"), f"{short} rel.MAE"))
            continue
        for metric, label in _CLASSIFIER_COLUMNS if classifier else _REGRESSOR_COLUMNS:
            columns.append(((f"{head}.{metric}",), f"{short} {label}"))
    return columns


def summary_table(results: Iterable[SymbolResult], title: str = "run summary") -> Table:
    """One row per symbol: rows, out-of-sample metrics beside their baselines, the version."""
    rows = list(results)
    metric_columns = _head_columns(rows)
    table = Table(title=title)
    table.add_column("symbol", no_wrap=True)
    table.add_column("rows", justify="right")
    for _, label in metric_columns:
        table.add_column(label, justify="right")
    traded = any(r.backtest for r in rows)
    if traded:
        for label in ("OOS return", "B&H return", "hold out return"):
            table.add_column(label, justify="right")
        table.add_column("verdict", no_wrap=True)
    table.add_column("secs", justify="right")
    table.add_column("node", no_wrap=True)
    table.add_column("package version / error", no_wrap=True, min_width=23)
    table.caption = (
        "out-of-sample, pooled over walk-forward folds; chance for balanced accuracy is "
        "1/classes; 'majority acc' and 'mean MAE' are the naive baselines a model has to beat "
        "('rel.MAE' = MAE / mean MAE: below 1 beats it); "
        "returns are after costs, fills at the next bar's open; 'hold out' is the return on "
        "the untouched final segment; the verdict lines below say whether an edge survives "
        "costs (the report adds random strategies of the same activity)"
    )
    for r in rows:
        table.add_row(
            r.symbol,
            str(r.rows) if r.rows else "-",
            *(_cell(r, keys) for keys, _ in metric_columns),
            *(_backtest_cells(r) if traded else ()),
            f"{r.seconds:.1f}",
            r.node or "-",
            r.version if r.ok else Text.assemble(("FAILED", "red"), " (reason below)"),
        )
    return table


def _cell(r: SymbolResult, keys: tuple[str, ...]) -> str:
    """One metric, or (two keys) the first relative to its baseline: below 1 beats it."""
    values = [r.metrics.get(k) for k in keys]
    if len(values) == 1:
        return _fmt(values[0])
    value, baseline = values
    return "-" if value is None or not baseline else _fmt(value / baseline, 2)


def _backtest_cells(r: SymbolResult) -> tuple[str, str, str, str | Text]:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:+.1%}"

    return (
        pct(r.backtest.get("total_return")),
        pct(r.backtest.get("buy_and_hold_return")),
        pct(r.holdout_return),
        short_verdict(r.verdict),
    )


def short_verdict(verdict: str | None) -> str | Text:
    """The verdict's first words, for a table cell."""
    if not verdict:
        return "-"
    if verdict.startswith("edge"):
        return Text("edge", style="green")
    return "flat" if verdict.startswith("no edge shown") else "no edge"


def print_verdicts(results: Iterable[SymbolResult]) -> None:
    """Each symbol's verdict in full: what the bot would have earned after costs."""
    for r in results:
        if r.ok and r.verdict:
            out.print(f"{r.symbol}: {r.verdict}", soft_wrap=True, highlight=False)


def print_verdict_block(evaluation: Mapping[str, Any], holdout: Mapping[str, Any] | None) -> None:
    """A package's verdict first, then what its untouched holdout said."""
    verdict = evaluation.get("verdict")
    if verdict:
        out.print(Text.assemble(("verdict", "bold"), f": {verdict}"), soft_wrap=True)
    if holdout and holdout.get("rows"):
        said = holdout.get("verdict") or "no backtest"
        out.print(
            f"untouched holdout ({holdout.get('start')} to {holdout.get('end')}, "
            f"{holdout['rows']} rows): {said}",
            highlight=False,
            soft_wrap=True,
        )
    elif holdout:
        out.print(str(holdout.get("note", "")), highlight=False, soft_wrap=True)


def backtest_table(backtest: dict[str, dict[str, float | None]]) -> Table:
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
        "sharpe_period",
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
            out.print(failure_line(r.symbol, str(r.error)), soft_wrap=True)
        elif r.promotion:
            out.print(r.promotion, soft_wrap=True, highlight=False)


def validation_table(reports: Iterable[ValidationReport]) -> Table:
    table = Table(title="data validation")
    columns = ("file", "rows", "timeframe", "first", "last", "gaps", "missing bars", "closed")
    for column in (*columns, "repairs"):
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
            rep.closed_text().removeprefix("closed sessions: ") or "-",
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
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self._task: TaskID | None = None
        self._searches: dict[tuple[str, str], TaskID] = {}

    def __enter__(self) -> SymbolProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def start(self, sources: list[DataSource]) -> None:
        self._task = self._bar.add_task(f"training {len(sources)} symbols", total=len(sources))

    def done(self, result: SymbolResult) -> None:
        status = status_word(result.ok, bad="failed")
        self._bar.console.print(
            Text.assemble(f"{result.symbol}: ", status, f" in {result.seconds:.1f}s")
        )
        if self._task is not None:
            self._bar.advance(self._task)

    def search(self, progress: SearchProgress) -> None:
        """One line per head's search: trials done of total, running, cut early, best so far."""
        best = "-" if progress.best is None else f"{progress.best:.4f}"
        description = (
            f"tune {progress.symbol}/{progress.head}: {progress.running} running, "
            f"{progress.early_stopped} stopped early, best {progress.metric} {best}"
        )
        key = (progress.symbol, progress.head)
        if key not in self._searches:
            self._searches[key] = self._bar.add_task(description, total=progress.total)
        self._bar.update(self._searches[key], description=description, completed=progress.done)

    def tuned(self, outcome: TuneOutcome) -> None:
        """A symbol's searches are over: its best score per head, printed above the bars."""
        for head, entry in outcome.summary().items():
            self._bar.console.print(
                f"{outcome.symbol}/{head}: best {entry['metric']} {entry['score']:.4f} "
                f"(trial {entry['best_trial']}; {entry['completed']} completed, "
                f"{entry['early-stopped']} stopped early, {entry['error']} failed)",
                highlight=False,
            )
        for key in [k for k in self._searches if k[0] == outcome.symbol]:
            self._bar.remove_task(self._searches.pop(key))


def tuning_table(outcomes: Mapping[str, TuneOutcome], title: str = "tuning summary") -> Table:
    """One row per symbol and head: the best out-of-sample score and params, trial counts."""
    table = Table(title=title)
    for column in ("symbol", "head", "family", "metric", "best", "trials", "done", "cut early"):
        table.add_column(column, justify="right" if column in ("best", "trials") else "left")
    table.add_column("secs", justify="right")
    table.add_column("best params")
    table.caption = (
        "best = mean out-of-sample score over the walk-forward folds, among trials that ran "
        "every fold; 'cut early' = stopped by ASHA after fewer folds"
    )
    for symbol, outcome in sorted(outcomes.items()):
        for head, e in outcome.summary().items():
            params = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in sorted(e["params"].items())
            )
            table.add_row(
                symbol,
                head,
                e["family"],
                e["metric"],
                f"{e['score']:.4f}",
                str(e["trials"]),
                str(e["completed"]),
                str(e["early-stopped"]),
                f"{e['seconds']:.1f}",
                params,
            )
    return table


class RowProgress:
    """A spinner with a row count on stderr, for downloads whose length is not known upfront."""

    def __init__(self, description: str) -> None:
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}: {task.completed} rows", markup=False),
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


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plan_table(plan: JobPlan) -> Table:
    """``--dry-run``: one row per symbol with its rows, timeframe, folds and time estimate."""
    table = Table(title=f"{plan.job.name}: plan (dry run, nothing started)")
    table.add_column("symbol", no_wrap=True)
    for column in ("rows", "timeframe", "usable", "folds", "holdout", "est. time"):
        table.add_column(column, justify="right" if column != "timeframe" else "left")
    table.add_column("fold sizes (train/test)")
    for s in plan.symbols:
        sizes = ", ".join(f"{train}/{test}" for train, test in s.folds) or "-"
        table.add_row(
            s.symbol,
            str(s.rows),
            s.timeframe,
            str(s.usable),
            str(len(s.folds)) if s.folds else "-",
            str(s.holdout) if s.holdout else "-",
            f"{_duration(s.seconds)} ({s.basis})",
            sizes,
        )
    return table


def print_plan(plan: JobPlan) -> None:
    """The dry run's plan: symbols table, heads, store, estimate and notes."""
    out.print(plan_table(plan))
    heads = ", ".join(f"{h.name} ({h.target}, {h.family})" for h in plan.heads)
    out.print(Text.assemble(("heads: ", "bold"), heads), soft_wrap=True)
    out.print(Text.assemble(("store: ", "bold"), plan.store), soft_wrap=True)
    out.print(
        Text.assemble(("estimated time: ", "bold"), f"~{_duration(plan.seconds)} ({plan.basis})"),
        soft_wrap=True,
    )
    for note in plan.notes:
        out.print(Text.assemble(("note: ", "yellow"), note), soft_wrap=True)
    out.print(Text("preflight passed", style="green"))
