"""A self-contained HTML report for one model package: tables, plots and honest caveats.

The input is plain data (:class:`ReportData`), so ``quantrain report PACKAGE`` can rebuild the
report from a package's files at any time. The output is one HTML file with inline CSS and
every plot embedded as ``data:image/png;base64,...``: no JavaScript, no external URLs, and the
same bytes for the same input (no generation timestamp, PNG metadata stripped).

Plots are drawn with Matplotlib's Agg canvas, chosen explicitly per figure
(:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`): ``pyplot`` is never imported, so
the process-wide backend is left alone and no figure is registered anywhere. Each plot is
drawn inside :func:`matplotlib.rc_context` starting from Matplotlib's defaults, so the caller's
style neither leaks into the report nor is changed by it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from quantrain.evaluate.backtest import METRIC_KEYS
from quantrain.evaluate.metrics import KEY_METRIC, higher_is_better
from quantrain.fsmodes import as_umask_allows

__all__ = ["DPI", "ReportData", "plot_png", "render_html", "write_report"]

#: Resolution of every embedded plot; with the figure sizes below a report is a few hundred KB.
DPI = 100
#: The report's file name inside a package.
REPORT_FILE = "report.html"
#: Features shown per head in the importance plot.
TOP_FEATURES = 20
#: What a missing plot or table says instead.
NOT_AVAILABLE = "not available for this package"

#: Matplotlib settings applied (on top of Matplotlib's defaults) while a plot is drawn.
_RC: dict[str, Any] = {
    "timezone": "UTC",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
}

_COLORS = {
    "model": "#1f77b4",
    "buy_and_hold": "#ff7f0e",
    "flat": "#7f7f7f",
    "random": "#2ca02c",
    "baseline": "#d62728",
}
_CLASS_COLORS = ("#d62728", "#7f7f7f", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b", "#e377c2")

#: Backtest metric rows in display order, with how each is formatted.
_PERCENT_METRICS = frozenset(
    {
        "total_return",
        "annual_return",
        "max_drawdown",
        "hit_rate",
        "exposure",
        "avg_win",
        "avg_loss",
        "excess_over_buy_and_hold",
    }
)
_RATIO_METRICS = frozenset(
    {"sharpe", "sortino", "sharpe_period", "profit_factor", "turnover", "balanced_accuracy"}
)
_COUNT_METRICS = frozenset({"trades"})
_BACKTEST_ORDER = METRIC_KEYS
_METRIC_LABELS = {
    "total_return": "Total return",
    "annual_return": "Annual return",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "sharpe_period": "Sharpe over the span",
    "days": "Days",
    "excess_over_buy_and_hold": "Return over buy and hold",
    "balanced_accuracy": "Balanced accuracy (direction)",
    "max_drawdown": "Max drawdown",
    "hit_rate": "Hit rate",
    "profit_factor": "Profit factor",
    "avg_win": "Average win",
    "avg_loss": "Average loss",
    "trades": "Trades",
    "exposure": "Exposure",
    "turnover": "Turnover",
}
_STRATEGY_ORDER = ("model", "buy_and_hold", "flat", "random_median")
_STRATEGY_LABELS = {
    "model": "Model",
    "buy_and_hold": "Buy &amp; hold",
    "flat": "Flat",
    "random_median": "Random (median)",
}
#: Fold-table columns that describe the fold rather than score a head.
_FOLD_INFO = ("fold", "train_rows", "test_rows", "purged", "embargoed", "test_start", "test_end")


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, as plain data read back from a package's files.

    ``folds`` rows carry ``fold``, ``train_rows``, ``test_rows``, ``test_start``, ``test_end``
    and per-head metrics named ``head.metric`` (e.g. ``direction.balanced_accuracy``); a
    ``head.baseline_<metric>`` or ``head.chance`` column is drawn as that head's baseline.
    """

    title: str
    summary: dict[str, Any]
    folds: list[dict[str, Any]]
    backtest: dict[str, dict[str, float | None]]
    random_percentile: float | None
    equity: pd.DataFrame
    confusion: dict[str, Any] | None
    calibration: dict[str, Any] | None
    importance: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    verdict: str = ""
    intervals: dict[str, dict[str, float]] = field(default_factory=dict)
    holdout: dict[str, Any] | None = None


# ------------------------------------------------------------------------------- public API


def write_report(data: ReportData, path: Path) -> Path:
    """Write the report and return the file written.

    ``path`` ending in ``.html``/``.htm`` is the file itself; anything else is a directory
    (a package's, typically), created if needed, that receives ``report.html``. The file is
    replaced atomically, so a reader never sees half a report.
    """
    path = Path(path)
    target = path if path.suffix.lower() in (".html", ".htm") else path / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(data)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        as_umask_allows(Path(tmp))  # mkstemp made it 0600
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def render_html(data: ReportData) -> str:
    """The whole report as one self-contained HTML document (deterministic for equal input)."""
    title = _esc(data.title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{title}</h1>",
        _verdict_section(data.verdict, data.intervals, data.holdout),
        _notes_section(data.notes),
        _section("Summary", _summary_table(data.summary)),
        _section(
            "Backtest (out of sample)",
            _percentile_line(data.random_percentile),
            _backtest_table(data.backtest),
            _figure(
                "Equity and drawdown",
                _equity_png(data.equity),
                "Equity of the model against buy-and-hold, flat and the random-strategy band "
                "(5th to 95th percentile shaded, median dashed); drawdown below.",
            ),
        ),
        _section(
            "Walk-forward folds",
            _fold_table(data.folds),
            _figure(
                "Fold metrics",
                _folds_png(data.folds),
                "Each head's key metric on every test fold; the red ticks are the baseline or "
                "chance level the head has to beat.",
            ),
        ),
        _section(
            "Direction head",
            _figure(
                "Confusion matrix",
                _confusion_png(data.confusion),
                "Out-of-sample counts; colour is the share of the true class.",
            ),
            _figure(
                "Calibration",
                _calibration_png(data.calibration),
                "Observed frequency against mean predicted probability per bin; "
                "a calibrated class lies on the diagonal.",
            ),
        ),
        _section(
            "Feature importance",
            _figure(
                "Feature importance",
                _importance_png(data.importance),
                f"Top {TOP_FEATURES} features per head.",
            ),
        ),
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(p for p in parts if p)


def plot_png(fig: Figure, *, dpi: int = DPI) -> bytes:
    """Render ``fig`` with the Agg canvas to PNG bytes, then release it.

    PNG metadata (Matplotlib's ``Software`` tag) is dropped so equal figures give equal bytes.
    A figure made with ``pyplot`` is also closed there, so nothing stays registered.
    """
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    try:
        with _style():
            fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        _close(fig)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------- styling


@contextmanager
def _style() -> Iterator[None]:
    """Matplotlib's defaults plus :data:`_RC` inside, the caller's rcParams restored after."""
    with mpl.rc_context():
        mpl.rcdefaults()
        mpl.rcParams.update(cast(Any, _RC))  # keys are checked by Matplotlib at runtime
        yield


def _new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _close(fig: Figure) -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    fig.clear()


def _drawn(draw: Callable[[], Figure | None]) -> bytes | None:
    """PNG bytes of the figure ``draw`` makes (under the report style), or None for no plot."""
    with _style():
        fig = draw()
        return None if fig is None else plot_png(fig)


# -------------------------------------------------------------------------------------- plots


def _equity_png(equity: pd.DataFrame | None) -> bytes | None:
    if equity is None or equity.empty or "model" not in equity.columns:
        return None
    frame = equity
    if "timestamp" in frame.columns:
        stamps = pd.to_datetime(frame["timestamp"], utc=True)
    else:
        stamps = pd.Series(pd.to_datetime(frame.index, utc=True), index=frame.index)
    x = stamps.dt.tz_convert(None).to_numpy()

    def column(name: str) -> np.ndarray | None:
        if name not in frame.columns:
            return None
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        return values if np.isfinite(values).any() else None

    def draw() -> Figure:
        fig = _new_figure(10, 5.6)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        low, mid, high = column("random_p05"), column("random_p50"), column("random_p95")
        if low is not None and high is not None:
            top.fill_between(
                x, low, high, color=_COLORS["random"], alpha=0.15, lw=0, label="random p05–p95"
            )
        if mid is not None:
            top.plot(x, mid, color=_COLORS["random"], lw=1, ls="--", label="random median")
        for name, label, width in (
            ("flat", "flat", 1.0),
            ("buy_and_hold", "buy & hold", 1.2),
            ("model", "model", 1.6),
        ):
            values = column(name)
            if values is not None:
                top.plot(x, values, color=_COLORS[name], lw=width, label=label)
        top.axhline(1.0, color="black", lw=0.6, alpha=0.5)
        top.set_ylabel("equity (start = 1)")
        top.set_title("Equity")
        top.legend(loc="upper left", ncols=5)
        for name, label in (("buy_and_hold", "buy & hold"), ("model", "model")):
            values = column(name)
            if values is None:
                continue
            drawdown = 100.0 * (values / np.fmax.accumulate(values) - 1.0)
            bottom.plot(x, drawdown, color=_COLORS[name], lw=1, label=label)
            if name == "model":
                bottom.fill_between(x, drawdown, 0.0, color=_COLORS[name], alpha=0.2, lw=0)
        bottom.set_ylabel("drawdown (%)")
        bottom.set_xlabel("time (UTC)")
        bottom.legend(loc="lower left", ncols=2)
        locator = AutoDateLocator()
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        return fig

    return _drawn(draw)


def _fold_heads(folds: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """``{head: {metric: per-fold values}}`` from the ``head.metric`` columns of the folds."""
    columns: list[str] = []
    for row in folds:
        for key, value in row.items():
            if key in _FOLD_INFO or key in columns or not _is_number(value):
                continue
            columns.append(key)
    heads: dict[str, dict[str, list[float]]] = {}
    for key in columns:
        head, _, metric = key.rpartition(".")
        heads.setdefault(head, {})[metric] = [_as_float(row.get(key)) for row in folds]
    return heads


def _key_and_baseline(metrics: dict[str, list[float]]) -> tuple[str | None, str | None]:
    scores = [m for m in metrics if not (m.startswith("baseline") or m == "chance")]
    if not scores:
        return None, None
    key = next((m for m in scores if m in KEY_METRIC.values()), scores[0])
    for candidate in (f"baseline_{key}", "chance"):
        if candidate in metrics:
            return key, candidate
    return key, next((m for m in metrics if m.startswith("baseline")), None)


def _folds_png(folds: list[dict[str, Any]]) -> bytes | None:
    heads = {
        head: (metrics, *_key_and_baseline(metrics)) for head, metrics in _fold_heads(folds).items()
    }
    heads = {head: entry for head, entry in heads.items() if entry[1] is not None}
    if not heads:
        return None
    labels = [str(row.get("fold", i)) for i, row in enumerate(folds)]
    positions = np.arange(len(folds), dtype=np.float64)

    def draw() -> Figure:
        ncols = min(len(heads), 3)
        nrows = math.ceil(len(heads) / ncols)
        fig = _new_figure(10, 3.2 * nrows)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, (head, (metrics, key, baseline)) in zip(axes, heads.items(), strict=False):
            assert key is not None
            values = np.asarray(metrics[key], dtype=np.float64)
            ax.bar(positions, values, width=0.6, color=_COLORS["model"], label=key)
            if len(folds) <= 12:
                for x, v in zip(positions, values, strict=True):
                    if np.isfinite(v):
                        ax.annotate(
                            f"{v:.3g}",
                            (x, v),
                            xytext=(0, 2),
                            textcoords="offset points",
                            ha="center",
                            va="bottom",
                            fontsize=7,
                        )
            base = np.full(len(folds), np.nan)
            if baseline is not None:
                base = np.asarray(metrics[baseline], dtype=np.float64)
                ax.hlines(
                    base,
                    positions - 0.4,
                    positions + 0.4,
                    colors=_COLORS["baseline"],
                    lw=2,
                    label=baseline,
                )
            direction = _direction(key)
            ax.set_title(f"{head or 'model'}: {key}{direction}")
            ax.set_xticks(positions, labels)
            ax.set_xlabel("fold")
            drawn = values if baseline is None else np.concatenate([values, base])
            drawn = drawn[np.isfinite(drawn)]
            if drawn.size and drawn.min() >= 0 and drawn.max() > 0:
                ax.set_ylim(0, 1.35 * drawn.max())  # headroom for the legend above the bars
                ax.legend(loc="upper center", ncols=2)
            else:
                ax.legend(loc="best")
        for ax in axes[len(heads) :]:
            ax.set_visible(False)
        return fig

    return _drawn(draw)


def _confusion_png(confusion: dict[str, Any] | None) -> bytes | None:
    if not confusion or not confusion.get("matrix"):
        return None
    matrix = np.asarray(confusion["matrix"], dtype=np.float64)
    classes = [str(c) for c in confusion.get("classes") or range(len(matrix))]
    if matrix.ndim != 2 or matrix.shape != (len(classes), len(classes)):
        raise ValueError(
            f"confusion matrix must be {len(classes)}×{len(classes)} for classes {classes}; "
            f"got shape {matrix.shape}"
        )
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)

    def draw() -> Figure:
        fig = _new_figure(5.2, 4.4)
        ax = fig.subplots()
        image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.grid(False)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(
                    j,
                    i,
                    f"{round(matrix[i, j]):,}\n{share[i, j]:.0%}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if share[i, j] > 0.55 else "black",
                )
        ticks = np.arange(len(classes))
        ax.set_xticks(ticks, classes)
        ax.set_yticks(ticks, classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"Confusion matrix ({int(matrix.sum()):,} rows)")
        fig.colorbar(image, ax=ax, label="share of true class", shrink=0.8)
        return fig

    return _drawn(draw)


def _calibration_png(calibration: dict[str, Any] | None) -> bytes | None:
    if not calibration:
        return None
    bins = np.asarray(calibration.get("bins") or [], dtype=np.float64)
    observed = calibration.get("observed") or {}
    predicted = calibration.get("predicted") or {}
    counts = calibration.get("counts") or {}
    classes = [str(c) for c in calibration.get("classes") or observed]
    classes = [c for c in classes if observed.get(c) is not None and len(observed[c])]
    if not classes or bins.size == 0:
        return None
    step = float(np.median(np.diff(bins))) if bins.size > 1 else 0.1

    def series(source: dict[str, Any], cls: str, default: np.ndarray) -> np.ndarray:
        values = source.get(cls)
        if values is None or len(values) != bins.size:
            return default
        return np.asarray(values, dtype=np.float64)

    def draw() -> Figure:
        fig = _new_figure(6.4, 5.4)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        top.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="perfect")
        width = 0.8 * step / len(classes)
        for k, cls in enumerate(classes):
            color = _CLASS_COLORS[k % len(_CLASS_COLORS)]
            n = series(counts, cls, np.full(bins.size, np.nan))
            x = series(predicted, cls, bins)
            y = series(observed, cls, np.full(bins.size, np.nan))
            keep = np.isfinite(x) & np.isfinite(y) & ~(np.isfinite(n) & (n <= 0))
            top.plot(x[keep], y[keep], marker="o", ms=4, lw=1.4, color=color, label=cls)
            offset = (k - (len(classes) - 1) / 2) * width
            bottom.bar(bins + offset, np.nan_to_num(n), width=width, color=color, label=cls)
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("observed frequency")
        top.set_title("Reliability per class")
        top.legend(loc="upper left")
        bottom.set_xlabel("predicted probability")
        bottom.set_ylabel("rows")
        return fig

    return _drawn(draw)


def _importance_column(frame: pd.DataFrame) -> str | None:
    for name in ("mean_abs_shap", "importance"):
        if name in frame.columns:
            return name
    numeric = [
        c for c in frame.columns if c != "feature" and pd.api.types.is_numeric_dtype(frame[c])
    ]
    return str(numeric[0]) if numeric else None


def _importance_png(importance: dict[str, pd.DataFrame] | None) -> bytes | None:
    tops: dict[str, tuple[str, list[str], np.ndarray]] = {}
    for head, frame in (importance or {}).items():
        if frame is None or frame.empty:
            continue
        value = _importance_column(frame)
        if value is None:
            continue
        names = frame["feature"] if "feature" in frame.columns else pd.Series(frame.index)
        table = pd.DataFrame(
            {
                "feature": names.astype(str).to_numpy(),
                "value": pd.to_numeric(frame[value], errors="coerce").to_numpy(),
            }
        ).dropna()
        table = table.sort_values("value", ascending=False, kind="mergesort").head(TOP_FEATURES)
        if not table.empty:
            tops[head] = (value, table["feature"].tolist(), table["value"].to_numpy(np.float64))
    if not tops:
        return None

    def draw() -> Figure:
        ncols = min(len(tops), 2)
        nrows = math.ceil(len(tops) / ncols)
        longest = max(len(names) for _, names, _ in tops.values())
        fig = _new_figure(10, nrows * (0.9 + 0.19 * longest))
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, (head, (value, names, values)) in zip(axes, tops.items(), strict=False):
            positions = np.arange(len(names))
            ax.barh(positions, values, color=_COLORS["model"], height=0.7)
            ax.set_yticks(positions, [_shorten(n, 32) for n in names])
            ax.invert_yaxis()
            ax.set_xlabel(value)
            ax.set_title(f"{head}: top {len(names)}")
            ax.grid(axis="y", visible=False)
        for ax in axes[len(tops) :]:
            ax.set_visible(False)
        return fig

    return _drawn(draw)


# --------------------------------------------------------------------------------- HTML parts


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _section(heading: str, *parts: str) -> str:
    body = "\n".join(p for p in parts if p)
    return f"<section>\n<h2>{_esc(heading)}</h2>\n{body}\n</section>"


def _not_available(what: str) -> str:
    return f'<p class="na">{_esc(what)}: {NOT_AVAILABLE}.</p>'


def _figure(what: str, png: bytes | None, caption: str) -> str:
    if png is None:
        return _not_available(what)
    payload = base64.b64encode(png).decode("ascii")
    return (
        f'<figure>\n<img src="data:image/png;base64,{payload}" alt="{_esc(what)}">\n'
        f"<figcaption>{_esc(caption)}</figcaption>\n</figure>"
    )


def _notes_section(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "\n".join(f"<li>{_esc(note)}</li>" for note in notes)
    return f'<section class="notes">\n<h2>Caveats</h2>\n<ul>\n{items}\n</ul>\n</section>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """Cells arrive already escaped; the first column is a row header."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    klass = f' class="{css}"' if css else ""
    return (
        f'<div class="scroll"><table{klass}>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _summary_table(summary: dict[str, Any]) -> str:
    if not summary:
        return _not_available("Summary")
    rows = [(_esc(_label(key)), _esc(_format_value(value))) for key, value in summary.items()]
    return _table(("Field", "Value"), rows, "kv")


def _verdict_section(
    verdict: str, intervals: dict[str, dict[str, float]], holdout: dict[str, Any] | None
) -> str:
    """What a bot would have earned, first: the verdict, its intervals and the holdout."""
    if not verdict:
        return ""
    rows = [
        [
            _esc(_METRIC_LABELS.get(name, name.replace("_", " "))),
            _esc(_format_metric(name, interval.get("estimate"))),
            _esc(
                f"{_format_metric(name, interval.get('low'))} … "
                f"{_format_metric(name, interval.get('high'))}"
            ),
        ]
        for name, interval in intervals.items()
    ]
    parts = [
        f"<p><strong>{_esc(verdict)}</strong></p>",
        "<p>Out of sample, after costs, filled as the package's policy fills; intervals are "
        f"{_esc(_level(intervals))} block-bootstrap intervals over the out-of-sample bars. "
        "This is a backtest of the past, not a forecast: an edge here is necessary, not "
        "sufficient.</p>",
        _table(("Metric", "Value", "Interval"), rows, "num") if rows else "",
    ]
    if holdout and holdout.get("rows"):
        parts.append(
            f"<p>Untouched holdout ({_esc(holdout.get('start'))} to {_esc(holdout.get('end'))}, "
            f"{int(holdout['rows'])} rows, never seen by tuning or early stopping): "
            f"{_esc(holdout.get('verdict', 'no backtest'))}</p>"
        )
    elif holdout:
        parts.append(f"<p>{_esc(holdout.get('note', ''))}</p>")
    return _section("Verdict", *(p for p in parts if p))


def _level(intervals: dict[str, dict[str, float]]) -> str:
    levels = {interval.get("level") for interval in intervals.values()}
    level = next(iter(levels)) if len(levels) == 1 else None
    return f"{float(level):.0%}" if level is not None else "bootstrap"


def _percentile_line(percentile: float | None) -> str:
    if percentile is None or not _is_number(percentile) or not math.isfinite(float(percentile)):
        return _not_available("Percentile among random strategies")
    return (
        "<p>The model's total return is at the "
        f"<strong>{float(percentile):.1f}th percentile</strong> of the random strategies "
        "(50 is what chance gives on average).</p>"
    )


def _backtest_table(backtest: dict[str, dict[str, float | None]]) -> str:
    strategies = [s for s in _STRATEGY_ORDER if backtest.get(s)]
    strategies += [s for s in backtest if s not in _STRATEGY_ORDER and backtest[s]]
    if not strategies:
        return _not_available("Backtest metrics")
    metrics = [m for m in _BACKTEST_ORDER if any(m in backtest[s] for s in strategies)]
    for s in strategies:
        metrics += [m for m in backtest[s] if m not in metrics]
    header = ["Metric"] + [_STRATEGY_LABELS.get(s, _esc(s)) for s in strategies]
    rows = [
        [_esc(_METRIC_LABELS.get(m, m))]
        + [_esc(_format_metric(m, backtest[s].get(m))) for s in strategies]
        for m in metrics
    ]
    return _table(header, rows, "num")


def _fold_table(folds: list[dict[str, Any]]) -> str:
    if not folds:
        return _not_available("Fold table")
    columns = [c for c in _FOLD_INFO if any(c in row for row in folds)]
    for row in folds:
        columns += [k for k in row if k not in columns]
    rows = [[_esc(_format_fold_cell(c, row.get(c))) for c in columns] for row in folds]
    header = [_esc(c).replace(".", ".<wbr>") for c in columns]
    return _table(header, rows, "num folds")


# --------------------------------------------------------------------------------- formatting


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _as_float(value: object) -> float:
    return float(value) if _is_number(value) else math.nan  # type: ignore[arg-type]


def _label(key: str) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _direction(metric: str) -> str:
    try:
        return " (higher is better)" if higher_is_better(metric) else " (lower is better)"
    except ValueError:
        return ""


def _format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return "—" if math.isnan(value) else f"{float(value):.6g}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return ", ".join(_format_value(v) for v in items)
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _format_metric(metric: str, value: object) -> str:
    if not _is_number(value):
        return "—"
    v = float(value)  # type: ignore[arg-type]
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if metric in _PERCENT_METRICS:
        return f"{v * 100:.2f}%"
    if metric in _RATIO_METRICS:
        return f"{v:.2f}"
    if metric in _COUNT_METRICS:
        return f"{round(v):,}"
    return f"{v:.4g}"


def _format_stamp(value: Any) -> str:
    """``2026-01-21 20:00 UTC`` for a timestamp (or its ISO text); anything else as is."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return _format_value(value)
    if stamp is pd.NaT:
        return "—"
    zone = ""
    if stamp.tzinfo is not None:
        stamp, zone = stamp.tz_convert("UTC"), " UTC"
    pattern = "%Y-%m-%d %H:%M:%S" if stamp.second or stamp.microsecond else "%Y-%m-%d %H:%M"
    return stamp.strftime(pattern) + zone


def _format_fold_cell(column: str, value: Any) -> str:
    if column in ("test_start", "test_end") and value is not None:
        return _format_stamp(value)
    if column in ("fold", "train_rows", "test_rows", "purged", "embargoed") and _is_number(value):
        return f"{int(value):,}" if column != "fold" else str(int(value))
    if isinstance(value, float | np.floating):
        return "—" if math.isnan(value) else f"{float(value):.4f}"
    return _format_value(value)


_CSS = """
body{margin:0;background:#f6f7f9;color:#1d2330;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1060px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:22px;margin:0 0 16px;word-break:break-word}
h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #dde1e7}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e6e9ee;text-align:left;vertical-align:top}
thead th{background:#eef1f5;font-weight:600}
table.num td:not(:first-child),table.num th:not(:first-child){text-align:right;
font-variant-numeric:tabular-nums}
table.kv td:first-child{font-weight:600;white-space:nowrap}
table.folds{font-size:12px}
table.folds td{white-space:nowrap;padding:4px 8px}
.scroll{overflow-x:auto}
figure{margin:12px 0 20px}
img{display:block;max-width:100%;height:auto;border:1px solid #e6e9ee}
figcaption{font-size:12px;color:#5a6270;margin-top:4px}
.na{color:#7a5c00;background:#fff8e1;border-left:3px solid #f0c000;padding:6px 10px}
.notes{background:#fdf3f2;border-left:3px solid #d62728;padding:2px 14px 6px}
.notes h2{border:0;margin-top:10px}
""".strip()
