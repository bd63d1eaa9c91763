"""How results look in a terminal: rich tables and progress, nothing else.

Console markup is off: symbols, paths and error messages come from users' files and may hold
``[...]`` (a file named ``x[/red].csv``). Styling is explicit, through :class:`rich.text.Text`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleDimensions, JustifyMethod
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

if TYPE_CHECKING:  # types only: the serving install's commands (verify, list) load no trainer
    from quantrain.data import DataSource, ValidationReport
    from quantrain.pipeline import StageEvent, SymbolResult
    from quantrain.preflight import JobPlan
    from quantrain.store import VersionInfo
    from quantrain.store.history import HistoryEntry, VersionDiff
    from quantrain.store.runs import RunInfo
    from quantrain.tuning.search import SearchProgress, TuneOutcome

log = logging.getLogger(__name__)

#: Piped output (CI logs, files) without ``COLUMNS``: room for the summary's key columns
#: instead of rich's 80; a terminal's own width and ``COLUMNS`` always win.
PIPED_WIDTH = 120


class _Stdout(Console):
    """stdout sized at each print: the terminal, else ``COLUMNS``, else ``PIPED_WIDTH``
    (read live, so a test's or a caller's ``COLUMNS`` counts even after import)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._width = options.get("width")  # rich froze COLUMNS at import: read it per print

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size  # the terminal's, or COLUMNS when set
        if self._width is None and not self.is_terminal and not _columns():
            return ConsoleDimensions(PIPED_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def _columns() -> int | None:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


out: Console = _Stdout(markup=False)
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
_HISTORY_LABELS = {
    "backtest.total_return": "OOS return",
    "backtest.sharpe_period": "OOS sharpe",
    "holdout.backtest.total_return": "holdout return",
}
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


@dataclass(eq=False)
class _Column:
    """One table column before it is placed: ``drop`` orders what a narrow terminal leaves
    out first (higher goes first; 0 is never dropped)."""

    header: str
    cells: Sequence[str | Text] = field(default_factory=list)
    drop: int = 0
    justify: JustifyMethod = "left"
    no_wrap: bool = False

    def _texts(self) -> list[str]:
        return [self.header, *(c.plain if isinstance(c, Text) else c for c in self.cells)]

    def min_width(self) -> int:
        """The narrowest this column gets without cutting a word (or, no_wrap, a cell)."""
        if self.no_wrap:
            return self.max_width()
        return max((cell_len(word) for t in self._texts() for word in t.split()), default=1)

    def max_width(self) -> int:
        return max(cell_len(t) for t in self._texts())


def fitted_table(
    columns: Sequence[_Column], width: int, *, title: str, caption: str | None = None
) -> Table:
    """A table of as many of ``columns`` as fit ``width`` with no cell cut: the highest
    ``drop`` goes first (the rightmost of equals); the caption names what was left out.

    Rich would squeeze every column alike (numbers print as ``0…``), so the widths are set
    here: wrapping columns give up room down to their longest word, widest first.
    """
    kept = list(columns)

    def needed(cols: list[_Column]) -> int:
        return sum(c.min_width() + 2 for c in cols) + len(cols) + 1  # padding, borders

    while needed(kept) > width and any(c.drop for c in kept):
        kept.remove(max(reversed(kept), key=lambda c: c.drop))
    widths = [c.max_width() for c in kept]
    minimum = [c.min_width() for c in kept]
    excess = sum(widths) + 3 * len(kept) + 1 - width
    while excess > 0:
        slack = [i for i, w in enumerate(widths) if w > minimum[i]]
        if not slack:
            break
        widths[max(slack, key=lambda i: widths[i])] -= 1
        excess -= 1
    left_out = [c.header for c in columns if all(c is not k for k in kept)]
    notes = [caption] if caption else []
    if left_out:
        notes.append(
            f"left out at {width} columns: {', '.join(left_out)} (a wider terminal or "
            "COLUMNS=200 shows them)"
        )
    table = Table(title=title, caption="; ".join(notes) or None)
    for c, w in zip(kept, widths, strict=True):
        # Below every column's minimum (a tiny terminal) words fold rather than end in "…".
        table.add_column(c.header, justify=c.justify, no_wrap=c.no_wrap, overflow="fold", width=w)
    for row in zip(*(c.cells for c in kept), strict=True):
        table.add_row(*row)
    return table


def _width(width: int | None) -> int:
    return out.width if width is None else width


def summary_table(
    results: Iterable[SymbolResult], title: str = "run summary", *, width: int | None = None
) -> Table:
    """One row per symbol: out-of-sample metrics beside their baselines, the version.

    At a narrow ``width`` the lesser columns go first (node, seconds, rows, plain accuracy,
    the other returns, the baselines): every number shown is whole, and the version id a
    ``promote`` needs is never cut. ``quantrain report`` has every detail.
    """
    rows = list(results)
    metric_columns = _head_columns(rows)
    wide = len({keys[0].rpartition(".")[0] for keys, _ in metric_columns}) > _WIDE_HEADS
    columns = [_Column("symbol", [r.symbol for r in rows], no_wrap=True)]
    columns.append(
        _Column("rows", [str(r.rows) if r.rows else "-" for r in rows], 8, justify="right")
    )
    for i, (keys, label) in enumerate(metric_columns):
        columns.append(
            _Column(
                label,
                [_cell(r, keys) for r in rows],
                _metric_drop(keys, i, wide),
                justify="right",
            )
        )
    if any(r.backtest for r in rows):
        cells = [_backtest_cells(r) for r in rows]
        for i, (label, drop) in enumerate(
            (("OOS return", 3), ("B&H return", 6), ("hold out return", 6))
        ):
            columns.append(_Column(label, [c[i] for c in cells], drop, justify="right"))
        columns.append(_Column("verdict", [c[3] for c in cells], 3, no_wrap=True))
    columns.append(_Column("secs", [f"{r.seconds:.1f}" for r in rows], 9, justify="right"))
    columns.append(_Column("node", [r.node or "-" for r in rows], 10, no_wrap=True))
    columns.append(
        _Column(
            "package version / error",
            [
                r.version or "-" if r.ok else Text.assemble(("FAILED", "red"), " (reason below)")
                for r in rows
            ],
        )
    )
    caption = (
        "out-of-sample, pooled over walk-forward folds; chance for balanced accuracy is "
        "1/classes; 'majority acc' and 'mean MAE' are the naive baselines a model has to beat "
        "('rel.MAE' = MAE / mean MAE: below 1 beats it); "
        "returns are after costs, fills at the next bar's open; 'hold out' is the return on "
        "the untouched final segment; the verdict lines below say whether an edge survives "
        "costs (the report adds random strategies of the same activity)"
    )
    return fitted_table(columns, _width(width), title=title, caption=caption)


def _metric_drop(keys: tuple[str, ...], index: int, wide: bool) -> int:
    """Drop order of a metric column: a head's key metric stays longest, then its baseline,
    then plain accuracy; with one column per head, the later heads go first."""
    metric = keys[0].rpartition(".")[2]
    if wide:  # one column per head
        return 2 if index < 2 else 4 + index
    return {"balanced_accuracy": 2, "mae": 2, "accuracy": 7}.get(metric, 5)


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


def validation_table(reports: Iterable[ValidationReport], *, width: int | None = None) -> Table:
    """One row per data file: the file's name is never cut (a long path folds), times show
    to the minute, and at a narrow width the repairs, then the first/last bars go first."""
    reps = list(reports)
    folders = {rep.source.rpartition("/")[0] for rep in reps}
    shared = folders.pop() if len(folders) == 1 else ""  # then the title names it once

    def when(stamp: object) -> str:
        return "-" if stamp is None else _created(str(stamp).replace(" ", "T"))

    columns = [
        _Column(
            "file",
            [rep.source.removeprefix(f"{shared}/") if shared else rep.source for rep in reps],
        ),
        _Column("rows", [str(rep.rows) for rep in reps], justify="right"),
        _Column("timeframe", [rep.timeframe for rep in reps]),
        _Column("first", [when(rep.first) for rep in reps], 3),
        _Column("last", [when(rep.last) for rep in reps], 3),
        _Column("gaps", [str(rep.gaps) for rep in reps], justify="right"),
        _Column("missing bars", [str(rep.missing_bars) for rep in reps], 1, "right"),
        _Column(
            "closed",
            [rep.closed_text().removeprefix("closed sessions: ") or "-" for rep in reps],
            2,
        ),
        _Column("repairs", ["; ".join(rep.repairs) or "none" for rep in reps], 4),
    ]
    title = f"data validation: {shared}/" if shared else "data validation"
    return fitted_table(columns, _width(width), title=title)


def versions_table(rows: Iterable[VersionInfo], store: str, *, width: int | None = None) -> Table:
    """Complete versions; the version id (what ``promote`` takes) is never cut, and at a
    narrow width the creation time, then the suite, then the metrics are left out."""
    infos = list(rows)
    metrics = [
        ", ".join(
            f"{_metric_label(k)} {val:.3f}"
            for k, val in sorted(v.metrics.items())
            if "baseline" not in k
        )
        or "-"
        for v in infos
    ]
    columns = [
        _Column("symbol", [v.symbol for v in infos], no_wrap=True),
        _Column("suite", [v.suite for v in infos], 5),
        _Column("version", [v.version for v in infos], no_wrap=True),
        _Column("created", [_created(v.created_at) for v in infos], 6),
        _Column("channels", [",".join(v.channels) or "-" for v in infos], 1),
        _Column("key metrics (out of sample)", metrics, 4),
    ]
    return fitted_table(columns, _width(width), title=f"model store {store}")


def _metric_label(key: str) -> str:
    """``direction.balanced_accuracy`` as ``dir bal.acc``: a metric's words stay short."""
    if key in _HISTORY_LABELS:
        return _HISTORY_LABELS[key]
    head, _, metric = key.rpartition(".")
    labels = dict((*_CLASSIFIER_COLUMNS, *_REGRESSOR_COLUMNS))
    return f"{_SHORT.get(head, head)} {labels.get(metric, metric)}".strip()


def _created(stamp: str) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM`` (UTC as written); anything else as it is."""
    text = str(stamp)
    if len(text) >= 16 and text[10] == "T":
        return f"{text[:10]} {text[11:16]}"
    return text


class SymbolProgress:
    """A progress bar over symbols on stderr, a line per running symbol with the stage it is
    in (head and fold), and each symbol printed as it finishes. With ``-v`` (INFO logging)
    every stage's duration is logged as the next one starts."""

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
        self._stages: dict[str, tuple[TaskID, StageEvent]] = {}
        self._finished: set[str] = set()

    def __enter__(self) -> SymbolProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def start(self, sources: list[DataSource]) -> None:
        self._task = self._bar.add_task(f"training {len(sources)} symbols", total=len(sources))

    def stage(self, event: StageEvent) -> None:
        """A symbol entered a stage: its line says which; the stage before it is timed."""
        if event.symbol in self._finished:
            return  # a late event of a symbol already reported
        description = f"  {event.symbol}: {event.stage}"
        if event.symbol in self._stages:
            task, previous = self._stages[event.symbol]
            _log_stage(previous, event.at)
            self._bar.update(task, description=description)
        else:
            task = self._bar.add_task(description, total=None)
        self._stages[event.symbol] = (task, event)

    def done(self, result: SymbolResult) -> None:
        self._finished.add(result.symbol)
        if result.symbol in self._stages:
            task, previous = self._stages.pop(result.symbol)
            _log_stage(previous, time.time())
            self._bar.remove_task(task)
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


def _log_stage(event: StageEvent, ended: float) -> None:
    """``-v``: how long a stage took, from two stamps of the task's process (a symbol's last
    stage ends when the driver hears its result)."""
    log.info("%s: %s took %.1f s", event.symbol, event.stage, max(0.0, ended - event.at))


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

    def note(self, line: str) -> None:
        """A line above the spinner (a retry as it happens), kept after the spinner goes."""
        self._bar.console.print(Text(line, style="yellow"), soft_wrap=True)


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


# -- run history (runs list/show, models history/diff) ---------------------------------------
def _ago(seconds: float | None) -> str:
    return "-" if seconds is None else _duration(seconds)


def runs_table(runs: Iterable[RunInfo], store: str, *, width: int | None = None) -> Table:
    """``runs list``: one row per recorded run, newest first (the run id is never cut)."""
    runs = list(runs)
    columns = [
        _Column("run id", [r.run_id for r in runs], no_wrap=True),
        _Column("job", [r.job for r in runs]),
        _Column("kind", [r.kind for r in runs], 3),
        _Column("started (UTC)", [r.started_at.replace("+00:00", "") for r in runs], 2),
        _Column("ok", [str(r.ok) for r in runs], justify="right"),
        _Column(
            "failed",
            [Text(str(r.failed), style="red") if r.failed else "0" for r in runs],
            justify="right",
        ),
        _Column("duration", [_ago(r.seconds) for r in runs], 1),
    ]
    return fitted_table(columns, _width(width), title=f"runs in {store}")


def _metric_text(metrics: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3f}"
        for k, v in sorted(metrics.items())
        if "baseline" not in k and isinstance(v, int | float) and not isinstance(v, bool)
    )


def run_symbols_table(record: Mapping[str, Any]) -> Table:
    """``runs show``: each symbol's outcome, key metrics and the package it pushed."""
    table = Table(title=f"run {record.get('run_id')}: symbols")
    for column in ("symbol", "status", "rows", "key metrics", "OOS return", "secs"):
        table.add_column(column, justify="right" if column in ("rows", "secs") else "left")
    table.add_column("package / error", no_wrap=True)
    for s in record.get("symbols") or []:
        ok = s.get("status") == "ok"
        total = (s.get("backtest") or {}).get("total_return")
        tuning = s.get("tuning") or {}
        best = ", ".join(
            f"{h}: {e.get('metric')} {e.get('score', 0):.4f}" for h, e in tuning.items()
        )
        package = f"{s.get('suite')}/{s.get('version')}" if s.get("version") else best or "-"
        table.add_row(
            str(s.get("symbol")),
            status_word(ok, bad="failed"),
            str(s.get("rows") or "-"),
            _metric_text(s.get("metrics") or {}) or "-",
            "-" if total is None else f"{total:+.1%}",
            "-" if s.get("seconds") is None else f"{s['seconds']:.1f}",
            package if ok else Text(str(s.get("error") or "?"), style="red"),
        )
    return table


def print_run(record: Mapping[str, Any]) -> None:
    """``runs show``: when and what ran, the symbols, then the resolved configuration."""
    import yaml

    for label, key in (
        ("run", "run_id"),
        ("job", "job"),
        ("kind", "kind"),
        ("started", "started_at"),
        ("finished", "finished_at"),
        ("store", "store"),
        ("quantrain", "quantrain_version"),
    ):
        out.print(Text.assemble((f"{label}: ", "bold"), str(record.get(key, "-"))), soft_wrap=True)
    out.print(Text.assemble(("duration: ", "bold"), _ago(record.get("seconds"))))
    out.print(run_symbols_table(record))
    out.print(Text("config:", style="bold"))
    config = yaml.safe_dump(record.get("config") or {}, sort_keys=True, default_flow_style=False)
    out.print(config.rstrip(), highlight=False, soft_wrap=True)


def history_table(
    entries: list[HistoryEntry], symbol: str, store: str, *, width: int | None = None
) -> Table:
    """``models history``: every version newest first, its metrics, channels and run; at a
    narrow width the run id, rows and later metrics go first, never the version id."""
    keys = list(dict.fromkeys(k for e in entries for k in e.metrics))

    def cell(key: str, e: HistoryEntry) -> str:
        value = e.metrics.get(key)
        if value is None:
            return "-"
        return f"{value:+.1%}" if "return" in key else _fmt(value, 3)

    columns = [
        _Column("version", [e.ref.version for e in entries], no_wrap=True),
        _Column("suite", [e.ref.suite for e in entries], 6),
        _Column("channels", [",".join(e.channels) or "-" for e in entries], 1),
        _Column("run id", [e.run_id or "-" for e in entries], 5, no_wrap=True),
        _Column("rows", ["-" if e.rows is None else str(e.rows) for e in entries], 5, "right"),
        *(
            _Column(_metric_label(k), [cell(k, e) for e in entries], 2 + n // 2, "right")
            for n, k in enumerate(keys)
        ),
    ]
    return fitted_table(
        columns,
        _width(width),
        title=f"{symbol} in {store}, newest first",
        caption="out-of-sample metrics pooled over the walk-forward folds; returns are after "
        "costs; 'holdout' is the untouched final segment",
    )


def diff_tables(found: VersionDiff) -> tuple[Table, Table]:
    """``models diff``: metrics side by side with the change, then the inputs."""
    metrics = Table(title=f"out-of-sample metrics: A = {found.a}, B = {found.b}")
    for column in ("metric", "A", "B", "change (B-A)", "B vs A"):
        metrics.add_column(column, justify="left" if column in ("metric", "B vs A") else "right")
    styles = {"better": "green", "worse": "red"}
    for m in found.metrics:
        metrics.add_row(
            m.metric,
            _fmt(m.a, 4),
            _fmt(m.b, 4),
            "-" if m.change is None else f"{m.change:+.4f}",
            Text(m.verdict, style=styles.get(m.verdict, "")),
        )
    inputs = Table(title="inputs")
    for column in ("what", "A", "B", "changed"):
        inputs.add_column(column)
    for f in found.fields:
        inputs.add_row(f.what, f.a, f.b, Text("yes", style="yellow") if f.changed else "")
    return metrics, inputs
