"""Numeric failures in features: subnormal and flat prices compute, and any kernel that still
fails names the feature, the first row it fails on and the fix (issue 24: CCI divided by zero
on subnormal prices and training reported "internal error (ZeroDivisionError)")."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from quantrain.cli import main
from quantrain.errors import ConfigError, DataError
from quantrain.features import FeatureDef, FeatureSpec, compute_features, kernels, standard_spec
from quantrain.features.compute import INDICATORS

from ..conftest import package_path

ROWS = 400
TIE_REL = 1e-10  # kernels._TIE_REL: a window this flat relative to its mean gives CCI 0


def walk(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.exp(np.cumsum(rng.normal(0.0, 0.01, ROWS)))


def bars(close: np.ndarray, spread: float = 0.01, volume: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=len(close), freq="5min", tz="UTC"),
            "open": close,
            "high": close * (1 + spread),
            "low": close * (1 - spread),
            "close": close,
            "volume": np.full(len(close), volume),
        }
    )


def spec_of(kind: str, **params: int | float | str) -> FeatureSpec:
    return FeatureSpec(name="t", features=(FeatureDef(kind=kind, params=params),))


# Subnormal floats start below 2.2e-308; at 1e-320 only a few hundred values are left, and
# 0.015 × (mean deviation) underflowed to 0 in CCI while the deviation itself did not.
SUBNORMAL = {
    "1e-310": bars(walk() * 1e-310),
    "1e-318": bars(walk() * 1e-318),
    "1e-320": bars(walk() * 1e-320, spread=0.0),
    "1e-320, tiny volume": bars(walk() * 1e-320, volume=1e-320),
    "1e-310, tiny volume": bars(walk() * 1e-310, spread=0.0, volume=1e-320),
    "flat 1e-320": bars(np.full(ROWS, 1e-320), spread=0.0),
}
PRICE_KINDS = [k for k, ind in INDICATORS.items() if ind.inputs == "ohlcv"]


@pytest.mark.parametrize("case", list(SUBNORMAL))
def test_every_price_indicator_computes_on_subnormal_prices(case: str) -> None:
    """Default and smallest windows (CCI over 2 bars and VWAP raised ZeroDivisionError)."""
    frame = SUBNORMAL[case]
    for kind in PRICE_KINDS:
        specs = [spec_of(kind)]
        with contextlib.suppress(ConfigError):  # e.g. macd, ultosc: their windows must differ
            specs.append(spec_of(kind, **smallest_params(kind)))
        for spec in specs:
            compute_features(frame, spec)


def smallest_params(kind: str) -> dict[str, int | float]:
    return {
        p.name: type(p.default)(p.minimum)
        for p in INDICATORS[kind].params
        if p.minimum is not None and isinstance(p.default, int | float)
    }


def test_the_standard_set_computes_on_subnormal_prices() -> None:
    spec = standard_spec()
    for frame in SUBNORMAL.values():
        out = compute_features(frame, spec)
        assert out.shape == (ROWS, len(spec.columns()))
        cci = out["cci_20"].iloc[spec.warmup_bars() :]
        assert np.isfinite(cci).all()


def test_cci_on_subnormal_prices_is_the_index_not_zero() -> None:
    """Where 0.015 × deviation underflows, CCI divides in two steps: the same index."""
    frame = SUBNORMAL["1e-320"]
    tp = ((frame["high"] + frame["low"] + frame["close"]) / 3.0).to_numpy()
    out = kernels.cci(tp, 20)
    underflowed = 0
    for i in range(19, ROWS):
        window = tp[i - 19 : i + 1]
        mean = window.sum() / 20
        dev = np.abs(window - mean).sum() / 20
        if dev <= TIE_REL * abs(mean):
            assert out[i] == 0.0
        elif 0.015 * dev == 0.0:
            underflowed += 1
            assert out[i] == pytest.approx((tp[i] - mean) / dev / 0.015)
    assert underflowed > 0  # the case that divided by zero is really exercised


def test_vwap_dist_falls_back_to_the_plain_mean_when_price_times_volume_underflows() -> None:
    out = compute_features(SUBNORMAL["1e-310, tiny volume"], spec_of("vwap_dist", period=48))
    assert np.isfinite(out.iloc[47:].to_numpy()).all()


def test_normal_prices_keep_identical_cci_and_ratios(eth_frame: pd.DataFrame) -> None:
    """The guards only act where a denominator is 0: real prices give the formula's values."""
    tp = ((eth_frame["high"] + eth_frame["low"] + eth_frame["close"]) / 3.0).to_numpy()
    out = kernels.cci(tp, 20)
    for i in (19, 500, len(tp) - 1):
        window = tp[i - 19 : i + 1]
        acc = 0.0
        for v in window:
            acc += v
        mean = acc / 20
        dev = 0.0
        for v in window:
            dev += abs(v - mean)
        dev /= 20
        assert out[i] == (tp[i] - mean) / (0.015 * dev)  # bit for bit
    close = eth_frame["close"].to_numpy()
    assert np.array_equal(
        kernels.ratio_minus_one(close[1:], close[:-1]), close[1:] / close[:-1] - 1
    )


# ------------------------------------------------------------------ failures name the feature


def cci_before_the_fix(tp: np.ndarray, n: int) -> np.ndarray:
    """The CCI kernel as it was (pure Python, same arithmetic): 0.015 × dev could be 0."""
    out = np.full(tp.shape[0], np.nan)
    for i in range(n - 1, tp.shape[0]):
        window = tp[i - n + 1 : i + 1]
        mean = float(sum(window)) / n
        dev = float(sum(abs(v - mean) for v in window)) / n
        out[i] = 0.0 if dev <= TIE_REL * abs(mean) else float(tp[i] - mean) / (0.015 * dev)
    return out


def first_underflow(frame: pd.DataFrame, n: int) -> int:
    tp = ((frame["high"] + frame["low"] + frame["close"]) / 3.0).to_numpy()
    for i in range(n - 1, len(tp)):
        window = tp[i - n + 1 : i + 1]
        mean = float(sum(window)) / n
        dev = float(sum(abs(v - mean) for v in window)) / n
        if dev > TIE_REL * abs(mean) and 0.015 * dev == 0.0:
            return i
    raise AssertionError("no row underflows")


# Ratios of normal-sized differences to subnormal closes overflow to inf, with a warning.
MIXED_SCALES = "ignore:overflow encountered:RuntimeWarning"


@pytest.fixture
def subnormal_tail(eth_frame: pd.DataFrame) -> pd.DataFrame:
    """Real ETH/BTC bars whose prices turn subnormal from row 300 (a unit error mid-file)."""
    frame = eth_frame.head(ROWS).reset_index(drop=True)
    prices = ["open", "high", "low", "close"]
    frame.loc[300:, prices] = frame.loc[300:, prices].to_numpy() * 1e-320
    return frame


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.filterwarnings(MIXED_SCALES)
def test_a_numeric_failure_names_the_feature_and_its_first_row(
    subnormal_tail: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    monkeypatch.setattr(kernels, "cci", cci_before_the_fix)
    row = first_underflow(subnormal_tail, 20)
    with pytest.raises(DataError) as caught:
        compute_features(subnormal_tail, standard_spec(), threads=threads)
    message = str(caught.value)
    assert message.startswith(f"feature 'cci_20' failed on rows {row}.. (first at row {row}, ")
    assert str(subnormal_tail["timestamp"].iloc[row]) in message
    assert "ZeroDivisionError" in message
    assert "subnormal prices" in message and "the first at row(s) [300, 301" in message
    assert "fix:" in message and "drop: [cci_20]" in message


def test_other_errors_pass_through_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(tp: np.ndarray, n: int) -> np.ndarray:
        raise KeyError("a bug, not a numeric failure")

    monkeypatch.setattr(kernels, "cci", broken)
    with pytest.raises(KeyError):
        compute_features(bars(walk()), spec_of("cci"))


@pytest.mark.filterwarnings(MIXED_SCALES)
def test_predict_on_subnormal_prices_exits_2_naming_the_feature(
    trained_store: Path,
    subnormal_tail: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI case: no traceback, no "internal error", the feature and row in the message."""
    monkeypatch.setattr(kernels, "cci", cci_before_the_fix)
    data = tmp_path / "ETH-BTC_5m.parquet"
    subnormal_tail.to_parquet(data)
    package = package_path(trained_store, "ETH-BTC")
    result = CliRunner().invoke(main, ["predict", str(package), str(data)])
    assert result.exit_code == 2, result.output
    assert "feature 'cci_20' failed on rows" in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
