"""The HTML report: self-contained, every plot a real PNG, text escaped, same bytes every time."""

from __future__ import annotations

import base64
import dataclasses
import io
import re
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from quantrain.evaluate.report import (
    NOT_AVAILABLE,
    ReportData,
    plot_png,
    render_html,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMG_PREFIX = '<img src="data:image/png;base64,'
CLASSES = ["SELL", "HOLD", "BUY"]
BARS_PER_YEAR = 365 * 24

# ----------------------------------------------------------------------------------- helpers


def _metrics(returns: np.ndarray, position: np.ndarray) -> dict[str, float]:
    equity = np.cumprod(1.0 + returns)
    total = float(equity[-1] - 1.0)
    years = len(returns) / BARS_PER_YEAR
    std = returns.std()
    downside = returns[returns < 0].std() if (returns < 0).any() else np.nan
    trades = returns[position != 0]
    wins, losses = trades[trades > 0], trades[trades < 0]
    return {
        "total_return": total,
        "annual_return": float((1.0 + total) ** (1.0 / years) - 1.0),
        "sharpe": float(returns.mean() / std * np.sqrt(BARS_PER_YEAR)) if std > 0 else 0.0,
        "sortino": float(returns.mean() / downside * np.sqrt(BARS_PER_YEAR))
        if np.isfinite(downside) and downside > 0
        else 0.0,
        "max_drawdown": float((equity / np.maximum.accumulate(equity) - 1.0).min()),
        "hit_rate": float(len(wins) / len(trades)) if len(trades) else 0.0,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else float("inf"),
        "avg_win": float(wins.mean()) if len(wins) else 0.0,
        "avg_loss": float(losses.mean()) if len(losses) else 0.0,
        "trades": float(np.count_nonzero(np.diff(position, prepend=0))),
        "exposure": float(np.mean(position != 0)),
        "turnover": float(np.abs(np.diff(position, prepend=0)).sum() / years),
    }


def make_report_data(seed: int = 7, n: int = 2_000, n_random: int = 200) -> ReportData:
    """A plausible package: hourly ETH-BTC, a weakly informative 3-class direction head and a
    return regressor, random-strategy band, five walk-forward folds."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2026-01-01", periods=n, freq="1h", tz="UTC")
    market = rng.normal(0.00005, 0.006, n)
    # A faint edge on a persistent forecast: positions last hours, not single bars.
    noise = np.zeros(n)
    shocks = rng.normal(0, 0.004, n)
    for i in range(1, n):
        noise[i] = 0.9 * noise[i - 1] + shocks[i]
    forecast = 0.08 * market + noise
    position = np.where(np.abs(forecast) > 0.004, np.sign(forecast), 0.0)
    model = position * market - 0.0002 * np.abs(np.diff(position, prepend=0))
    random_pos = rng.choice([-1.0, 0.0, 1.0], size=(n_random, n))
    random_eq = np.cumprod(1.0 + random_pos * market, axis=1)
    model_eq = np.cumprod(1.0 + model)
    equity = pd.DataFrame(
        {
            "timestamp": stamps,
            "model": model_eq,
            "buy_and_hold": np.cumprod(1.0 + market),
            "flat": np.ones(n),
            "random_p05": np.percentile(random_eq, 5, axis=0),
            "random_p50": np.percentile(random_eq, 50, axis=0),
            "random_p95": np.percentile(random_eq, 95, axis=0),
        }
    )
    random_totals = random_eq[:, -1] - 1.0
    median_idx = int(np.argsort(random_totals)[n_random // 2])
    backtest = {
        "model": _metrics(model, position),
        "buy_and_hold": _metrics(market, np.ones(n)),
        "flat": _metrics(np.zeros(n), np.zeros(n)),
        "random_median": _metrics(random_pos[median_idx] * market, random_pos[median_idx]),
    }
    percentile = float(np.mean(random_totals < model_eq[-1] - 1.0) * 100.0)

    n_folds, test_rows = 5, 300
    folds = [
        {
            "fold": k,
            "train_rows": 500 + k * test_rows,
            "test_rows": test_rows,
            "test_start": stamps[500 + k * test_rows].isoformat(),
            "test_end": stamps[500 + (k + 1) * test_rows - 1].isoformat(),
            "direction.balanced_accuracy": float(rng.uniform(0.33, 0.40)),
            "direction.chance": 1.0 / 3.0,
            "return.mae": float(rng.uniform(0.0041, 0.0047)),
            "return.baseline_mae": float(rng.uniform(0.0044, 0.0048)),
        }
        for k in range(n_folds)
    ]

    rows = n_folds * test_rows
    y_true = rng.choice(3, size=rows, p=[0.3, 0.4, 0.3])
    logits = rng.normal(0, 1, (rows, 3))
    logits[np.arange(rows), y_true] += 0.4
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predicted = proba.argmax(axis=1)
    matrix = np.zeros((3, 3), dtype=int)
    np.add.at(matrix, (y_true, predicted), 1)
    edges = np.linspace(0, 1, 11)
    centres = (edges[:-1] + edges[1:]) / 2
    calibration: dict[str, Any] = {
        "classes": CLASSES,
        "bins": centres.tolist(),
        "observed": {},
        "predicted": {},
        "counts": {},
    }
    for c, name in enumerate(CLASSES):
        which = np.clip(np.digitize(proba[:, c], edges) - 1, 0, 9)
        counts = np.bincount(which, minlength=10)
        hits = np.bincount(which, weights=(y_true == c).astype(float), minlength=10)
        sums = np.bincount(which, weights=proba[:, c], minlength=10)
        with np.errstate(invalid="ignore", divide="ignore"):
            calibration["observed"][name] = (hits / counts).tolist()
            calibration["predicted"][name] = (sums / counts).tolist()
        calibration["counts"][name] = counts.tolist()

    features = [f"f{i:02d}_{kind}" for i, kind in enumerate(["ret", "vol", "rsi", "atr"] * 8)]
    importance = {
        head: pd.DataFrame(
            {"feature": features, "mean_abs_shap": np.sort(rng.gamma(2.0, scale, 32))[::-1]}
        )
        for head, scale in (("direction", 0.01), ("return", 0.0003))
    }
    bal_acc = float(np.mean([f["direction.balanced_accuracy"] for f in folds]))
    return ReportData(
        title="ETH-BTC / core / 20261122T061500Z-abc123",
        summary={
            "symbol": "ETH-BTC",
            "suite": "core",
            "version": "20261122T061500Z-abc123",
            "timeframe": "1h",
            "created_at": "2026-11-22T06:15:00+00:00",
            "rows": n,
            "feature_set": "core-v3 (32 features)",
            "code_version": "0.1.0+g1a2b3c4",
        },
        folds=folds,
        backtest=backtest,
        random_percentile=percentile,
        equity=equity,
        confusion={"classes": CLASSES, "matrix": matrix.tolist()},
        calibration=calibration,
        importance=importance,
        notes=[
            f"balanced accuracy {bal_acc:.2f} vs chance 0.33",
            "costs: 2 bp per unit of turnover; no slippage model",
        ],
    )


def _payloads(text: str) -> list[bytes]:
    return [
        base64.b64decode(m, validate=True)
        for m in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    ]


@pytest.fixture(scope="module")
def data() -> ReportData:
    return make_report_data()


@pytest.fixture(scope="module")
def report(data: ReportData) -> str:
    return render_html(data)


# ------------------------------------------------------------------------------------- tests


def test_all_inputs_give_five_readable_plots(report: str) -> None:
    assert report.count(IMG_PREFIX) == 5
    assert NOT_AVAILABLE not in report
    payloads = _payloads(report)
    assert len(payloads) == 5
    for png in payloads:
        assert png.startswith(PNG_MAGIC)
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        height, width = pixels.shape[:2]
        assert width >= 400 and height >= 250
        assert float(np.std(pixels[..., :3])) > 0.05  # not a blank canvas


def test_titles_tables_and_metric_values_appear(data: ReportData, report: str) -> None:
    assert report.startswith("<!DOCTYPE html>")
    assert f"<title>{data.title}</title>" in report
    assert f"<h1>{data.title}</h1>" in report
    for heading in ("Summary", "Backtest (out of sample)", "Walk-forward folds", "Caveats"):
        assert f"<h2>{heading}</h2>" in report
    model = data.backtest["model"]
    assert f"{model['total_return'] * 100:.2f}%" in report
    assert f"{model['sharpe']:.2f}" in report
    assert f"{data.backtest['buy_and_hold']['max_drawdown'] * 100:.2f}%" in report
    assert f"{data.random_percentile:.1f}th percentile" in report
    assert "Buy &amp; hold" in report and "Random (median)" in report
    for fold in data.folds:
        assert f"{fold['direction.balanced_accuracy']:.4f}" in report
        start = pd.Timestamp(fold["test_start"]).strftime("%Y-%m-%d %H:%M UTC")
        assert f"<td>{start}</td>" in report
    assert "<td>ETH-BTC</td>" in report
    assert "<td>Feature set</td><td>core-v3 (32 features)</td>" in report
    assert "<li>balanced accuracy" in report


def test_backtest_formatting(data: ReportData) -> None:
    backtest = {
        "model": {
            "total_return": 0.12345,
            "sharpe": 1.23456,
            "max_drawdown": -0.0815,
            "hit_rate": 0.5,
            "exposure": 1.0,
            "profit_factor": float("inf"),
            "trades": 1234.0,
            "turnover": float("nan"),
        },
        "flat": {"total_return": 0.0},
    }
    text = render_html(dataclasses.replace(data, backtest=backtest))
    for cell in ("12.35%", "1.23", "-8.15%", "50.00%", "100.00%", "∞", "1,234", "0.00%"):
        assert f"<td>{cell}</td>" in text
    assert "<td>—</td>" in text  # NaN and metrics a strategy lacks
    assert "Buy &amp; hold" not in text  # no empty columns


def test_missing_inputs_render_notes_not_plots(data: ReportData) -> None:
    sparse = dataclasses.replace(
        data, confusion=None, calibration=None, importance={}, random_percentile=None, notes=[]
    )
    text = render_html(sparse)
    assert text.count(IMG_PREFIX) == 2
    assert text.count('<p class="na">') == 4
    for what in ("Confusion matrix", "Calibration", "Feature importance"):
        assert f"{what}: {NOT_AVAILABLE}." in text
    assert "Caveats" not in text


def test_everything_missing_still_renders(data: ReportData) -> None:
    empty = ReportData(
        title="empty",
        summary={},
        folds=[],
        backtest={},
        random_percentile=None,
        equity=pd.DataFrame(),
        confusion={"classes": [], "matrix": []},
        calibration={"classes": [], "bins": [], "observed": {}, "predicted": {}, "counts": {}},
        importance={"direction": pd.DataFrame(columns=["feature", "mean_abs_shap"])},
        notes=[],
    )
    text = render_html(empty)
    assert IMG_PREFIX not in text
    assert text.count('<p class="na">') == 9
    assert text.rstrip().endswith("</html>")


def test_partial_equity_and_single_head(data: ReportData) -> None:
    """Only model and buy-and-hold curves, one head without a baseline: still plots."""
    folds = [{k: v for k, v in f.items() if not k.startswith("return.")} for f in data.folds]
    for f in folds:
        del f["direction.chance"]
    partial = dataclasses.replace(
        data,
        equity=data.equity[["timestamp", "model", "buy_and_hold"]],
        folds=folds,
        importance={"direction": data.importance["direction"].head(5)},
    )
    text = render_html(partial)
    assert text.count(IMG_PREFIX) == 5
    assert all(p.startswith(PNG_MAGIC) for p in _payloads(text))


def test_malformed_confusion_is_refused(data: ReportData) -> None:
    bad = dataclasses.replace(data, confusion={"classes": CLASSES, "matrix": [[1, 2], [3, 4]]})
    with pytest.raises(ValueError, match="confusion matrix must be 3×3"):
        render_html(bad)


def test_text_is_escaped(data: ReportData) -> None:
    hostile = dataclasses.replace(
        data,
        title='<b>ETH</b> & "BTC"',
        summary={"<i>key</i>": "<img src=x onerror=alert(1)>"},
        notes=["<script>alert(1)</script>"],
        folds=[{**data.folds[0], "<th>": "<td>"}],
    )
    text = render_html(hostile)
    assert "<b>" not in text and "<i>" not in text and "<script" not in text
    assert "&lt;b&gt;ETH&lt;/b&gt; &amp; &quot;BTC&quot;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<td>&lt;td&gt;</td>" in text


def test_no_external_references_or_scripts(report: str) -> None:
    lowered = report.lower()
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "url(", 'src="//'):
        assert forbidden not in lowered
    assert re.findall(r'src="([^"]{0,22})', report) == ["data:image/png;base64,"] * 5


def test_output_is_deterministic(data: ReportData, report: str) -> None:
    first = report
    again = render_html(make_report_data())  # same seed, rebuilt from scratch
    assert first == again
    # The caller's Matplotlib style neither leaks in nor is changed by the report.
    before = dict(mpl.rcParams)
    with mpl.rc_context({"lines.linewidth": 7, "font.size": 20, "axes.facecolor": "black"}):
        styled = render_html(data)
    assert styled == first
    assert dict(mpl.rcParams) == before


def test_write_report_file_or_directory(data: ReportData, report: str, tmp_path: Path) -> None:
    into_dir = write_report(data, tmp_path / "package")
    assert into_dir == tmp_path / "package" / "report.html"
    named = write_report(data, tmp_path / "custom.html")
    assert named == tmp_path / "custom.html"
    assert into_dir.read_bytes() == named.read_bytes()
    assert into_dir.read_text(encoding="utf-8") == report
    assert sorted(p.name for p in (tmp_path / "package").iterdir()) == ["report.html"]
    size = into_dir.stat().st_size
    assert 50_000 < size < 1_500_000  # plots embedded, yet small enough to mail around


def test_plot_png_is_stable_and_leaves_no_figures() -> None:
    def draw() -> bytes:
        fig = Figure(figsize=(4, 3))
        ax = fig.subplots()
        ax.plot([0, 1, 2], [1, 3, 2])
        return plot_png(fig)

    first, second = draw(), draw()
    assert first.startswith(PNG_MAGIC)
    assert first == second
    assert b"Software" not in first
    assert mpimg.imread(io.BytesIO(first), format="png").shape[:2] == (300, 400)
