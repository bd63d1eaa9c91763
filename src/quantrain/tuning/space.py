"""Search spaces: how a job file names the values a parameter may take, parsed and checked
without the rest of tuning (the job config validates spaces with it, so it imports nothing
that imports the config). Optuna asks them through ``suggest``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from quantrain.errors import ConfigError

if TYPE_CHECKING:
    import optuna

SpecKind = Literal["uniform", "loguniform", "int", "logint", "choice", "fixed"]
SPEC_KINDS: tuple[str, ...] = ("uniform", "loguniform", "int", "logint", "choice")


class SpaceError(ConfigError, ValueError):
    """A search-space entry is malformed (a ``ValueError`` too, so pydantic reports it with
    the job file's name)."""


@dataclass(frozen=True)
class ParamSpec:
    """How one parameter is searched: a range (``uniform``, ``loguniform``, ``int``,
    ``logint``), a list to pick from (``choice``), or a value held fixed."""

    name: str
    kind: SpecKind
    low: float = 0.0
    high: float = 0.0
    values: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """The value an Optuna trial proposes for this parameter."""
        if self.kind in ("uniform", "loguniform"):
            return trial.suggest_float(
                self.name, self.low, self.high, log=self.kind == "loguniform"
            )
        if self.kind in ("int", "logint"):
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.kind == "logint"
            )
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        return self.values[0]


Space = dict[str, ParamSpec]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_param(name: str, raw: Any, *, where: str = "tune.space") -> ParamSpec | None:
    """One entry of a job file's space: ``{loguniform: [0.01, 0.3]}``, ``{int: [2, 8]}``,
    ``{choice: [a, b]}``, a plain value (held fixed), or null (not searched)."""
    at = f"{where}.{name}"
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        if isinstance(raw, list | tuple):
            raise SpaceError(
                f"{at}: a bare list is ambiguous, got {list(raw)!r}; write "
                f"{{uniform: [lo, hi]}}, {{int: [lo, hi]}} or {{choice: [...]}}"
            )
        return ParamSpec(name, "fixed", values=(raw,))
    if len(raw) != 1:
        raise SpaceError(
            f"{at}: expected one of {', '.join(SPEC_KINDS)} with its arguments, e.g. "
            f"{{loguniform: [0.01, 0.3]}}, got {dict(raw)!r}"
        )
    ((kind, args),) = raw.items()
    if kind not in SPEC_KINDS:
        raise SpaceError(f"{at}: unknown kind {kind!r}; kinds: {', '.join(SPEC_KINDS)}")
    if kind == "choice":
        if not isinstance(args, list | tuple) or not args:
            raise SpaceError(f"{at}: choice needs a non-empty list of values, got {args!r}")
        return ParamSpec(name, "choice", values=tuple(args))
    if not isinstance(args, list | tuple) or len(args) != 2 or not all(map(_number, args)):
        raise SpaceError(f"{at}: {kind} needs [low, high] (two numbers), got {args!r}")
    low, high = args
    if low >= high:
        raise SpaceError(f"{at}: {kind} needs low < high, got [{low}, {high}]")
    if kind in ("int", "logint") and not all(
        isinstance(v, int) or float(v).is_integer() for v in (low, high)
    ):
        raise SpaceError(f"{at}: {kind} bounds must be integers, got [{low}, {high}]")
    if kind in ("loguniform", "logint") and low <= 0:
        raise SpaceError(f"{at}: {kind} needs low > 0 (it samples the logarithm), got {low}")
    return ParamSpec(name, kind, low=float(low), high=float(high))


def parse_space(
    raw: Mapping[str, Any], *, where: str = "tune.space"
) -> dict[str, ParamSpec | None]:
    """Every entry of ``raw`` checked (None marks a parameter taken out of the search)."""
    if not isinstance(raw, Mapping):
        raise SpaceError(f"{where}: expected a mapping of parameter -> spec, got {raw!r}")
    return {str(name): parse_param(str(name), spec, where=where) for name, spec in raw.items()}


def _spaces(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, Space]:
    parsed: dict[str, Space] = {}
    for family, entries in raw.items():
        specs = parse_space(entries, where=f"default space of {family}")
        parsed[family] = {k: v for k, v in specs.items() if v is not None}
    return parsed


#: Default search spaces per family: wide enough to matter, narrow enough for ~20 trials.
#: Round counts are not searched: early stopping on each fold's purged validation slice
#: chooses them.
DEFAULT_SPACES: dict[str, Space] = _spaces(
    {
        "xgboost": {
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "max_depth": {"int": [2, 8]},
            "min_child_weight": {"loguniform": [1.0, 50.0]},
            "subsample": {"uniform": [0.5, 1.0]},
            "colsample_bytree": {"uniform": [0.4, 1.0]},
            "reg_lambda": {"loguniform": [0.1, 20.0]},
        },
        "lightgbm": {
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "num_leaves": {"logint": [4, 64]},
            "min_data_in_leaf": {"logint": [10, 200]},
            "feature_fraction": {"uniform": [0.4, 1.0]},
            "bagging_fraction": {"uniform": [0.5, 1.0]},
            "lambda_l2": {"loguniform": [0.1, 20.0]},
        },
        "random_forest": {
            "max_depth": {"int": [4, 16]},
            "min_samples_leaf": {"logint": [5, 100]},
            "max_features": {"uniform": [0.2, 1.0]},
        },
        "extra_trees": {
            "max_depth": {"int": [4, 16]},
            "min_samples_leaf": {"logint": [5, 100]},
            "max_features": {"uniform": [0.2, 1.0]},
        },
        "ftrl": {
            "alpha": {"loguniform": [0.005, 0.3]},
            "l1": {"loguniform": [0.1, 100.0]},
            "l2": {"loguniform": [1.0, 10000.0]},
        },
    }
)


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Define-by-run: ask ``trial`` for every searched parameter; returns the fixed ones
    (what Ray Tune's ``OptunaSearch`` expects from a define-by-run function)."""
    fixed: dict[str, Any] = {}
    for spec in space.values():
        value = spec.suggest(trial)
        if spec.kind == "fixed":
            fixed[spec.name] = value
    return fixed


def trial_params(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Every parameter of one trial (searched and fixed), for a plain Optuna loop."""
    fixed = suggest(trial, space)
    return {**trial.params, **fixed}
