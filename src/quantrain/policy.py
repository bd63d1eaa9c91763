"""The trading policy a package carries: the one rule the backtest trades and ``Predictor`` serves.

From a direction head's probabilities and (optionally) a position-size head's predicted R, each
bar gets an action: a side (+1 long, -1 short, 0 flat), a size (fraction of equity) and the
take-profit / stop distances in price. A policy with a ``meta_head`` (a ``meta_label`` cascade
head reading the direction head) takes a bar's direction signal only where that head's P(TAKE)
≥ ``meta_threshold`` (López de Prado's meta-labeling: the primary says which side, the meta
head whether to take it). The backtest executes these actions under its
one-position rule; a bot that is flat executes the newest bar's action. Both call the functions
here, so the verdict is the verdict of what the bot does. numpy only: bots import this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from quantrain.errors import ConfigError, DataError
from quantrain.labels.triple_barrier import ENTRY_RULES, EntryRule

#: The manifest field the policy is stored under.
POLICY_FIELD: Final = "policy"
#: Action names by side (-1, 0, +1).
ACTION_NAMES: Final = {-1: "SELL", 0: "FLAT", 1: "BUY"}

#: Trading defaults, declared once (the job's ``evaluate`` section and the backtest read them):
#: enter at P(BUY) or P(SELL) ≥ 0.45; 10 bps fee and 5 bps slippage per side on notional;
#: never more than 1× equity.
DEFAULT_THRESHOLD: Final = 0.45
DEFAULT_FEE_BPS: Final = 10.0
DEFAULT_SLIPPAGE_BPS: Final = 5.0
DEFAULT_LEVERAGE_CAP: Final = 1.0
#: Take a direction signal where the meta head's P(TAKE) ≥ 0.5 (its more probable class).
DEFAULT_META_THRESHOLD: Final = 0.5
#: Fields a policy may lack: packages written before the meta gate have neither (no gate).
_OPTIONAL_FIELDS: Final = frozenset({"meta_head", "meta_threshold"})


def check_number(name: str, value: object, *, minimum: float, strict: bool) -> float:
    """``value`` as a float, refused unless it is a finite number above ``minimum``."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(number) and (number > minimum if strict else number >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f"≥ {minimum:g}"
        raise ConfigError(f"`{name}` must be a finite number {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def signals_from_probabilities(
    p_sell: npt.ArrayLike, p_buy: npt.ArrayLike, threshold: float
) -> npt.NDArray[np.int8]:
    """+1 where P(BUY) ≥ threshold and P(BUY) > P(SELL); -1 the other way round; else 0.

    An exact tie between the two, or a NaN probability, gives 0 (no trade).
    """
    check_number("threshold", threshold, minimum=0.0, strict=False)
    sell = np.asarray(p_sell, dtype=np.float64)
    buy = np.asarray(p_buy, dtype=np.float64)
    if sell.shape != buy.shape or sell.ndim != 1:
        raise DataError(
            f"p_sell and p_buy must be 1-D and equally long, got {sell.shape} and {buy.shape}"
        )
    out = np.zeros(sell.shape[0], dtype=np.int8)
    out[(buy >= threshold) & (buy > sell)] = 1
    out[(sell >= threshold) & (sell > buy)] = -1
    return out


def sizes_from_r_multiple(
    pred_r: npt.ArrayLike, *, r_max: float = 3.0, leverage_cap: float = 1.0
) -> npt.NDArray[np.float64]:
    """Position size from the size head's predicted R: ``clip(pred_r / r_max, 0, leverage_cap)``.

    A predicted R ≤ 0 (or NaN) gives size 0, which the backtest reads as "no trade".
    """
    check_number("r_max", r_max, minimum=0.0, strict=True)
    check_number("leverage_cap", leverage_cap, minimum=0.0, strict=True)
    r = np.asarray(pred_r, dtype=np.float64)
    sizes = np.clip(r / float(r_max), 0.0, float(leverage_cap))
    return np.where(np.isnan(sizes), 0.0, sizes)


@dataclass(frozen=True)
class TradingPolicy:
    """Entry threshold, barrier rules, fill rule and sizing: everything that turns head outputs
    into trades. Stored in the manifest; the backtest and ``Predictor`` both read it."""

    direction_head: str
    size_head: str | None
    threshold: float
    k_tp: float
    k_sl: float
    horizon: int
    atr_period: int
    entry: EntryRule
    r_max: float
    leverage_cap: float
    fee_bps: float
    slippage_bps: float
    #: The meta-label head whose P(TAKE) gates the direction signal; None: no gate.
    meta_head: str | None = None
    meta_threshold: float = DEFAULT_META_THRESHOLD

    def __post_init__(self) -> None:
        for name in ("threshold", "meta_threshold"):
            value = check_number(name, getattr(self, name), minimum=0.0, strict=False)
            if value > 1.0:
                raise ConfigError(f"`{name}` must be a probability in [0, 1], got {value}")
        for name in ("k_tp", "k_sl", "r_max", "leverage_cap"):
            check_number(name, getattr(self, name), minimum=0.0, strict=True)
        for name in ("fee_bps", "slippage_bps"):
            check_number(name, getattr(self, name), minimum=0.0, strict=False)
        for name in ("horizon", "atr_period"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"`{name}` must be an integer ≥ 1, got {value!r}")
        if self.entry not in ENTRY_RULES:
            raise ConfigError(f"`entry` must be one of {list(ENTRY_RULES)}, got {self.entry!r}")

    def to_dict(self) -> dict[str, Any]:
        """The manifest's record; without a meta head, exactly the fields older readers know."""
        raw = asdict(self)
        if self.meta_head is None:
            for name in _OPTIONAL_FIELDS:
                raw.pop(name)
        return raw

    @classmethod
    def from_dict(cls, raw: Any, *, where: str = "manifest policy") -> TradingPolicy:
        """The policy a manifest recorded; a malformed one is refused, naming what is wrong."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
        fields = set(cls.__dataclass_fields__)
        missing = sorted(fields - set(raw) - _OPTIONAL_FIELDS)
        unknown = sorted(set(raw) - fields)
        if missing or unknown:
            raise ConfigError(f"{where}: missing fields {missing}, unknown fields {unknown}")
        return cls(**raw)

    def signals(
        self, p_sell: npt.ArrayLike, p_buy: npt.ArrayLike, p_take: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.int8]:
        """Side per bar from the direction head's P(SELL) and P(BUY), kept only where the
        meta head's P(TAKE) ≥ ``meta_threshold`` (a NaN P(TAKE) takes nothing)."""
        side = signals_from_probabilities(p_sell, p_buy, self.threshold)
        take = self._take(p_take, side.shape[0])
        return side if take is None else np.where(take, side, 0).astype(np.int8)

    def p_take_of(self, outputs: Mapping[str, Any]) -> Any:
        """The meta head's P(TAKE) among a package's served ``outputs`` (None: no gate)."""
        return None if self.meta_head is None else outputs[f"{self.meta_head}_p_TAKE"]

    def _check_gate(self, given: bool) -> None:
        """The meta head's P(TAKE) is required exactly when the policy has one."""
        if self.meta_head is None and given:
            raise DataError("this policy has no meta head: pass no P(TAKE)")
        if self.meta_head is not None and not given:
            raise DataError(f"this policy trades meta head {self.meta_head!r}: pass its P(TAKE)")

    def _take(self, p_take: npt.ArrayLike | None, n: int) -> npt.NDArray[np.bool_] | None:
        """Where the meta gate lets a signal through (None: no gate)."""
        self._check_gate(p_take is not None)
        if p_take is None:
            return None
        take = np.asarray(p_take, dtype=np.float64)
        if take.shape != (n,):
            raise DataError(f"P(TAKE) must be 1-D of length {n}, got shape {take.shape}")
        return take >= self.meta_threshold

    def sizes(self, pred_r: npt.ArrayLike | None, n: int) -> npt.NDArray[np.float64]:
        """Size per bar: from the size head's predicted R, else a fixed ``min(1, cap)``."""
        if pred_r is None:
            return np.full(n, min(1.0, self.leverage_cap))
        return sizes_from_r_multiple(pred_r, r_max=self.r_max, leverage_cap=self.leverage_cap)

    def actions(
        self,
        p_sell: npt.ArrayLike,
        p_buy: npt.ArrayLike,
        pred_r: npt.ArrayLike | None,
        atr: npt.ArrayLike,
        p_take: npt.ArrayLike | None = None,
    ) -> dict[str, npt.NDArray[Any]]:
        """Per bar, what a flat bot does: side, size and barrier distances (price units).

        A side whose size is 0 or whose ATR is not positive (warm-up) becomes flat, as in the
        backtest. With ``entry == "next_open"`` the bot fills at the next bar's open and places
        take-profit at ``fill + side × tp_distance`` and stop at ``fill − side × sl_distance``.
        """
        atr_values = np.asarray(atr, dtype=np.float64)
        side = self.signals(p_sell, p_buy, p_take).astype(np.int8)
        size = self.sizes(pred_r, side.shape[0])
        tradable = (size > 0) & (atr_values > 0) & np.isfinite(atr_values)
        side = np.where(tradable, side, 0).astype(np.int8)
        size = np.where(side != 0, size, 0.0)
        return {
            "side": side,
            "size": size,
            "tp_distance": np.where(side != 0, self.k_tp * atr_values, np.nan),
            "sl_distance": np.where(side != 0, self.k_sl * atr_values, np.nan),
        }

    def action(
        self,
        p_sell: float,
        p_buy: float,
        pred_r: float | None,
        atr: float,
        p_take: float | None = None,
    ) -> tuple[int, float, float, float]:
        """``actions`` for one bar, on plain floats: ``(side, size, tp_distance, sl_distance)``.

        A live bot's per-bar call: the same comparisons and arithmetic as the vectorised rule,
        without building one-element arrays (tests hold the two equal, NaNs and ties included).
        """
        side = 0
        if p_buy >= self.threshold and p_buy > p_sell:
            side = 1
        elif p_sell >= self.threshold and p_sell > p_buy:
            side = -1
        self._check_gate(p_take is not None)
        if p_take is not None and not p_take >= self.meta_threshold:
            side = 0
        if pred_r is None:
            size = min(1.0, self.leverage_cap)
        else:
            ratio = pred_r / float(self.r_max)
            size = 0.0 if math.isnan(ratio) else min(max(ratio, 0.0), float(self.leverage_cap))
        if not (size > 0 and atr > 0 and math.isfinite(atr)):
            side = 0
        if side == 0:
            return 0, 0.0, math.nan, math.nan
        return side, size, self.k_tp * atr, self.k_sl * atr


def direction_probabilities(
    probs: npt.ArrayLike, classes: list[str] | tuple[str, ...]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """P(SELL) and P(BUY) columns of a direction head's output, found by class name."""
    matrix = np.asarray(probs, dtype=np.float64)
    sell, buy = direction_columns(classes)
    return matrix[:, sell], matrix[:, buy]


def direction_columns(classes: list[str] | tuple[str, ...]) -> tuple[int, int]:
    """Where P(SELL) and P(BUY) are among a direction head's classes."""
    names = list(classes)
    if "SELL" not in names or "BUY" not in names:
        raise DataError(f"a direction head needs classes SELL and BUY, got {names}")
    return names.index("SELL"), names.index("BUY")
